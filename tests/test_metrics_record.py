import json

import numpy as np
import pytest

from sasv.detection_costs import detection_costs
from sasv.metrics import cm_eer, compute_eer
from sasv.metrics_record import attack_breakdown, extended_metrics
from sasv.score_files import TrialScores
from tests.synthetic_scores import EVAL_ATTACKS, make_trials


def test_extended_metrics_keys_and_values():
    trials = make_trials(seed=3, attacks=EVAL_ATTACKS)
    result = extended_metrics(trials)
    assert set(result) == {
        "min_a_dcf",
        "min_a_dcf_threshold",
        "min_dcf_0.01",
        "min_dcf_0.05",
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
    result = extended_metrics(submission)
    assert result["cm_eer"] is None and result["min_a_dcf"] == pytest.approx(
        extended_metrics(trials)["min_a_dcf"]
    )
    assert np.isfinite(result["min_dcf_0.01"])
