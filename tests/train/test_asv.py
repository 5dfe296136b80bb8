"""Training a tiny speaker model on synthetic speakers: it learns, resumes exactly, refuses bad confs."""

from __future__ import annotations

import csv
import dataclasses

import pytest
import torch
import yaml

from sasv.models.conf import ConfError, parse_conf
from sasv.train.asv import train
from sasv.train.confs import AsvTrainConf, load_train_conf
from sasv.train.epoch_checkpoints import checkpoint_path
from tests.tiny_confs import TINY_ECAPA, TINY_RESNET

TINY_TRAIN = AsvTrainConf(
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
    assert state["epoch"] == 4 and len(state["identity"]["classes"]) == 6
    assert (tmp_path / "run" / "train_curves.png").stat().st_size > 10_000


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
        load_train_conf(path, AsvTrainConf)
    path.write_text(yaml.safe_dump({"epochs": "3"}))
    with pytest.raises(ConfError, match=rf"^{path}: train.epochs: expected int, got '3'"):
        load_train_conf(path, AsvTrainConf)
    path.write_text(yaml.safe_dump({"epochs": 3, "optimizer": "lamb"}))
    with pytest.raises(ConfError, match="train.optimizer: expected"):
        load_train_conf(path, AsvTrainConf)
    path.write_text(yaml.safe_dump({"epochs": 3, "warmup_epochs": 3}))
    with pytest.raises(ConfError, match=r"train.warmup_epochs: must be in \[0, epochs=3\), got 3"):
        load_train_conf(path, AsvTrainConf)
    assert load_train_conf("conf/train/asv/voxceleb_aam.yaml", AsvTrainConf).aam_scale == 30.0


# the tiny SE-ResNet of the other tests (8-16 channels, 16-d embeddings) is too narrow to generalise
WIDER_RESNET = {
    **TINY_RESNET,
    "args": {**TINY_RESNET["args"], "num_filters": [16, 16, 32, 32], "embedding_dim": 32},
    "embedding_dim": 32,
}


@pytest.fixture(scope="module")
def speakers20(tmp_path_factory):
    """20 synthetic training speakers x 6 utterances, and the corpus's dev set: 4 held-out speakers."""
    from tests.conftest import make_train_corpus

    work = tmp_path_factory.mktemp("speakers20")
    make_train_corpus(work, train_speakers=20)
    return work / "data" / "train_cohort", work / "data" / "dev"


@pytest.mark.parametrize(
    "raw, conf",
    [
        (TINY_ECAPA, dataclasses.replace(TINY_TRAIN, epochs=8)),
        (WIDER_RESNET, dataclasses.replace(TINY_TRAIN, epochs=8, optimizer="adam", initial_lr=0.005,
                                           final_lr=0.0005)),
    ],
    ids=["ecapa", "resnet"],
)  # fmt: skip
def test_trained_models_beat_untrained_ones_on_held_out_speakers(speakers20, tmp_path, raw, conf):
    """The point of training: the SV-EER of speakers never seen in training falls well below that of the
    same architecture untrained (measured with the recipe's own extraction, sasv.train.validate)."""
    from sasv.models.conf import build_from_conf
    from sasv.train.validate import validation_eer

    train_set, held_out = speakers20
    model_conf = parse_conf(raw)
    torch.manual_seed(0)
    untrained = validation_eer(build_from_conf(model_conf), held_out)
    last = train(model_conf, conf, train_set, tmp_path / "run")
    model = build_from_conf(model_conf)
    model.load_state_dict(torch.load(last, weights_only=True)["model"])
    trained = validation_eer(model, held_out)
    assert trained < 0.75 * untrained and trained <= untrained - 0.05, (untrained, trained)


def test_average_of_checkpoints(tmp_path):
    from sasv.train.epoch_checkpoints import average_checkpoints

    paths = []
    for i, value in enumerate((1.0, 2.0, 6.0)):
        path = tmp_path / f"epoch_{i}.pt"
        torch.save({"model": {"w": torch.full((2,), value), "n": torch.tensor(i)}}, path)
        paths.append(path)
    averaged = average_checkpoints(paths)
    assert torch.equal(averaged["w"], torch.full((2,), 3.0)) and int(averaged["n"]) == 2
    with pytest.raises(ValueError):
        average_checkpoints([])


def test_augmentation_needs_its_lists_and_changes_the_crops(train_dir, tmp_path):
    """A conf that augments with noise but gets no lists is an error, never silently clean training; with
    the lists, the crops are those of clean training, augmented."""
    import numpy as np

    from sasv.corpora.musan_rirs_mini import make_musan_and_rirs
    from sasv.train.augment import AugmentationLists, Augmenter
    from sasv.train.data import CropDataset, TrainList
    from tests.conftest import tool

    conf = dataclasses.replace(TINY_TRAIN, epochs=2, augmentation={"clean": 1.0, "noise": 1.0})
    with pytest.raises(ConfError, match="augments with noise: pass --musan_dir and --rirs_dir"):
        train(parse_conf(TINY_ECAPA), conf, train_dir, tmp_path / "run")
    corpora = make_musan_and_rirs(tmp_path / "aug", seed=1, files_per_source=1, seconds=2.0)
    import subprocess

    subprocess.run(
        [*tool("prepare_augmentation"), "--musan_root", str(corpora.musan_root), "--rirs_root",
         str(corpora.rirs_root), "--out", str(tmp_path / "lists")],
        check=True, capture_output=True,
    )  # fmt: skip
    dirs = (tmp_path / "lists" / "musan", tmp_path / "lists" / "rirs")
    last = train(parse_conf(TINY_ECAPA), conf, train_dir, tmp_path / "run", augmentation_dirs=dirs)
    assert torch.load(last, weights_only=True)["epoch"] == 2
    train_list = TrainList.from_data_dir(train_dir)
    noisy = Augmenter(AugmentationLists.from_dirs(*dirs), {"noise": 1.0})
    clean_crop, _ = CropDataset(train_list, 16000, seed=3)[4]
    noisy_crop, _ = CropDataset(train_list, 16000, seed=3, augment=noisy)[4]
    assert not np.array_equal(clean_crop, noisy_crop)
    assert np.corrcoef(clean_crop, noisy_crop)[0, 1] > 0.1, "the same crop, with noise added"


def test_bf16_autocast_trains(train_dir, tmp_path):
    """Mixed precision runs the same loop under autocast (bf16 on this CPU; bf16/fp16 on a GPU)."""
    conf = dataclasses.replace(TINY_TRAIN, epochs=2, precision="bf16")
    last = train(parse_conf(TINY_ECAPA), conf, train_dir, tmp_path / "bf16")
    fp32 = train(
        parse_conf(TINY_ECAPA), dataclasses.replace(conf, precision="fp32"), train_dir, tmp_path / "fp32"
    )
    a, b = (torch.load(p, weights_only=True)["model"] for p in (last, fp32))
    assert all(torch.isfinite(v).all() for v in a.values() if v.is_floating_point())
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point()), "autocast had no effect"


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(train_dir, tmp_path):
    """A real SIGKILL during epoch 2: the re-run resumes from epoch 1's checkpoint and ends with exactly the
    weights of an uninterrupted run (what was computed of epoch 2 before the kill is redone)."""
    from tests.conftest import kill_in_epoch_2_and_rerun, tool
    from tests.tiny_confs import write_tiny_conf

    conf = dataclasses.replace(TINY_TRAIN, epochs=3)
    train_conf = tmp_path / "train.yaml"
    train_conf.write_text(yaml.safe_dump(dataclasses.asdict(conf)))
    model_conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    out = tmp_path / "killed"
    cmd = [*tool("train_asv"), "--model_conf", str(model_conf), "--train_conf", str(train_conf),
           "--train_set", str(train_dir), "--out", str(out), "--device", "cpu"]  # fmt: skip
    kill_in_epoch_2_and_rerun(cmd, checkpoint_path(out, 1))
    whole = torch.load(train(parse_conf(TINY_ECAPA), conf, train_dir, tmp_path / "whole"), weights_only=True)
    resumed = torch.load(checkpoint_path(out, 3), weights_only=True)
    for part in ("model", "head"):
        assert all(torch.equal(resumed[part][k], whole[part][k]) for k in whole[part]), part


