"""SSL-AASIST against the original code: TakHemlata/SSL_Anti-spoofing ``model.py`` (4acaa61) run with its
bundled fairseq (a54021305) on the golden waveforms, fixtures in tests/fixtures/ssl_aasist (see
tests/oracles/record_ssl_aasist.py and tests/fixtures/README.md). Held to 1e-5 relative.

``tiny_xlsr.pt`` is a wav2vec 2.0 checkpoint written by fairseq's own pre-training (``fairseq-hydra-train``,
XLS-R's layout at tiny widths), ``tiny_ssl_aasist.pth`` the original ``Model`` built on it, its norms
perturbed, saved as ``main_SSL_LA.py`` saves (the released checkpoints' format).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sasv.fileio import sha256_file
from sasv.models.checkpoints import load_checkpoint_into
from sasv.models.ssl_aasist import SSLAASIST
from sasv.models.wavlm import WavLMConfig, WavLMUpstream
from tests.tiny_confs import TINY_XLSR_FRONT_END

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ssl_aasist"
CONFIG = json.loads((FIXTURES / "config.json").read_text())
RTOL = 1e-5


def _close(got: torch.Tensor, want: np.ndarray, what: str) -> None:
    """Within 1e-5 of the reference, relative to the reference's largest magnitude."""
    want_t = torch.from_numpy(want)
    scale = float(want_t.abs().max())
    torch.testing.assert_close(got, want_t, rtol=RTOL, atol=RTOL * scale, msg=what)


@pytest.fixture(scope="module")
def io() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURES / "io.npz"))


@pytest.fixture()
def x_padded(golden) -> torch.Tensor:
    x = np.load(golden("aasist/io.npz"))["x_padded"]
    assert hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() == CONFIG["input"]["sha256"]
    return torch.from_numpy(x)


@pytest.fixture(scope="module")
def released() -> SSLAASIST:
    """The tiny model in the released format, through the conf's loader (strict, sha256 checked)."""
    model = SSLAASIST(TINY_XLSR_FRONT_END)
    path = FIXTURES / "tiny_ssl_aasist.pth"
    load_checkpoint_into(model, path, "ssl_aasist", CONFIG["sha256"]["tiny_ssl_aasist.pth"])
    return model.eval()


def test_fixture_files_are_the_recorded_ones() -> None:
    for name, digest in CONFIG["sha256"].items():
        assert sha256_file(FIXTURES / name) == digest, name


def test_the_front_end_computes_fairseqs_wav2vec2_features(released, x_padded, io) -> None:
    with torch.no_grad():
        _close(released.ssl_features(x_padded), io["feat"], "features, batch of 4")
        single = torch.cat([released.ssl_features(x_padded[i : i + 1]) for i in range(4)])
        _close(single, io["feat_single"], "features, one at a time")
        _close(released.ssl_features(x_padded[:, :48000]), io["feat_48000"], "features of 48,000 samples")


def test_logits_equal_the_original_models(released, x_padded, io) -> None:
    with torch.no_grad():
        _close(released(x_padded), io["logits"], "logits, batch of 4")
        _close(torch.cat([released(x_padded[i : i + 1]) for i in range(4)]), io["logits_single"], "single")
        _close(released(x_padded[:, :48000]), io["logits_48000"], "logits of 48,000 samples")


def test_the_pretrained_fairseq_checkpoint_loads_as_the_front_end(x_padded, io) -> None:
    """fairseq's own pre-training checkpoint (the format of XLS-R's xlsr2_300m.pt) -> the same features
    fairseq's ``load_model_ensemble_and_task`` model gives, through the training conf's format."""
    cfg = {k: v for k, v in TINY_XLSR_FRONT_END.items() if k != "family"}
    front_end = WavLMUpstream(WavLMConfig.from_dict(cfg, family="wav2vec2"))
    path = FIXTURES / "tiny_xlsr.pt"
    load_checkpoint_into(front_end.model, path, "fairseq_pretrained", CONFIG["sha256"]["tiny_xlsr.pt"])
    with torch.no_grad():
        _close(front_end.eval()(x_padded, last_only=True)[-1], io["feat_pretrained"], "pre-trained features")


def test_stage_3_scores_the_golden_waveforms_as_the_original_model(golden, tmp_path, io) -> None:
    """Through the recipe: the released-format checkpoint named by a conf, stage 3 (``sasv score_cm``) on
    a CM data dir of the four golden waveforms as PCM_16 FLAC (exact: they lie on the 16-bit grid), the
    first 64,600 samples tiled as the original's ``pad``: the score file's logits are the original's."""
    from sasv.__main__ import main as sasv_main
    from sasv.extraction.outputs import CM_FIELDS
    from tests.tiny_confs import TINY_SSL_AASIST, write_tiny_conf

    ref = np.load(golden("aasist/io.npz"))
    data = tmp_path / "data" / "golden"
    data.mkdir(parents=True)
    utts = [f"utt{i}" for i in range(4)]
    for i, utt in enumerate(utts):
        wav = ref[f"wav{i}"][: int(ref["lengths"][i])]
        sf.write(tmp_path / f"{utt}.flac", wav, 16000, subtype="PCM_16")
    (data / "wav.scp").write_text("".join(f"{u} {tmp_path / u}.flac\n" for u in utts))
    (data / "utt2spf").write_text("".join(f"{u} spoof\n" for u in utts))
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u in utts))
    checkpoint = {"path": str(FIXTURES / "tiny_ssl_aasist.pth"), "format": "ssl_aasist",
                  "sha256": CONFIG["sha256"]["tiny_ssl_aasist.pth"]}  # fmt: skip
    conf = write_tiny_conf(tmp_path, TINY_SSL_AASIST, checkpoint=checkpoint)
    argv = ["score_cm", "--conf", str(conf), "--data_dirs", str(data), "--exp_dir", str(tmp_path / "exp"),
            "--device", "cpu"]  # fmt: skip
    assert sasv_main(argv) == 0
    scores = tmp_path / "exp" / "tiny_ssl_aasist" / "scores" / "golden" / "cm_scores.txt"
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in scores.read_text().splitlines()}
    assert CM_FIELDS[:2] == ("logit_spoof", "logit_bonafide")
    _close(torch.tensor([rows[u][:2] for u in utts]), io["logits"], "stage 3 logits")
