"""The tandem metrics of ASVspoof 5 Track 2: the ASV-constrained minimum t-DCF and the t-EER.

Both judge a CM and an ASV system in tandem from their *separate* scores per trial (the recipe has them:
the cosine and P_CM), where the a-DCF (:mod:`sasv.detection_costs`) judges the one fused SASV score.
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
  where the tandem miss and false-alarm rates meet *independently of the spoofing prior*, i.e. where
  ``Pfa_nontarget_asv / Pfa_spoof_asv = Pfa_cm / (1 - Pmiss_cm)``; there it equals
  ``Pfa_spoof_asv * Pfa_cm``. As the package does: for each ASV threshold with ``Pmiss_asv < Pfa_asv`` the CM
  threshold nearest to ``Pmiss_tandem = Pfa_tandem`` (at spoof prior 0) is taken, and of those pairs the
  one closest to the intersection condition. Returned as a fraction (the package prints percent).

Error curves follow the package's conventions (one point per sorted score, ties in input order, thresholds
rejecting ``score <= s``), so the minima and the t-EER are the package's to float rounding; the search is
vectorised (one sort per system and a binary search per ASV threshold, not the package's quadratic loop),
which is what makes ASVspoof 5 eval's 834,536 trials take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def det_curve(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates and thresholds, one point per sorted score plus the accept-all point.

    Point 0 accepts everything (miss 0, false alarm 1, threshold ``min - 0.001``); point i rejects the i
    lowest scores (positives before negatives within a tie, as a stable sort of the concatenation).
    """
    positives, negatives = np.asarray(positives, np.float64), np.asarray(negatives, np.float64)
    scores = np.concatenate((positives, negatives))
    is_positive = np.concatenate((np.ones(positives.size), np.zeros(negatives.size)))
    order = np.argsort(scores, kind="mergesort")
    rejected_positives = np.cumsum(is_positive[order])
    rejected = np.arange(1, scores.size + 1)
    miss = np.concatenate(([0.0], rejected_positives / positives.size))
    false_alarm = np.concatenate(([1.0], (negatives.size - (rejected - rejected_positives)) / negatives.size))
    thresholds = np.concatenate(([scores[order[0]] - 0.001], scores[order]))
    return miss, false_alarm, thresholds


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
    c0 = cost.p_target * cost.c_miss * asv_pmiss + cost.p_nontarget * cost.c_fa * asv_pfa
    c1 = cost.p_target * cost.c_miss - c0
    c2 = cost.p_spoof * cost.c_fa_spoof * asv_pfa_spoof
    if c0 < 0 or c1 < 0 or c2 < 0:
        raise ValueError(
            f"t-DCF weights must not be negative (C0 {c0}, C1 {c1}, C2 {c2}): check the ASV rates"
        )
    curve = (c0 + c1 * miss + c2 * false_alarm) / (c0 + min(c1, c2))
    return float(curve.min())


def t_eer(
    asv_target: np.ndarray,
    asv_nontarget: np.ndarray,
    asv_spoof: np.ndarray,
    cm_target: np.ndarray,
    cm_nontarget: np.ndarray,
    cm_spoof: np.ndarray,
) -> float | None:
    """The concurrent t-EER (fraction) of an ASV and a CM system scored on the same trials (see the module
    doc). ``None`` when a class is missing or no operating pair satisfies the package's conditions."""
    if min(len(asv_target), len(asv_nontarget), len(asv_spoof)) == 0:
        return None
    asv_miss, asv_fa, asv_fa_spoof = asv_curves(asv_target, asv_nontarget, asv_spoof)
    cm_miss, cm_fa, _ = det_curve(np.concatenate((cm_target, cm_nontarget)), cm_spoof)
    allowed = np.flatnonzero(asv_miss < asv_fa)
    if allowed.size == 0:
        return None
    a, b = asv_miss[allowed], asv_fa[allowed]
    # At spoof prior 0 the tandem rates are Pmiss_cm + (1 - Pmiss_cm) a and (1 - Pmiss_cm) b; their
    # difference rises with Pmiss_cm and crosses 0 at (b - a) / (1 - a + b). The nearest CM point is among
    # the distinct Pmiss_cm values around that crossing; of equal ones the first (as np.argmin takes it).
    starts = np.concatenate(([0], np.flatnonzero(np.diff(cm_miss)) + 1))
    levels = cm_miss[starts]
    crossing = np.searchsorted(levels, (b - a) / (1 - a + b))
    best_j = np.zeros(allowed.size, dtype=np.int64)
    best_h = np.full(allowed.size, np.inf)
    for offset in (-2, -1, 0, 1):
        k = np.clip(crossing + offset, 0, levels.size - 1)
        j = starts[k]
        p = cm_miss[j]
        h = np.abs((p + (1 - p) * a) - (1 - p) * b)
        better = (h < best_h) | ((h == best_h) & (j < best_j))
        best_j = np.where(better, j, best_j)
        best_h = np.where(better, h, best_h)
    with np.errstate(divide="ignore", invalid="ignore"):
        crit = np.abs(b / asv_fa_spoof[allowed] - cm_fa[best_j] / (1 - cm_miss[best_j]))
    finite = np.isfinite(crit)
    if not finite.any():
        return None
    winner = int(np.flatnonzero(finite)[np.argmin(crit[finite])])
    return float(asv_fa_spoof[allowed[winner]] * cm_fa[best_j[winner]])
