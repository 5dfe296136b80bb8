import json

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from sasv.metrics.cm import asvspoof_eer
from sasv.metrics.eer import (
    cm_eer,
    compute_eer,
    count_keys,
    key_codes,
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


def test_cm_eer_counts_each_test_utterance_once():
    # utterance u1 (bona fide) appears in three trials, spoofs once each; trial-level weighting would differ
    utts = ["u1", "u1", "u1", "u2", "s1", "s2"]
    keys = ["target", "nontarget", "nontarget", "target", "spoof", "spoof"]
    cm = [0.2, 0.2, 0.2, 0.9, 0.1, 0.5]
    assert cm_eer(utts, keys, cm) == asvspoof_eer(np.array([0.2, 0.9]), np.array([0.1, 0.5]))


def test_cm_eer_is_the_asvspoof_scorers_eer_not_the_interpolated_one():
    """Bona fide [0.2, 0.9, 0.95], spoof [0.1, 0.5]: the DET points (miss, fa) are (0, 1), (0, 1/2),
    (1/3, 1/2), (1/3, 0), ...; the nearest pair is (1/3, 1/2), EER 5/12. The SASV 2022 interpolated ROC
    gives 1/3: the CM-EER column must hold what ASVspoof scorers print."""
    utts = ["b1", "b2", "b3", "s1", "s2"]
    keys = ["target", "nontarget", "target", "spoof", "spoof"]
    assert cm_eer(utts, keys, [0.2, 0.9, 0.95, 0.1, 0.5]) == pytest.approx(5 / 12, abs=1e-15)
    assert compute_eer([0.2, 0.9, 0.95], [0.1, 0.5]) == pytest.approx(1 / 3, abs=1e-12)
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


def test_count_keys_with_absent_keys():
    assert count_keys(["target", "target"]) == {"target": 2, "nontarget": 0, "spoof": 0, "total": 2}
    assert count_keys([]) == {"target": 0, "nontarget": 0, "spoof": 0, "total": 0}
