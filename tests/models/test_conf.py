"""Model confs: every value is used or refused as `<conf>: <key>: <problem>` (sasv.models.conf,
sasv.arg_types)."""

from __future__ import annotations

import pytest
import torch
import yaml

from sasv.extraction.engines import EngineOptions, build_engine
from sasv.models.conf import ConfError, build_from_conf, load_conf, load_model, parse_conf
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA, TINY_RESNET


@pytest.mark.parametrize(
    "raw, message",
    [
        ({**TINY_ECAPA, "batch_size": "16"}, "batch_size: expected a positive integer, got '16'"),
        ({**TINY_ECAPA, "batch_size": 0}, "batch_size: expected a positive integer, got 0"),
        ({**TINY_ECAPA, "batch_size": True}, "batch_size: expected a positive integer, got True"),
        ({**TINY_ECAPA, "embedding_dim": "192"}, "embedding_dim: expected a positive integer"),
        ({**TINY_AASIST, "embedding_dim": 160}, "embedding_dim: a cm model has no speaker embedding"),
        (
            {**TINY_ECAPA, "checkpoint": {"path": "x.pt", "format": "plain", "sha256": 123}},
            "checkpoint.sha256: expected 64 hex digits or null, got 123",
        ),
        (
            {**TINY_ECAPA, "checkpoint": {"path": "x.pt", "format": "plain", "sha256": "abc"}},
            "checkpoint.sha256: expected 64 hex digits",
        ),
        (
            {**TINY_ECAPA, "checkpoint": {"path": 5, "format": "plain"}},
            "checkpoint.path: expected a non-empty",
        ),
        (
            {**TINY_ECAPA, "checkpoint": {"path": "x", "format": "plain", "url": 1}},
            "checkpoint.url: expected",
        ),
    ],
)
def test_top_level_values_of_the_wrong_type_are_refused(raw: dict, message: str) -> None:
    with pytest.raises(ConfError, match=rf"^my.yaml: {message}".replace("(", r"\(").replace("[", r"\[")):
        parse_conf(raw, source="my.yaml")


@pytest.mark.parametrize(
    "raw, message",
    [
        ({**TINY_ECAPA, "args": {"C": "16"}}, "args.C: expected int, got '16'"),
        ({**TINY_ECAPA, "args": {"C": 16, "width": 3}}, "args.width: unknown key; allowed: C, embedding_dim"),
        (
            {**TINY_RESNET, "args": {**TINY_RESNET["args"], "layers": [1, "1", 1, 1]}},
            "args.layers: expected Sequence[int]",
        ),
        (
            {**TINY_RESNET, "args": {**TINY_RESNET["args"], "encoder_type": "MAX"}},
            "args.encoder_type: expected",
        ),
        (
            {**TINY_RESNET, "frontend": {**TINY_RESNET["frontend"], "n_mels": 64.5}},
            "frontend.n_mels: expected int",
        ),
        ({**TINY_RESNET, "frontend": {"n_mel": 64}}, "frontend.n_mel: unknown key"),
        (
            {**TINY_AASIST, "frontend": {"n_mels": 64}},
            "frontend: architecture 'aasist' has no log-mel front-end",
        ),
        (
            {**TINY_ECAPA, "embedding_dim": 256},
            "embedding_dim: 256, but ecapa_tdnn with these args produces 192",
        ),
    ],
)
def test_model_arguments_are_checked_against_the_constructor(raw: dict, message: str) -> None:
    with pytest.raises(ConfError) as err:
        build_from_conf(parse_conf(raw, source="my.yaml"))
    assert str(err.value).startswith(f"my.yaml: {message}"), str(err.value)


def test_cm_input_length_comes_from_the_conf() -> None:
    """args.nb_samp is the CM's input length, not a value the engine ignores."""
    conf = parse_conf({**TINY_AASIST, "args": {**TINY_AASIST["args"], "nb_samp": 32000}})
    engine = build_engine(load_model(conf, allow_random_init=True), torch.device("cpu"), EngineOptions())
    assert engine.num_samples == 32000
    default = build_engine(load_model(parse_conf(TINY_AASIST), allow_random_init=True), torch.device("cpu"),
                           EngineOptions())  # fmt: skip
    assert default.num_samples == 64600


def test_yaml_syntax_error_names_the_conf(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(TINY_ECAPA) + "args: [unclosed\n")
    with pytest.raises(ConfError, match=rf"^{bad}: not valid YAML"):
        load_conf(bad)
