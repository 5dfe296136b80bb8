"""Countermeasure training: the recipe's parts (schedule, loss, averaging rule, BatchNorm re-estimation), a
tiny run on the mini corpus whose dev CM-EER falls, resume after SIGKILL, torchrun, and the export that
loads through conf/cm/aasist.yaml's own loader."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sasv.__main__ import main as sasv_main
from sasv.models.conf import ConfError, load_conf, load_model, parse_conf
from sasv.train.cm import (
    WeightedCrossEntropy,
    best_dev_epochs,
    cm_train_list,
    crop_dataset,
    exported_epochs,
    train,
    update_batchnorm,
)
from sasv.train.confs import CmTrainConf, load_train_conf
from sasv.train.epoch_checkpoints import average_checkpoints, checkpoint_path, epoch_checkpoints
from sasv.train.schedules import warmup_cosine_lr
from tests.conftest import REPO_ROOT, kill_in_epoch_2_and_rerun, sbatch_and_wait, tool
from tests.tiny_confs import TINY_AASIST, TINY_SSL_AASIST, write_tiny_conf

# a small AASIST at 1 s crops: a few seconds per epoch on the 6-speaker mini corpus
TINY_CM_TRAIN = CmTrainConf(
    epochs=6, batch_size=8, crop_samples=16000, initial_lr=0.002, final_lr=0.0001, seed=3,
    class_weights={"spoof": 0.25, "bonafide": 0.75}, average_max_dev_eer=1.0, num_workers=0,
)  # fmt: skip


@pytest.fixture(scope="module")
def cm_data(train_dir) -> Path:
    """The data dirs root of the shared training corpus: cm_train (6 speakers), cm_dev, cm_eval."""
    return train_dir.parent


def _log(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "train_log.csv").open()))


def _write_conf(path: Path, conf: CmTrainConf) -> Path:
    path.write_text(yaml.safe_dump(dataclasses.asdict(conf)))
    return path


def test_the_default_conf_is_the_authors_recipe() -> None:
    """clovaai/aasist config/AASIST.conf and main.py, key by key."""
    conf = load_train_conf(REPO_ROOT / "conf/train/cm/aasist.yaml", CmTrainConf)
    assert (conf.epochs, conf.batch_size, conf.crop_samples) == (100, 24, 64600)
    assert (conf.optimizer, conf.initial_lr, conf.final_lr, conf.weight_decay) == ("adam", 1e-4, 5e-6, 1e-4)
    assert conf.lr_schedule == "cosine" and conf.warmup_epochs == 0
    assert conf.class_weights == {"spoof": 0.1, "bonafide": 0.9}
    assert (conf.average, conf.average_max_dev_eer, conf.bn_update, conf.rawboost) == (
        "best_dev",
        0.01,
        True,
        0,
    )


def test_cosine_schedule_is_clovaais_per_step_lambda() -> None:
    """lr(step) = base * (lr_min/base + (1 - lr_min/base) * (1 + cos(pi * step / total)) / 2)."""
    steps, epochs, base, low = 7, 3, 1e-4, 5e-6
    for step in range(steps * epochs):
        ratio = low / base
        expected = base * (ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * step / (steps * epochs))))
        assert warmup_cosine_lr(step, steps, base, low, epochs) == pytest.approx(expected, rel=1e-12)
    assert warmup_cosine_lr(0, steps, base, low, epochs) == base
    with_warmup = [warmup_cosine_lr(s, steps, base, low, epochs, warmup_epochs=1) for s in range(steps + 1)]
    assert with_warmup[0] == 0 and with_warmup[steps] == pytest.approx(base)


def test_weighted_cross_entropy_and_labels() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    loss, accuracy = WeightedCrossEntropy((0.1, 0.9))(logits, labels)
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor([0.1, 0.9]))
    assert torch.equal(loss, expected) and float(accuracy) == pytest.approx(2 / 3)


def test_the_averaged_epochs_follow_clovaais_running_best() -> None:
    """Every epoch at most as bad as the best so far, the running best starting at the threshold."""
    eers = [0.30, 0.02, 0.012, 0.009, 0.02, 0.009, 0.004]
    assert best_dev_epochs(eers, 1.0) == [1, 2, 3, 4, 6, 7]
    assert best_dev_epochs(eers, 0.01) == [4, 6, 7]
    assert best_dev_epochs([0.5, 0.4], 0.01) == []
    assert best_dev_epochs([0.0833333333333261, 0.0833333333333356], 1.0) == [1, 2], "a tie in the last bits"
    conf = CmTrainConf(average_max_dev_eer=0.01)
    assert exported_epochs(conf, eers) == ([4, 6, 7], True)
    assert exported_epochs(conf, [0.5, 0.4]) == ([2], False), "none good enough: the last epoch"
    assert exported_epochs(dataclasses.replace(conf, average="last"), eers) == ([7], False)


def test_batchnorm_statistics_are_re_estimated_over_the_whole_train_set(cm_data) -> None:
    """After update_batchnorm, a BatchNorm's running mean is the mean of its inputs over every crop."""
    net = torch.nn.Sequential(torch.nn.Unflatten(1, (1, -1)), torch.nn.BatchNorm1d(1))
    net[1].running_mean.fill_(5.0)
    dataset = crop_dataset(
        dataclasses.replace(TINY_CM_TRAIN, crop_samples=4000), cm_train_list(cm_data / "cm_train")
    )
    dataset.set_epoch(0)
    update_batchnorm(net, dataset, batch_size=7, device=torch.device("cpu"))
    everything = np.concatenate([dataset[i][0] for i in range(len(dataset))])
    assert float(net[1].running_mean) == pytest.approx(float(everything.mean()), rel=1e-4, abs=1e-7)
    assert net[1].momentum == 0.1 and net.training is not False


