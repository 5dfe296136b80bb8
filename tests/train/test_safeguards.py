"""Training never goes silently wrong (issue 26, round 3): the stage scripts' data sets follow --data_dir,
a resume refuses whatever would change the optimisation and names it, every name, conf value and set is
checked before the first step, a full disk is one line naming the file, labelled utterances without audio
are an error, and an exported model keeps working when its folder moves."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from sasv.__main__ import main as sasv_main
from sasv.corpora.datadir import DataDirError
from sasv.models.checkpoint_formats import CheckpointError
from sasv.models.conf import ConfError, load_conf, load_model, parse_conf
from sasv.train.asv import train
from sasv.train.confs import AsvTrainConf, CmTrainConf, load_train_conf
from sasv.train.data import TrainList
from sasv.train.epoch_checkpoints import checkpoint_path
from tests.conftest import REPO_ROOT, tool
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA, write_tiny_conf

TINY_TRAIN = AsvTrainConf(
    epochs=2, batch_size=8, crop_seconds=1.0, initial_lr=0.2, final_lr=0.02, warmup_epochs=1,
    margin_increase_start=0, margin_fix_start=0, aam_scale=20.0, aam_margin=0.2, seed=3,
)  # fmt: skip
TINY_CM_TRAIN = {"epochs": 1, "batch_size": 8, "crop_samples": 4000, "initial_lr": 0.002, "final_lr": 0.0001,
                 "class_weights": {"spoof": 0.25, "bonafide": 0.75}, "average_max_dev_eer": 1.0}  # fmt: skip


def _error_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    """The single ERROR line a tool printed (exactly one, no traceback, exit status 1)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


def _checkpoints(root: Path) -> list[Path]:
    return sorted(root.rglob("epoch_*.pt"))


def _write_yaml(path: Path, value: dict) -> Path:
    path.write_text(yaml.safe_dump(value))
    return path


def _shell_env() -> dict[str, str]:
    return dict(
        os.environ,
        OMP_NUM_THREADS="1",
        SASV_VENV=str(Path(sys.executable).parents[1]),
        SASV_CMD_BACKEND="local",
    )


# ------------------------------------------------------------------------------ 1: sets follow --data_dir


@pytest.mark.parametrize(
    "script, stage, conf_option, raw, sets",
    [
        ("run_train_cm.sh", "2", "--cm_conf", TINY_AASIST,
         {"train_set": "cm_train", "dev_set": "cm_dev", "eval_set": "cm_eval"}),
        ("run_train_asv.sh", "3", "--asv_conf", TINY_ECAPA,
         {"train_set": "voxceleb2_dev", "valid_set": "voxceleb1"}),
    ],
    ids=["cm", "asv"],
)  # fmt: skip
def test_the_data_sets_follow_data_dir_unless_given(tmp_path, script, stage, conf_option, raw, sets) -> None:
    """`--data_dir D2` alone: the training reads D2's sets, never data/'s (stage 1 wrote D2's); an explicit
    --train_set still wins. D2 is empty here, so the training stops at once naming D2's file."""
    d2 = tmp_path / "D2"
    d2.mkdir()
    model_conf = write_tiny_conf(tmp_path, raw)
    train_conf = _write_yaml(tmp_path / "t.yaml", {"epochs": 1, "warmup_epochs": 0})
    for given in (None, tmp_path / "mine"):
        exp = tmp_path / ("exp_given" if given else "exp_default")
        cmd = ["bash", script, "--stage", stage, "--stop_stage", stage, "--data_dir", str(d2),
               conf_option, str(model_conf), "--train_conf", str(train_conf), "--exp_dir", str(exp),
               "--device", "cpu"]  # fmt: skip
        if given:
            cmd += ["--train_set", str(given)]
        if script == "run_train_asv.sh":
            cmd += ["--average_last", "1"]
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=_shell_env(), capture_output=True, text=True, timeout=300
        )
        assert proc.returncode != 0, proc.stdout[-3000:]
        first = next((exp / "logs").glob(f"{script[:-3]}.*.log")).read_text().splitlines()[0]
        for option, folder in sets.items():
            expected = given if option == "train_set" and given else d2 / folder
            assert f"--{option} '{expected}'" in first, first
        errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("ERROR:")]
        assert len(errors) == 1 and errors[0].startswith((f"ERROR: {d2}/", f"ERROR: {given}/")), errors
        assert "data/" + sets["train_set"] not in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- 3: a changed conf on resume


