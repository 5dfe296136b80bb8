"""Detection costs (sasv.metrics.detection_costs): min a-DCF bit-exact to its authors' code, minDCF, no
class."""

import json
import time

import numpy as np
import pytest

from sasv.metrics.detection_costs import (
    A_DCF_COST_MODELS,
    DEFAULT_A_DCF_COST,
    ADCFCostModel,
    a_dcf_key,
    a_dcf_threshold_key,
    detection_costs,
    min_a_dcf,
    min_dcf,
)
from tests.metrics.test_eer import read_golden_scores


def official_style_a_dcf(scores, keys, cost=DEFAULT_A_DCF_COST):
    """The a-DCF walk as its authors define it: visit the trials one by one in ascending (stable) score
    order, each one moving from accepted to rejected, and take the first minimum. Written from the
    definition here, as an independent loop (slow, fine for small tests)."""
    scores, keys = np.asarray(scores, dtype=float), np.asarray(keys)
    groups = [scores[keys == k] for k in ("target", "nontarget", "spoof")]
    walk_scores = np.concatenate(groups)
    walk_labels = np.concatenate([np.full(g.size, i) for i, g in enumerate(groups)])
    order = np.argsort(walk_scores, kind="mergesort")
    n_tar, n_non, n_spf = (g.size for g in groups)
    miss, fa_non, fa_spf = 0, n_non, n_spf
    best = None
    states = [(0, n_non, n_spf, float(walk_scores.min()) - 1e-8)]
    for index in order:
        label = walk_labels[index]
        miss += label == 0
        fa_non -= label == 1
        fa_spf -= label == 2
        states.append((miss, fa_non, fa_spf, float(walk_scores[index])))
    norm = min(cost.c_fa_asv * cost.p_nontarget + cost.c_fa_cm * cost.p_spoof, cost.c_miss * cost.p_target)
    for miss, fa_non, fa_spf, thresh in states:
        value = (
            cost.c_miss * cost.p_target * (miss / n_tar)
            + cost.c_fa_asv * cost.p_nontarget * (fa_non / n_non)
            + cost.c_fa_cm * cost.p_spoof * (fa_spf / n_spf)
        ) / norm
        if best is None or value < best[0]:
            best = (value, thresh)
    return best


def brute_force_min_dcf(scores, keys, p_target):
    scores, keys = np.asarray(scores, dtype=float), np.asarray(keys)
    tar, non = scores[keys == "target"], scores[keys == "nontarget"]
    best = np.inf
    for t in np.r_[-np.inf, np.unique(scores)]:
        dcf = p_target * np.mean(tar <= t) + (1 - p_target) * np.mean(non > t)
        best = min(best, dcf / min(p_target, 1 - p_target))
    return best


def test_golden_min_a_dcf(golden):
    scores, keys, _ = read_golden_scores(golden("metrics/scores.txt"))
    expected = json.loads(golden("metrics/expected.json").read_text())["a_dcf"]
    result = min_a_dcf(scores, keys)
    assert abs(result.value - expected["min_a_dcf"]) <= 1e-12
    assert result.threshold == expected["min_a_dcf_thresh"]
    costs = detection_costs(scores, keys)
    assert (
        costs["min_a_dcf[paper]"] == result.value and costs["min_a_dcf_threshold[paper]"] == result.threshold
    )


@pytest.mark.parametrize("seed", range(4))
def test_a_dcf_equals_the_trial_by_trial_walk_with_ties(seed):
    rng = np.random.default_rng(200 + seed)
    for _ in range(10):
        n = int(rng.integers(3, 120))
        keys = np.array(["target", "nontarget", "spoof"])[np.r_[0, 1, 2, rng.integers(0, 3, n - 3)]]
        scores = np.round(rng.normal(size=n) + 1.5 * (keys == "target"), int(rng.integers(0, 2)))
        value, thresh = official_style_a_dcf(scores, keys)
        result = min_a_dcf(scores, keys)
        assert result.value == value and result.threshold == thresh


@pytest.mark.parametrize("p_target", [0.01, 0.05, 0.5, 0.9])
def test_min_dcf_against_brute_force(p_target):
    rng = np.random.default_rng(9)
    keys = np.array(["target", "nontarget", "spoof"])[rng.integers(0, 3, 700)]
    scores = np.round(rng.normal(size=700) + 2.0 * (keys == "target"), 1)
    result = min_dcf(scores, keys, p_target)
    assert result.value == pytest.approx(brute_force_min_dcf(scores, keys, p_target), abs=1e-12)
    # spoofs do not enter the SV cost
    sv = keys != "spoof"
    assert min_dcf(scores[sv], keys[sv], p_target).value == pytest.approx(result.value, abs=1e-12)


