"""Every expected error path of every tool ends in exactly one ``ERROR: <file>: <problem>`` line, exit 1.

The tools run in-process through the same runner as ``sasv <tool>`` (:func:`sasv.cli.run_cli`), so an
exception that escapes the contract fails the test with its traceback. One mini corpus is prepared and
processed once (tiny models, random weights); each case then breaks one thing in a copy or a scratch dir.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sasv.__main__ import TOOLS
from sasv.__main__ import main as sasv_main
from sasv.cli import run_cli
from sasv.locking import exclusive_lock
from tests.conftest import default_sigint, tool
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA, write_tiny_conf

ASV, CM = f"{TINY_ECAPA['name']}.yaml", f"{TINY_AASIST['name']}.yaml"  # written by write_tiny_conf


def sasv(*argv: str | Path) -> int:
    return sasv_main([str(a) for a in argv])


def error_line(capsys: pytest.CaptureFixture[str], code: int, expected: int = 1) -> str:
    """The single ERROR line the run printed (asserting that there is exactly one and no traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert code == expected, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A mini corpus, its data dirs, both model stages and one scored system, all from tiny models."""
    w = tmp_path_factory.mktemp("contract")
    write_tiny_conf(w, TINY_ECAPA)
    write_tiny_conf(w, TINY_AASIST)
    steps = [
        ("make_mini_corpus", "--out", w / "corpus", "--speakers", "2", "--bonafide_per_spk", "2",
         "--enroll_per_spk", "1", "--attacks", "1", "--train_utts_per_spk", "1"),
        ("prepare_la", "--la_root", w / "corpus" / "LA", "--out", w / "data"),
        ("extract_embeddings", "--conf", w / ASV, "--data_dirs", w / "data" / "dev",
         "--exp_dir", w / "exp", "--device", "cpu", "--allow_random_init", "true"),
        ("score_cm", "--conf", w / CM, "--data_dirs", w / "data" / "dev", "--exp_dir", w / "exp",
         "--device", "cpu", "--allow_random_init", "true"),
        ("score_trials", "--asv_conf", w / ASV, "--cm_conf", w / CM, "--norm", "nonorm",
         "--data_dir", w / "data", "--exp_dir", w / "exp", "--sets", "dev"),
    ]  # fmt: skip
    for step in steps:
        assert sasv(*step) == 0, step
    return w


def copy_exp(work: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the data dirs and exp dir to break (paths inside stay valid: absolute)."""
    shutil.copytree(work / "data", tmp_path / "data")
    shutil.copytree(work / "exp", tmp_path / "exp", ignore=shutil.ignore_patterns(".lock"))
    return tmp_path / "data", tmp_path / "exp"


def scoring_args(work: Path, data: Path, exp: Path, asv: Path | None = None) -> list[str | Path]:
    asv = asv or work / ASV
    return ["score_trials", "--asv_conf", asv, "--cm_conf", work / CM, "--norm", "nonorm",
            "--data_dir", data, "--exp_dir", exp, "--sets", "dev"]  # fmt: skip


def extract_args(work: Path, conf: Path, data_dir: Path, exp: Path, *extra: str) -> list[str | Path]:
    return ["extract_embeddings", "--conf", conf, "--data_dirs", data_dir, "--exp_dir", exp,
            "--device", "cpu", "--allow_random_init", "true", *extra]  # fmt: skip


# ------------------------------------------------------------------------------------ data and corpus tools


def test_make_mini_corpus_errors(tmp_path, capsys) -> None:
    line = error_line(capsys, sasv("make_mini_corpus", "--out", tmp_path / "a", "--speakers", "1"))
    assert "--speakers must be at least 2" in line
    (tmp_path / "b" / "LA").mkdir(parents=True)
    line = error_line(capsys, sasv("make_mini_corpus", "--out", tmp_path / "b"))
    assert str(tmp_path / "b" / "LA") in line and "not a mini corpus" in line


def test_prepare_la_errors(work, tmp_path, capsys) -> None:
    line = error_line(capsys, sasv("prepare_la", "--la_root", tmp_path / "absent", "--out", tmp_path / "d"))
    assert f"ERROR: {tmp_path / 'absent'}: LA folder does not exist" in line
    la = tmp_path / "LA"
    shutil.copytree(work / "corpus" / "LA", la)
    trials = next((la / "ASVspoof2019_LA_asv_protocols").glob("*.dev.gi.trl.txt"))
    trials.write_text(trials.read_text().replace("target", "impostor", 1))
    line = error_line(capsys, sasv("prepare_la", "--la_root", la, "--out", tmp_path / "d"))
    assert f"ERROR: {trials}:1: unknown key 'impostor'" in line
    shutil.rmtree(la)
    shutil.copytree(work / "corpus" / "LA", la)
    next((la / "ASVspoof2019_LA_dev" / "flac").glob("*.flac")).unlink()
    line = error_line(capsys, sasv("prepare_la", "--la_root", la, "--out", tmp_path / "d"))
    assert "audio files referenced by the dev protocols are missing" in line
    assert not (tmp_path / "d").exists(), "nothing is written when a list is bad"


def test_prepare_asvspoof5_errors(tmp_path, capsys) -> None:
    line = error_line(
        capsys, sasv("prepare_asvspoof5", "--root", tmp_path / "absent", "--out", tmp_path / "d")
    )
    assert line == f"ERROR: {tmp_path / 'absent'}: ASVspoof 5 folder does not exist"
    root = tmp_path / "ASVspoof5"
    root.mkdir()
    line = error_line(capsys, sasv("prepare_asvspoof5", "--root", root, "--out", tmp_path / "d"))
    assert line.startswith(f"ERROR: {root}: no ASVspoof 5 dev trials file (ASVspoof5.dev.track_2.trial.tsv")
    (root / "ASVspoof5.dev.track_2.trial.tsv").write_text("D_1 D_0000000001 F bonafide impostor\n")
    (root / "ASVspoof5.dev.track_2.enroll.tsv").write_text("D_1 D_A0000000001\n")
    line = error_line(
        capsys, sasv("prepare_asvspoof5", "--root", root, "--out", tmp_path / "d", "--sets", "dev")
    )
    assert line.startswith(f"ERROR: {root / 'ASVspoof5.dev.track_2.trial.tsv'}:1: unknown key 'impostor'")
    assert not (tmp_path / "d").exists(), "nothing is written when a list is bad"


def test_prepare_asvspoof5_contradicting_protocols(tmp_path, capsys) -> None:
    """The metadata and the trial list both give a spoof's attack: they must agree, also where the metadata
    lists only some of the trial files (it was then not compared at all)."""
    mini = ["make_mini_corpus", "--out", tmp_path, "--corpus", "asvspoof5", "--speakers", "2",
            "--bonafide_per_spk", "1", "--enroll_per_spk", "1", "--attacks", "1",
            "--train_utts_per_spk", "1"]  # fmt: skip
    assert sasv(*mini) == 0
    root = tmp_path / "ASVspoof5"
    metadata = root / "ASVspoof5.dev.tsv"
    lines = metadata.read_text().splitlines()
    spoof = next(i for i, line in enumerate(lines) if line.split()[8] == "spoof")
    spk, utt, attack = lines[spoof].split()[0], lines[spoof].split()[1], lines[spoof].split()[7]
    other = f"A{int(attack[1:]) + 1:02d}"
    lines[spoof] = lines[spoof].replace(f" {attack} spoof", f" {other} spoof")
    bonafide = next(i for i, line in enumerate(lines) if line.split()[8] == "bonafide")
    expected = (
        f"ERROR: {metadata}: 1 trials contradict the CM protocol, spoof trials whose attack is not the CM "
        f"protocol's: {spk} {utt} {attack} spoof vs CM {spk} {other} spoof"
    )
    for kept in (lines, [line for i, line in enumerate(lines) if i != bonafide]):  # all files, then some
        metadata.write_text("\n".join(kept) + "\n")
        line = error_line(
            capsys, sasv("prepare_asvspoof5", "--root", root, "--out", tmp_path / "d", "--sets", "dev")
        )
        assert line == expected
    assert not (tmp_path / "d").exists(), "nothing is written when the lists disagree"


def option_error(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> str:
    """The single ERROR line of an option error (exit 2)."""
    with pytest.raises(SystemExit) as stop:
        sasv(*argv)
    return error_line(capsys, stop.value.code, expected=2)


def test_prepare_asvspoof2021_errors(tmp_path, capsys) -> None:
    root = tmp_path / "ASVspoof2021"
    line = error_line(capsys, sasv("prepare_asvspoof2021", "--root", root, "--out", tmp_path / "d"))
    assert line == f"ERROR: {root}: ASVspoof 2021 folder does not exist"
    root.mkdir()
    line = error_line(capsys, sasv("prepare_asvspoof2021", "--root", root, "--out", tmp_path / "d"))
    assert line.startswith(
        f"ERROR: {root}: no ASVspoof 2021 CM key ({root / 'keys/LA/CM/trial_metadata.txt'}"
    )
    for option in (["--cm_sets", "train"], ["--cohort", "true"], ["--sets", "eval"]):
        line = option_error(capsys, "prepare_asvspoof2021", "--root", root, *option)
        assert line.startswith("ERROR: sasv prepare_asvspoof2021: ")
        assert (
            "is not one of la2021_eval, df2021_eval" if option[0] == "--sets" else "no train or dev set"
        ) in line
    mini = ["make_mini_corpus", "--corpus", "asvspoof2021_la", "--out", tmp_path, "--speakers", "2",
            "--bonafide_per_spk", "1", "--attacks", "1"]  # fmt: skip
    assert sasv(*mini) == 0
    la = tmp_path / "ASVspoof2021_LA"
    prepare = ["prepare_asvspoof2021", "--root", la, "--out", tmp_path / "d", "--audio_check", "false"]
    key = la / "keys" / "LA" / "CM" / "trial_metadata.txt"
    good = key.read_text()
    key.write_text(good.replace(" spoof notrim", " fake notrim", 1))
    line = error_line(capsys, sasv(*prepare))
    assert line.startswith(f"ERROR: {key}:") and "unknown key 'fake'" in line
    key.write_text(good)
    scores = la / "keys" / "LA" / "ASV" / "ASVTorch_Kaldi" / "score.txt"
    scores.write_text("".join(scores.read_text().splitlines(keepends=True)[1:]))
    line = error_line(capsys, sasv(*prepare))
    assert line.startswith(
        f"ERROR: {scores}: no score for 1 trial(s) of {la / 'keys/LA/ASV/trial_metadata.txt'}"
    )
    scores.unlink()
    line = error_line(capsys, sasv(*prepare))
    assert line == f"ERROR: {scores}: file does not exist"
    next((la / "ASVspoof2021_LA_eval" / "flac").glob("*.flac")).unlink()
    line = error_line(capsys, sasv(*prepare))
    assert f"1 of 6 audio files referenced by {key} are missing" in line
    assert not (tmp_path / "d").exists(), "nothing is written when a list is bad"


def test_evaluate_asvspoof2021_errors(work, tmp_path, capsys) -> None:
    """Scores that do not fit the data dir, a data dir of another benchmark, scores made from other inputs,
    and a countermeasure benchmark's set given to SASV scoring: one ERROR line each."""
    mini = ["make_mini_corpus", "--corpus", "asvspoof2021_la", "--out", tmp_path, "--speakers", "2",
            "--bonafide_per_spk", "3", "--attacks", "1"]  # fmt: skip
    assert sasv(*mini) == 0
    data = tmp_path / "data"
    argv = ["--root", tmp_path / "ASVspoof2021_LA", "--out", data, "--audio_check", "false"]
    assert sasv("prepare_asvspoof2021", *argv) == 0
    la = data / "la2021_eval"
    utts = [line.split()[0] for line in (la / "wav.scp").read_text().splitlines()]
    scores = tmp_path / "score.txt"
    scores.write_text("".join(f"{u} {i}\n" for i, u in enumerate(utts)))
    evaluate = ["evaluate_asvspoof2021", "--data", la, "--out", tmp_path / "out"]
    assert sasv(*evaluate, "--cm_scores", scores) == 0
    line = option_error(capsys, "evaluate_asvspoof2021", "--data", la, "--cm_scores", scores)
    assert line.startswith("ERROR: sasv evaluate_asvspoof2021: --out is needed with --cm_scores")
    line = error_line(capsys, sasv(*evaluate, "--cm_scores", scores, "--subset", "hidden"))
    assert line == "ERROR: no trial of the 'hidden' subset (the data has: eval, progress)"
    line = error_line(capsys, sasv(*evaluate, "--cm_scores", scores, "--track", "DF"))
    assert line == f"ERROR: {la}: an ASVspoof 2021 LA set (prepared.json), not --track DF"
    scores.write_text("".join(f"{u} {i}\n" for i, u in enumerate(utts[1:])) + "LA_E_0 1\n")
    line = error_line(capsys, sasv(*evaluate, "--cm_scores", scores))
    assert line == f"ERROR: {scores}: 1 scored trial(s) are not in {la} (scores of another set?): LA_E_0"
    scores.write_text("".join(f"{u} {i}\n" for i, u in enumerate(utts) if i != 1))
    line = error_line(capsys, sasv(*evaluate, "--cm_scores", scores))
    assert line.startswith("ERROR: no score for 1 of the ") and utts[1] in line
    # the stage-3 output of a conf: refused before stage 3 ran, and when made for another wav.scp
    line = error_line(capsys, sasv(*evaluate, "--cm_conf", work / CM, "--exp_dir", tmp_path / "exp"))
    marker = tmp_path / "exp" / "tiny_aasist" / "scores" / "la2021_eval" / "cm_scores.txt.done"
    assert line == f"ERROR: {marker} not found: the stage that writes it did not finish; run it (again)"
    marker.parent.mkdir(parents=True)
    shutil.copy(scores, marker.parent / "cm_scores.txt")
    marker.write_text(json.dumps({"inputs": {"lists": {"wav.scp": "0" * 64}}}))
    line = error_line(capsys, sasv(*evaluate, "--cm_scores", marker.parent / "cm_scores.txt"))
    assert line.startswith(
        f"ERROR: {marker.parent} was made from other inputs than the current ones (changed: "
    )
    # a data dir of another benchmark, one made by hand without --track
    line = error_line(capsys, sasv(*evaluate, "--cm_scores", scores, "--data", work / "data" / "dev"))
    assert line == f"ERROR: {work / 'data' / 'dev'}: prepared for la, not an ASVspoof 2021 LA or DF set " + (
        "(prepared.json)"
    )
    (la / "prepared.json").unlink()
    line = error_line(capsys, sasv(*evaluate, "--cm_scores", scores))
    assert line == f"ERROR: {la}: no prepared.json names its track; pass --track LA or DF"
    # SASV scoring of a countermeasure benchmark's set
    assert sasv("prepare_asvspoof2021", *argv) == 0
    line = error_line(capsys, sasv(*scoring_args(work, data, tmp_path / "exp")[:-1], "la2021_eval"))
    assert line.startswith(f"ERROR: {la}: a set of ASVspoof 2021 LA, which judges countermeasures alone")
    assert "sasv evaluate_asvspoof2021" in line


def test_prepare_augmentation_errors(tmp_path, capsys) -> None:
    (tmp_path / "RIRS_NOISES").mkdir()
    argv = ["prepare_augmentation", "--musan_root", tmp_path / "absent", "--rirs_root",
            tmp_path / "RIRS_NOISES", "--out", tmp_path / "d"]  # fmt: skip
    line = error_line(capsys, sasv(*argv))
    assert f"ERROR: {tmp_path / 'absent'}: augmentation corpus folder does not exist" in line
    assert str(tmp_path / "RIRS_NOISES" / "simulated_rirs" / "largeroom") in line
    assert not (tmp_path / "d").exists()


def test_prepare_voxceleb_errors(tmp_path, capsys) -> None:
    (tmp_path / "vox2" / "dev" / "aac").mkdir(parents=True)
    argv = ["prepare_voxceleb", "--vox1_root", tmp_path / "vox1", "--vox2_root", tmp_path / "vox2",
            "--trials", tmp_path / "veri_test2.txt", "--out", tmp_path / "d"]  # fmt: skip
    line = error_line(capsys, sasv(*argv))
    assert f"ERROR: {tmp_path / 'vox1' / 'wav'}: VoxCeleb1 folder does not exist; get https://" in line
    assert "vox1_test_wav.zip (md5 185fdc63c3c739954633d50379a3d102)" in line
    assert not (tmp_path / "d").exists()


# ------------------------------------------------------------------------------------------- model stages


@pytest.mark.parametrize(
    "raw, message",
    [
        (None, "does not exist"),
        (TINY_AASIST, "a cm conf, expected a ASV model conf"),
        ({**TINY_ECAPA, "batch": 3}, "unknown keys ['batch']"),
        ({**TINY_ECAPA, "name": "fusion"}, "name 'fusion' is reserved"),
        ({**TINY_ECAPA, "name": "a/b"}, "name 'a/b' must be letters"),
        ({**TINY_ECAPA, "arch": "ecapa_tdn"}, "unknown architecture 'ecapa_tdn'"),
        (
            {**TINY_ECAPA, "checkpoint": {"path": "/absent/x.pt", "format": "plain"}},
            "checkpoint /absent/x.pt does",
        ),
        ({**TINY_ECAPA, "checkpoint": {"path": "CORRUPT", "format": "plain"}}, "is truncated or corrupt"),
    ],
    ids=[
        "missing",
        "wrong-kind",
        "unknown-key",
        "reserved-name",
        "slash-name",
        "unknown-arch",
        "no-ckpt",
        "corrupt-ckpt",
    ],  # fmt: skip
)
def test_bad_conf_or_checkpoint(work, tmp_path, capsys, raw: dict | None, message: str) -> None:
    conf = tmp_path / "conf.yaml"
    if raw is not None:
        corrupt = tmp_path / "corrupt.pt"
        corrupt.write_bytes(b"PK\x03\x04 not a zip")
        conf.write_text(yaml.safe_dump(raw).replace("CORRUPT", str(corrupt)))
    argv = ["extract_embeddings", "--conf", conf, "--data_dirs", work / "data" / "dev", "--exp_dir",
            tmp_path / "exp", "--device", "cpu"]  # fmt: skip
    line = error_line(capsys, sasv(*argv))
    assert message in line and (str(conf) in line or "checkpoint" in line), line


def test_model_stage_data_and_device_errors(work, tmp_path, capsys) -> None:
    conf, exp = work / ASV, tmp_path / "exp"
    empty = tmp_path / "empty"
    empty.mkdir()
    line = error_line(capsys, sasv(*extract_args(work, conf, empty, exp)))
    assert f"ERROR: {empty / 'wav.scp'}: file does not exist" in line

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "wav.scp").write_text(f"utt1 {tmp_path / 'junk.flac'}\n")
    (tmp_path / "junk.flac").write_bytes(b"junk" * 100)
    line = error_line(capsys, sasv(*extract_args(work, conf, bad, exp)))
    assert f"ERROR: {tmp_path / 'junk.flac'}: cannot decode audio" in line

    line = error_line(
        capsys, sasv(*extract_args(work, conf, work / "data" / "dev", exp, "--device", "cuda:0"))
    )
    assert "--device cuda:0: CUDA is not available" in line

    cm = [
        "score_cm",
        "--conf",
        work / CM,
        "--data_dirs",
        bad,
        "--exp_dir",
        exp,
        "--device",
        "cpu",
    ]
    line = error_line(capsys, sasv(*cm, "--allow_random_init", "true"))
    assert f"{bad}: missing " in line and "trials" in line


def test_two_confs_with_one_name(work, tmp_path, capsys) -> None:
    """A copied conf that keeps `name:` but changes the model must not overwrite the original's outputs."""
    data, exp = copy_exp(work, tmp_path)
    original = yaml.safe_load((work / ASV).read_text())
    (tmp_path / "copy").mkdir()
    same = write_tiny_conf(tmp_path / "copy", TINY_ECAPA, checkpoint=original["checkpoint"])
    assert sasv(*extract_args(work, same, data / "dev", exp)) == 0, "an identical copy is the same model"
    (tmp_path / "other").mkdir()
    other = write_tiny_conf(tmp_path / "other", {**TINY_ECAPA, "args": {"C": 24}})
    line = error_line(capsys, sasv(*extract_args(work, other, data / "dev", exp)))
    assert f"ERROR: {other}: name 'tiny_ecapa' is already used by another conf, {same}" in line


def test_job_command_and_task_errors(work, tmp_path, capsys) -> None:
    """--cmd that cannot run, or runs no task: one line naming the first task's log; a task of a tasks file
    that is not the recipe's, or of a task number it does not have: one line naming the file."""
    exp = tmp_path / "exp"
    line = error_line(
        capsys, sasv(*extract_args(work, work / ASV, work / "data" / "dev", exp, "--cmd", "absent.sh"))
    )
    assert line == "ERROR: absent.sh: job command not found (--cmd 'absent.sh')"
    line = error_line(
        capsys, sasv(*extract_args(work, work / ASV, work / "data" / "dev", exp, "--cmd", "true"))
    )
    log = exp / "tiny_ecapa" / "embeddings" / "dev" / "log" / "embeddings.1.log"
    assert line.startswith(f"ERROR: {log}: task(s) 1 of 1 did not finish (no log: the task never started)")
    tasks = exp / "tiny_ecapa" / "embeddings" / "dev" / "chunks" / "tasks.json"
    line = error_line(capsys, sasv("compute_chunks", "--tasks", tasks, "--task", "2"))
    assert line == f"ERROR: {tasks}: task 2 asked for, the file has tasks 1..1"
    (tmp_path / "junk.json").write_text("[1, 2]")
    line = error_line(capsys, sasv("compute_chunks", "--tasks", tmp_path / "junk.json", "--task", "1"))
    assert line.startswith(f"ERROR: {tmp_path / 'junk.json'}: not a tasks file of this recipe")
    line = error_line(capsys, sasv("compute_chunks", "--tasks", tmp_path / "absent.json", "--task", "1"))
    assert line == f"ERROR: {tmp_path / 'absent.json'}: No such file or directory"


def test_track2_metrics_errors(tmp_path, capsys) -> None:
    """`compute_metrics --keys`: a key file without its header, or a submission with a trial the keys do
    not hold, is one line naming the file and line."""
    scores, keys = tmp_path / "s.tsv", tmp_path / "k.tsv"
    scores.write_text("spk\tfilename\tcm-score\tasv-score\tsasv-score\nE_1\tE_01\t0.5\t0.1\t0.6\n")
    keys.write_text("E_1\tE_01\tbonafide\ttarget\n")
    line = error_line(capsys, sasv("compute_metrics", scores, "--keys", keys))
    assert line.startswith(f"ERROR: {keys}:1: expected the header 'spk filename cm-label asv-label'")
    keys.write_text("spk\tfilename\tcm-label\tasv-label\nE_1\tE_02\tbonafide\ttarget\n")
    line = error_line(capsys, sasv("compute_metrics", scores, "--keys", keys))
    assert line == f"ERROR: {scores}:2: trial E_1 E_01 is not in the keys {keys}"


def test_track1_metrics_errors(tmp_path, capsys) -> None:
    """`compute_metrics --track 1`: a key file without its columns, a missing key file: one line each."""
    scores, keys = tmp_path / "s.tsv", tmp_path / "k.tsv"
    scores.write_text("filename\tcm-score\nE_01\t0.5\n")
    keys.write_text("E_01\tbonafide\n")
    line = error_line(capsys, sasv("compute_metrics", scores, "--keys", keys, "--track", "1"))
    assert line.startswith(f"ERROR: {keys}:1: the header names no column filename, cm-label")
    line = error_line(capsys, sasv("compute_metrics", scores, "--keys", tmp_path / "absent", "--track", "1"))
    assert line == f"ERROR: {tmp_path / 'absent'}: file does not exist"


def test_compare_systems_errors(tmp_path, capsys) -> None:
    """`compare_systems`: score lists of other trials, or a system that is not there, is one line."""
    from sasv.scoring.score_files import write_score_file
    from tests.synthetic_scores import make_trials

    trials = make_trials(seed=1, n_utts=40)
    a, short = tmp_path / "a.txt", tmp_path / "short.txt"
    write_score_file(a, trials)
    a.with_name("short.txt").write_text("".join(a.read_text().splitlines(keepends=True)[:-1]))
    line = error_line(capsys, sasv("compare_systems", a, short, "--bootstrap", "10"))
    assert line.startswith(f"ERROR: {short} has {len(trials) - 1} trials, {a} has {len(trials)}")
    line = error_line(capsys, sasv("compare_systems", tmp_path, tmp_path / "absent", "--bootstrap", "10"))
    assert line == f"ERROR: {tmp_path / 'absent'}: no such system dir or score file"


def test_download_pretrained_errors(tmp_path, capsys) -> None:
    line = error_line(capsys, sasv("download_pretrained", "no_such_model"))
    assert "unknown model name(s) no_such_model" in line
    conf = write_tiny_conf(
        tmp_path, TINY_ECAPA, checkpoint={"path": str(tmp_path / "x.pt"), "format": "plain"}
    )
    line = error_line(capsys, sasv("download_pretrained", "--confs", conf, "--lock", tmp_path / "lock"))
    assert line.startswith(f"ERROR: {conf}: tiny_ecapa: no download source is known")
    (tmp_path / "lock").write_text("[1, 2]")
    (tmp_path / "x.pt").write_bytes(b"weights")
    line = error_line(capsys, sasv("download_pretrained", "--confs", conf, "--lock", tmp_path / "lock"))
    assert line == f"ERROR: {tmp_path / 'lock'}: not a JSON checksum lock (expected an object)"


def test_locked_output_dir(work, tmp_path, capsys) -> None:
    exp = tmp_path / "exp"
    with exclusive_lock(exp / "tiny_ecapa" / "embeddings" / "dev"):
        line = error_line(capsys, sasv(*extract_args(work, work / ASV, work / "data" / "dev", exp)))
    assert "another run (pid" in line


def test_os_errors_name_the_path(work, tmp_path, capsys) -> None:
    """A path that cannot be written (here: exp dir is a file) is one line naming it, not a traceback."""
    blocker = tmp_path / "exp"
    blocker.write_text("not a folder")
    line = error_line(capsys, sasv(*extract_args(work, work / ASV, work / "data" / "dev", blocker)))
    assert line.startswith(f"ERROR: {blocker}")


# ------------------------------------------------------------------------------------------ scoring tools


def test_scoring_before_the_model_stages(work, tmp_path, capsys) -> None:
    line = error_line(capsys, sasv(*scoring_args(work, work / "data", tmp_path / "exp")))
    assert "model.json not found: run the stage that writes it first" in line


def test_scoring_refuses_stale_and_broken_outputs(work, tmp_path, capsys) -> None:
    data, exp = copy_exp(work, tmp_path)
    changed = tmp_path / ASV  # same name and model, another conf text
    changed.write_text((work / ASV).read_text() + "batch_size: 8\n")
    line = error_line(capsys, sasv(*scoring_args(work, data, exp, changed)))
    assert "was made from other inputs than the current ones (changed: conf" in line

    cm_file = exp / "tiny_aasist" / "scores" / "dev" / "cm_scores.txt"
    good = cm_file.read_text()
    cm_file.write_text("utt_x 0.1 0.2\n" + good)
    line = error_line(capsys, sasv(*scoring_args(work, data, exp)))
    assert f"ERROR: {cm_file}:1: expected 'UTT logit_spoof logit_bonafide p_bonafide'" in line
    cm_file.write_text(good)

    marker = exp / "tiny_ecapa" / "embeddings" / "dev" / "xvector.done"
    marker.unlink()
    line = error_line(capsys, sasv(*scoring_args(work, data, exp)))
    assert f"{marker} not found: the stage that writes it did not finish" in line

    line = error_line(capsys, sasv(*scoring_args(work, data, exp), "--score_norm", "asnorm"))
    assert "AS-norm needs cohort embeddings" in line


def test_scoring_refuses_a_data_dir_of_changed_protocols(work, tmp_path, capsys) -> None:
    data, exp = copy_exp(work, tmp_path)
    prepared = json.loads((data / "dev" / "prepared.json").read_text())
    source = tmp_path / "protocol.txt"
    source.write_text("changed\n")
    prepared["sources"] = {str(source): "0" * 64}
    (data / "dev" / "prepared.json").write_text(json.dumps(prepared))
    line = error_line(capsys, sasv(*scoring_args(work, data, exp)))
    assert "was prepared from protocol files that have changed" in line and str(source) in line


def test_metrics_of_two_benchmarks_are_not_mixed(work, tmp_path, capsys) -> None:
    """Sets prepared for two benchmarks in one scoring run, or systems scored with different metrics in
    one fusion, are refused: their tables would put numbers of different definitions side by side."""
    data, exp = copy_exp(work, tmp_path)
    shutil.copytree(data / "dev", data / "dev5")
    prepared = json.loads((data / "dev5" / "prepared.json").read_text())
    (data / "dev5" / "prepared.json").write_text(json.dumps({**prepared, "benchmark": "asvspoof5"}))
    line = error_line(capsys, sasv(*scoring_args(work, data, exp), "dev5"))
    assert f"ERROR: {data}: the sets belong to different benchmarks (dev: la, dev5: asvspoof5)" == line

    system = exp / "tiny_ecapa" / "tiny_aasist" / "nonorm"
    other = exp / "other" / "tiny_aasist" / "nonorm"
    shutil.copytree(system, other)
    record = json.loads((other / "results.json").read_text())
    record["metrics"] = {"a_dcf": ["paper", "sasv2024"], "tandem": False}
    (other / "results.json").write_text(json.dumps(record))
    fuse = ["fuse_systems", "--exp_dir", exp, "--out", exp / "fusion" / "x", "--sets", "dev", "--systems"]
    line = error_line(capsys, sasv(*fuse, "tiny_ecapa/tiny_aasist/nonorm", "other/tiny_aasist/nonorm"))
    assert "the systems were scored with different metrics" in line and "sasv2024" in line


def test_analysis_fusion_summary_and_metrics_errors(work, tmp_path, capsys) -> None:
    data, exp = copy_exp(work, tmp_path)
    system = exp / "tiny_ecapa" / "tiny_aasist" / "nonorm"
    line = error_line(
        capsys, sasv("analyse_system", "--system_dir", system, "--sets", "eval", "--plots", "false")
    )
    assert f"{system / 'scores_eval.txt'} not found" in line

    scores = system / "scores_dev.txt"
    good = scores.read_text()
    scores.write_text(good + "LA_0001 LA_D_1 A01 spoof 0.5\n")
    line = error_line(
        capsys, sasv("analyse_system", "--system_dir", system, "--sets", "dev", "--plots", "false")
    )
    assert f"ERROR: {scores}:" in line and "expected 7 fields" in line
    scores.write_text(good)

    name = "tiny_ecapa/tiny_aasist/nonorm"
    fuse = ["fuse_systems", "--exp_dir", exp, "--out", exp / "fusion" / "x", "--sets", "dev", "--systems"]
    line = error_line(capsys, sasv(*fuse, name, name))
    assert "--systems lists a system twice" in line
    line = error_line(capsys, sasv(*fuse, name, "absent/tiny_aasist/nonorm"))
    assert "absent/tiny_aasist/nonorm/scores_dev.txt not found" in line
    other = exp / "other" / "tiny_aasist" / "nonorm"
    other.mkdir(parents=True)
    (other / "scores_dev.txt").write_text("".join(good.splitlines(keepends=True)[1:]))
    line = error_line(capsys, sasv(*fuse, name, "other/tiny_aasist/nonorm"))
    assert "other/tiny_aasist/nonorm/scores_dev.txt has" in line and "trials" in line

    line = error_line(capsys, sasv("make_summary", "--exp_dir", exp, "--asv_confs", tmp_path / "absent.yaml"))
    assert f"conf file {tmp_path / 'absent.yaml'} does not exist" in line
    old = exp / "fusion" / "logreg_nonorm" / "results.json"  # a record of the recipe before `variant`
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"system": "fusion/logreg_nonorm", "norm": "fused", "results": {}}))
    line = error_line(capsys, sasv("make_summary", "--exp_dir", exp))
    assert f"ERROR: {old}: written by an older version of the recipe" in line

    line = error_line(capsys, sasv("compute_metrics", tmp_path / "absent.txt"))
    assert line == f"ERROR: {tmp_path / 'absent.txt'}: No such file or directory"
    bad = tmp_path / "bad.txt"
    bad.write_text("LA_0001 LA_E_1 bonafide target\n")
    line = error_line(capsys, sasv("compute_metrics", bad))
    assert f"ERROR: {bad}:1: expected 5 fields" in line


