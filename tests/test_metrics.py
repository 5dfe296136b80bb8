import json
import time

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from sasv.metrics import (
    DEFAULT_A_DCF_COST,
    ADCFCostModel,
    cm_eer,
    compute_eer,
    count_keys,
    detection_costs,
    key_codes,
    min_a_dcf,
    min_dcf,
    sasv_eers,
    spf_eer_by_attack,
)


def read_golden_scores(path):
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return np.array([float(r[2]) for r in rows]), [r[3] for r in rows], [r[:2] for r in rows]


def official_style_eer(target, nontarget):
    """The published recipe, written with the literal library calls (slow, fine for small tests)."""
    labels = np.r_[np.ones(len(target)), np.zeros(len(nontarget))]
    fpr, tpr, _ = roc_curve(labels, np.r_[target, nontarget], pos_label=1)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def brute_force_eer(target, nontarget):
    """Exact crossing of the piecewise-linear ROC with FPR + TPR = 1, from an O(n^2) threshold sweep."""
    thresholds = np.r_[np.inf, np.unique(np.r_[target, nontarget])[::-1]]
    fpr = np.array([(nontarget >= t).mean() for t in thresholds])
    tpr = np.array([(target >= t).mean() for t in thresholds])
    g = 1.0 - fpr - tpr  # >= 0 at the start, -1 at the end, non-increasing
    i = int(np.flatnonzero(g <= 0)[0])
    if g[i] == 0:
        return fpr[i]
    w = g[i - 1] / (g[i - 1] - g[i])
    return fpr[i - 1] + w * (fpr[i] - fpr[i - 1])


def test_golden_sasv_eers(golden):
    scores, keys, ids = read_golden_scores(golden("metrics/scores.txt"))
    expected = json.loads(golden("metrics/expected.json").read_text())
    trials = [line.split() for line in golden("metrics/trials.txt").read_text().splitlines()]
    assert [t[:2] for t in trials] == ids and [t[3] for t in trials] == keys
    result = sasv_eers(scores, keys)
    for name in ("sasv_eer", "sv_eer", "spf_eer"):
        assert abs(result[name] - expected[name]) <= 1e-9, name
    counts = count_keys(keys)
    assert counts == {k: expected["counts"][k] for k in ("target", "nontarget", "spoof", "total")}


def test_golden_subsets_match_compute_eer(golden):
    scores, keys, _ = read_golden_scores(golden("metrics/scores.txt"))
    keys = np.array(keys)
    tar, non, spf = (scores[keys == k] for k in ("target", "nontarget", "spoof"))
    result = sasv_eers(scores, keys)
    # the shared sort must give the very same numbers as separate computations
    assert result["sasv_eer"] == compute_eer(tar, np.r_[non, spf])
    assert result["sv_eer"] == compute_eer(tar, non)
    assert result["spf_eer"] == compute_eer(tar, spf)