def test_resume_names_the_changed_keys_and_refuses_epochs_that_change_earlier_rates(
    train_dir, tmp_path
) -> None:
    """Every changed key is named with both values; more epochs with a decaying schedule would have given
    the steps already taken other learning rates, which the message says."""
    out = tmp_path / "run"
    train(parse_conf(TINY_ECAPA), TINY_TRAIN, train_dir, out)
    checkpoint_path(out, 2).unlink()  # stopped after epoch 1
    with pytest.raises(ConfError) as error:
        train(parse_conf(TINY_ECAPA), dataclasses.replace(TINY_TRAIN, batch_size=4, seed=9), train_dir, out)
    message = str(error.value)
    assert message.startswith(f"{checkpoint_path(out, 1)}: ")
    assert "train.batch_size: 8 in the checkpoint, 4 now" in message
    assert "train.seed: 3 in the checkpoint, 9 now" in message
    assert "train.epochs" not in message and "aam_margin" not in message
    with pytest.raises(ConfError) as error:
        train(parse_conf(TINY_ECAPA), dataclasses.replace(TINY_TRAIN, epochs=4), train_dir, out)
    message = str(error.value)
    assert "train.epochs: 2 in the checkpoint, 4 now" in message
    assert "learning rate" in message and "steps already taken" in message, message
    assert checkpoint_path(out, 1).is_file() and not checkpoint_path(out, 2).exists()


def test_more_epochs_of_a_schedule_that_does_not_depend_on_them_resume_exactly(train_dir, tmp_path) -> None:
    """A constant rate after the warm-up (initial_lr = final_lr) does not depend on the number of epochs:
    2 epochs extended to 3 (with another num_workers, which changes no number) end with the weights of 3
    epochs run at once."""
    conf = dataclasses.replace(TINY_TRAIN, initial_lr=0.05, final_lr=0.05)
    train(parse_conf(TINY_ECAPA), conf, train_dir, tmp_path / "short")
    longer = dataclasses.replace(conf, epochs=3)
    extended = train(
        parse_conf(TINY_ECAPA), dataclasses.replace(longer, num_workers=1), train_dir, tmp_path / "short"
    )
    whole = train(parse_conf(TINY_ECAPA), longer, train_dir, tmp_path / "whole")
    a, b = (torch.load(p, weights_only=True) for p in (extended, whole))
    assert a["epoch"] == b["epoch"] == 3
    for part in ("model", "head"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in b[part]), part


# ---------------------------------------------------------------------- 4, 7: checked before the first step


def test_train_asv_checks_names_export_and_valid_set_before_the_first_step(
    train_dir, tmp_path, capsys
) -> None:
    model_conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    train_conf = _write_yaml(tmp_path / "t.yaml", dataclasses.asdict(TINY_TRAIN))
    exp = tmp_path / "exp"
    argv = ["train_asv", "--model_conf", str(model_conf), "--train_conf", str(train_conf), "--train_set",
            str(train_dir), "--exp_dir", str(exp), "--device", "cpu"]  # fmt: skip
    for name in ("a/b", "fusion"):
        line = _error_line(capsys, sasv_main([*argv, "--name", name]))
        assert line.startswith(f"ERROR: --name: name {name!r}"), line
    line = _error_line(capsys, sasv_main([*argv, "--average_last", "3"]))
    assert line == f"ERROR: --average_last 3: {train_conf} trains 2 epoch(s), fewer than that to average"
    valid = tmp_path / "valid"
    shutil.copytree(train_dir.parent / "dev", valid)
    trials = (valid / "trials").read_text().splitlines()
    spk, _, attack, key = trials[0].split()
    (valid / "trials").write_text("\n".join([f"{spk} LA_D_nowhere {attack} {key}", *trials[1:]]) + "\n")
    line = _error_line(capsys, sasv_main([*argv, "--valid_set", str(valid)]))
    assert line.startswith(f"ERROR: {valid / 'wav.scp'}: 1 trial utterance") and "LA_D_nowhere" in line, line
    (valid / "trials").write_text("".join(t + "\n" for t in trials if t.split()[3] == "target"))
    line = _error_line(capsys, sasv_main([*argv, "--valid_set", str(valid)]))
    assert line.startswith(f"ERROR: {valid / 'trials'}: ") and "nontarget" in line, line
    assert _checkpoints(exp) == [], "nothing trained before the errors"


