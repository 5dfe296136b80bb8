"""Training a tiny speaker model on synthetic speakers: it learns, resumes exactly, refuses bad confs."""

from __future__ import annotations

import csv
import dataclasses

import pytest
import torch
import yaml

from sasv.conf import ConfError, parse_conf
from sasv.train.trainer import TrainConf, checkpoint_path, load_train_conf, train
from tests.tiny_confs import TINY_ECAPA

TINY_TRAIN = TrainConf(
    epochs=4, batch_size=8, crop_seconds=1.0, initial_lr=0.2, final_lr=0.02, warmup_epochs=1,
    margin_increase_start=0, margin_fix_start=0, aam_scale=20.0, aam_margin=0.2, seed=3,
)  # fmt: skip


def _log(out):
    return list(csv.DictReader((out / "train_log.csv").open()))


def test_loss_falls_and_every_epoch_is_checkpointed(train_dir, tmp_path):
    last = train(parse_conf(TINY_ECAPA), TINY_TRAIN, train_dir, tmp_path / "run")
    assert last == checkpoint_path(tmp_path / "run", 4)
    rows = _log(tmp_path / "run")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["loss"]) < 0.7 * float(rows[0]["loss"]), rows
    assert all(float(r["margin"]) == pytest.approx(0.2) for r in rows)
    state = torch.load(last, weights_only=True)
    assert state["epoch"] == 4 and len(state["speakers"]) == 6


def test_resumed_run_equals_an_uninterrupted_one(train_dir, tmp_path):
    conf = dataclasses.replace(TINY_TRAIN, epochs=3)
    whole = torch.load(train(parse_conf(TINY_ECAPA), conf, train_dir, tmp_path / "a"), weights_only=True)
    out = tmp_path / "b"
    train(parse_conf(TINY_ECAPA), conf, train_dir, out)
    checkpoint_path(out, 3).unlink()  # as if killed during epoch 3
    checkpoint_path(out, 2).unlink()
    resumed = torch.load(train(parse_conf(TINY_ECAPA), conf, train_dir, out), weights_only=True)
    for part in ("model", "head"):
        assert resumed[part].keys() == whole[part].keys()
        assert all(torch.equal(resumed[part][k], whole[part][k]) for k in whole[part]), part
    assert [int(r["epoch"]) for r in _log(out)] == [1, 2, 3]


def test_training_conf_is_checked(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"epochs": 3, "batch": 8}))
    with pytest.raises(ConfError, match=rf"^{path}: train.batch: unknown key"):
        load_train_conf(path)
    path.write_text(yaml.safe_dump({"epochs": "3"}))
    with pytest.raises(ConfError, match=rf"^{path}: train.epochs: expected int, got '3'"):
        load_train_conf(path)
    path.write_text(yaml.safe_dump({"epochs": 3, "optimizer": "lamb"}))
    with pytest.raises(ConfError, match="train.optimizer: expected"):
        load_train_conf(path)
    path.write_text(yaml.safe_dump({"epochs": 3, "warmup_epochs": 3}))
    with pytest.raises(ConfError, match=r"train.warmup_epochs: must be in \[0, epochs=3\), got 3"):
        load_train_conf(path)
    assert load_train_conf("conf/train/asv/voxceleb_aam.yaml").aam_scale == 30.0
