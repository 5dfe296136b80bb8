import json

import numpy as np
import pytest

from sasv.corpora.registry import CORPORA
from sasv.metrics.detection_costs import detection_costs
from sasv.metrics.eer import cm_eer, compute_eer
from sasv.metrics.tandem import min_t_dcf, t_eer
from sasv.reports.records import (
    BENCHMARK_METRICS,
    BENCHMARK_TITLES,
    MetricChoice,
    attack_breakdown,
    metric_choice,
    metrics_record,
)
from sasv.scoring.score_files import TrialScores
from tests.synthetic_scores import EVAL_ATTACKS, make_trials


def test_metrics_record_keys_and_values():
    trials = make_trials(seed=3, attacks=EVAL_ATTACKS)
    result = metrics_record(trials)
    assert set(result) == {
        "sasv_eer",
        "sv_eer",
        "spf_eer",
        "counts",
        "min_a_dcf[paper]",
        "min_a_dcf_threshold[paper]",
        "min_dcf_0.01",
        "min_dcf_threshold_0.01",
        "min_dcf_0.05",
        "min_dcf_threshold_0.05",
        "cm_eer",
        "spf_eer_by_attack",
    }
    costs = detection_costs(trials.fused, trials.key)
    assert {k: result[k] for k in costs} == costs
    assert result["cm_eer"] == cm_eer(trials.utt, trials.key, trials.cm)
    assert list(result["spf_eer_by_attack"]) == sorted(EVAL_ATTACKS)
    json.dumps(result)  # goes into results.json as it is


def test_attack_breakdown_uses_the_fused_score():
    trials = make_trials(seed=5, attacks=("A10", "A11"))
    breakdown = attack_breakdown(trials)
    tar = trials.fused[trials.key == "target"]
    for attack in ("A10", "A11"):
        spoof = trials.fused[(trials.key == "spoof") & (trials.attack == attack)]
        assert breakdown[attack] == compute_eer(tar, spoof)


def test_submission_scores_have_no_cm_eer():
    trials = make_trials(seed=6)
    submission = TrialScores(
        spk=trials.spk, utt=trials.utt, attack=trials.attack, key=trials.key, fused=trials.fused
    )
    result = metrics_record(submission)
    assert result["cm_eer"] is None and result["min_a_dcf[paper]"] == pytest.approx(
        metrics_record(trials)["min_a_dcf[paper]"]
    )
    assert np.isfinite(result["min_dcf_0.01"])


def test_asvspoof5_records_carry_the_official_metrics():
    """The ASVspoof 5 choice: a-DCF under the sasv2024 cost model and the tandem metrics of the separate
    ASV and CM scores, per trial (as the organisers' scorer reads a submission); no paper a-DCF."""
    trials = make_trials(seed=8, attacks=EVAL_ATTACKS)
    record = metrics_record(trials, choice=BENCHMARK_METRICS["asvspoof5"])
    assert "min_a_dcf[paper]" not in record and record["min_a_dcf[sasv2024]"] is not None
    key, asv, cm = trials.key, trials.asv, trials.cm
    assert record["min_t_dcf"] == min_t_dcf(cm[key != "spoof"], cm[key == "spoof"])
    by_key = [(asv[key == k], cm[key == k]) for k in ("target", "nontarget", "spoof")]
    assert record["t_eer"] == t_eer(*(a for a, _ in by_key), *(c for _, c in by_key))
    assert 0 < record["t_eer"] < 0.5 and 0 < record["min_t_dcf"] < 1
    la = metrics_record(trials)
    assert "min_t_dcf" not in la and "min_a_dcf[sasv2024]" not in la
    submission = TrialScores(
        spk=trials.spk, utt=trials.utt, attack=trials.attack, key=key, fused=trials.fused
    )
    no_parts = metrics_record(submission, choice=BENCHMARK_METRICS["asvspoof5"])
    assert no_parts["min_t_dcf"] is None and no_parts["t_eer"] is None


def test_metric_choices_by_benchmark_and_in_records():
    assert set(BENCHMARK_TITLES) == set(CORPORA)
    # a countermeasure benchmark (ASVspoof 2021) has no SASV scoring: no metric choice
    assert (
        set(BENCHMARK_METRICS)
        == {name for name, c in CORPORA.items() if not c.cm_only}
        >= {"la", "asvspoof5"}
    )
    assert metric_choice("la") == MetricChoice(("paper",), tandem=False)
    both = metric_choice("la", ["paper", "sasv2024", "paper"])
    assert both == MetricChoice(("paper", "sasv2024"), tandem=False)
    asvspoof5 = metric_choice("asvspoof5", ["paper"])
    assert asvspoof5 == MetricChoice(("paper",), tandem=True, track1=True)
    assert MetricChoice.from_record({"metrics": both.to_dict()}) == both
    assert MetricChoice.from_record({"metrics": asvspoof5.to_dict()}) == asvspoof5
    assert MetricChoice.from_record({}) == BENCHMARK_METRICS["la"]  # a record from before the choice
    with pytest.raises(ValueError, match="'nist'"):
        MetricChoice(("nist",))
