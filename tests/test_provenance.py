"""Model records and keys (sasv.provenance): what a record says about the weights, a key that changes
with the conf and the checkpoint and nothing else (gaps found by mutation testing), and which model made a
stage output."""

from __future__ import annotations

import json

from torch import nn

from sasv.exp_layout import ExpLayout, cm_scores_output
from sasv.fileio import sha256_file
from sasv.models.conf import LoadedModel, load_conf, parse_conf
from sasv.provenance import model_key, model_record, stage_output_model, weights_origin
from tests.tiny_confs import TINY_ECAPA, write_tiny_conf


def test_model_record_names_the_checkpoint_and_what_it_was_trained_on(tmp_path):
    checkpoint = {"path": str(tmp_path / "w.pt"), "format": "plain", "trained_on": "VoxCeleb2 dev (here)"}
    conf = load_conf(write_tiny_conf(tmp_path, TINY_ECAPA, checkpoint=checkpoint))
    record = model_record(LoadedModel(nn.Identity(), conf, "ab" * 32))
    assert record == {
        "name": "tiny_ecapa",
        "kind": "asv",
        "arch": "ecapa_tdnn",
        "conf": conf.source,
        "conf_sha256": sha256_file(conf.source),
        "checkpoint": str(tmp_path / "w.pt"),
        "checkpoint_sha256": "ab" * 32,
        "pretrained": True,
        "trained_on": "VoxCeleb2 dev (here)",
    }
    assert weights_origin(record) == "trained on VoxCeleb2 dev (here)"
    assert weights_origin({**record, "trained_on": None}) == "published checkpoint"
    assert weights_origin(model_record(LoadedModel(nn.Identity(), conf, None))) == (
        "RANDOMLY INITIALISED (no checkpoint)"
    )


def test_model_key_changes_with_conf_text_and_weights_only(tmp_path):
    conf = load_conf(write_tiny_conf(tmp_path, TINY_ECAPA))
    key = model_key(LoadedModel(nn.Identity(), conf, "a" * 64))
    assert model_key(LoadedModel(nn.Linear(1, 1), conf, "a" * 64)) == key  # the module object is not input
    assert model_key(LoadedModel(nn.Identity(), conf, "b" * 64)) != key
    other = load_conf(write_tiny_conf(tmp_path, {**TINY_ECAPA, "args": {"C": 8}}))
    assert model_key(LoadedModel(nn.Identity(), other, "a" * 64)) != key
    in_memory = parse_conf(dict(TINY_ECAPA))  # no conf file behind it: keyed by the weights alone
    assert model_key(LoadedModel(nn.Identity(), in_memory, "a" * 64)) != model_key(
        LoadedModel(nn.Identity(), in_memory, None)
    )


def test_a_stage_output_names_the_model_that_made_it(tmp_path):
    """The model record of the output's folder, with the conf and checkpoint its completion marker vouches
    for (the record is the last run's, the marker this output's); nothing for scores made elsewhere."""
    output = ExpLayout(tmp_path).stage_output("aasist", "cm", "la2021_eval")
    output.dir.mkdir(parents=True)
    output.file.write_text("LA_E_1 0 1 0.7\n")
    assert stage_output_model(output) is None
    assert stage_output_model(cm_scores_output(tmp_path / "elsewhere.txt")) is None
    record = {
        "name": "aasist",
        "checkpoint": "pretrained/AASIST.pth",
        "checkpoint_sha256": "new",
        "pretrained": True,
    }
    (output.dir.parent / "model.json").write_text(json.dumps(record))
    assert stage_output_model(output) == record
    inputs = {"conf": "conf/cm/aasist.yaml", "conf_sha256": "c", "checkpoint_sha256": "old", "lists": {}}
    output.marker.write_text(json.dumps({"inputs": inputs}))
    assert stage_output_model(output) == {**record, "conf": "conf/cm/aasist.yaml", "conf_sha256": "c",
                                          "checkpoint_sha256": "old"}  # fmt: skip
