"""The tandem metrics of ASVspoof 5 Track 2: the ASV-constrained minimum t-DCF and the t-EER.

Both judge a CM and an ASV system in tandem from their *separate* scores per trial (the recipe has them:
the cosine and P_CM), where the a-DCF (:mod:`sasv.metrics.detection_costs`) judges the one fused SASV score.
Definitions and constants are the organisers' evaluation package's (asvspoof-challenge/asvspoof5,
``evaluation-package/calculate_modules.py`` at fe23d30), reimplemented here on arrays:

* **min t-DCF** (Kinnunen et al., TASLP 2020, ASV-constrained form): the CM decides on every trial, a fixed
  ASV system (the organisers', given by its error rates) decides after it. With the ASV's miss rate
  ``Pmiss_asv``, nontarget and spoof false-alarm rates ``Pfa_asv`` and ``Pfa_spoof_asv`` and the CM's miss and
  false-alarm rates at CM threshold s: ``t-DCF(s) = C0 + C1 Pmiss_cm(s) + C2 Pfa_cm(s)`` with
  ``C0 = Ptar Cmiss Pmiss_asv + Pnon Cfa Pfa_asv``, ``C1 = Ptar Cmiss - C0``,
  ``C2 = Pspoof Cfa_spoof Pfa_spoof_asv``, normalised by ``C0 + min(C1, C2)`` and minimised over s. The CM's
  bona fide trials are the target and nontarget trials.
* **t-EER** (Kinnunen et al., 2023): the tandem error rate at the operating point (ASV and CM thresholds)
  where the tandem miss and false-alarm rates meet *independently of the spoofing prevalence* rho, i.e.
  where ``Pfa_nontarget_asv / Pfa_spoof_asv = Pfa_cm / (1 - Pmiss_cm)``; there it equals
  ``Pfa_spoof_asv * Pfa_cm``. The package finds that point on the finite curves at rho = 0.5
  (``compute_teer``): for each ASV threshold with ``Pmiss_asv < (1 - rho) Pfa_asv + rho Pfa_spoof_asv`` it
  takes the CM threshold where the tandem rates ``Pmiss_tdm = Pmiss_cm + (1 - Pmiss_cm) Pmiss_asv`` and
  ``Pfa_tdm = (1 - rho)(1 - Pmiss_cm) Pfa_asv + rho Pfa_cm Pfa_spoof_asv`` are nearest, then of those pairs
  the one closest to the intersection condition. With at least 3,000 thresholds on both sides it does so
  first on every k-th threshold, then on +-1,600 thresholds around the point found
  (``compute_teer_accelerated``): that is the published number, and :func:`t_eer` returns it (the
  exhaustive search with ``accelerated=False``). On finite curves rho matters: searching at rho = 0 gives
  another point (2.54 % instead of the package's 2.73 % on a real ASVspoof 5 dev submission). Returned as a
  fraction (the package prints percent).

Error curves follow the package's conventions (one point per sorted score, ties in input order, thresholds
rejecting ``score <= s``) and every rate is computed by the package's own arithmetic, so the minima and the
t-EER equal the package's (held to its outputs by ``tests/fixtures/asvspoof5_package.json``). The search is
not the package's quadratic loop: ``Pmiss_tdm - Pfa_tdm`` never decreases along the CM thresholds, so the
nearest CM threshold of every ASV threshold is found by one binary search, all ASV thresholds at once.

ASVspoof 2019 and 2021 use the same min t-DCF and cost model, with the ASV's rates measured on ASV scores
(the keys' ASV system, or the user's) at the ASV's EER threshold: :func:`asv_error_rates`,
:func:`min_t_dcf_with_asv_scores`, and per condition as the 2021 package's tables
(:func:`asvspoof2021_breakdown`; held to the 2021 evaluation package's outputs by
``tests/fixtures/asvspoof2021_package.json``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from sasv.corpora.protocols import NONTARGET, SPOOF, TARGET
from sasv.metrics.breakdowns import attack_codec_cells
from sasv.metrics.cm import asvspoof_eer, det_curve, eer_point

# The organisers' default ASV system, pooled over ASVspoof 5 conditions (the evaluation package's constants).
ORGANISERS_ASV_PFA_NONTARGET = 0.01881016557566423
ORGANISERS_ASV_PMISS = 0.01880141010575793
ORGANISERS_ASV_PFA_SPOOF = 0.4607082907604729


@dataclass(frozen=True)
class TandemCostModel:
    """Priors and costs of the ASVspoof 5 t-DCF (the evaluation package's ``tdcf_cost_model``)."""

    p_spoof: float = 0.05
    p_target: float = (1 - 0.05) * 0.99
    p_nontarget: float = (1 - 0.05) * 0.01
    c_miss: float = 1
    c_fa: float = 10
    c_fa_spoof: float = 10


ASVSPOOF5_TANDEM_COST = TandemCostModel()


def asv_curves(
    target: np.ndarray, nontarget: np.ndarray, spoof: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ASV miss, nontarget false-alarm and spoof false-alarm rates per threshold (as :func:`det_curve`,
    ties in the order target, nontarget, spoof)."""
    scores = np.concatenate((target, nontarget, spoof)).astype(np.float64)
    label = np.concatenate((np.ones(len(target)), np.zeros(len(nontarget)), -np.ones(len(spoof))))
    label = label[np.argsort(scores, kind="mergesort")]
    miss = np.concatenate(([0.0], np.cumsum(label == 1) / len(target)))
    fa_nontarget = np.concatenate(([1.0], 1 - np.cumsum(label == 0) / len(nontarget)))
    fa_spoof = np.concatenate(([1.0], 1 - np.cumsum(label == -1) / len(spoof)))
    return miss, fa_nontarget, fa_spoof


def min_t_dcf(
    cm_bonafide: np.ndarray,
    cm_spoof: np.ndarray,
    asv_pfa: float = ORGANISERS_ASV_PFA_NONTARGET,
    asv_pmiss: float = ORGANISERS_ASV_PMISS,
    asv_pfa_spoof: float = ORGANISERS_ASV_PFA_SPOOF,
    cost: TandemCostModel = ASVSPOOF5_TANDEM_COST,
) -> float | None:
    """Minimum normalised ASV-constrained t-DCF of CM scores (see the module doc); the ASV error rates
    default to the organisers' ASV system. ``None`` without bona fide or spoof trials."""
    if len(cm_bonafide) == 0 or len(cm_spoof) == 0:
        return None
    miss, false_alarm, _ = det_curve(cm_bonafide, cm_spoof)
    c0, c1, c2 = t_dcf_weights(asv_pfa, asv_pmiss, asv_pfa_spoof, cost)
    if c0 < 0 or c1 < 0 or c2 < 0:
        raise ValueError(
            f"t-DCF weights must not be negative (C0 {c0}, C1 {c1}, C2 {c2}): check the ASV rates"
        )
    curve = (c0 + c1 * miss + c2 * false_alarm) / (c0 + min(c1, c2))
    return float(curve.min())


def t_dcf_weights(
    asv_pfa: float, asv_pmiss: float, asv_pfa_spoof: float, cost: TandemCostModel = ASVSPOOF5_TANDEM_COST
) -> tuple[float, float, float]:
    """C0, C1 and C2 of the t-DCF for an ASV system of these error rates (module doc)."""
    c0 = cost.p_target * cost.c_miss * asv_pmiss + cost.p_nontarget * cost.c_fa * asv_pfa
    return c0, cost.p_target * cost.c_miss - c0, cost.p_spoof * cost.c_fa_spoof * asv_pfa_spoof


def asv_error_rates(
    target: np.ndarray, nontarget: np.ndarray, spoof: np.ndarray
) -> tuple[float, float, float] | None:
    """An ASV system's nontarget false-alarm, miss and spoof false-alarm rates at the threshold of its EER,
    the operating point the ASVspoof 2019 and 2021 evaluation packages fix the ASV at (``compute_eer``'s
    threshold: the DET point where the two rates are nearest; accepted means ``score >= threshold``).
    ``None`` without target, nontarget or spoof trials (the 2021 package has no t-DCF there either)."""
    target, nontarget, spoof = (np.asarray(a, np.float64) for a in (target, nontarget, spoof))
    if not (target.size and nontarget.size and spoof.size):
        return None
    miss, false_alarm, thresholds = det_curve(target, nontarget)
    threshold = thresholds[eer_point(miss, false_alarm)]
    return (
        float(np.sum(nontarget >= threshold) / nontarget.size),
        float(np.sum(target < threshold) / target.size),
        float(np.sum(spoof >= threshold) / spoof.size),
    )


def min_t_dcf_with_asv_scores(
    cm_bonafide: np.ndarray,
    cm_spoof: np.ndarray,
    asv_target: np.ndarray,
    asv_nontarget: np.ndarray,
    asv_spoof: np.ndarray,
    cost: TandemCostModel = ASVSPOOF5_TANDEM_COST,
) -> float | None:
    """ASVspoof 2019/2021's min t-DCF: :func:`min_t_dcf` with the ASV's rates measured on its scores
    (:func:`asv_error_rates`); the cost model is the same as ASVspoof 5's. ``None`` where a class is empty."""
    rates = asv_error_rates(asv_target, asv_nontarget, asv_spoof)
    if rates is None:
        return None
    return min_t_dcf(cm_bonafide, cm_spoof, *rates, cost=cost)


ASVSPOOF2021_METRICS = ("eer", "min_t_dcf")


@dataclass(frozen=True)
class ConditionedScores:
    """Scores of trials with the two factors of the ASVspoof 2021 tables: ``key`` (CM: ``bonafide`` |
    ``spoof``; ASV: ``target`` | ``nontarget`` | ``spoof``), ``rows`` (the attack or vocoder type, read for
    spoofs only) and ``columns`` (the codec or compression condition) per trial."""

    scores: np.ndarray
    key: np.ndarray
    rows: np.ndarray
    columns: np.ndarray

    def cells(self, names: tuple[Sequence[str], Sequence[str]]) -> Iterator[tuple[int, int, np.ndarray]]:
        return attack_codec_cells(self.key == SPOOF, self.rows, self.columns, names)[2]


def asvspoof2021_breakdown(
    cm: ConditionedScores,
    rows: Sequence[str],
    columns: Sequence[str],
    asv: ConditionedScores | None = None,
    cost: TandemCostModel = ASVSPOOF5_TANDEM_COST,
) -> dict:
    """The ASVspoof 2021 evaluation package's tables (``main.py``'s ``compute_decomposed_mintdcf_eer``):
    ``{"rows", "columns", "eer": rows of cells, "min_t_dcf": rows of cells}``, the cells of
    :func:`sasv.metrics.breakdowns.attack_codec_cells` over the given values (:data:`POOLED` among them,
    the package puts it last). A cell's EER is the CM's (fraction); its min t-DCF takes the ASV's rates on
    the ASV trials of the same cell (``compute_tDCF_C012``: the ASV at its EER threshold there), ``None``
    without ``asv`` (DF), where a CM class is empty, where an ASV class is empty (the package's NaN) or
    where the weights would be negative (a degenerate ASV cell; the package computes a meaningless number
    there). Unlike the package, a cell of fewer than three distinct scores is computed, not fatal."""
    names = (list(rows), list(columns))
    table: dict = {"rows": names[0], "columns": names[1]}
    table.update({m: [[None] * len(names[1]) for _ in names[0]] for m in ASVSPOOF2021_METRICS})
    asv_masks = (m for _, _, m in asv.cells(names)) if asv is not None else itertools.repeat(None)
    bonafide = cm.key != SPOOF
    for (i, j, mask), asv_mask in zip(cm.cells(names), asv_masks, strict=False):
        cm_bonafide, cm_spoof = cm.scores[mask & bonafide], cm.scores[mask & ~bonafide]
        if not (cm_bonafide.size and cm_spoof.size):
            continue
        table["eer"][i][j] = asvspoof_eer(cm_bonafide, cm_spoof)
        if asv is None:
            continue
        rates = asv_error_rates(*(asv.scores[asv_mask & (asv.key == k)] for k in (TARGET, NONTARGET, SPOOF)))
        if rates is not None and min(t_dcf_weights(*rates, cost)) >= 0:
            table["min_t_dcf"][i][j] = min_t_dcf(cm_bonafide, cm_spoof, *rates, cost=cost)
    return table


# compute_teer's spoof prevalence and compute_teer_accelerated's grid: decimate when both curves have at
# least this many points, then search this many points either side of the coarse result
T_EER_SPOOF_PREVALENCE = 0.5
T_EER_COARSE_POINTS = 3000
T_EER_FINE_HALF_WIDTH = 1600


@dataclass(frozen=True)
class TandemCurves:
    """The CM's DET curve (bona fide = target and nontarget trials) and the ASV's three rates, one point
    per threshold (:func:`det_curve`, :func:`asv_curves`)."""

    cm_miss: np.ndarray
    cm_fa: np.ndarray
    asv_miss: np.ndarray
    asv_fa: np.ndarray
    asv_fa_spoof: np.ndarray

    def window(self, asv: slice, cm: slice) -> TandemCurves:
        return TandemCurves(
            self.cm_miss[cm], self.cm_fa[cm], self.asv_miss[asv], self.asv_fa[asv], self.asv_fa_spoof[asv]
        )


def _first_at_least(value_at, targets: np.ndarray, n: int) -> np.ndarray:
    """Per query q, the first index j in [0, n) with ``value_at(j)[q] >= targets[q]`` (n if none), for
    values that never decrease in j: a binary search of all queries at once."""
    lo = np.zeros(targets.size, dtype=np.int64)
    hi = np.full(targets.size, n, dtype=np.int64)
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        reached = value_at(np.minimum(mid, n - 1)) >= targets
        hi = np.where(active & reached, mid, hi)
        lo = np.where(active & ~reached, mid + 1, lo)


def t_eer_point(curves: TandemCurves, rho: float = T_EER_SPOOF_PREVALENCE) -> tuple[int, int] | None:
    """(ASV index, CM index) of the package's ``compute_teer`` operating point on ``curves`` (module doc);
    ``None`` where no allowed ASV threshold gives a finite intersection criterion (the package then fails).

    For an ASV threshold, ``h(j) = Pmiss_tdm - Pfa_tdm`` rises with the CM index j, so the package's
    ``argmin |h|`` (first index of the smallest) is the first j with h >= 0 or the first index of the
    last value below 0, whichever is nearer to 0 (the lower on a tie)."""
    c_miss, c_fa = curves.cm_miss, curves.cm_fa
    allowed = np.flatnonzero(curves.asv_miss < (1 - rho) * curves.asv_fa + rho * curves.asv_fa_spoof)
    if allowed.size == 0:
        return None
    a, b, c = curves.asv_miss[allowed], curves.asv_fa[allowed], curves.asv_fa_spoof[allowed]

    def h(j: np.ndarray) -> np.ndarray:  # the package's expression, operation for operation
        p_miss, p_fa = c_miss[j], c_fa[j]
        return (p_miss + (1 - p_miss) * a) - ((1 - rho) * (1 - p_miss) * b + rho * p_fa * c)

    n = c_miss.size
    first_up = _first_at_least(h, np.zeros(allowed.size), n)
    below = np.maximum(first_up - 1, 0)
    below = _first_at_least(h, h(below), n)  # the first index of that value's run
    h_up = np.abs(h(np.minimum(first_up, n - 1)))
    h_below = np.abs(h(below))
    take_below = (first_up == n) | ((first_up > 0) & (h_below <= h_up))
    best_j = np.where(take_below, below, first_up)
    with np.errstate(divide="ignore", invalid="ignore"):
        crit = np.abs(b / c - c_fa[best_j] / (1 - c_miss[best_j]))
    finite = np.flatnonzero(np.isfinite(crit))
    if finite.size == 0:
        return None
    winner = int(finite[np.argmin(crit[finite])])
    return int(allowed[winner]), int(best_j[winner])


def t_eer_of_curves(curves: TandemCurves, accelerated: bool = True) -> float | None:
    """The t-EER (fraction) on ``curves`` as the package's ``compute_teer_accelerated`` returns it
    (``accelerated=False``: its exhaustive ``compute_teer``); ``None`` where the package fails."""
    n_asv, n_cm = curves.asv_miss.size, curves.cm_miss.size
    step_asv, step_cm = n_asv // T_EER_COARSE_POINTS, n_cm // T_EER_COARSE_POINTS
    if accelerated and step_asv > 0 and step_cm > 0:
        coarse = t_eer_point(curves.window(slice(None, None, step_asv), slice(None, None, step_cm)))
        if coarse is None:
            return None
        centre_asv, centre_cm = coarse[0] * step_asv, coarse[1] * step_cm
        first_asv = max(centre_asv - T_EER_FINE_HALF_WIDTH, 0)
        first_cm = max(centre_cm - T_EER_FINE_HALF_WIDTH, 0)
        curves = curves.window(
            slice(first_asv, min(centre_asv + T_EER_FINE_HALF_WIDTH, n_asv)),
            slice(first_cm, min(centre_cm + T_EER_FINE_HALF_WIDTH, n_cm)),
        )
    point = t_eer_point(curves)
    if point is None:
        return None
    i, j = point
    return float(curves.asv_fa_spoof[i] * curves.cm_fa[j])


def tandem_curves(
    asv_target: np.ndarray,
    asv_nontarget: np.ndarray,
    asv_spoof: np.ndarray,
    cm_target: np.ndarray,
    cm_nontarget: np.ndarray,
    cm_spoof: np.ndarray,
) -> TandemCurves:
    """The curves the package builds from the scores of each key (each in the submission's order)."""
    asv_miss, asv_fa, asv_fa_spoof = asv_curves(asv_target, asv_nontarget, asv_spoof)
    cm_miss, cm_fa, _ = det_curve(np.concatenate((cm_target, cm_nontarget)), cm_spoof)
    return TandemCurves(cm_miss, cm_fa, asv_miss, asv_fa, asv_fa_spoof)


def t_eer(
    asv_target: np.ndarray,
    asv_nontarget: np.ndarray,
    asv_spoof: np.ndarray,
    cm_target: np.ndarray,
    cm_nontarget: np.ndarray,
    cm_spoof: np.ndarray,
    accelerated: bool = True,
) -> float | None:
    """The concurrent t-EER (fraction) of an ASV and a CM system scored on the same trials, each class's
    scores in the submission's order (see the module doc). ``None`` when a class is missing or where the
    package finds no operating point."""
    if min(len(asv_target), len(asv_nontarget), len(asv_spoof)) == 0:
        return None
    curves = tandem_curves(asv_target, asv_nontarget, asv_spoof, cm_target, cm_nontarget, cm_spoof)
    return t_eer_of_curves(curves, accelerated)
