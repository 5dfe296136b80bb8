"""EcapaTdnn parity with the original TaoRuijie ECAPA-TDNN (golden/ecapa_tdnn) and checkpoint fit.

The tiny checkpoint has random weights with perturbed BN statistics, so matching its outputs checks every
layer's wiring and ordering (ReLU before BN, unbiased context std, ...), not just the key names.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sasv.models.checkpoints import (
    CheckpointError,
    check_state_dict_fits,
    get_format,
    load_checkpoint_into,
    map_checkpoint_keys,
)
from sasv.models.conf import build_from_conf, load_conf, parse_conf
from sasv.models.ecapa_tdnn import EcapaTdnn
from tests.conftest import FEATURE_TOL, REPO_ROOT, rel_err
from tests.models.parity import (
    check_full_embedding,
    check_six_row_protocol,
    run_tiny_protocol,
    synthetic_checkpoint,
)

TOL = 1e-4  # golden README: ECAPA parity tolerance (max|diff| / max|ref|)
CONF = REPO_ROOT / "conf" / "asv" / "ecapa_tdnn.yaml"


@functools.cache
def _run_tiny(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run the tiny model once per session over the three golden waveforms (full + 5-segment batch). It is
    built from the shipped conf with only the width changed (C=16), so the conf's front-end is tested too."""
    raw = yaml.safe_load(CONF.read_text())
    model = build_from_conf(parse_conf({**raw, "args": {**raw["args"], "C": 16}}, source=str(CONF)))
    assert isinstance(model, EcapaTdnn)
    out, ref = run_tiny_protocol(model, folder, "taoruijie_ecapa")
    with torch.inference_mode():
        out["feat_wav0_full"] = model.frontend(torch.from_numpy(ref["wav0"])[None])[0].numpy()
    return out, ref


@pytest.fixture
def golden_dir(golden) -> Path:
    return golden("ecapa_tdnn")


@pytest.fixture
def outputs(golden_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return _run_tiny(golden_dir)


def test_frontend_features_match_golden(outputs: tuple) -> None:
    out, ref = outputs
    err = rel_err(out["feat_wav0_full"], ref["feat_wav0_full"])
    assert err < FEATURE_TOL, err


@pytest.mark.parametrize("i", [0, 1, 2])
def test_full_utterance_embedding(outputs: tuple, i: int) -> None:
    check_full_embedding(*outputs, i, embedding_dim=192, tol=TOL)


@pytest.mark.parametrize("i", [0, 1, 2])
def test_six_row_protocol(outputs: tuple, i: int) -> None:
    out, ref = outputs
    check_six_row_protocol(out[f"emb6_{i}"], ref, i, embedding_dim=192, tol=TOL)


def test_conf_model_fits_real_checkpoint_layout(golden_dir: Path) -> None:
    info = json.loads((golden_dir / "full_shapes.json").read_text())
    conf = load_conf(CONF)
    model = build_from_conf(conf)
    assert isinstance(model, EcapaTdnn)
    assert model.embedding_dim == conf.embedding_dim == 192
    assert info["constructor_args"] == conf.args
    state = map_checkpoint_keys(
        synthetic_checkpoint(golden_dir / "full_shapes.json"), get_format(conf.checkpoint.format)
    )
    assert len(state) == info["num_model_keys"]
    check_state_dict_fits(model, state, source="synthetic pretrain.model")
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == info["num_model_parameters"]


def test_wrong_width_is_refused(golden_dir: Path) -> None:
    model = EcapaTdnn(C=32)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint_into(model, golden_dir / "tiny.pt", "taoruijie_ecapa")
    message = str(exc.value)
    assert "shape mismatches" in message
    assert "conv1.weight" in message


def test_other_architecture_is_refused(golden_dir: Path) -> None:
    resnet = golden_dir.parent / "se_resnet34" / "tiny.pt"
    if not resnet.exists():
        pytest.skip(f"{resnet} not found")
    model = EcapaTdnn(C=16)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint_into(model, resnet, "voxceleb_trainer")
    message = str(exc.value)
    assert "missing keys" in message and "bn5.weight" in message
    assert "unexpected keys" in message and "fc.weight" in message
    assert "conv1.weight: checkpoint (8, 1, 3, 3)" in message
    # the ECAPA format itself refuses keys without its prefix
    with pytest.raises(CheckpointError, match="speaker_encoder"):
        load_checkpoint_into(model, resnet, "taoruijie_ecapa")


def test_frontend_override_and_input_checks() -> None:
    model = EcapaTdnn(C=20, embedding_dim=32, frontend={"n_mels": 64})
    assert model.conv1.in_channels == 64
    assert model.layer1.conv1.out_channels == 16  # floored Res2 width 2 x scale 8, as in the original
    model.eval()
    with torch.inference_mode():
        assert model(torch.randn(2, 8000) * 0.1).shape == (2, 32)
        assert torch.isfinite(model(torch.zeros(1, 257))).all()  # the shortest valid input
        with pytest.raises(ValueError, match="too short"):
            model(torch.zeros(1, 256))
        with pytest.raises(ValueError, match="batch, samples"):
            model(torch.zeros(8000))
    with pytest.raises(ValueError, match="at least"):
        EcapaTdnn(C=4)
