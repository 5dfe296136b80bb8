"""SE-ResNet-34, SE-Res2Net-50 and Res2NeXt-50 against the golden outputs of the original DoubleRoc code.

The tiny checkpoints have the real files' key layout, so loading them through the conf's checkpoint format
tests the loader as well as the numbers; the real layouts are checked from ``full_shapes.json``.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sasv.models.checkpoints import (
    CheckpointError,
    check_state_dict_fits,
    get_format,
    load_checkpoint_into,
    map_checkpoint_keys,
)
from sasv.models.conf import ConfError, build_from_conf, load_conf, parse_conf
from sasv.models.registry import resolve_architecture
from sasv.models.resnet import ResNetSpeakerEmbedding, SERes2Net50
from tests.conftest import FEATURE_TOL, REPO_ROOT, rel_err
from tests.models.parity import N_WAVEFORMS, golden_embeddings, six_row_errors, synthetic_checkpoint

# shared/golden/README.md suggested tolerances (max|Δ| / max|ref|); SE-Res2Net-50's attentive std
# (E[x²]-μ² then BN) amplifies float32 rounding, hence its looser bound
CASES = {"se_resnet34": 1e-4, "se_res2net50": 2e-3, "res2next50": 5e-4}

# original constructor argument -> this package's name; n_mels / log_input belong to the front-end
ARG_NAMES = {
    "layers": "layers",
    "num_filters": "num_filters",
    "nOut": "embedding_dim",
    "encoder_type": "encoder_type",
    "net_scale": "net_scale",
    "baseWidth": "base_width",
    "cardinality": "cardinality",
}


def conf_for(name: str):
    return load_conf(REPO_ROOT / "conf" / "asv" / f"{name}.yaml")


def translate_args(original: dict[str, Any]) -> dict[str, Any]:
    """Original constructor args -> ours. Only a log front-end exists, which all published models use."""
    assert original.get("log_input", True) is True
    return {ARG_NAMES[k]: v for k, v in original.items() if k in ARG_NAMES}


def tiny_model(golden, name: str) -> ResNetSpeakerEmbedding:
    config = json.loads((golden(name) / "config.json").read_text())
    conf = conf_for(name)
    model = resolve_architecture(conf.arch)(
        **translate_args(config["tiny_constructor_args"]), frontend=conf.frontend
    )
    assert model.frontend.n_mels == config["tiny_constructor_args"]["n_mels"]
    load_checkpoint_into(model, golden(name) / "tiny.pt", conf.checkpoint.format)
    return model.eval()


@pytest.mark.parametrize("name", CASES)
def test_tiny_checkpoint_matches_reference_outputs(golden, name: str) -> None:
    tol = CASES[name]
    ref = np.load(golden(name) / "io.npz")
    model = tiny_model(golden, name)
    errors: dict[str, float] = {}
    with torch.no_grad():
        feats = model.frontend(torch.from_numpy(ref["wav0"])[None])[0].numpy()
    errors["feat_wav0_full"] = rel_err(feats, ref["feat_wav0_full"])
    out = golden_embeddings(model, ref)
    for i in range(N_WAVEFORMS):
        full = out[f"emb_full{i}"]
        assert full.shape == (1, model.embedding_dim)
        errors[f"emb_full{i}"] = rel_err(full, ref[f"emb_full{i}"])
        errors.update(six_row_errors(out[f"emb6_{i}"], ref, i))
    print(f"{name}: max rel err {max(errors.values()):.2e} ({max(errors, key=errors.get)})")
    assert errors.pop("feat_wav0_full") <= FEATURE_TOL
    bad = {k: v for k, v in errors.items() if v > tol}
    assert not bad, f"{name}: above tolerance {tol}: {bad}"


@pytest.mark.parametrize("name", CASES)
def test_conf_matches_published_constructor(golden, name: str) -> None:
    config = json.loads((golden(name) / "config.json").read_text())
    conf = conf_for(name)
    for key, value in translate_args(config["real_constructor_args"]).items():
        assert conf.args[key] == value, key
    front = config["front_end"]
    assert conf.frontend["n_mels"] == config["real_constructor_args"]["n_mels"]
    assert conf.frontend["input_scale"] == front["input_scale"]
    assert conf.frontend["f_min"] == front["melspec"]["f_min"]
    assert conf.frontend["f_max"] == front["melspec"]["f_max"]
    assert conf.embedding_dim == config["embedding_dim_real"] == conf.args["embedding_dim"]


@pytest.mark.parametrize("name", CASES)
def test_real_checkpoint_layout_loads_strictly(golden, name: str) -> None:
    shapes = json.loads((golden(name) / "full_shapes.json").read_text())
    fake = synthetic_checkpoint(golden(name) / "full_shapes.json")
    conf = conf_for(name)
    model = build_from_conf(conf)
    state = map_checkpoint_keys(fake, get_format(conf.checkpoint.format), source="real layout")
    check_state_dict_fits(model, state, source="real layout")
    model.load_state_dict(state, strict=True)
    assert len(state) == shapes["num_model_keys"]
    assert sum(p.numel() for p in model.parameters()) == shapes["num_model_parameters"]
    assert model.embedding_dim == conf.embedding_dim


@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(CASES, 2)))
def test_other_models_checkpoint_is_refused(golden, source: str, target: str) -> None:
    config = json.loads((golden(target) / "config.json").read_text())
    conf = conf_for(target)
    model = resolve_architecture(conf.arch)(
        **translate_args(config["tiny_constructor_args"]), frontend=conf.frontend
    )
    with pytest.raises(CheckpointError):
        load_checkpoint_into(model, golden(source) / "tiny.pt", conf.checkpoint.format)


def test_width_mismatch_lists_offending_keys(golden, tmp_path: Path) -> None:
    conf = conf_for("se_res2net50")
    # the real base width with the tiny file: same keys, other split widths
    model = SERes2Net50(num_filters=[8, 8, 16, 16], embedding_dim=32, base_width=24, frontend=conf.frontend)
    with pytest.raises(CheckpointError, match=r"shape mismatches: .*layer1\.0\.conv1\.weight"):
        load_checkpoint_into(model, golden("se_res2net50") / "tiny.pt", conf.checkpoint.format)
    # a missing stage block: depth mismatch names the unexpected keys
    model = SERes2Net50(layers=[3, 4, 5, 3], num_filters=[8, 8, 16, 16], embedding_dim=32, base_width=16)
    with pytest.raises(CheckpointError, match=r"unexpected keys: .*layer3\.5\."):
        load_checkpoint_into(model, golden("se_res2net50") / "tiny.pt", conf.checkpoint.format)


@pytest.mark.parametrize("name", ["se_res2net50", "res2next50"])
def test_net_scale_other_than_expansion_is_refused(name: str) -> None:
    raw = {"name": name, "kind": "asv", "arch": name, "args": {"net_scale": 2}}
    with pytest.raises(ConfError, match="net_scale must be 4"):
        build_from_conf(parse_conf(raw))


@pytest.mark.parametrize("name", CASES)
def test_bad_arguments_are_conf_errors(name: str) -> None:
    for args in ({"encoder_type": "TAP"}, {"layers": [3, 4, 6]}, {"no_such_arg": 1}):
        raw = {"name": name, "kind": "asv", "arch": name, "args": args}
        with pytest.raises(ConfError):
            build_from_conf(parse_conf(raw))