def test_inputs_that_would_give_silently_wrong_numbers(work, tmp_path, capsys) -> None:
    """A score file listing a trial twice, an AS-norm top-K that cannot work, a fusion of systems whose
    records disagree about a model they share: one ERROR line each (issue 26)."""
    data, exp = copy_exp(work, tmp_path)
    line = error_line(capsys, sasv(*scoring_args(work, data, exp), "--score_norm", "asnorm", "--top_k", "0"))
    assert line.startswith("ERROR: --top_k 0: AS-norm averages the K highest cohort scores")

    system = exp / "tiny_ecapa" / "tiny_aasist" / "nonorm"
    submission = system / "scores_dev.sasv.txt"
    first = submission.read_text().splitlines()[0]
    submission.write_text(submission.read_text() + first + "\n")
    line = error_line(capsys, sasv("compute_metrics", submission))
    n = len(submission.read_text().splitlines())
    assert line.startswith(
        f"ERROR: {submission}:{n}: trial {' '.join(first.split()[:2])} is listed twice (lines 1, {n})"
    )

    other = exp / "other" / "tiny_aasist" / "nonorm"
    shutil.copytree(system, other)
    record = json.loads((other / "results.json").read_text())
    record["models"][1]["checkpoint_sha256"] = "f" * 64  # the CM re-run with weights under the same name
    (other / "results.json").write_text(json.dumps(record))
    fuse = ["fuse_systems", "--exp_dir", exp, "--out", exp / "fusion" / "x", "--sets", "dev", "--systems"]
    line = error_line(capsys, sasv(*fuse, "tiny_ecapa/tiny_aasist/nonorm", "other/tiny_aasist/nonorm"))
    assert line.startswith(
        f"ERROR: {exp}: the systems to fuse were not made from the same inputs: model tiny_aasist:"
    )
    assert not (exp / "fusion" / "x").exists()


