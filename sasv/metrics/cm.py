"""A countermeasure's own metrics, as the ASVspoof scorers compute them: EER, minDCF, actDCF and CLLR.

ASVspoof 5 Track 1 judges a CM alone by four numbers (the organisers' evaluation package,
asvspoof-challenge/asvspoof5 ``evaluation-package/calculate_modules.py`` at fe23d30):

* **minDCF** (primary): ``Cmiss (1 - Pspoof) Pmiss(s) + Cfa Pspoof Pfa(s)`` minimised over the thresholds
  s of the DET curve, normalised by ``min(Cmiss (1 - Pspoof), Cfa Pspoof)``; Pspoof 0.05, Cmiss 1, Cfa 10.
* **EER**: at the DET point where ``|Pmiss - Pfa|`` is smallest (the first such point), the mean of the
  two rates. This is the EER of every ASVspoof scorer (the 2019/2021 packages, clovaai/aasist's
  ``evaluation.py``), so it is the CM-EER the recipe prints beside published CM numbers; it differs from
  the SASV 2022 EER of an interpolated ROC (:mod:`sasv.metrics.eer`) by up to a fraction of a trial.
* **actDCF**: the same cost at the Bayes threshold ``-log(Cmiss (1 - Pspoof) / (Cfa Pspoof))`` of scores
  read as log-likelihood ratios (bona fide vs spoof), miss ``score < t``, false alarm ``score >= t``.
* **CLLR** (bits): ``(mean log(1 + e^-llr_bonafide) + mean log(1 + e^llr_spoof)) / (2 log 2)``, also of
  LLRs. ``logaddexp`` keeps it finite where the package's ``log1p(exp(.))`` overflows (|LLR| > 709).

minDCF and EER need only the scores' order; actDCF and CLLR read the scores as LLRs, so the recipe gives
them the AASIST logit difference (a log-odds), never P_CM. The DET curve follows the packages' conventions
(one point per sorted score, bona fide before spoof within a tie, threshold rejecting ``score <= s``).
Values equal the package's to 1e-9 (``tests/fixtures/asvspoof5_package.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sasv.metrics.breakdowns import tabulate


@dataclass(frozen=True)
class CmCostModel:
    """Prior of a spoof and the two costs of a CM's decisions (the package's ``dcf_cost_model``)."""

    p_spoof: float = 0.05
    c_miss: float = 1
    c_fa: float = 10

    def normaliser(self) -> float:
        return min(self.c_miss * (1 - self.p_spoof), self.c_fa * self.p_spoof)

    def bayes_threshold(self) -> float:
        """The LLR threshold where accepting and rejecting cost the same."""
        return float(-np.log(self.c_miss * (1 - self.p_spoof) / (self.c_fa * self.p_spoof)))


ASVSPOOF5_CM_COST = CmCostModel()
TRACK1_METRICS = ("min_dcf", "eer", "cllr", "act_dcf")


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


def eer_point(miss: np.ndarray, false_alarm: np.ndarray) -> int:
    """The ASVspoof scorers' EER point of a DET curve: where the two rates are nearest (the first such)."""
    return int(np.argmin(np.abs(miss - false_alarm)))


def eer_of_curve(miss: np.ndarray, false_alarm: np.ndarray) -> float:
    """The ASVspoof EER of a DET curve: mean of the two rates at its :func:`eer_point`."""
    i = eer_point(miss, false_alarm)
    return float((miss[i] + false_alarm[i]) / 2)


def asvspoof_eer(bonafide: np.ndarray, spoof: np.ndarray) -> float:
    """EER (fraction) of bona fide vs spoof scores as the ASVspoof scorers compute it (module doc)."""
    return eer_of_curve(*det_curve(bonafide, spoof)[:2])


def min_dcf_of_curve(
    miss: np.ndarray, false_alarm: np.ndarray, cost: CmCostModel = ASVSPOOF5_CM_COST
) -> float:
    """Normalised minimum DCF over the points of a DET curve (the package's ``compute_mindcf``)."""
    p_bonafide = 1 - cost.p_spoof
    curve = cost.c_miss * miss * p_bonafide + cost.c_fa * false_alarm * (1 - p_bonafide)
    return float(curve.min() / min(cost.c_miss * p_bonafide, cost.c_fa * (1 - p_bonafide)))


def act_dcf(bonafide_llr: np.ndarray, spoof_llr: np.ndarray, cost: CmCostModel = ASVSPOOF5_CM_COST) -> float:
    """Normalised DCF at the Bayes threshold of LLR scores (the package's ``compute_actDCF``)."""
    threshold = cost.bayes_threshold()
    miss = np.sum(bonafide_llr < threshold) / bonafide_llr.size
    false_alarm = np.sum(spoof_llr >= threshold) / spoof_llr.size
    value = cost.c_miss * (1 - cost.p_spoof) * miss + cost.c_fa * cost.p_spoof * false_alarm
    return float(value / cost.normaliser())


def cllr(bonafide_llr: np.ndarray, spoof_llr: np.ndarray) -> float:
    """Log-likelihood-ratio cost in bits (the package's ``calculate_CLLR``, overflow-free)."""
    bonafide_term = np.mean(np.logaddexp(0.0, -np.asarray(bonafide_llr, np.float64)))
    spoof_term = np.mean(np.logaddexp(0.0, np.asarray(spoof_llr, np.float64)))
    return float(0.5 * (bonafide_term + spoof_term) / np.log(2))


def track1_metrics(
    bonafide: Sequence[float] | np.ndarray,
    spoof: Sequence[float] | np.ndarray,
    cost: CmCostModel = ASVSPOOF5_CM_COST,
) -> dict[str, float | None]:
    """``min_dcf``, ``eer`` (fraction), ``cllr`` (bits), ``act_dcf`` of bona fide and spoof CM scores
    (LLRs, for the last two), as ``calculate_minDCF_EER_CLLR_actDCF``; all ``None`` when a class is
    empty (the package then has no number)."""
    bonafide, spoof = np.asarray(bonafide, np.float64), np.asarray(spoof, np.float64)
    if bonafide.size == 0 or spoof.size == 0:
        return dict.fromkeys(TRACK1_METRICS)
    miss, false_alarm, _ = det_curve(bonafide, spoof)
    return {
        "min_dcf": min_dcf_of_curve(miss, false_alarm, cost),
        "eer": eer_of_curve(miss, false_alarm),
        "cllr": cllr(bonafide, spoof),
        "act_dcf": act_dcf(bonafide, spoof, cost),
    }


def track1_breakdown(
    scores: np.ndarray,
    is_bonafide: np.ndarray,
    attacks: np.ndarray,
    codecs: np.ndarray | None = None,
    cost: CmCostModel = ASVSPOOF5_CM_COST,
) -> dict:
    """Track 1 metrics per attack x codec cell (:mod:`sasv.metrics.breakdowns`), as the package's
    ``evaluation_full.py`` tabulates them: ``{"attacks", "codecs", <metric>: rows of cells}``, a cell
    ``None`` where a class is empty; without ``codecs`` the pooled column only."""
    scores = np.asarray(scores, np.float64)
    is_bonafide = np.asarray(is_bonafide, bool)

    def cell(mask: np.ndarray) -> dict[str, float | None]:
        return track1_metrics(scores[mask & is_bonafide], scores[mask & ~is_bonafide], cost)

    return tabulate(~is_bonafide, attacks, codecs, cell, TRACK1_METRICS)
