import json
import subprocess

from sasv.reports.records import metrics_record
from sasv.scoring.score_files import write_score_file
from tests.conftest import tool
from tests.synthetic_scores import EVAL_ATTACKS, make_trials

SCRIPT = tool("analyse_system")


def test_analysis_files(tmp_path):
    system = tmp_path / "exp" / "tiny_aasist" / "nonorm"
    trials = {"dev": make_trials(seed=1), "eval": make_trials(seed=2, attacks=EVAL_ATTACKS)}
    for set_name, t in trials.items():
        write_score_file(system / f"scores_{set_name}.txt", t)
    (system / "results.json").write_text(json.dumps({"note": "RANDOMLY INITIALISED"}))
    proc = subprocess.run(
        [*SCRIPT, "--system_dir", str(system)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((system / "analysis.json").read_text())
    expected = json.loads(json.dumps(metrics_record(trials["eval"])))
    assert {k: record["results"]["eval"][k] for k in expected} == expected
    md = (system / "analysis.md").read_text()
    assert "RANDOMLY INITIALISED" in md and "| A17 | n/a |" in md and "a-DCF" in md
    for name in ("det_dev.png", "det_eval.png", "hist_dev.png", "hist_eval.png"):
        assert (system / name).stat().st_size > 10_000


def test_missing_scores_exit_1(tmp_path):
    proc = subprocess.run(
        [*SCRIPT, "--system_dir", str(tmp_path), "--plots", "false"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "scores_dev.txt not found" in proc.stderr
