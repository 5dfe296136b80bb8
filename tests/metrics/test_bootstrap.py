"""Bootstrap intervals and paired comparisons (:mod:`sasv.metrics.bootstrap`).

The fast path (one sort, weighted counts) is held to the recipe's own metrics on the physically resampled
list: a weight of k must be exactly k copies of the trial, and a speaker drawn k times k copies of all its
trials."""

from __future__ import annotations

import numpy as np
import pytest

from sasv.metrics.bootstrap import (
    BootstrapSpec,
    _unit_weights,
    bootstrap_intervals,
    paired_differences,
    weighted_metrics,
)
from sasv.metrics.detection_costs import A_DCF_COST_MODELS, min_a_dcf
from sasv.metrics.eer import KEYS, key_codes, sasv_eers


def _trials(seed: int, n: int = 1500, decimals: int = 6, n_spk: int = 30):
    rng = np.random.default_rng(seed)
    keys = np.array(KEYS)[rng.choice(3, n, p=[0.3, 0.4, 0.3])]
    spk = rng.integers(0, n_spk, n)
    scores = np.round(rng.normal(size=n) + 1.5 * (keys == "target") + 0.2 * spk / n_spk, decimals)
    return scores, keys, spk


def _reference(scores: np.ndarray, keys: np.ndarray, model: str) -> dict:
    record = dict(sasv_eers(scores, keys))
    cost = min_a_dcf(scores, keys, A_DCF_COST_MODELS[model])
    record[f"min_a_dcf[{model}]"] = None if cost is None else cost.value
    return record


def _assert_close(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert (got[name] is None) == (value is None), name
        if value is not None:
            assert abs(got[name] - value) <= 1e-9, (name, got[name], value)


@pytest.mark.parametrize("decimals", [1, 6])
@pytest.mark.parametrize("model", ["paper", "sasv2024"])
def test_unit_and_integer_weights_are_the_list_and_its_copies(decimals: int, model: str) -> None:
    scores, keys, _ = _trials(3, decimals=decimals)
    codes = key_codes(keys)
    _assert_close(
        weighted_metrics(scores, codes, np.ones(scores.size), model), _reference(scores, keys, model)
    )
    copies = np.random.default_rng(4).integers(0, 4, scores.size)
    repeated = np.repeat(np.arange(scores.size), copies)
    _assert_close(
        weighted_metrics(scores, codes, copies.astype(float), model),
        _reference(scores[repeated], keys[repeated], model),
    )


def test_a_resample_takes_every_trial_of_each_drawn_speaker() -> None:
    """Resample 7 of the cluster bootstrap, rebuilt by hand: each speaker's trials as often as drawn."""
    scores, keys, spk = _trials(5)
    spec = BootstrapSpec(resamples=8, seed=11)
    names, units = np.unique(spk, return_inverse=True)
    drawn = _unit_weights(spec, 7, names.size)
    rebuilt = np.concatenate([np.flatnonzero(spk == s).repeat(int(drawn[i])) for i, s in enumerate(names)])
    expected = _reference(scores[rebuilt], keys[rebuilt], "paper")
    _assert_close(weighted_metrics(scores, key_codes(keys), drawn[units], "paper"), expected)
    assert drawn.sum() == names.size and (drawn != 1).any()


def test_intervals_are_reproducible_and_bracket_the_value() -> None:
    scores, keys, spk = _trials(7, n=3000, n_spk=60)
    codes = key_codes(keys)
    spec = BootstrapSpec(resamples=200, seed=3)
    first = bootstrap_intervals(scores, codes, spk, "paper", spec)
    assert first == bootstrap_intervals(scores, codes, spk, "paper", spec, jobs=2)  # threads: same draws
    assert first["unit"] == "claimed speaker" and first["resamples"] == 200 and first["seed"] == 3
    point = _reference(scores, keys, "paper")
    for name, (low, high) in first["intervals"].items():
        assert low < point[name] < high, name
    other = bootstrap_intervals(scores, codes, spk, "paper", BootstrapSpec(resamples=200, seed=4))
    assert other["intervals"] != first["intervals"]
    trials = bootstrap_intervals(scores, codes, None, "paper", spec)
    assert trials["unit"] == "trial"
    # speakers differ in level, so resampling speakers (correlated trials) gives the wider interval
    width = {k: v[1] - v[0] for k, v in first["intervals"].items()}
    assert width["sasv_eer"] > trials["intervals"]["sasv_eer"][1] - trials["intervals"]["sasv_eer"][0]


def test_a_missing_class_has_no_interval() -> None:
    scores, keys, spk = _trials(9)
    keep = keys != "spoof"
    result = bootstrap_intervals(
        scores[keep], key_codes(keys[keep]), spk[keep], "paper", BootstrapSpec(resamples=20)
    )
    assert result["intervals"]["spf_eer"] is None and result["intervals"]["min_a_dcf[paper]"] is None
    assert result["intervals"]["sv_eer"] is not None and result["missing"]["spf_eer"] == 20


def test_paired_differences_see_a_real_gain_and_no_gain() -> None:
    scores, keys, spk = _trials(11, n=3000, n_spk=60)
    codes = key_codes(keys)
    spec = BootstrapSpec(resamples=200)
    same = paired_differences(scores, scores, codes, spk, "paper", spec)
    for entry in same["metrics"].values():
        assert entry["difference"] == 0.0 and entry["interval"] == [0.0, 0.0] and not entry["differ"]
    better = scores + 0.8 * (keys == "target")  # every target scores higher: all EERs drop
    gain = paired_differences(better, scores, codes, spk, "paper", spec)["metrics"]["sasv_eer"]
    assert gain["difference"] < 0 and gain["interval"][1] < 0 and gain["differ"] and gain["p_value"] < 0.05
    noise = np.random.default_rng(2).normal(0.0, 1e-3, scores.size)
    small = paired_differences(scores + noise, scores, codes, spk, "paper", spec)["metrics"]["sasv_eer"]
    assert not small["differ"] and small["p_value"] > 0.05
    swapped = paired_differences(scores, better, codes, spk, "paper", spec)["metrics"]["sasv_eer"]
    assert swapped["difference"] == -gain["difference"]
    assert swapped["interval"] == pytest.approx([-gain["interval"][1], -gain["interval"][0]], abs=1e-12)


def test_rejecting_everything_can_be_the_cheapest_point() -> None:
    """Targets below every impostor: the a-DCF is lowest where nothing is accepted (1.0, the normaliser
    being the reject-all cost under the paper's model), a point no accepted trial stands for."""
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.95])
    keys = np.array(["target", "target", "nontarget", "spoof", "spoof"])
    got = weighted_metrics(scores, key_codes(keys), np.ones(5), "paper")
    _assert_close(got, _reference(scores, keys, "paper"))
    assert got["min_a_dcf[paper]"] == pytest.approx(1.0, abs=1e-15)