def test_train_asv_errors(work, tmp_path, capsys) -> None:
    train = ["train_asv", "--model_conf", work / ASV, "--out", tmp_path / "out", "--device", "cpu"]
    bad_conf = tmp_path / "train.yaml"
    bad_conf.write_text("epochs: 2\nbatchsize: 8\n")
    line = error_line(capsys, sasv(*train, "--train_conf", bad_conf, "--train_set", work / "data" / "dev"))
    assert line.startswith(f"ERROR: {bad_conf}: train.batchsize: unknown key")
    bad_conf.write_text("epochs: 2\nwarmup_epochs: 1\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    line = error_line(capsys, sasv(*train, "--train_conf", bad_conf, "--train_set", empty))
    assert line == f"ERROR: {empty / 'wav.scp'}: file does not exist"
    line = error_line(capsys, sasv(*train[:2], work / CM, *train[3:], "--train_conf", bad_conf,
                                   "--train_set", empty))  # fmt: skip
    assert "a CM conf; this trains ASV models" in line


def test_train_cm_errors(work, tmp_path, capsys) -> None:
    """A dev set without labels, labels other than bonafide/spoof, an ASV conf, a bad class weight."""
    conf = tmp_path / "train.yaml"
    conf.write_text("epochs: 1\nbatch_size: 4\ncrop_samples: 8000\n")
    train = ["train_cm", "--model_conf", work / CM, "--train_conf", conf, "--out", tmp_path / "out",
             "--device", "cpu", "--dev_set", work / "data" / "dev"]  # fmt: skip
    labelled = tmp_path / "labelled"
    shutil.copytree(work / "data" / "dev", labelled)
    utts = [line.split()[0] for line in (labelled / "wav.scp").read_text().splitlines()]
    (labelled / "utt2spf").write_text("".join(f"{u} genuine\n" for u in utts))
    line = error_line(capsys, sasv(*train, "--train_set", labelled))
    assert line.startswith(
        f"ERROR: {labelled}/utt2spf: unknown label 'genuine'; expected one of spoof, bonafide"
    )
    line = error_line(capsys, sasv(*train, "--train_set", work / "data" / "dev"))
    assert line == f"ERROR: {work / 'data' / 'dev' / 'utt2spf'}: file does not exist"
    line = error_line(capsys, sasv(*train[:2], work / ASV, *train[3:], "--train_set", labelled))
    assert "an ASV conf; this trains CM models" in line
    conf.write_text("epochs: 1\nclass_weights: {spoof: 0.1, bona_fide: 0.9}\n")
    line = error_line(capsys, sasv(*train, "--train_set", labelled))
    assert line.startswith(f"ERROR: {conf}: train.class_weights: positive weights of exactly spoof, bonafide")


def test_layout_query_errors(tmp_path, capsys) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({**TINY_ECAPA, "name": "logs"}))
    argv = ["system_dir", "--asv_conf", str(conf), "--cm_conf", str(conf), "--norm", "nonorm"]
    line = error_line(capsys, sasv("exp_path", *argv))
    assert f"ERROR: {conf}: name 'logs' is reserved" in line


