"""The SV minDCF (``min_dcf``, the records' ``min_dcf_<p>``) against Kaldi's ``sid/compute_min_dcf.py``, run
(tests/fixtures/README.md).

The cases (``tests/oracles/min_dcf_cases.py``) are regenerated from their seeds and checked byte for byte
against the files Kaldi read (sha256). Where the two conventions coincide the recipe's minDCF and threshold
must equal Kaldi's to 1e-9. They differ in two documented ways (``min_dcf``'s docstring), each pinned here
on the fixture: Kaldi steps through the trials one at a time in a stable sort, so inside a run of tied
target/nontarget scores it stops at points no threshold reaches (a lower minDCF that depends on the order of
the file's lines: the cases come in three orders of the same scores), and it has no accept-all point (which
only wins above p_target 0.5). :func:`stepwise_min_dcf` is that convention written out; it reproduces every
number Kaldi recorded, so the differences are exactly these two.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sasv.metrics.detection_costs import detection_costs, min_dcf, min_dcf_name
from tests.oracles import min_dcf_cases as cases

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "kaldi_min_dcf.json").read_text())
TOLERANCE = 1e-9
# the same scores in three orders of the lines: (targets first in each tie, others)
TIE_FAMILIES = {
    "few_ties_targets_first": ("few_ties_nontargets_first",),
    "ties_targets_first": ("ties_shuffled", "ties_nontargets_first"),
    "coarse_ties_targets_first": ("coarse_ties_nontargets_first",),
}


def stepwise_min_dcf(scores: np.ndarray, is_target: np.ndarray, p_target: float) -> tuple[float, float]:
    """(minDCF, threshold) over the points of a walk through the trials in ascending score order, ties in
    the order given, one trial rejected per step, from one rejected trial to all (no accept-all point): the
    convention of Kaldi's script (and wespeaker's, in its own order of ties), written from its description."""
    order = np.argsort(scores, kind="stable")
    target = is_target[order]
    p_miss = np.cumsum(target) / target.sum()
    p_fa = 1.0 - np.cumsum(~target) / (~target).sum()
    cost = (p_target * p_miss + (1.0 - p_target) * p_fa) / min(p_target, 1.0 - p_target)
    best = int(np.argmin(cost))
    return float(cost[best]), float(scores[order][best])


def splits_ties(case: cases.MinDcfCase) -> bool:
    """Whether a tie of a target and a nontarget score has a nontarget line before a target line."""
    scores, is_target = cases.case_scores(case)
    mixed = np.intersect1d(scores[is_target], scores[~is_target]).size > 0
    return mixed and case.tie_order != "targets_first"


def case_trials(name: str, directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """The case's (scores, keys), after checking its files are those Kaldi read."""
    files = cases.write_min_dcf_case(cases.MIN_DCF_CASES[name], directory)
    recorded = FIXTURE["cases"][name]["files"]
    for role in ("scores", "trials"):
        assert cases.sha256(files[role]) == recorded[files[role].name], (
            f"{files[role].name} differs from the file Kaldi scored: the generator drifted (numpy's random "
            "stream?); record the fixture again (tests/fixtures/README.md)"
        )
    return cases.read_labelled(files["scores_labelled"])


def test_the_fixture_covers_every_case_and_operating_point() -> None:
    assert set(FIXTURE["cases"]) == set(cases.MIN_DCF_CASES)
    assert FIXTURE["p_targets"] == list(cases.P_TARGETS)
    for name in TIE_FAMILIES:
        assert not splits_ties(cases.MIN_DCF_CASES[name])
        assert all(splits_ties(cases.MIN_DCF_CASES[other]) for other in TIE_FAMILIES[name])


