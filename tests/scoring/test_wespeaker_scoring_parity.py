"""The SV minDCF and AS-norm against wespeaker's scoring scripts, run (tests/fixtures/README.md).

minDCF: the cases of ``tests/oracles/min_dcf_cases.py`` as ``bin/compute_metrics.py`` scored them
(``compute_pmiss_pfa_rbst`` + ``compute_c_norm``). Without ties across classes the recipe's minDCF must
equal wespeaker's to 1e-9. wespeaker walks the trials one at a time like Kaldi (see
``tests/metrics/test_kaldi_parity.py``), but in ``np.argsort``'s order, which is not stable: within a tie its
order is unspecified (neither the file's nor fixed across machines), so on tied scores its number is only
pinned between the walks with the targets first and last in every tie, and never above the recipe's; and it
has no accept-all point either.

AS-norm: ``bin/score_norm.py`` on the embeddings, cohort and scored trials of
``tests/oracles/asnorm_cases.py`` (Kaldi archives, read here with kaldiio as the recipe reads embeddings).
wespeaker subtracts a mean vector from every embedding when given one (``--mean_vec_path``, the cohort
set's mean in its recipes); the recipe feeds its vectors as they are (``sasv.scoring.asnorm``'s docstring), so
the mean-subtracted vectors are what both are given here. On them the normalised scores must equal wespeaker's
to float64 rounding (1e-9 relative), and so must the top-K cohort means and standard deviations. wespeaker
computes in the embeddings' dtype: float32 embeddings (what extractors write) give float32 statistics and
scores, off by ~1e-6 from the recipe's float64; that case is held to 2e-5. The raw cosines also match
``bin/score.py``'s (5 decimals).
"""

from __future__ import annotations

import json
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from sasv.metrics.detection_costs import detection_costs, min_dcf, min_dcf_name
from sasv.scoring.asnorm import as_norm, top_k_stats
from sasv.scoring.cosine import cosine_scores
from tests.metrics.test_kaldi_parity import stepwise_min_dcf
from tests.oracles import asnorm_cases
from tests.oracles import min_dcf_cases as cases

FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "wespeaker_scoring.json").read_text()
)
TOLERANCE = 1e-9
FLOAT32_TOLERANCE = 2e-5


def _drifted(name: str) -> str:
    return (
        f"{name} differs from the file wespeaker read: the generator drifted (numpy's random stream?); "
        "record the fixture again (tests/fixtures/README.md)"
    )


def _mixed_ties(scores: np.ndarray, is_target: np.ndarray) -> bool:
    return np.intersect1d(scores[is_target], scores[~is_target]).size > 0


# ------------------------------------------------------------------------------------------------- minDCF


def test_the_fixture_covers_every_case() -> None:
    assert set(FIXTURE["min_dcf"]) == set(cases.MIN_DCF_CASES)
    assert set(FIXTURE["as_norm"]) == set(asnorm_cases.AS_NORM_CASES)
    assert FIXTURE["p_targets"] == list(cases.P_TARGETS)


@pytest.mark.parametrize("name", sorted(cases.MIN_DCF_CASES))
def test_min_dcf_equals_wespeaker(name: str, tmp_path: Path) -> None:
    path = cases.write_min_dcf_case(cases.MIN_DCF_CASES[name], tmp_path)["scores_labelled"]
    assert cases.sha256(path) == FIXTURE["min_dcf"][name]["files"][path.name], _drifted(path.name)
    scores, keys = cases.read_labelled(path)
    is_target = keys == "target"
    for p in cases.P_TARGETS:
        recorded = FIXTURE["min_dcf"][name]["min_dcf"][repr(p)]
        theirs = recorded["min_dcf"]
        assert recorded["printed"].endswith(f" = {theirs:.3f}")
        ours = min_dcf(scores, keys, p)
        if ours.threshold < scores.min() and p > 0.5:  # accept-all: a point wespeaker does not consider
            assert theirs > ours.value + 1e-3 and theirs == pytest.approx(
                stepwise_min_dcf(scores, is_target, p)[0]
            )
        elif _mixed_ties(scores, is_target):
            # any order of the tied trials: between nontargets first and targets first in every tie
            low = stepwise_min_dcf(*_tie_order(scores, is_target, targets_first=False), p)[0]
            high = stepwise_min_dcf(*_tie_order(scores, is_target, targets_first=True), p)[0]
            assert low - TOLERANCE <= theirs <= high + TOLERANCE, (p, low, theirs, high)
            assert theirs <= ours.value + TOLERANCE
        else:
            assert abs(ours.value - theirs) <= TOLERANCE, (p, ours.value, theirs)
            if p in (0.01, 0.05):
                assert abs(detection_costs(scores, keys)[min_dcf_name(p)] - theirs) <= TOLERANCE


def _tie_order(
    scores: np.ndarray, is_target: np.ndarray, targets_first: bool
) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((is_target if not targets_first else ~is_target, scores))
    return scores[order], is_target[order]


