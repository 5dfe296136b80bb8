"""The shipped model confs against the reference configs the golden outputs came from (shared/golden).

A conf's front-end values reach every embedding: a one-character change (the log offset, a mel range)
changes every number without any error. So every mel front-end a shipped ASV conf builds is compared, value
by value and buffer by buffer, with one built from ``golden/<model>/config.json`` (the original code's
parameters), and so is the front-end the architecture builds from its own defaults (what a user gets from a
conf that leaves the block out). The architecture arguments are checked against the published constructors
in the model tests (tests/models/); here the class defaults are too: an architecture built without
arguments is the published model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sasv.models.conf import build_from_conf, load_conf
from sasv.models.frontend import LogMelFrontend
from sasv.models.registry import resolve_architecture
from tests.conftest import REPO_ROOT

MEL_CONFS = ("ecapa_tdnn", "se_resnet34", "se_res2net50", "res2next50")
SHIPPED_ASV = sorted(p.stem for p in (REPO_ROOT / "conf" / "asv").glob("*.yaml"))
FRONTEND_ATTRIBUTES = (
    "n_fft",
    "win_length",
    "hop_length",
    "input_scale",
    "log_offset",
    "norm",
    "norm_eps",
    "n_mels",
)
FRONTEND_BUFFERS = ("preemphasis_filter", "window", "mel_fb")


def reference_frontend(config: dict) -> dict:
    """LogMelFrontend arguments from a golden config.json's description of the original front-end."""
    front, mel = config["front_end"], config["front_end"]["melspec"]
    # the fixed parts of torchaudio's MelSpectrogram that LogMelFrontend implements (not parameters)
    assert (mel["window"], mel["power"], mel["center"], mel["pad_mode"]) == (
        "torch.hamming_window (periodic=True)",
        2.0,
        True,
        "reflect",
    )
    assert (mel["normalized"], mel["norm"], mel["mel_scale"], mel["onesided"]) == (False, None, "htk", True)
    instance = "InstanceNorm1d" in front["normalisation"] and "no variance" not in front["normalisation"]
    if instance:
        assert "eps=1e-5" in front["normalisation"]
    return {
        **{
            k: mel[k]
            for k in ("sample_rate", "n_fft", "win_length", "hop_length", "f_min", "f_max", "n_mels")
        },
        "pre_emphasis": front["pre_emphasis"],
        "input_scale": front["input_scale"],
        "log_offset": front["log_offset"],
        "norm": "instance" if instance else "mean",
        "norm_eps": 1e-5,
    }


def assert_same_frontend(got: LogMelFrontend, want: LogMelFrontend, what: str) -> None:
    for name in FRONTEND_ATTRIBUTES:
        assert getattr(got, name) == getattr(want, name), f"{what}: {name}"
    for name in FRONTEND_BUFFERS:
        assert torch.equal(getattr(got, name), getattr(want, name)), f"{what}: {name}"


def golden_config(golden, name: str) -> dict:
    return json.loads((golden(name) / "config.json").read_text())


def conf_path(name: str) -> Path:
    return REPO_ROOT / "conf" / "asv" / f"{name}.yaml"


def test_every_shipped_asv_conf_has_a_reference() -> None:
    assert set(SHIPPED_ASV) == {*MEL_CONFS, "wavlm_ecapa"}  # wavlm_ecapa: tests/models/test_wavlm.py


@pytest.mark.parametrize("name", MEL_CONFS)
def test_conf_frontend_is_the_reference_frontend(golden, name: str) -> None:
    """Every value of the conf's front-end block equals the original's, and the model the conf builds has
    exactly the reference front-end (every attribute, every buffer: mel filterbank, window, pre-emphasis)."""
    reference = reference_frontend(golden_config(golden, name))
    conf = load_conf(conf_path(name))
    assert conf.frontend == {k: v for k, v in reference.items() if k in conf.frontend}
    assert set(reference) - set(conf.frontend) <= {"norm_eps"}  # the block states every parameter but eps
    model = build_from_conf(conf)
    assert_same_frontend(model.frontend, LogMelFrontend(**reference), f"{name} conf")


@pytest.mark.parametrize("name", MEL_CONFS)
def test_architecture_defaults_are_the_published_model(golden, name: str) -> None:
    """What a user gets when a conf leaves a block out: the architecture's defaults build the published
    model, front-end included (same state-dict shapes as the shipped conf's model)."""
    reference = LogMelFrontend(**reference_frontend(golden_config(golden, name)))
    conf = load_conf(conf_path(name))
    arch = resolve_architecture(conf.arch)
    assert_same_frontend(arch(**conf.args).frontend, reference, f"{name} default front-end")
    bare = arch()
    assert_same_frontend(bare.frontend, reference, f"{name} defaults")
    shapes = {k: tuple(v.shape) for k, v in bare.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in build_from_conf(conf).state_dict().items()}