def _one_class(source: Path, target: Path, label: str) -> Path:
    """A copy of the CM data dir ``source`` holding only its ``label`` utterances."""
    target.mkdir()
    keep = {
        u
        for u, lab in (line.split() for line in (source / "utt2spf").read_text().splitlines())
        if lab == label
    }
    for name in ("wav.scp", "utt2spf", "utt2spk"):
        lines = (source / name).read_text().splitlines()
        (target / name).write_text("".join(f"{line}\n" for line in lines if line.split()[0] in keep))
    return target


def test_train_cm_checks_the_name_and_both_classes_of_dev_and_eval_before_the_first_step(
    train_dir, tmp_path, capsys
) -> None:
    """A dev set of one class made the first validation crash with the ASV wording target/nontarget."""
    cm = train_dir.parent
    model_conf = write_tiny_conf(tmp_path, TINY_AASIST)
    train_conf = _write_yaml(tmp_path / "t.yaml", TINY_CM_TRAIN)
    exp = tmp_path / "exp"
    argv = ["train_cm", "--model_conf", str(model_conf), "--train_conf", str(train_conf), "--train_set",
            str(cm / "cm_train"), "--exp_dir", str(exp), "--device", "cpu"]  # fmt: skip
    line = _error_line(capsys, sasv_main([*argv, "--dev_set", str(cm / "cm_dev"), "--name", "fusion"]))
    assert line.startswith("ERROR: --name: name 'fusion' is reserved"), line
    spoof_only = _one_class(cm / "cm_dev", tmp_path / "spoof_only", "spoof")
    line = _error_line(capsys, sasv_main([*argv, "--dev_set", str(spoof_only)]))
    assert line.startswith(f"ERROR: {spoof_only / 'utt2spf'}: only spoof utterances"), line
    assert "bona fide" in line and "target" not in line, line
    bonafide_only = _one_class(cm / "cm_eval", tmp_path / "bonafide_only", "bonafide")
    line = _error_line(
        capsys, sasv_main([*argv, "--dev_set", str(cm / "cm_dev"), "--eval_set", str(bonafide_only)])
    )
    assert line.startswith(f"ERROR: {bonafide_only / 'utt2spf'}: only bonafide utterances"), line
    assert _checkpoints(exp) == [], "nothing trained before the errors"


# -------------------------------------------------------------------------------- 5: training conf values


