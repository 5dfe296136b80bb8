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


def test_a_fusion_is_analysed_without_tandem_metrics_as_its_results_say(tmp_path):
    """A learned fusion's asv and cm columns are parts of one LLR, not two systems: fuse_systems records
    min t-DCF and t-EER as None, and analyse_system must say the same (it computed them from the parts)."""
    from sasv.exp_layout import FUSED_VARIANT
    from sasv.reports.records import BENCHMARK_METRICS, fusion_metrics_record

    choice = BENCHMARK_METRICS["asvspoof5"]
    fusion = tmp_path / "exp" / "fusion" / "logreg_l2norm"
    trials = {"dev": make_trials(seed=1), "eval": make_trials(seed=2, attacks=EVAL_ATTACKS)}
    for set_name, t in trials.items():
        write_score_file(fusion / f"scores_{set_name}.txt", t)
    results = {s: fusion_metrics_record(t, choice, extended=False) for s, t in trials.items()}
    record = {"variant": FUSED_VARIANT, "metrics": choice.to_dict(), "results": results}
    (fusion / "results.json").write_text(json.dumps(record))
    proc = subprocess.run(
        [*SCRIPT, "--system_dir", str(fusion), "--plots", "false"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    analysis = json.loads((fusion / "analysis.json").read_text())["results"]
    for set_name in trials:
        assert analysis[set_name]["min_t_dcf"] is None and analysis[set_name]["t_eer"] is None
        assert results[set_name]["min_t_dcf"] is None
        assert "track2_by_attack_codec" not in analysis[set_name]
        assert analysis[set_name]["min_a_dcf[sasv2024]"] == results[set_name]["min_a_dcf[sasv2024]"]