def test_training_conf_is_checked(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    for text, message in (
        ("crop_samples: 100\n", "train.crop_samples: must be at least 400"),
        ("rawboost: 9\n", "train.rawboost: 0 .off. or an algorithm 1-8"),
        ("class_weights: {spoof: 0.1}\n", "train.class_weights: positive weights of exactly spoof, bonafide"),
        ("average: swa\n", "train.average: expected"),
        ("rawboost_on: clip\n", "train.rawboost_on: expected"),
        ("lr_reference_batch: 0\n", "train.lr_reference_batch: at least 1, or null"),
        ("aam_margin: 0.2\n", "train.aam_margin: unknown key"),
    ):
        path.write_text(text)
        with pytest.raises(ConfError, match=message):
            load_train_conf(path, CmTrainConf)


def test_tiny_training_lowers_the_dev_cm_eer_and_exports_a_conf_the_stages_take(
    cm_data, tmp_path, capsys, caplog
):
    """The trained small AASIST's dev CM-EER falls from the first epoch to the exported model; the export
    is the best-dev average of the logged epochs, in the clovaai format, under a conf with its sha256."""
    checkpoint = {"path": str(tmp_path / "absent.pth"), "format": "clovaai_aasist"}
    model_conf = write_tiny_conf(tmp_path, {**TINY_AASIST, "name": "small_cm"}, checkpoint=checkpoint)
    out = tmp_path / "exp" / "train" / "small_cm_trained"
    train_conf = _write_conf(tmp_path / "t.yaml", TINY_CM_TRAIN)
    eval_set = tmp_path / "cm_eval"
    shutil.copytree(cm_data / "cm_eval", eval_set)
    argv = ["train_cm", "--model_conf", str(model_conf), "--train_conf", str(train_conf),
            "--train_set", str(cm_data / "cm_train"), "--dev_set", str(cm_data / "cm_dev"),
            "--eval_set", str(eval_set), "--exp_dir", str(tmp_path / "exp"), "--device", "cpu"]  # fmt: skip
    assert sasv_main(argv) == 0, capsys.readouterr().err
    rows = _log(out)
    dev = [float(r["dev_cm_eer"]) for r in rows]
    results = json.loads((out / "results.json").read_text())
    assert len(dev) == 6 and results["dev_cm_eer"] < dev[0] - 0.1, (dev, results)
    assert min(float(r["loss"]) for r in rows[1:]) < float(rows[0]["loss"])
    assert results["exported_epochs"] == best_dev_epochs(dev, 1.0)
    conf = load_conf(out / "model.yaml")
    assert conf.name == "small_cm_trained" and conf.checkpoint.format == "clovaai_aasist"
    assert "cm_train" in conf.checkpoint.trained_on
    loaded = load_model(conf)  # strict, sha256 checked
    averaged = average_checkpoints([checkpoint_path(out, e) for e in results["exported_epochs"]])
    state = loaded.model.state_dict()
    weights = [k for k in averaged if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(state[k], averaged[k]) for k in weights), "the exported weights are the average"
    assert any(not torch.equal(state[k], averaged[k]) for k in averaged if "running_mean" in k), (
        "BN re-estimated"
    )
    table = (out / "results.md").read_text()
    assert "| this run: small_cm_trained |" in table and "eval CM-EER" in table
    assert (out / "train_curves.png").stat().st_size > 10_000
    caplog.clear()
    caplog.set_level("INFO")
    assert sasv_main(argv) == 0
    assert "already trained and exported from the same inputs" in caplog.text
    caplog.clear()
    lines = (eval_set / "utt2spf").read_text().splitlines()
    (eval_set / "utt2spf").write_text("\n".join(lines[:-1]) + "\n")  # the eval list changes: export again
    (eval_set / "wav.scp").write_text("\n".join((eval_set / "wav.scp").read_text().splitlines()[:-1]) + "\n")
    assert sasv_main(argv) == 0
    assert "already trained" not in caplog.text and "eval CM-EER" in caplog.text
    record = json.loads((out / "results.json").read_text())
    assert record["eval_cm_eer"] is not None and record["eval_cm_metrics"]["eer"] == record["eval_cm_eer"]
    assert set(record["dev_cm_metrics"]) == {"min_dcf", "eer", "cllr", "act_dcf"}


def test_results_table_shows_the_published_numbers_beside_the_run() -> None:
    from sasv.train.cm_results import results_table

    results = {"name": "aasist_trained", "train_set": "data/cm_train", "epochs": 100, "rule": "r",
               "dev_cm_eer": 0.0123, "eval_cm_eer": 0.0187, "dev_set": "d", "eval_set": "e"}  # fmt: skip
    table = results_table(results, "aasist")
    assert "| this run: aasist_trained | 1.23 | 1.87 |" in table
    assert "| aasist, published (Jung et al. 2022, LA eval) | - | 0.83 |" in table
    assert "| aasist, retrained by users of the official code | - | 1.50-2.20 |" in table
    assert "| aasist_l, published (Jung et al. 2022, LA eval) | - | 0.99 |" in results_table(
        results, "aasist_l"
    )
    assert "Track 1" not in table  # results.json written before the four metrics
    metrics = {"min_dcf": 0.0412, "eer": 0.0123, "cllr": 0.2891, "act_dcf": 0.1500}
    table = results_table({**results, "dev_cm_metrics": metrics, "eval_cm_metrics": None}, "aasist")
    assert "| dev | 0.0412 | 1.23 | 0.2891 | 0.1500 |" in table and "| eval |" not in table


def test_sigkill_then_resume_equals_an_uninterrupted_run(cm_data, tmp_path) -> None:
    """A real SIGKILL during epoch 2 of `sasv train_cm`: the re-run resumes from epoch 1 and ends with the
    weights of an uninterrupted run."""
    conf = dataclasses.replace(TINY_CM_TRAIN, epochs=3)
    model_conf = write_tiny_conf(tmp_path, TINY_AASIST)
    out = tmp_path / "killed"
    train_conf = _write_conf(tmp_path / "t.yaml", conf)
    cmd = [*tool("train_cm"), "--model_conf", str(model_conf), "--train_conf", str(train_conf),
           "--train_set", str(cm_data / "cm_train"), "--dev_set", str(cm_data / "cm_dev"), "--out", str(out),
           "--device", "cpu"]  # fmt: skip
    kill_in_epoch_2_and_rerun(cmd, checkpoint_path(out, 1))
    whole = train(parse_conf(TINY_AASIST), conf, cm_data / "cm_train", tmp_path / "whole", cm_data / "cm_dev")
    expected, resumed = (torch.load(p, weights_only=True) for p in (whole, checkpoint_path(out, 3)))
    assert all(torch.equal(resumed["model"][k], expected["model"][k]) for k in expected["model"])
    assert [r["dev_cm_eer"] for r in _log(out)] == [r["dev_cm_eer"] for r in _log(tmp_path / "whole")]


def _torchrun_cm(cm_data: Path, folder: Path, exp: Path) -> dict[str, torch.Tensor]:
    """`run_train_cm.sh --nproc_per_node 2` for 2 epochs (confs written to ``folder``): the last
    checkpoint's weights, after checking that both ranks agreed after every epoch."""
    conf = _write_conf(folder / "t.yaml", dataclasses.replace(TINY_CM_TRAIN, epochs=2))
    model_conf = write_tiny_conf(folder, TINY_AASIST)
    env = dict(os.environ, OMP_NUM_THREADS="1", SASV_VENV=str(Path(sys.executable).parents[1]))
    cmd = ["bash", "run_train_cm.sh", "--stage", "2", "--cm_conf", str(model_conf),
           "--train_conf", str(conf), "--train_set", str(cm_data / "cm_train"),
           "--dev_set", str(cm_data / "cm_dev"), "--eval_set", "", "--exp_dir", str(exp),
           "--device", "cpu", "--nproc_per_node", "2"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (proc.stdout + proc.stderr).count("parameters identical on all 2 ranks") >= 2
    state = torch.load(epoch_checkpoints(exp / "train" / "tiny_aasist_trained")[-1], weights_only=True)
    assert state["world_size"] == 2 and state["epoch"] == 2
    return state["model"]


@pytest.fixture(scope="module")
def torchrun_weights(cm_data, tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """(the folder of its confs, the weights) of one local two-process torchrun training."""
    folder = tmp_path_factory.mktemp("torchrun_cm")
    return folder, _torchrun_cm(cm_data, folder, folder / "exp")


def test_run_train_cm_sh_under_torchrun_keeps_the_ranks_identical(
    cm_data, torchrun_weights, tmp_path
) -> None:
    """`run_train_cm.sh --nproc_per_node 2`: a real torchrun launch (gloo); the trainer checks after every
    epoch that both ranks hold the same parameters (and fails otherwise), and two launches agree."""
    _, first = torchrun_weights
    second = _torchrun_cm(cm_data, tmp_path, tmp_path / "exp")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_two_process_run_resumed_with_one_process_is_refused_naming_the_world_size(
    cm_data, torchrun_weights, tmp_path
) -> None:
    """Stopped after epoch 1 of a 2-process run, resumed with 1: the learning-rate scale, the steps per
    epoch and each step's batch would all change, so the resume is refused, saying how to launch it."""
    folder, _ = torchrun_weights
    out = tmp_path / "run"
    shutil.copytree(folder / "exp" / "train" / "tiny_aasist_trained" / "checkpoints", out / "checkpoints")
    checkpoint_path(out, 2).unlink()  # as if stopped after epoch 1
    conf = dataclasses.replace(TINY_CM_TRAIN, epochs=2)
    with pytest.raises(ConfError) as error:
        train(parse_conf(TINY_AASIST), conf, cm_data / "cm_train", out, cm_data / "cm_dev")
    message = str(error.value)
    assert (
        message.startswith(f"{checkpoint_path(out, 1)}: ")
        and "world size: 2 in the checkpoint, 1 now" in message
    )
    assert "--nproc_per_node" in message and "train." not in message, message
    assert epoch_checkpoints(out) == [checkpoint_path(out, 1)]


def test_export_loads_through_the_shipped_aasist_conf_with_only_the_checkpoint_changed(cm_data, tmp_path):
    """The full-size AASIST trained for one short epoch: conf/cm/aasist.yaml, with its checkpoint's path
    (and the sha256 that goes with the file) replaced, loads the export strictly with its own loader."""
    subset = tmp_path / "cm_dev_small"
    subset.mkdir()
    for name in ("wav.scp", "utt2spf"):
        lines = (cm_data / "cm_dev" / name).read_text().splitlines()
        (subset / name).write_text("\n".join(lines[:3] + lines[-3:]) + "\n")
    conf = dataclasses.replace(TINY_CM_TRAIN, epochs=1, crop_samples=8000, batch_size=12)
    out = tmp_path / "full"
    argv = ["train_cm", "--model_conf", str(REPO_ROOT / "conf/cm/aasist.yaml"), "--train_conf",
            str(_write_conf(tmp_path / "t.yaml", conf)), "--train_set", str(cm_data / "cm_train"),
            "--dev_set", str(subset), "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert sasv_main(argv) == 0
    shipped = yaml.safe_load((REPO_ROOT / "conf/cm/aasist.yaml").read_text())
    exported = load_conf(out / "model.yaml")
    weights = exported.checkpoint.resolved_path(REPO_ROOT)
    assert weights == out / "model.pth", "beside model.yaml, whatever the root"
    changed = {**shipped, "checkpoint": {**shipped["checkpoint"], "path": str(weights),
                                         "sha256": exported.checkpoint.sha256}}  # fmt: skip
    loaded = load_model(parse_conf(changed, source="conf/cm/aasist.yaml with the exported checkpoint"))
    assert loaded.pretrained
    raw = torch.load(weights, weights_only=True)
    assert set(raw) == set(loaded.model.state_dict()), "the clovaai format: a plain state dict, same keys"
    assert all(torch.equal(raw[k], v) for k, v in loaded.model.state_dict().items())


def test_resume_refuses_checkpoints_of_another_conf_or_train_list(cm_data, tmp_path) -> None:
    """A checkpoint made with another conf, or from another list of the same length (one label flipped),
    is never resumed from: the run stops naming what differs and the folder to clear. The export rule,
    read after the last step, may change."""
    conf = dataclasses.replace(TINY_CM_TRAIN, epochs=2, crop_samples=4000)
    out = tmp_path / "run"
    cut = dataclasses.replace(conf, epochs=1)
    train(parse_conf(TINY_AASIST), cut, cm_data / "cm_train", out, cm_data / "cm_dev")
    with pytest.raises(
        ConfError, match=r"made with another training setup.*train\.epochs: 1 in the checkpoint, 2 now"
    ):
        train(parse_conf(TINY_AASIST), conf, cm_data / "cm_train", out, cm_data / "cm_dev")
    assert train(parse_conf(TINY_AASIST), dataclasses.replace(cut, average="last", bn_update=False),
                 cm_data / "cm_train", out, cm_data / "cm_dev") == checkpoint_path(out, 1)  # fmt: skip
    flipped = tmp_path / "flipped"
    flipped.mkdir()
    (flipped / "wav.scp").write_text((cm_data / "cm_train" / "wav.scp").read_text())
    lines = (cm_data / "cm_train" / "utt2spf").read_text().splitlines()
    utt, label = lines[0].split()
    lines[0] = f"{utt} {'spoof' if label == 'bonafide' else 'bonafide'}"
    (flipped / "utt2spf").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ConfError, match=r"made with another training setup.*the train list \(its utterance ids"
    ):
        train(parse_conf(TINY_AASIST), cut, flipped, out, cm_data / "cm_dev")
    other_model = {**TINY_AASIST, "args": {**TINY_AASIST["args"], "gat_dims": [16, 8]}}
    with pytest.raises(ConfError, match=r"the model conf's architecture, arguments or front-end differs"):
        train(parse_conf(other_model), cut, cm_data / "cm_train", out, cm_data / "cm_dev")


def test_rawboost_option_augments_the_same_crops(cm_data) -> None:
    """rawboost: N wraps every crop in RawBoost algorithm N, drawn from the example's own random stream;
    the crop under it is the one clean training takes."""
    train_list = cm_train_list(cm_data / "cm_train")
    clean = crop_dataset(TINY_CM_TRAIN, train_list)
    boosted = crop_dataset(dataclasses.replace(TINY_CM_TRAIN, rawboost=3), train_list)
    (a, label_a), (b, label_b) = clean[2], boosted[2]
    assert label_a == label_b and a.shape == b.shape and b.dtype == np.float32
    assert not np.array_equal(a, b) and np.corrcoef(a, b)[0, 1] > 0.5, "the same crop, with noise added"
    assert np.array_equal(boosted[2][0], b), "reproducible: a function of seed, epoch and index"
    assert not boosted.augment_before_crop  # rawboost_on: crop, the default
    whole = crop_dataset(dataclasses.replace(TINY_CM_TRAIN, rawboost=3, rawboost_on="utterance"), train_list)
    assert whole.augment_before_crop and whole[2][0].shape == b.shape


# ------------------------------------------------------------------------------------------ under Slurm


def _train_cm_args(cm_data: Path, model_conf: Path, train_conf: Path, out: Path) -> list[str]:
    return ["-m", "sasv", "train_cm", "--model_conf", str(model_conf), "--train_conf", str(train_conf),
            "--train_set", str(cm_data / "cm_train"), "--dev_set", str(cm_data / "cm_dev"), "--out", str(out),
            "--device", "cpu"]  # fmt: skip


def test_two_slurm_tasks_train_like_two_local_processes(
    cm_data, slurm_cluster, torchrun_weights, tmp_path
) -> None:
    """local/slurm_train.sbatch on one node with two tasks: srun starts utils/torchrun_task.sh twice, each
    a torchrun agent of one node (rank = SLURM_PROCID, rendezvous on the first host); the ranks agree after
    every epoch and the weights are those of `torchrun --standalone --nproc_per_node 2` on this machine."""
    env, _ = slurm_cluster
    folder, local = torchrun_weights
    conf, model_conf = folder / "t.yaml", folder / "tiny_aasist.yaml"
    out = tmp_path / "slurm_out.txt"
    sbatch = ["sbatch", "--nodes=1", "--ntasks-per-node=2", "--gpus-per-node=0",
              "--cpus-per-task=1", f"--output={out}", "local/slurm_train.sbatch",
              *_train_cm_args(cm_data, model_conf, conf, tmp_path / "slurm")]  # fmt: skip
    sbatch_and_wait(sbatch, dict(env, SASV_NPROC_PER_NODE="1"), REPO_ROOT)
    text = out.read_text()
    assert "node 0 of 2 on" in text and "node 1 of 2 on" in text, text[-3000:]
    assert text.count("parameters identical on all 2 ranks") == 4, text[-3000:]  # 2 ranks x 2 epochs
    state = torch.load(checkpoint_path(tmp_path / "slurm", 2), weights_only=True)
    assert state["world_size"] == 2
    assert all(torch.equal(state["model"][k], local[k]) for k in local)


def test_run_train_cm_sh_through_cmd_sh_slurm_is_one_job(cm_data, slurm_cluster, tmp_path) -> None:
    """cmd.sh's slurm backend: stage 2 is one Slurm job (utils/slurm.sh --num-nodes 1 --gpu 0), logged in
    the trained model's folder, which ends with the export."""
    env, _ = slurm_cluster
    conf = _write_conf(tmp_path / "t.yaml", dataclasses.replace(TINY_CM_TRAIN, epochs=1))
    model_conf = write_tiny_conf(tmp_path, TINY_AASIST)
    cmd = ["bash", "run_train_cm.sh", "--stage", "2", "--cm_conf", str(model_conf), "--train_conf", str(conf),
           "--train_set", str(cm_data / "cm_train"), "--dev_set", str(cm_data / "cm_dev"), "--eval_set", "",
           "--exp_dir", str(tmp_path / "exp"), "--device", "cpu"]  # fmt: skip
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=dict(env, SASV_CMD_BACKEND="slurm"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trained = tmp_path / "exp" / "train" / "tiny_aasist_trained"
    assert "runs through 'utils/slurm.sh --config conf/slurm.conf': 1 node(s) x 0 GPU(s)" in proc.stdout
    job_log = (trained / "log" / "train_cm.log").read_text()
    assert "(Slurm job " in job_log and job_log.rstrip().splitlines()[-1].startswith("# Ended (code 0)")
    assert (trained / "model.yaml").is_file() and (trained / "export.json").is_file()


def test_tiny_ssl_aasist_learns_the_spoofing_trace_from_the_waveform(cm_data, tmp_path, capsys) -> None:
    """A tiny SSL-AASIST, front end and back end trained together from random weights, lowers its dev
    CM-EER: the best dev epoch (exported, `average: best_epoch`) is well below the first. The tiny
    front end has no conv biases: random biases of the size nn.Conv1d draws (about +-0.3) swamp what
    kaiming-initialised filters make of a waveform at speech level (RMS 0.03-0.06 here), so the conv
    encoder's layer norms pass on a per-channel constant and nothing reaches the back end
    (tests/fixtures/README.md, ssl_aasist/); pre-trained weights (XLS-R's) do not have that problem."""
    front_end = {**TINY_SSL_AASIST["args"]["front_end"], "conv_bias": False}
    checkpoint = {"path": str(tmp_path / "absent.pth"), "format": "ssl_aasist"}
    conf_raw = {**TINY_SSL_AASIST, "name": "small_ssl", "args": {"front_end": front_end}}
    model_conf = write_tiny_conf(tmp_path, conf_raw, checkpoint=checkpoint)
    constant_lr = TINY_CM_TRAIN.initial_lr
    conf = dataclasses.replace(TINY_CM_TRAIN, epochs=5, final_lr=constant_lr, average="best_epoch")
    out = tmp_path / "out"
    argv = ["train_cm", "--model_conf", str(model_conf), "--train_conf",
            str(_write_conf(tmp_path / "t.yaml", conf)), "--train_set", str(cm_data / "cm_train"),
            "--dev_set", str(cm_data / "cm_dev"), "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert sasv_main(argv) == 0, capsys.readouterr().err
    dev = [float(r["dev_cm_eer"]) for r in _log(out)]
    results = json.loads((out / "results.json").read_text())
    assert results["exported_epochs"] == [dev.index(min(dev)) + 1]
    assert results["dev_cm_eer"] == min(dev) and min(dev) < dev[0] - 0.1, dev


def test_tiny_ssl_aasist_fine_tunes_from_a_fairseq_checkpoint(cm_data, tmp_path, capsys) -> None:
    """SSL-AASIST's recipe at tiny size, its mechanics: the front end starts from a fairseq pre-training
    checkpoint (the format of XLS-R's xlsr2_300m.pt) and is held still through the frozen warm-up while the
    back end learns, then both train (activations recomputed); first-samples crops; the best dev epoch is
    exported as it was, in the released format. That the model learns is held by the test above: this
    front end (tiny_xlsr.pt, three pre-training updates) still has the conv biases that swamp the
    waveform."""
    fixtures = REPO_ROOT / "tests" / "fixtures" / "ssl_aasist"
    checkpoint = {"path": str(tmp_path / "absent.pth"), "format": "ssl_aasist"}
    model_conf = write_tiny_conf(tmp_path, {**TINY_SSL_AASIST, "name": "small_ssl"}, checkpoint=checkpoint)
    sha256 = json.loads((fixtures / "config.json").read_text())["sha256"]["tiny_xlsr.pt"]
    init = {"module": "ssl_model.model", "path": str(fixtures / "tiny_xlsr.pt"),
            "format": "fairseq_pretrained", "sha256": sha256}  # fmt: skip
    conf = dataclasses.replace(
        TINY_CM_TRAIN, epochs=2, initial_lr=0.002, final_lr=0.002, crop_position="start",
        lr_multipliers={"model.ssl_model": 0.01},
        average="best_epoch", init_checkpoint=init, warmup_freeze=["model.ssl_model"], warmup_freeze_epochs=1,
        gradient_checkpointing=True,
    )  # fmt: skip
    out = tmp_path / "out"
    dev_set = tmp_path / "cm_dev_small"  # 3 bona fide + 3 spoofed: a dev CM-EER, quickly
    dev_set.mkdir()
    for name in ("wav.scp", "utt2spf"):
        lines = (cm_data / "cm_dev" / name).read_text().splitlines()
        (dev_set / name).write_text("\n".join(lines[:3] + lines[-3:]) + "\n")
    argv = ["train_cm", "--model_conf", str(model_conf), "--train_conf",
            str(_write_conf(tmp_path / "t.yaml", conf)), "--train_set", str(cm_data / "cm_train"),
            "--dev_set", str(dev_set), "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert sasv_main(argv) == 0, capsys.readouterr().err
    pretrained = torch.load(fixtures / "tiny_xlsr.pt", map_location="cpu", weights_only=True)["model"]
    epoch1 = torch.load(checkpoint_path(out, 1), map_location="cpu", weights_only=True)["model"]
    epoch2 = torch.load(checkpoint_path(out, 2), map_location="cpu", weights_only=True)["model"]
    key = "ssl_model.model.encoder.layers.1.fc1.weight"
    assert torch.equal(epoch1[key], pretrained["encoder.layers.1.fc1.weight"]), "held in the warm-up"
    assert not torch.equal(epoch2[key], epoch1[key]), "trained after it"
    assert not torch.equal(epoch1["LL.weight"], epoch2["LL.weight"])
    dev = [float(r["dev_cm_eer"]) for r in _log(out)]
    results = json.loads((out / "results.json").read_text())
    best = dev.index(min(dev)) + 1
    assert results["exported_epochs"] == [best] and "lowest dev CM-EER" in results["rule"]
    loaded = load_model(load_conf(out / "model.yaml"))  # the released format, strict, sha256 checked
    chosen = torch.load(checkpoint_path(out, best), map_location="cpu", weights_only=True)["model"]
    assert all(torch.equal(v, chosen[k]) for k, v in loaded.model.state_dict().items()), (
        "the best epoch as it was"
    )
    saved = torch.load(out / "model.pth", map_location="cpu", weights_only=True)
    assert "ssl_model.model.feature_extractor.conv_layers.0.0.weight" in saved