@pytest.mark.parametrize(
    "kind, key, value, message",
    [
        (AsvTrainConf, "aam_margin", 4.0, r"must be in \[0, pi/2\)"),
        (AsvTrainConf, "aam_margin", -0.3, r"must be in \[0, pi/2\)"),
        (AsvTrainConf, "aam_scale", -20, "must be a finite number > 0"),
        (AsvTrainConf, "weight_decay", -1, "must be a finite number >= 0"),
        (CmTrainConf, "weight_decay", float("inf"), "must be a finite number >= 0"),
        (AsvTrainConf, "freeze", [""], "an empty prefix freezes every parameter"),
        (AsvTrainConf, "lr_multipliers", {"model": -1.0}, "must be a finite number > 0"),
        (AsvTrainConf, "crop_seconds", 0.01, "at least 0.025 s"),
        (AsvTrainConf, "momentum", 1.5, r"must be in \[0, 1\)"),
        (AsvTrainConf, "initial_lr", float("inf"), "must be a finite number > 0"),
        (AsvTrainConf, "seed", -1, "must be at least 0"),
        (AsvTrainConf, "margin_increase_start", -2, "must be at least 0"),
        (AsvTrainConf, "augmentation", {"noise": -1.0}, "must be a finite number >= 0"),
        (AsvTrainConf, "augmentation", {"noise": 0.0}, "every weight is 0"),
        (CmTrainConf, "class_weights", {"spoof": 0.1, "bonafide": float("inf")}, "each finite"),
    ],
)
def test_every_training_conf_value_is_checked_when_the_conf_is_read(
    tmp_path, kind, key, value, message
) -> None:
    path = _write_yaml(tmp_path / "t.yaml", {key: value})
    with pytest.raises(ConfError, match=rf"^{path}: train\.{key}(\.\w+)?: .*{message}"):
        load_train_conf(path, kind)


def test_freeze_prefixes_that_leave_nothing_to_train_are_refused_before_the_first_step(
    train_dir, tmp_path
) -> None:
    conf = dataclasses.replace(TINY_TRAIN, freeze=["model", "head"])
    with pytest.raises(
        ConfError, match=r"freeze \['model', 'head'\] freezes every parameter: nothing to train"
    ):
        train(parse_conf(TINY_ECAPA), conf, train_dir, tmp_path / "run")
    assert _checkpoints(tmp_path) == []


def test_scored_sets_are_refused_when_a_labelled_or_trial_utterance_would_drop_out(
    train_dir, tmp_path
) -> None:
    """A dev/eval utterance labelled but without audio would leave the CM-EER unnoticed; a SASV trial
    speaker without enrolment was a KeyError."""
    from sasv.train.validate import cm_validation_set, validation_trials

    dev = tmp_path / "cm_dev"
    shutil.copytree(train_dir.parent / "cm_dev", dev)
    lines = (dev / "wav.scp").read_text().splitlines()
    (dev / "wav.scp").write_text("".join(f"{line}\n" for line in lines[1:]))
    with pytest.raises(DataDirError, match=rf"^{dev / 'wav.scp'}: no audio for 1 utterance\(s\) of utt2spf"):
        cm_validation_set(dev)
    valid = tmp_path / "dev"
    shutil.copytree(train_dir.parent / "dev", valid)
    enroll = (valid / "enroll").read_text().splitlines()
    (valid / "enroll").write_text("".join(f"{line}\n" for line in enroll[1:]))
    speaker = enroll[0].split()[0]
    with pytest.raises(
        DataDirError, match=rf"^{valid / 'enroll'}: 1 trial speaker\(s\) without enrolment: \['{speaker}'\]"
    ):
        validation_trials(valid)


# ------------------------------------------------------------------------------------------ 6: disk full


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_naming_it(train_dir, tmp_path) -> None:
    """File size limited (ulimit -f, as a full disk: the write fails): one ERROR line naming the checkpoint,
    exit 1, and no half-written file under its name."""
    model_conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    train_conf = _write_yaml(tmp_path / "t.yaml", dataclasses.asdict(TINY_TRAIN))
    out = tmp_path / "out"
    argv = [*tool("train_asv"), "--model_conf", str(model_conf), "--train_conf", str(train_conf),
            "--train_set", str(train_dir), "--out", str(out), "--device", "cpu"]  # fmt: skip
    command = "ulimit -f 16 && exec " + " ".join(f"'{a}'" for a in argv)
    proc = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, env=_shell_env(), capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert errors == [f"ERROR: {checkpoint_path(out, 1)}: File too large"], proc.stderr[-3000:]
    assert _checkpoints(out) == [] and list((out / "checkpoints").iterdir()) == []