@pytest.mark.parametrize("name", sorted(cases.MIN_DCF_CASES))
def test_min_dcf_equals_kaldi_where_the_conventions_agree(name: str, tmp_path: Path) -> None:
    scores, keys = case_trials(name, tmp_path)
    tie_split = splits_ties(cases.MIN_DCF_CASES[name])
    compared = 0
    for p in cases.P_TARGETS:
        kaldi = FIXTURE["cases"][name]["min_dcf"][repr(p)]
        ours = min_dcf(scores, keys, p)
        accept_all = ours.threshold < scores.min()  # the recipe's minimum is the point Kaldi lacks
        if accept_all and p > 0.5:
            continue  # test_accept_all_is_a_point_kaldi_does_not_consider
        if tie_split:  # test_tied_scores_give_kaldi_s_number_for_targets_first_and_not_below
            assert kaldi["min_dcf"] <= ours.value + TOLERANCE, (p, kaldi, ours)
            continue
        assert abs(ours.value - kaldi["min_dcf"]) <= TOLERANCE, (p, ours.value, kaldi["min_dcf"])
        if not accept_all:  # at p 0.5 accept-all and reject-all both cost 1; each takes its first
            assert ours.threshold == kaldi["threshold"], (p, ours.threshold, kaldi["threshold"])
        if p in (0.01, 0.05):
            assert abs(detection_costs(scores, keys)[min_dcf_name(p)] - kaldi["min_dcf"]) <= TOLERANCE
        compared += 1
    assert compared >= 2 or tie_split, "every operating point of a case without split ties is compared"


@pytest.mark.parametrize("name", sorted(cases.MIN_DCF_CASES))
def test_kaldi_s_numbers_are_the_stepwise_convention(name: str, tmp_path: Path) -> None:
    """The reading of Kaldi's convention the docstrings state reproduces each recorded number and
    threshold, in the file's order of tied lines."""
    scores, keys = case_trials(name, tmp_path)
    for p in cases.P_TARGETS:
        kaldi = FIXTURE["cases"][name]["min_dcf"][repr(p)]
        value, threshold = stepwise_min_dcf(scores, keys == "target", p)
        assert abs(value - kaldi["min_dcf"]) <= TOLERANCE and threshold == kaldi["threshold"], (p, kaldi)
        assert kaldi["printed"] == f"{kaldi['min_dcf']:.4f}"


@pytest.mark.parametrize("family", sorted(TIE_FAMILIES))
def test_tied_scores_give_kaldi_s_number_for_targets_first_and_not_below(family: str, tmp_path: Path) -> None:
    """The recipe's minDCF ignores the order of tied lines and equals Kaldi's when the targets come first
    in every tie; with a nontarget first Kaldi stops inside the tie and reports less, at every p_target."""
    targets_first = FIXTURE["cases"][family]["min_dcf"]
    for other in (family, *TIE_FAMILIES[family]):
        scores, keys = case_trials(other, tmp_path / other)
        for p in cases.P_TARGETS:
            ours = min_dcf(scores, keys, p)
            assert abs(ours.value - targets_first[repr(p)]["min_dcf"]) <= TOLERANCE, (other, p)
            kaldi = FIXTURE["cases"][other]["min_dcf"][repr(p)]["min_dcf"]
            if other.endswith("nontargets_first"):
                assert kaldi < ours.value - 1e-3, (other, p, kaldi, ours.value)


def test_accept_all_is_a_point_kaldi_does_not_consider(tmp_path: Path) -> None:
    """Targets scoring below the nontargets (``inverted``), p_target 0.9: accepting everything costs exactly
    the normaliser here (1.0); Kaldi's best is its first point, the lowest trial (a target) rejected:
    (0.9 / n_target + 0.1) / 0.1."""
    scores, keys = case_trials("inverted", tmp_path)
    n_target = cases.MIN_DCF_CASES["inverted"].n_target
    assert keys[np.argmin(scores)] == "target" and np.sum(scores == scores.min()) == 1
    ours = min_dcf(scores, keys, 0.9)
    assert ours.value == pytest.approx(1.0, abs=1e-12) and ours.threshold < scores.min()
    kaldi = FIXTURE["cases"]["inverted"]["min_dcf"]["0.9"]
    assert kaldi["min_dcf"] == pytest.approx(1.0 + 9.0 / n_target, abs=TOLERANCE)
    for p in (0.01, 0.05, 0.5):  # up to p_target 0.5 accept-all never beats reject-all (1.0)
        expected = FIXTURE["cases"]["inverted"]["min_dcf"][repr(p)]["min_dcf"]
        assert expected == 1.0 and min_dcf(scores, keys, p).value == pytest.approx(1.0, abs=TOLERANCE)
