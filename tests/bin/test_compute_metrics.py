import json
import subprocess

import numpy as np
import pytest

from sasv.metrics.eer import sasv_eers
from tests.conftest import REPO_ROOT, tool

SCRIPT = tool("compute_metrics")


def run(*args, cwd=REPO_ROOT):
    return subprocess.run([*SCRIPT, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def write_submission(path, keys, scores):
    lines = [
        f"LA_{i % 5:04d} LA_E_{i:07d} {'A10' if k == 'spoof' else 'bonafide'} {k} {s!r}\n"
        for i, (k, s) in enumerate(zip(keys, scores, strict=True))
    ]
    path.write_text("".join(lines))


def test_generated_file(tmp_path):
    rng = np.random.default_rng(0)
    keys = np.array(["target", "nontarget", "spoof"])[rng.integers(0, 3, 600)]
    scores = rng.normal(size=600) + (keys == "target")
    path = tmp_path / "scores.txt"
    write_submission(path, keys.tolist(), scores.tolist())
    proc = run(path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    expected = sasv_eers(scores, keys)
    for name, value in expected.items():
        assert result[name] == pytest.approx(100 * value, abs=1e-12)
    assert result["counts"] == {k: int((keys == k).sum()) for k in ("target", "nontarget", "spoof")} | {
        "total": 600
    }


def test_golden_through_the_script(tmp_path, golden):
    expected = json.loads(golden("metrics/expected.json").read_text())
    trials = golden("metrics/trials.txt").read_text().splitlines()
    scores = golden("metrics/scores.txt").read_text().splitlines()
    lines = [f"{t} {s.split()[2]}\n" for t, s in zip(trials, scores, strict=True)]
    path = tmp_path / "golden_submission.txt"
    path.write_text("".join(lines))
    proc = run(path, cwd=tmp_path)  # works from any directory, without PYTHONPATH
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for name in ("sasv_eer", "sv_eer", "spf_eer"):
        assert abs(result[name] - 100 * expected[name]) < 1e-7
    assert result["counts"]["total"] == 3000


def test_missing_class_is_null(tmp_path):
    path = tmp_path / "no_spoof.txt"
    write_submission(path, ["target", "nontarget", "target"], [0.9, 0.1, 0.8])
    result = json.loads(run(path).stdout)
    assert result["sasv_eer"] is None and result["spf_eer"] is None and result["sv_eer"] == 0.0


def test_bad_line_exits_1_naming_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("LA_0001 LA_E_1 bonafide target 0.5\nLA_0001 LA_E_2 bonafide target\n")
    proc = run(path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1
    assert f"{path}:2:" in message and "expected 5 fields" in message


def test_missing_file_and_help(tmp_path):
    proc = run(tmp_path / "absent.txt")
    assert proc.returncode == 1 and "absent.txt" in proc.stderr and "Traceback" not in proc.stderr
    help_proc = run("--help")
    assert help_proc.returncode == 0 and "SCORE_FILE" in help_proc.stdout


def test_detection_costs_in_the_json(tmp_path, golden):
    expected = json.loads(golden("metrics/expected.json").read_text())["a_dcf"]
    trials = golden("metrics/trials.txt").read_text().splitlines()
    scores = golden("metrics/scores.txt").read_text().splitlines()
    path = tmp_path / "golden_submission.txt"
    path.write_text("".join(f"{t} {s.split()[2]}\n" for t, s in zip(trials, scores, strict=True)))
    result = json.loads(run(path).stdout)
    assert abs(result["min_a_dcf[paper]"] - expected["min_a_dcf"]) <= 1e-12
    assert result["min_a_dcf_threshold[paper]"] == expected["min_a_dcf_thresh"]
    assert "min_a_dcf[sasv2024]" not in result
    both = json.loads(run(path, "--a_dcf_cost", "paper", "sasv2024").stdout)
    assert both["min_a_dcf[paper]"] == result["min_a_dcf[paper]"]
    assert 0.0 < both["min_a_dcf[sasv2024]"] != result["min_a_dcf[paper]"]
    assert 0.0 < result["min_dcf_0.01"] <= 1.0 and 0.0 < result["min_dcf_0.05"] <= 1.0
    assert {"sasv_eer", "sv_eer", "spf_eer", "counts"} <= set(result)


def test_detection_costs_null_without_spoofs(tmp_path):
    path = tmp_path / "no_spoof.txt"
    write_submission(path, ["target", "nontarget", "target"], [0.9, 0.1, 0.8])
    result = json.loads(run(path).stdout)
    assert result["min_a_dcf[paper]"] is None and result["min_a_dcf_threshold[paper]"] is None
    assert result["min_dcf_0.01"] == 0.0 and result["min_dcf_0.05"] == 0.0


def test_key_and_score_columns_give_the_full_reader_s_record(tmp_path):
    """compute_metrics reads only KEY and SCORE: its record equals metrics_record of the fully read file
    (every value, ties included: scores rounded to one decimal)."""
    from sasv.bin.compute_metrics import metrics_of_file
    from sasv.reports.records import MetricChoice, metrics_record
    from sasv.scoring.score_files import read_submission_scores

    rng = np.random.default_rng(3)
    keys = np.array(["target", "nontarget", "spoof"])[rng.integers(0, 3, 2000)]
    scores = np.round(rng.normal(size=2000) + (keys == "target"), 1)
    path = tmp_path / "ties.txt"
    write_submission(path, keys.tolist(), scores.tolist())
    choice = MetricChoice(("paper", "sasv2024"))
    full = metrics_record(read_submission_scores(path), extended=False, choice=choice)
    for name in ("sasv_eer", "sv_eer", "spf_eer"):
        full[name] *= 100.0
    assert metrics_of_file(str(path), ("paper", "sasv2024")) == full
    assert full["min_a_dcf[sasv2024]"] is not None and len(full) == 4 + 4 + 4  # EERs, counts; a-DCFs; minDCFs


def test_a_trial_listed_twice_exits_1_naming_both_lines(tmp_path):
    """A repeated line is not a second trial (here it would move the SASV-EER from 33.33 % to 25 %), and
    one trial with two scores has no single metric: both are one ERROR line naming the lines."""
    lines = [
        "LA_0001 LA_E_1 bonafide target 0.0",
        "LA_0001 LA_E_2 bonafide target 0.4",
        "LA_0001 LA_E_3 bonafide target 0.5",
        "LA_0002 LA_E_1 bonafide nontarget 0.1",
        "LA_0002 LA_E_4 bonafide nontarget 0.2",
        "LA_0001 LA_E_5 A07 spoof 0.3",
    ]
    path = tmp_path / "scores.txt"
    path.write_text("\n".join(lines) + "\n")
    proc = run(path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["sasv_eer"] == pytest.approx(100 / 3)
    for extra, problem in (
        (lines[1], "a repeated line would count twice in every metric"),
        (lines[1][:-1] + "9", "with different SCORE (0.4, 0.9): a trial has one score"),
    ):
        path.write_text("\n".join([*lines, extra]) + "\n")
        proc = run(path)
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.strip() == (
            f"ERROR: {path}:7: trial LA_0001 LA_E_2 is listed twice (lines 2, 7)"
            + (": " if problem.startswith("a ") else " ")
            + problem
        )


def test_every_null_says_why_in_notes(tmp_path):
    """A null is never left unexplained: SASV 2022 files name the class they lack, and nothing else."""
    path = tmp_path / "no_spoof.txt"
    write_submission(path, ["target", "nontarget", "target"], [0.9, 0.1, 0.8])
    result = json.loads(run(path, "--a_dcf_cost", "paper", "sasv2024").stdout)
    nulls = {key for key, value in result.items() if value is None}
    assert nulls == set(result["notes"]) and {"sasv_eer", "spf_eer", "min_a_dcf[sasv2024]"} <= nulls
    assert result["notes"]["spf_eer"] == "no spoof trials; it needs target, spoof trials"
    assert result["notes"]["min_a_dcf[paper]"] == "no spoof trials; it needs target, nontarget, spoof trials"
    path = tmp_path / "no_target.txt"
    write_submission(path, ["spoof", "nontarget"], [0.9, 0.1])
    notes = json.loads(run(path).stdout)["notes"]
    assert notes["min_dcf_0.01"] == "no target trials; it needs target, nontarget trials"
    assert notes["sasv_eer"] == "no target trials; it needs target, nontarget, spoof trials"
    path = tmp_path / "all.txt"
    write_submission(path, ["target", "nontarget", "spoof"], [0.9, 0.1, 0.2])
    assert json.loads(run(path).stdout)["notes"] == {}


def test_a_dash_in_a_track2_submission_is_named_in_the_notes(tmp_path):
    """One '-' score nulls the metrics that read its column for the whole file; the notes say which column
    and how many trials, and the metrics of the other columns stay."""
    from sasv.scoring.track2_files import write_keys
    from sasv.scoring.track2_files import write_submission as write_track2

    rng = np.random.default_rng(5)
    keys = np.array(["target", "nontarget", "spoof"])[np.arange(90) % 3]
    cm, asv = rng.normal(size=90) + (keys != "spoof"), rng.normal(size=90) + (keys == "target")
    names = [(f"E_{i % 4:04d}", f"E_{i:010d}") for i in range(90)]
    rows = [(*n, c, a, c + a) for n, c, a in zip(names, cm.tolist(), asv.tolist(), strict=True)]
    rows[7] = (*rows[7][:2], None, *rows[7][3:])  # '-' as one cm-score
    scores, key_file = tmp_path / "scores.tsv", tmp_path / "keys.tsv"
    write_track2(scores, rows)
    write_keys(key_file, [(*n, k) for n, k in zip(names, keys.tolist(), strict=True)])
    result = json.loads(run(scores, "--keys", key_file).stdout)
    assert result["min_t_dcf"] is None and result["t_eer"] is None and result["min_a_dcf"] is not None
    why = "cm-score is '-' on 1 of 90 trials: the metric needs the score of every trial"
    assert result["notes"] == {"min_t_dcf": why, "t_eer": why}


def test_track1_nulls_say_why(tmp_path):
    from sasv.scoring.track1_files import write_track1

    utts = [f"E_{i:010d}" for i in range(6)]
    is_spoof = [False, False, False, True, True, False]
    attacks = ["bonafide", "bonafide", "bonafide", "A11", "A12", "bonafide"]
    codecs = ["-", "C01", "-", "-", "C01", "-"]
    scores, keys = tmp_path / "scores.tsv", tmp_path / "keys.tsv"
    write_track1(scores, keys, utts, [0.5, 0.1, 0.2, -1.0, -0.3, 0.9], is_spoof, attacks, codecs)
    result = json.loads(run(scores, "--keys", keys, "--track", "1").stdout)
    assert result["eer"] is not None and set(result["notes"]) == {"breakdown"}
    assert any(cell is None for row in result["breakdown"]["eer"] for cell in row)
    write_track1(scores, keys, utts, [0.5] * 6, [False] * 6, ["bonafide"] * 6)
    result = json.loads(run(scores, "--keys", keys, "--track", "1").stdout)
    notes = result["notes"]
    assert set(notes) == {"min_dcf", "eer", "cllr", "act_dcf", "breakdown"}
    assert notes["eer"] == "no spoof files; it needs bonafide, spoof files"