def test_run_jobs_errors(tmp_path, capsys) -> None:
    """What utils/run.sh runs: a malformed task range, and tasks that fail, are one line each."""
    line = error_line(capsys, sasv("run_jobs", "local", "JOB=3:1", tmp_path / "x.JOB.log", "true"))
    assert "JOB=3:1" in line
    line = error_line(capsys, sasv("run_jobs", "local", "JOB=1:2", tmp_path / "y.JOB.log", "false"))
    assert line.startswith("ERROR: ") and "y.1.log" in line


def test_training_downloads_errors(capsys) -> None:
    line = error_line(capsys, sasv("training_downloads", "vox3"))
    assert line.startswith("ERROR: unknown corpus 'vox3'")


def test_corpus_errors(capsys) -> None:
    """What utils/corpus.sh asks: an unknown corpus, and options a corpus cannot honour, one line each."""
    line = error_line(capsys, sasv("corpus", "title", "--corpus", "vox"))
    assert line.startswith("ERROR: --corpus must be la") and line.endswith(", got 'vox'")
    line = error_line(capsys, sasv("corpus", "check", "--corpus", "asvspoof5", "--caller", "run_x.sh"))
    assert line.startswith("ERROR: run_x.sh: --corpus asvspoof5 needs --root (the ASVspoof 5 folder")
    argv = ["corpus", "check", "--corpus", "asvspoof5", "--root", "R", "--download", "true"]
    line = error_line(capsys, sasv(*argv))
    assert line == "ERROR: --download true: stage 0 cannot download ASVspoof 5 Track 2; get it by hand"
    argv = ["corpus", "check", "--corpus", "asvspoof5", "--root", "R", "--set_options", "trials_dir"]
    line = error_line(capsys, sasv(*argv))
    assert line == "ERROR: --trials_dir is not an option of --corpus asvspoof5: it would be ignored"


