import json
import subprocess

import numpy as np
import pytest

from sasv.metrics import sasv_eers
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
    from sasv.metrics_record import MetricChoice, metrics_record
    from sasv.score_files import read_submission_scores

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