def test_a_full_disk_while_exporting_names_the_file(tmp_path, monkeypatch) -> None:
    import errno

    import sasv.train.export
    from sasv.models.conf import build_from_conf

    def full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sasv.train.export.torch, "save", full)
    target = tmp_path / "model.model"
    with pytest.raises(OSError) as error:
        sasv.train.export.save_checkpoint(build_from_conf(parse_conf(TINY_ECAPA)), target, "taoruijie_ecapa")
    assert error.value.filename == str(target) and error.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- 8: labels without audio


def test_labelled_utterances_without_audio_are_an_error_naming_them(train_dir, tmp_path) -> None:
    """A speaker whose audio lines are gone from wav.scp must not vanish from training unnoticed."""
    data = tmp_path / "data"
    shutil.copytree(train_dir, data)
    utt2spk = dict(line.split() for line in (data / "utt2spk").read_text().splitlines())
    gone = sorted(u for u, s in utt2spk.items() if s == sorted(set(utt2spk.values()))[0])
    lines = (data / "wav.scp").read_text().splitlines()
    (data / "wav.scp").write_text("".join(f"{line}\n" for line in lines if line.split()[0] not in gone))
    with pytest.raises(DataDirError) as error:
        TrainList.from_data_dir(data)
    message = str(error.value)
    assert message.startswith(f"{data / 'wav.scp'}: no audio for {len(gone)} utterance(s) of utt2spk")
    assert gone[0] in message and "1 speaker(s)" in message, message


# ------------------------------------------------------------------------------- 9: a moved train folder


def test_an_exported_model_moves_with_its_folder(train_dir, tmp_path, capsys) -> None:
    """model.yaml names its weights relative to itself: the training folder can be moved or copied whole;
    weights missing beside it are explained as a training export, not sent to download_pretrained.sh."""
    model_conf = write_tiny_conf(
        tmp_path, TINY_ECAPA, checkpoint={"path": str(tmp_path / "absent.model"), "format": "taoruijie_ecapa"}
    )
    train_conf = _write_yaml(
        tmp_path / "t.yaml", dataclasses.asdict(dataclasses.replace(TINY_TRAIN, epochs=2))
    )
    out = tmp_path / "exp" / "train" / "mine"
    argv = ["train_asv", "--model_conf", str(model_conf), "--train_conf", str(train_conf), "--train_set",
            str(train_dir), "--name", "mine", "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert sasv_main(argv) == 0, capsys.readouterr().err
    moved = tmp_path / "elsewhere" / "mine"
    moved.parent.mkdir()
    shutil.move(out, moved)
    conf = load_conf(moved / "model.yaml")
    assert conf.checkpoint.path == "model.model"
    assert load_model(conf).pretrained
    (moved / "model.model").unlink()
    with pytest.raises(CheckpointError) as error:
        load_model(load_conf(moved / "model.yaml"))
    message = str(error.value)
    assert str(moved / "model.model") in message and "download_pretrained" not in message, message
    assert "sasv train_asv" in message and "move or copy the training folder" in message, message


def test_relative_paths_start_at_the_recipe_root_unless_the_conf_says_its_own_folder(tmp_path) -> None:
    """Hand-written confs keep their meaning (``pretrained/...`` from the recipe root); an exported conf says
    ``relative_to: conf``."""
    shipped = load_conf(REPO_ROOT / "conf/asv/ecapa_tdnn.yaml")
    assert shipped.checkpoint.resolved_path(tmp_path) == tmp_path / shipped.checkpoint.path
    (tmp_path / "folder").mkdir()
    checkpoint = {"path": "w.pt", "format": "plain", "relative_to": "conf"}
    conf = _write_yaml(tmp_path / "folder" / "c.yaml", {**TINY_ECAPA, "checkpoint": checkpoint})
    assert load_conf(conf).checkpoint.resolved_path(Path("/elsewhere")) == tmp_path / "folder" / "w.pt"
    bad = _write_yaml(
        tmp_path / "bad.yaml",
        {**TINY_ECAPA, "checkpoint": {"path": "w.pt", "format": "plain", "relative_to": "home"}},
    )
    with pytest.raises(
        ConfError, match=rf"^{bad}: checkpoint.relative_to: expected root or conf, got 'home'"
    ):
        load_conf(bad)
