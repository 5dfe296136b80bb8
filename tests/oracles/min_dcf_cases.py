"""Speaker verification score lists for the minDCF fixtures (Kaldi, wespeaker), generated from a seed.

Each case writes the files the two original scripts read, for the same trials in the same order:

* ``trials`` (``enroll test target|nontarget``) and ``scores`` (``enroll test score``): Kaldi's
  ``sid/compute_min_dcf.py <scores> <trials>``;
* ``scores_labelled`` (``enroll test score target|nontarget``): wespeaker's ``bin/compute_metrics.py``.

Only target and nontarget trials: the recipe's minDCF ignores spoofed trials, and both scripts would count
any label other than ``target`` as a nontarget. Every (enroll, test) pair is unique (Kaldi keys its trials
by the pair). Scores look like cosines (targets around 0.6, nontargets around 0.1, or the other way round
with ``inverted``) and are written with ``decimals`` decimals: every parser reads them to the same double,
and 1 or 2 decimals make many ties across classes.

The order of the lines matters to Kaldi, whose stable sort visits the trials of a tie in file order (and
stops after each one, see ``tests/metrics/test_kaldi_parity.py``): ``tie_order`` ``shuffled`` keeps a random
order, ``targets_first`` and ``nontargets_first`` keep the random order of the lines but give the lines of
each run of tied scores to its targets first (or last).

This module needs numpy only (no sasv), so the recorders can run it beside the original scripts in a
scratch environment. The fixtures store each file's sha256, so a generator that drifts fails loudly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TIE_ORDERS = ("shuffled", "targets_first", "nontargets_first")
# The operating points recorded: the recipe's two (MIN_DCF_P_TARGETS) and two above 0.5, where the
# accept-all operating point can be the minimum.
P_TARGETS = (0.01, 0.05, 0.5, 0.9)


@dataclass(frozen=True)
class MinDcfCase:
    """``n_target`` and ``n_nontarget`` trials scored ``N(0.6, spread)`` and ``N(0.1, spread)``
    (swapped with ``inverted``), rounded to ``decimals``; lines ordered as ``tie_order`` says."""

    seed: int
    n_target: int
    n_nontarget: int
    decimals: int = 6
    spread: float = 0.15
    tie_order: str = "shuffled"
    inverted: bool = False


MIN_DCF_CASES: dict[str, MinDcfCase] = {
    "small": MinDcfCase(seed=3101, n_target=60, n_nontarget=400),
    "few_trials": MinDcfCase(seed=3102, n_target=3, n_nontarget=7, decimals=3, spread=0.4),
    # seeds picked: the target is outscored by two nontargets; three ties across classes in ten trials
    "one_target": MinDcfCase(seed=3106, n_target=1, n_nontarget=4, decimals=3, spread=0.4),
    "few_ties_targets_first": MinDcfCase(
        seed=3113, n_target=3, n_nontarget=7, decimals=1, spread=0.4, tie_order="targets_first"
    ),
    "few_ties_nontargets_first": MinDcfCase(
        seed=3113, n_target=3, n_nontarget=7, decimals=1, spread=0.4, tie_order="nontargets_first"
    ),
    # the same scores three times, only the order of the lines within the ties differs
    "ties_targets_first": MinDcfCase(
        seed=3104, n_target=300, n_nontarget=3000, decimals=2, tie_order="targets_first"
    ),
    "ties_shuffled": MinDcfCase(seed=3104, n_target=300, n_nontarget=3000, decimals=2),
    "ties_nontargets_first": MinDcfCase(
        seed=3104, n_target=300, n_nontarget=3000, decimals=2, tie_order="nontargets_first"
    ),
    "coarse_ties_targets_first": MinDcfCase(
        seed=3115, n_target=40, n_nontarget=200, decimals=1, spread=0.3, tie_order="targets_first"
    ),
    "coarse_ties_nontargets_first": MinDcfCase(
        seed=3115, n_target=40, n_nontarget=200, decimals=1, spread=0.3, tie_order="nontargets_first"
    ),
    "overlapping": MinDcfCase(seed=3116, n_target=500, n_nontarget=5000, spread=0.4),
    "inverted": MinDcfCase(seed=3117, n_target=50, n_nontarget=200, inverted=True),
    "large": MinDcfCase(seed=3118, n_target=3000, n_nontarget=30000, spread=0.2),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def case_scores(case: MinDcfCase) -> tuple[np.ndarray, np.ndarray]:
    """(scores, is_target) of ``case`` in file order, the scores as the files write them."""
    if case.tie_order not in TIE_ORDERS:
        raise ValueError(f"tie_order must be one of {TIE_ORDERS}, got {case.tie_order!r}")
    rng = np.random.default_rng(case.seed)
    is_target = np.r_[np.ones(case.n_target, dtype=bool), np.zeros(case.n_nontarget, dtype=bool)]
    high, low = (0.1, 0.6) if case.inverted else (0.6, 0.1)
    mean = np.where(is_target, high, low)
    scores = np.round(mean + rng.normal(0.0, case.spread, is_target.size), case.decimals)
    position = rng.permutation(is_target.size)  # the line of trial i
    if case.tie_order != "shuffled":
        first = is_target if case.tie_order == "targets_first" else ~is_target
        _, run = np.unique(scores, return_inverse=True)
        for r in np.flatnonzero(np.bincount(run) > 1):
            members = np.flatnonzero(run == r)
            members = members[np.argsort(~first[members], kind="stable")]  # the first class first
            position[members] = np.sort(position[members])
    order = np.argsort(position)
    return scores[order], is_target[order]


def write_min_dcf_case(case: MinDcfCase, directory: Path) -> dict[str, Path]:
    """``{"trials", "scores", "scores_labelled"}`` of ``case`` in ``directory`` (see the module docstring)."""
    scores, is_target = case_scores(case)
    n_enroll = max(1, min(40, scores.size // 5))
    trials, score_lines, labelled = [], [], []
    for line, (score, target) in enumerate(zip(scores, is_target, strict=True)):
        enroll, test = f"spk{line % n_enroll:03d}", f"utt{line:06d}"
        key = "target" if target else "nontarget"
        text = f"{score:.{case.decimals}f}"
        trials.append(f"{enroll} {test} {key}")
        score_lines.append(f"{enroll} {test} {text}")
        labelled.append(f"{enroll} {test} {text} {key}")
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "trials": _write(directory / "trials", trials),
        "scores": _write(directory / "scores", score_lines),
        "scores_labelled": _write(directory / "scores_labelled", labelled),
    }


def read_labelled(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(scores, keys) of a ``scores_labelled`` file, keys as the recipe names them."""
    rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    return np.array([float(r[2]) for r in rows]), np.array([r[3] for r in rows])