def test_detection_costs_keys_and_missing_classes():
    costs = detection_costs([0.9, 0.1, 0.2], ["target", "nontarget", "spoof"])
    assert list(costs) == [
        "min_a_dcf[paper]",
        "min_a_dcf_threshold[paper]",
        "min_dcf_0.01",
        "min_dcf_threshold_0.01",
        "min_dcf_0.05",
        "min_dcf_threshold_0.05",
    ]
    assert costs["min_a_dcf[paper]"] == 0.0 and costs["min_dcf_0.01"] == 0.0
    no_spoof = detection_costs([0.9, 0.1], ["target", "nontarget"])
    assert no_spoof["min_a_dcf[paper]"] is None and no_spoof["min_a_dcf_threshold[paper]"] is None
    assert no_spoof["min_dcf_0.05"] == 0.0
    assert min_a_dcf([0.9, 0.1], ["target", "nontarget"]) is None
    assert all(v is None for v in detection_costs([0.2], ["spoof"]).values())
    assert all(v is None for v in detection_costs([], []).values())
    # a useless system costs exactly the better trivial system: normalised cost 1
    assert min_dcf([0.5, 0.5], ["target", "nontarget"], 0.01).value == pytest.approx(1.0)
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="p_target"):
            min_dcf([0.5], ["target"], bad)
    assert min_dcf([0.9, 0.1], ["target", "target"], 0.01) is None  # no nontarget trial
    assert min_dcf([0.9, 0.1], ["nontarget", "spoof"], 0.01) is None  # no target trial
    with pytest.raises(ValueError, match="NaN"):
        detection_costs([np.nan, 0.1], ["target", "spoof"])


def test_a_dcf_cost_model_normaliser():
    assert DEFAULT_A_DCF_COST.normaliser() == pytest.approx(0.9)
    cheap_spoofs = ADCFCostModel(c_fa_asv=1, c_fa_cm=1)
    assert cheap_spoofs.normaliser() == pytest.approx(0.1)


def test_min_a_dcf_on_a_million_trials_is_fast():
    rng = np.random.default_rng(1)
    keys = np.array(["target", "nontarget", "spoof"])[rng.integers(0, 3, 1_000_000)]
    scores = rng.normal(size=keys.size) + (keys == "target")
    start = time.perf_counter()
    min_a_dcf(scores, keys)
    assert time.perf_counter() - start < 5.0  # ~0.15 s measured; generous for a loaded shared machine


# -------------------------------------------------------------------------------- CM and per-attack EERs


def test_detection_costs_under_each_named_cost_model():
    """Both cost models from one call, each equal to min_a_dcf with that model's parameters; they differ on
    a system whose spoof false alarms cost differently under the two (Cfa_cm 20 vs 10, Pspf the same)."""
    rng = np.random.default_rng(12)
    keys = np.array(["target", "nontarget", "spoof"])[np.r_[0, 1, 2, rng.integers(0, 3, 400)]]
    scores = rng.normal(size=keys.size) + 1.0 * (keys == "target") + 0.8 * (keys == "spoof")
    costs = detection_costs(scores, keys, ("paper", "sasv2024"))
    for model in ("paper", "sasv2024"):
        expected = min_a_dcf(scores, keys, A_DCF_COST_MODELS[model])
        assert costs[a_dcf_key(model)] == expected.value
        assert costs[a_dcf_threshold_key(model)] == expected.threshold
    assert costs[a_dcf_key("paper")] != costs[a_dcf_key("sasv2024")]
    assert list(detection_costs(scores, keys, ("sasv2024",)))[:2] == [
        "min_a_dcf[sasv2024]",
        "min_a_dcf_threshold[sasv2024]",
    ]
    with pytest.raises(ValueError, match="unknown a-DCF cost model 'nist'"):
        detection_costs(scores, keys, ("nist",))


