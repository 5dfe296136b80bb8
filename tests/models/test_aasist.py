"""AASIST / AASIST-L parity with clovaai/aasist on the golden fixtures (shared/golden/aasist).

The models are built from the real conf files and loaded from the official checkpoints exactly as the recipe
does, so these tests also pin the conf arguments, the checkpoint format and the sha256 in the confs.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sasv.audio import CM_SAMPLES, cm_input
from sasv.models.aasist import AASIST, bona_fide_probability, sinc_band_pass_filters
from sasv.models.checkpoints import CheckpointError, load_checkpoint_into
from sasv.models.conf import build_from_conf, load_conf
from tests.conftest import REPO_ROOT, rel_err

TOL = 1e-5  # shared/golden/README.md: suggested AASIST parity tolerance (max|Δ| / max|ref|)

# conf file -> (golden checkpoint file, io.npz key prefix)
SYSTEMS = {
    "aasist": ("AASIST.pth", "AASIST"),
    "aasist_l": ("AASIST-L.pth", "AASIST_L"),
}


def conf_path(name: str) -> Path:
    return REPO_ROOT / "conf" / "cm" / f"{name}.yaml"


@functools.cache
def _run(name: str, golden_dir: str) -> tuple[AASIST, np.ndarray, np.ndarray]:
    """Build, load and run one system once per session: a forward pass is the expensive part."""
    conf = load_conf(conf_path(name))
    model = build_from_conf(conf)
    ckpt_file, _ = SYSTEMS[name]
    load_checkpoint_into(model, Path(golden_dir) / ckpt_file, conf.checkpoint.format, conf.checkpoint.sha256)
    model.eval()
    x = torch.from_numpy(np.load(Path(golden_dir) / "io.npz")["x_padded"])
    with torch.no_grad():
        last_hidden, logits = model.forward_features(x)
    return model, last_hidden.numpy(), logits.numpy()


@pytest.fixture
def aasist_dir(golden) -> Path:
    return golden("aasist")


@pytest.fixture
def io(aasist_dir) -> dict[str, np.ndarray]:
    with np.load(aasist_dir / "io.npz") as data:
        return dict(data)


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_conf_builds_aasist_with_checkpoint_spec(name: str) -> None:
    conf = load_conf(conf_path(name))
    assert conf.kind == "cm" and conf.arch == "aasist"
    assert conf.checkpoint is not None and conf.checkpoint.format == "clovaai_aasist"
    assert conf.checkpoint.path == f"pretrained/{SYSTEMS[name][0]}"
    assert conf.checkpoint.url.endswith(f"/models/weights/{SYSTEMS[name][0]}")
    model = build_from_conf(conf)
    assert isinstance(model, AASIST)
    # the sinc bank is rebuilt at construction, so it must stay out of the state dict for strict loading
    state = model.state_dict()
    assert len(state) == 229
    assert not any(k.startswith("conv_time") for k in state)


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_sinc_band_pass_matches_original(name: str, io) -> None:
    model = build_from_conf(load_conf(conf_path(name)))
    bank = model.conv_time.band_pass
    expected = io[f"{SYSTEMS[name][1]}_sinc_band_pass"]
    assert bank.dtype == torch.float32
    err = rel_err(bank.numpy(), expected)
    assert err <= TOL, f"sinc filter bank rel err {err:.3g}"


def test_sinc_band_pass_odd_kernel() -> None:
    # an even length is made odd so that each filter is symmetric; both give the same 129-tap bank
    assert torch.equal(sinc_band_pass_filters(70, 128), sinc_band_pass_filters(70, 129))
    bank = sinc_band_pass_filters(70, 128)
    assert torch.equal(bank, bank.flip(1))


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_parity_with_clovaai(name: str, aasist_dir, io) -> None:
    _, last_hidden, logits = _run(name, str(aasist_dir))
    prefix = SYSTEMS[name][1]
    errors = {
        "last_hidden": rel_err(last_hidden, io[f"{prefix}_last_hidden"]),
        "logits": rel_err(logits, io[f"{prefix}_logits"]),
        "softmax1": rel_err(
            bona_fide_probability(torch.from_numpy(logits)).numpy(), io[f"{prefix}_softmax1"]
        ),
    }
    bad = {k: v for k, v in errors.items() if not v <= TOL}
    assert not bad, f"{name}: rel errors above {TOL}: {bad} (all: {errors})"


def test_forward_returns_logits_of_forward_features(aasist_dir, io) -> None:
    model, _, logits = _run("aasist", str(aasist_dir))
    with torch.no_grad():
        out = model(torch.from_numpy(io["x_padded"][:1]))
    assert out.shape == (1, 2)
    # batch of 1 vs batch of 4: README reports 4.8e-7 on logits ~4
    assert rel_err(out.numpy(), logits[:1]) <= TOL


def test_cm_input_reproduces_clovaai_pad(io) -> None:
    lengths = io["lengths"]
    for i in range(len(lengths)):
        wav = io[f"wav{i}"]
        assert wav.shape == (lengths[i],)
        padded = cm_input(wav)
        assert padded.shape == (CM_SAMPLES,)
        np.testing.assert_array_equal(padded, io["x_padded"][i])


def test_wrong_checkpoint_names_mis_shaped_keys(aasist_dir) -> None:
    model = build_from_conf(load_conf(conf_path("aasist")))
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint_into(model, aasist_dir / "AASIST-L.pth", "clovaai_aasist")
    message = str(excinfo.value)
    assert "shape mismatches" in message
    assert "AASIST-L.pth" in message
    # AASIST-L narrows the last encoder stages (64 -> 24 channels): e.g. the positional embedding
    assert "pos_S: checkpoint (1, 23, 24) vs model (1, 23, 64)" in message


def test_bona_fide_probability_is_softmax_index_1() -> None:
    logits = torch.tensor([[0.0, 0.0], [2.0, -1.0], [-3.0, 4.0]])
    prob = bona_fide_probability(logits)
    expected = torch.softmax(logits, dim=1)[:, 1]
    assert torch.equal(prob, expected)
    assert prob[0] == 0.5 and prob[1] < 0.5 < prob[2]


def test_rejects_non_batched_input() -> None:
    model = build_from_conf(load_conf(conf_path("aasist_l"))).eval()
    with pytest.raises(ValueError, match="batch, samples"):
        model(torch.zeros(CM_SAMPLES))


def test_from_model_config_accepts_clovaai_block(aasist_dir) -> None:
    config = json.loads((aasist_dir / "AASIST-L.config.json").read_text())
    model = AASIST.from_model_config(config)
    load_checkpoint_into(model, aasist_dir / "AASIST-L.pth", "clovaai_aasist")
    with pytest.raises(ValueError, match="architecture"):
        AASIST.from_model_config({**config, "architecture": "RawNet2"})