def test_every_tool_is_covered() -> None:
    """A new tool must get its error paths here."""
    source = Path(__file__).read_text()
    assert all(f'"{name}"' in source for name in TOOLS)


# ------------------------------------------------------------------------------------------- interrupts


def test_interrupt_is_one_line_and_exit_130(tmp_path) -> None:
    """Ctrl-C (SIGINT) in the middle of real work: one ERROR line, exit status 130, no traceback."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = tmp_path / "big"
    cmd = [*tool("make_mini_corpus"), "--out", str(out), "--speakers", "40", "--bonafide_per_spk", "20"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint
    )
    deadline = time.monotonic() + 60
    while not (out / "LA").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the corpus finished before it could be interrupted: make it bigger"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("ERROR:")] == [
        "ERROR: interrupted (Ctrl-C); re-run the same command to resume"
    ]


def test_runner_contract_for_unexpected_errors(capsys) -> None:
    """A bug keeps its traceback (it is not turned into a plausible one-line message)."""

    def buggy(argv: object) -> int:
        raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError):
        run_cli(buggy, [])


def _interrupting(argv: object) -> Callable[[], int]:
    raise KeyboardInterrupt


def test_runner_interrupt_and_debug(capsys, monkeypatch) -> None:
    assert "interrupted" in error_line(capsys, run_cli(_interrupting, []), expected=130)
    monkeypatch.setenv("SASV_DEBUG", "1")
    with pytest.raises(KeyboardInterrupt):
        run_cli(_interrupting, [])


def test_dispatcher_usage(capsys) -> None:
    assert sasv_main([]) == 2 and "tools:" in capsys.readouterr().out
    assert sasv_main(["--help"]) == 0
    assert sasv_main(["no_such_tool"]) == 2 and "unknown tool" in capsys.readouterr().err
    assert sys.modules.get("sasv.bin.no_such_tool") is None