@pytest.mark.parametrize("decimals", [None, 1])
def test_both_cost_models_equal_the_a_dcf_authors_package(tmp_path, monkeypatch, decimals):
    """Both named cost models against ``calculate_a_dcf`` of the a-DCF authors' PyPI package (a-dcf 0.0.4,
    shimhz/a_DCF; a dev dependency) with the published parameters: the package's defaults (the paper's) and
    the ASVspoof 5 evaluation package's (Ptar 0.9405, Pnon 0.0095, Pspf 0.05, Cfa_cm 10). With and without
    tied scores."""
    package = pytest.importorskip("a_dcf.a_dcf", reason="the a-dcf package is not installed (dev extra)")
    monkeypatch.setattr(np, "float", float, raising=False)  # the package predates numpy 1.24's removal
    rng = np.random.default_rng(31)
    keys = np.array(["target", "nontarget", "spoof"])[np.r_[0, 1, 2, rng.integers(0, 3, 500)]]
    scores = rng.normal(size=keys.size) + 1.5 * (keys == "target") + 0.7 * (keys == "spoof")
    if decimals is not None:
        scores = np.round(scores, decimals)
    path = tmp_path / "sasv_scores.txt"
    path.write_text("".join(f"spk utt {s!r} {k}\n" for s, k in zip(scores.tolist(), keys, strict=True)))
    official = {
        "paper": package.CostModel(),  # the package's defaults
        "sasv2024": package.CostModel(Pspf=0.05, Pnontrg=0.0095, Ptrg=0.9405, Cmiss=1, Cfa_asv=10, Cfa_cm=10),
    }
    assert set(official) == set(A_DCF_COST_MODELS)
    for name, cost_model in official.items():
        theirs = package.calculate_a_dcf(str(path), cost_model, printres=False)
        ours = min_a_dcf(scores, keys, A_DCF_COST_MODELS[name])
        assert abs(ours.value - float(theirs["min_a_dcf"])) <= 1e-12, name
        assert ours.threshold == float(theirs["min_a_dcf_thresh"]), name


def test_detection_costs_min_dcfs_are_min_dcf():
    rng = np.random.default_rng(14)
    keys = np.array(["target", "nontarget", "spoof"])[np.r_[0, 1, 2, rng.integers(0, 3, 300)]]
    scores = rng.normal(size=keys.size) + 1.2 * (keys == "target")
    costs = detection_costs(scores, keys, p_targets=(0.01, 0.05, 0.9))
    for p in (0.01, 0.05, 0.9):
        assert costs[f"min_dcf_{p:g}"] == min_dcf(scores, keys, p).value


def test_accept_all_is_the_minimum_when_targets_score_lowest():
    """Under the sasv2024 costs accepting everything costs exactly the normaliser, rejecting everything
    more: with targets scoring below every impostor, the minimum is the accept-all point, whose threshold is
    the official code's lowest score - 1e-8."""
    keys = np.array(["target"] * 3 + ["nontarget"] * 3 + ["spoof"] * 3)
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.65, 0.75, 0.85])
    result = min_a_dcf(scores, keys, A_DCF_COST_MODELS["sasv2024"])
    assert result.value == pytest.approx(1.0, abs=1e-12) and result.threshold == 0.1 - 1e-8


def test_actual_costs_at_dev_thresholds() -> None:
    """At the threshold minimising a cost on the same scores the actual cost is that minimum; on other
    scores it is the cost of their counts at that threshold (worked by hand), never below their minimum."""
    from sasv.metrics.detection_costs import A_DCF_COST_MODELS, costs_at_thresholds
    from sasv.metrics.eer import RankedScores

    rng = np.random.default_rng(8)
    keys = np.array(["target", "nontarget", "spoof"])[rng.integers(0, 3, 600)]
    dev_scores = np.round(rng.normal(size=600) + 1.5 * (keys == "target"), 2)
    eval_scores = np.round(rng.normal(size=600) + 1.2 * (keys == "target") + 0.3, 2)
    dev = detection_costs(dev_scores, keys, ("paper", "sasv2024"))
    a_thr = {m: dev[f"min_a_dcf_threshold[{m}]"] for m in ("paper", "sasv2024")}
    d_thr = {p: dev[f"min_dcf_threshold_{p:g}"] for p in (0.01, 0.05)}
    same = costs_at_thresholds(RankedScores.of(dev_scores, keys), a_thr, d_thr)
    for m in ("paper", "sasv2024"):
        assert same[f"act_a_dcf[{m}]"] == dev[f"min_a_dcf[{m}]"]
    for p in (0.01, 0.05):
        assert same[f"act_dcf_{p:g}"] == dev[f"min_dcf_{p:g}"]
    other = costs_at_thresholds(RankedScores.of(eval_scores, keys), a_thr, d_thr)
    t, cost = a_thr["paper"], A_DCF_COST_MODELS["paper"]
    tar, non, spf = (eval_scores[keys == k] for k in ("target", "nontarget", "spoof"))
    by_hand = (
        cost.c_miss * cost.p_target * np.mean(tar <= t)
        + cost.c_fa_asv * cost.p_nontarget * np.mean(non > t)
        + cost.c_fa_cm * cost.p_spoof * np.mean(spf > t)
    ) / cost.normaliser()
    assert other["act_a_dcf[paper]"] == pytest.approx(by_hand, abs=1e-12)
    assert other["act_a_dcf[paper]"] >= detection_costs(eval_scores, keys)["min_a_dcf[paper]"]
    assert (
        costs_at_thresholds(RankedScores.of(eval_scores, keys), {"paper": None}, {})["act_a_dcf[paper]"]
        is None
    )