@pytest.mark.parametrize("seed", range(4))
def test_bit_identical_to_official_recipe_with_ties(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        decimals = int(rng.integers(0, 3))  # coarse rounding -> many ties across classes
        tar = np.round(rng.normal(1.0, 1.0, int(rng.integers(1, 60))), decimals)
        non = np.round(rng.normal(0.0, 1.0, int(rng.integers(1, 60))), decimals)
        assert compute_eer(tar, non) == official_style_eer(tar, non)


@pytest.mark.parametrize("seed", range(3))
def test_brute_force_and_symmetry(seed):
    rng = np.random.default_rng(100 + seed)
    tar = rng.normal(1.0, 1.0, 300)
    non = rng.normal(0.0, 1.2, 500)
    eer = compute_eer(tar, non)
    assert abs(eer - brute_force_eer(tar, non)) < 1e-9
    # swapping the classes and negating the scores mirrors the ROC about the EER line
    assert abs(compute_eer(-non, -tar) - eer) < 1e-9
    tied = np.round(np.r_[tar, non], 1)
    assert abs(compute_eer(tied[:300], tied[300:]) - brute_force_eer(tied[:300], tied[300:])) < 1e-9


def test_degenerate_cases():
    assert compute_eer([1.0, 1.0], [1.0, 1.0, 1.0]) == pytest.approx(0.5, abs=1e-12)
    assert compute_eer([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert compute_eer([0.0, 1.0], [2.0, 3.0]) == pytest.approx(1.0, abs=1e-9)
    assert compute_eer([1.0], [0.0]) == 0.0
    assert compute_eer([0.0], [1.0]) == pytest.approx(1.0, abs=1e-9)
    assert compute_eer([0.5], [0.5]) == pytest.approx(0.5, abs=1e-12)


def test_float32_scores_give_the_float64_result():
    rng = np.random.default_rng(7)
    tar = rng.normal(1, 1, 200).astype(np.float32)
    non = rng.normal(0, 1, 300).astype(np.float32)
    assert compute_eer(tar, non) == compute_eer(tar.astype(np.float64), non.astype(np.float64))


def test_empty_class_is_an_error():
    with pytest.raises(ValueError, match="0 target and 2 nontarget"):
        compute_eer([], [0.1, 0.2])
    with pytest.raises(ValueError, match="1 target and 0 nontarget"):
        compute_eer([0.1], [])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_rejected(bad):
    with pytest.raises(ValueError, match=r"1 NaN/Inf value\(s\) \(first at index 1\).*fix"):
        compute_eer([0.1, bad], [0.0])
    with pytest.raises(ValueError, match=r"2 NaN/Inf value\(s\) \(first at index 0\)"):
        sasv_eers([bad, bad, 0.3], ["target", "nontarget", "spoof"])


def test_missing_class_gives_none_not_a_number():
    scores = [0.9, 0.8, 0.1, 0.2]
    no_spoof = sasv_eers(scores, ["target", "target", "nontarget", "nontarget"])
    assert no_spoof == {"sasv_eer": None, "sv_eer": 0.0, "spf_eer": None}
    no_nontarget = sasv_eers(scores, ["target", "target", "spoof", "spoof"])
    assert no_nontarget == {"sasv_eer": None, "sv_eer": None, "spf_eer": 0.0}
    no_target = sasv_eers(scores, ["spoof", "nontarget", "spoof", "nontarget"])
    assert no_target == {"sasv_eer": None, "sv_eer": None, "spf_eer": None}
    assert sasv_eers([], []) == {"sasv_eer": None, "sv_eer": None, "spf_eer": None}


def test_keys_are_validated():
    with pytest.raises(ValueError, match=r"1 trial key\(s\).*index 2: 'bonafide'"):
        sasv_eers([0.1, 0.2, 0.3], ["target", "spoof", "bonafide"])
    with pytest.raises(ValueError, match="3 scores but 2 keys"):
        sasv_eers([0.1, 0.2, 0.3], ["target", "spoof"])
    with pytest.raises(ValueError, match="Target"):
        count_keys(["Target"])
    assert key_codes(np.array(["spoof", "target", "nontarget"])).tolist() == [2, 0, 1]


def test_count_keys():
    assert count_keys(["target", "spoof", "spoof"]) == {"target": 1, "nontarget": 0, "spoof": 2, "total": 3}
    assert count_keys([]) == {"target": 0, "nontarget": 0, "spoof": 0, "total": 0}


def test_eers_are_order_invariant():
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=900), 2)
    keys = np.array(["target", "nontarget", "spoof"])[rng.integers(0, 3, 900)]
    perm = rng.permutation(900)
    assert sasv_eers(scores, keys) == sasv_eers(scores[perm], keys[perm])


# ------------------------------------------------------------------------------------- detection costs


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
    assert costs["min_a_dcf"] == result.value and costs["min_a_dcf_threshold"] == result.threshold


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


@pytest.mark.parametrize("p_target", [0.01, 0.05, 0.5])
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
    assert list(costs) == ["min_a_dcf", "min_a_dcf_threshold", "min_dcf_0.01", "min_dcf_0.05"]
    assert costs["min_a_dcf"] == 0.0 and costs["min_dcf_0.01"] == 0.0
    no_spoof = detection_costs([0.9, 0.1], ["target", "nontarget"])
    assert no_spoof["min_a_dcf"] is None and no_spoof["min_a_dcf_threshold"] is None
    assert no_spoof["min_dcf_0.05"] == 0.0
    assert min_a_dcf([0.9, 0.1], ["target", "nontarget"]) is None
    assert all(v is None for v in detection_costs([0.2], ["spoof"]).values())
    assert all(v is None for v in detection_costs([], []).values())
    # a useless system costs exactly the better trivial system: normalised cost 1
    assert min_dcf([0.5, 0.5], ["target", "nontarget"], 0.01).value == pytest.approx(1.0)
    with pytest.raises(ValueError, match="p_target"):
        min_dcf([0.5], ["target"], 1.0)
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


def test_cm_eer_counts_each_test_utterance_once():
    # utterance u1 (bona fide) appears in three trials, spoofs once each; trial-level weighting would differ
    utts = ["u1", "u1", "u1", "u2", "s1", "s2"]
    keys = ["target", "nontarget", "nontarget", "target", "spoof", "spoof"]
    cm = [0.2, 0.2, 0.2, 0.9, 0.1, 0.5]
    assert cm_eer(utts, keys, cm) == compute_eer([0.2, 0.9], [0.1, 0.5])
    assert cm_eer(["u1"], ["target"], [0.3]) is None
    assert cm_eer([], [], []) is None


def test_cm_eer_rejects_inconsistent_utterances():
    with pytest.raises(ValueError, match="'u1' has both bona fide and spoof"):
        cm_eer(["u1", "u1", "s"], ["target", "spoof", "spoof"], [0.2, 0.2, 0.1])
    with pytest.raises(ValueError, match="'u1' has different CM scores"):
        cm_eer(["u1", "u1", "s"], ["target", "nontarget", "spoof"], [0.2, 0.3, 0.1])


def test_spf_eer_by_attack():
    rng = np.random.default_rng(4)
    tar = rng.normal(2.0, 1.0, 200)
    spoofs = {"A17": rng.normal(1.5, 1.0, 150), "A08": rng.normal(-1.0, 1.0, 100)}
    scores = np.r_[tar, spoofs["A17"], spoofs["A08"], rng.normal(0, 1, 50)]
    keys = ["target"] * 200 + ["spoof"] * 250 + ["nontarget"] * 50
    attacks = ["bonafide"] * 200 + ["A17"] * 150 + ["A08"] * 100 + ["bonafide"] * 50
    result = spf_eer_by_attack(scores, keys, attacks)
    assert list(result) == ["A08", "A17"]
    for attack, values in spoofs.items():
        assert result[attack] == compute_eer(tar, values)
    assert result["A17"] > result["A08"]
    assert spf_eer_by_attack([0.1, 0.2], ["spoof", "nontarget"], ["A10", "bonafide"]) == {"A10": None}