def test_wespeaker_stops_inside_ties_below_the_recipe_s_minimum() -> None:
    """The fixture holds a tied case where wespeaker's walk stops inside a tie and reports less than any
    threshold reaches, though the targets come first in every tie of the file (Kaldi's number there is the
    recipe's): its order of tied trials is not the file's."""
    scores, is_target = cases.case_scores(cases.MIN_DCF_CASES["ties_targets_first"])
    keys = np.where(is_target, "target", "nontarget")
    recorded = FIXTURE["min_dcf"]["ties_targets_first"]["min_dcf"]
    lower = [
        p for p in cases.P_TARGETS if recorded[repr(p)]["min_dcf"] < min_dcf(scores, keys, p).value - 1e-3
    ]
    assert lower, "no tied case where wespeaker is below the recipe: the fixture lost its point"


# ------------------------------------------------------------------------------------------------ AS-norm


def _as_norm_inputs(name: str, directory: Path):
    """(enrol, test, cohort, spk_idx, utt_idx, top_k) read from the case's files, mean-subtracted as
    wespeaker's were, after checking the files are those wespeaker read."""
    case = asnorm_cases.AS_NORM_CASES[name]
    files = asnorm_cases.write_as_norm_case(case, directory)
    recorded = FIXTURE["as_norm"][name]
    assert set(recorded["files"]) == {path.name for path in files.values()}
    for path in files.values():
        assert asnorm_cases.sha256(path) == recorded["files"][path.name], _drifted(path.name)
    vectors = dict(kaldiio.load_ark(str(files["eval_ark"])))
    cohort = np.stack(list(dict(kaldiio.load_ark(str(files["cohort_ark"]))).values()))
    assert cohort.dtype == np.dtype(case.dtype)
    mean = np.load(files["mean_vec"]) if "mean_vec" in files else 0.0
    rows = [line.split() for line in files["trial_scores"].read_text(encoding="utf-8").splitlines()]
    enrol_names, test_names = sorted({r[0] for r in rows}), sorted({r[1] for r in rows})
    enrol = np.stack([vectors[n] for n in enrol_names]).astype(np.float64) - mean
    test = np.stack([vectors[n] for n in test_names]).astype(np.float64) - mean
    spk_idx = np.array([enrol_names.index(r[0]) for r in rows])
    utt_idx = np.array([test_names.index(r[1]) for r in rows])
    top_k = case.top_n if case.method == "asnorm" else cohort.shape[0]
    return enrol, test, cohort.astype(np.float64) - mean, spk_idx, utt_idx, top_k, enrol_names, test_names


def _tolerances(name: str) -> dict:
    if FIXTURE["as_norm"][name]["stats_dtype"] == "float32":
        return {"rtol": 0.0, "atol": FLOAT32_TOLERANCE}
    return {"rtol": TOLERANCE, "atol": 1e-12}


@pytest.mark.parametrize("name", sorted(asnorm_cases.AS_NORM_CASES))
def test_as_norm_equals_score_norm(name: str, tmp_path: Path) -> None:
    enrol, test, cohort, spk_idx, utt_idx, top_k, _, _ = _as_norm_inputs(name, tmp_path)
    ours = as_norm(enrol, test, cohort, spk_idx, utt_idx, top_k=top_k)
    np.testing.assert_allclose(ours, FIXTURE["as_norm"][name]["normed"], **_tolerances(name))


@pytest.mark.parametrize("name", sorted(asnorm_cases.AS_NORM_CASES))
def test_top_k_cohort_statistics_equal_get_mean_std(name: str, tmp_path: Path) -> None:
    enrol, test, cohort, _, _, top_k, enrol_names, test_names = _as_norm_inputs(name, tmp_path)
    recorded = FIXTURE["as_norm"][name]
    for vectors, names, key in ((enrol, enrol_names, "enrol_stats"), (test, test_names, "test_stats")):
        mean, std = top_k_stats(vectors, cohort, top_k)
        expected = np.array([recorded[key][n] for n in names])
        np.testing.assert_allclose(mean, expected[:, 0], **_tolerances(name))
        np.testing.assert_allclose(std, expected[:, 1], **_tolerances(name))


def test_float32_embeddings_are_where_wespeaker_and_the_recipe_part(tmp_path: Path) -> None:
    """On float32 embeddings wespeaker's statistics and scores are float32 (the recipe's float64): they
    differ by more than float64 rounding, by no more than float32's; the float64 cases agree to 1e-9."""
    assert FIXTURE["as_norm"]["float32"]["stats_dtype"] == "float32"
    assert {FIXTURE["as_norm"][n]["stats_dtype"] for n in FIXTURE["as_norm"] if n != "float32"} == {"float64"}
    enrol, test, cohort, spk_idx, utt_idx, top_k, _, _ = _as_norm_inputs("float32", tmp_path)
    ours = as_norm(enrol, test, cohort, spk_idx, utt_idx, top_k=top_k)
    difference = np.max(np.abs(ours - FIXTURE["as_norm"]["float32"]["normed"]))
    assert 1e-8 < difference <= FLOAT32_TOLERANCE, difference


@pytest.mark.parametrize("name", sorted(asnorm_cases.AS_NORM_CASES))
def test_raw_cosines_equal_score_py(name: str, tmp_path: Path) -> None:
    """``bin/score.py`` writes 5 decimals: the recipe's cosine is within half a unit of the last one."""
    enrol, test, _, spk_idx, utt_idx, _, _, _ = _as_norm_inputs(name, tmp_path)
    raw = cosine_scores(enrol, test, spk_idx, utt_idx)
    np.testing.assert_allclose(raw, FIXTURE["as_norm"][name]["score_py_raw"], rtol=0.0, atol=5e-6 + 1e-12)