def test_frozen_upstream_and_per_group_learning_rates(train_dir, tmp_path):
    """Fine-tuning a pretrained upstream (WavLM + ECAPA is the use case): frozen prefixes do not move, a
    prefix's learning-rate multiplier applies to its parameters, a prefix that matches nothing is refused."""

    from sasv.models.conf import build_from_conf

    conf = dataclasses.replace(
        TINY_TRAIN, epochs=2, freeze=["model.conv1"], lr_multipliers={"model": 0.5, "model.fc6": 0.1}
    )
    model_conf = parse_conf(TINY_ECAPA)
    torch.manual_seed(conf.seed)
    initial = build_from_conf(model_conf).state_dict()
    state = torch.load(train(model_conf, conf, train_dir, tmp_path / "ft"), weights_only=True)
    assert torch.equal(state["model"]["conv1.weight"], initial["conv1.weight"]), "a frozen layer moved"
    assert not torch.equal(state["model"]["fc6.weight"], initial["fc6.weight"])
    scales = sorted(g["lr_scale"] for g in state["optimizer"]["param_groups"])
    assert scales == [0.1, 0.5, 1.0]  # fc6, the rest of the model, the AAM head
    lrs = {g["lr_scale"]: g["lr"] for g in state["optimizer"]["param_groups"]}
    assert lrs[0.1] == pytest.approx(0.1 * lrs[1.0]) and lrs[0.5] == pytest.approx(0.5 * lrs[1.0])
    bad = dataclasses.replace(conf, freeze=["model.no_such_layer"])
    with pytest.raises(ConfError, match="'model.no_such_layer' matches nothing"):
        train(model_conf, bad, train_dir, tmp_path / "bad")


def test_speed_perturbed_training_has_three_times_the_classes(train_dir, tmp_path):
    conf = dataclasses.replace(TINY_TRAIN, epochs=2, speed_perturb=True)
    state = torch.load(train(parse_conf(TINY_ECAPA), conf, train_dir, tmp_path / "sp"), weights_only=True)
    assert state["head"]["weight"].shape[0] == 3 * len(state["identity"]["classes"])
