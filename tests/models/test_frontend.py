"""LogMelFrontend against the buffers and features of the original torchaudio front-ends (golden data).

Each published ASV checkpoint stores its mel filterbank and window; computing them identically here means a
model built without a checkpoint (or from a conf with another n_mels) behaves like the trained one, and a
mismatch in the filterbank formula (float64 vs float32, HTK vs Slaney) shows up as an inequality.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from sasv.models.frontend import LogMelFrontend
from tests.conftest import FEATURE_TOL, rel_err

# LogMelFrontend arguments of each reference model, and where its checkpoint keeps the torchaudio buffers.
FRONTENDS: dict[str, tuple[dict[str, Any], str]] = {
    "ecapa_tdnn": (
        {"f_min": 20.0, "f_max": 7600.0, "n_mels": 80, "norm": "mean"},
        "speaker_encoder.torchfbank",
    ),
    "se_resnet34": (
        {"f_min": 0.0, "f_max": None, "n_mels": 64, "input_scale": 32768.0, "norm": "instance"},
        "__S__.torchfb",
    ),
    "se_res2net50": ({"f_min": 0.0, "f_max": None, "n_mels": 80, "norm": "instance"}, "torchfb"),
    "res2next50": ({"f_min": 20.0, "f_max": 7600.0, "n_mels": 64, "norm": "mean"}, "torchfbank"),
}


@pytest.mark.parametrize("model", sorted(FRONTENDS))
def test_buffers_equal_checkpoint(golden, model: str) -> None:
    kwargs, prefix = FRONTENDS[model]
    state = torch.load(golden(model) / "tiny.pt", map_location="cpu", weights_only=True)
    fe = LogMelFrontend(**kwargs)
    assert torch.equal(fe.mel_fb, state[f"{prefix}.1.mel_scale.fb"])
    assert torch.equal(fe.window, state[f"{prefix}.1.spectrogram.window"])
    assert torch.equal(fe.preemphasis_filter, state[f"{prefix}.0.flipped_filter"])


@pytest.mark.parametrize("model", sorted(FRONTENDS))
def test_features_match_golden(golden, model: str) -> None:
    ref = np.load(golden(model) / "io.npz")
    fe = LogMelFrontend(**FRONTENDS[model][0])
    with torch.inference_mode():
        feats = fe(torch.from_numpy(ref["wav0"])[None])[0].numpy()
    err = rel_err(feats, ref["feat_wav0_full"])
    assert err < FEATURE_TOL, err


@pytest.mark.parametrize("num_samples", [400, 401, 16000, 16159, 48240])
def test_frame_count(num_samples: int) -> None:
    fe = LogMelFrontend()
    with torch.inference_mode():
        feats = fe(torch.randn(2, num_samples) * 0.1)
    assert feats.shape == (2, 80, 1 + num_samples // 160)


def test_mean_and_instance_norm_semantics() -> None:
    wav = torch.randn(1, 16000) * 0.1
    with torch.inference_mode():
        mean = LogMelFrontend(norm="mean")(wav)
        inst = LogMelFrontend(norm="instance")(wav)
    torch.testing.assert_close(mean.mean(-1), torch.zeros(1, 80), atol=1e-5, rtol=0)
    torch.testing.assert_close(inst.std(-1, correction=0), torch.ones(1, 80), atol=1e-3, rtol=0)


def test_invalid_norm_raises() -> None:
    with pytest.raises(ValueError, match="normalisation"):
        LogMelFrontend(norm="cmvn")  # type: ignore[arg-type]
