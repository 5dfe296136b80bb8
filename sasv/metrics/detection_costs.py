"""Detection costs: the minimum a-DCF of the SASV follow-up work and the NIST-style minDCF of the SV task.

The EERs of :mod:`sasv.metrics.eer` are threshold-free summaries at one operating point; the SASV follow-up
work (a-DCF, ASVspoof 5) and NIST SRE report *costs* at application-defined priors instead. Both are minimum
costs over thresholds with the rule "reject a trial whose score is <= threshold, accept it otherwise", so they
share one sort (:class:`~sasv.metrics.eer.RankedScores`, also the EERs') and one cumulative count of rejected
trials per key. ``min_a_dcf`` matches the authors' ``calculate_a_dcf`` (shimhz/a_DCF) to the last bit. A
cost whose classes are missing is ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sasv.metrics.eer import KEYS, RankedScores


@dataclass(frozen=True)
class ADCFCostModel:
    """Costs and priors of the architecture-agnostic DCF (a-DCF, Shim et al., Odyssey 2024).

    The defaults are the authors' default cost model (shimhz/a_DCF ``CostModel``): a target trial is nine
    times as likely as the two impostor kinds together, and falsely accepting a spoof costs twice as much
    as falsely accepting a zero-effort nontarget (Cfa_cm 20 vs Cfa_asv 10).
    """

    p_target: float = 0.9
    p_nontarget: float = 0.05
    p_spoof: float = 0.05
    c_miss: float = 1
    c_fa_asv: float = 10
    c_fa_cm: float = 20

    def normaliser(self) -> float:
        """Cost of the better of the two trivial systems (accept all, reject all); a-DCF 1.0 means no
        better than that, which is what makes a-DCF values comparable across cost models."""
        accept_all = self.c_fa_asv * self.p_nontarget + self.c_fa_cm * self.p_spoof
        reject_all = self.c_miss * self.p_target
        return min(accept_all, reject_all)


DEFAULT_A_DCF_COST = ADCFCostModel()
# The a-DCF cost models by name: the a-DCF paper's defaults, and ASVspoof 5 Track 2's (the organisers'
# evaluation package: the t-DCF priors Ptar = 0.95 x 0.99, Pnon = 0.95 x 0.01, Pspf 0.05; Cmiss 1,
# Cfa_asv 10, Cfa_cm 10; normaliser 0.595).
A_DCF_COST_MODELS: dict[str, ADCFCostModel] = {
    "paper": DEFAULT_A_DCF_COST,
    "sasv2024": ADCFCostModel(
        p_target=(1 - 0.05) * 0.99,
        p_nontarget=(1 - 0.05) * 0.01,
        p_spoof=0.05,
        c_miss=1,
        c_fa_asv=10,
        c_fa_cm=10,
    ),
}


def a_dcf_key(model: str) -> str:
    """Result key of the minimum a-DCF under a named cost model, e.g. ``min_a_dcf[sasv2024]``: every
    record and table names its cost model, so numbers under different priors are never compared unawares."""
    return f"min_a_dcf[{model}]"


def a_dcf_threshold_key(model: str) -> str:
    """Result key of the threshold reaching :func:`a_dcf_key`'s minimum."""
    return f"min_a_dcf_threshold[{model}]"


def describe_cost_model(model: str) -> str:
    """One line naming a cost model's priors and costs, for table captions."""
    c = A_DCF_COST_MODELS[model]
    return (
        f"Ptar {c.p_target:.4g}, Pnon {c.p_nontarget:.4g}, Pspf {c.p_spoof:.4g}, Cmiss {c.c_miss:g}, "
        f"Cfa_asv {c.c_fa_asv:g}, Cfa_cm {c.c_fa_cm:g}"
    )


# NIST-style SV operating points of the recipe's tables: minDCF at these target priors, Cmiss = Cfa = 1.
MIN_DCF_P_TARGETS: tuple[float, ...] = (0.01, 0.05)


@dataclass(frozen=True)
class MinCost:
    """A minimum normalised detection cost and the threshold reaching it (reject ``score <= threshold``)."""

    value: float
    threshold: float


def _reject_counts(ranked: RankedScores) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds and per-key counts of rejected trials for every distinct operating point, ascending.

    Row 0 is the accept-everything state, with the threshold ``min(score) - 1e-8`` used by the official
    a-DCF code; row i > 0 rejects every trial scoring <= the i-th distinct score, which is its threshold.
    Operating points inside a run of tied scores are not reachable by any threshold, so they are skipped
    (the official a-DCF walk visits them too, but targets-first within a tie, so they never win; see the
    golden fixtures' README). Returns ``(thresholds (m,), counts (m, 3))`` with columns in ``KEYS`` order.
    """
    sorted_values = ranked.scores[::-1]  # ascending views of the one descending sort
    sorted_codes = ranked.codes[::-1]
    run_ends = np.append(np.flatnonzero(np.diff(sorted_values)), sorted_values.size - 1)
    counts = np.zeros((run_ends.size + 1, len(KEYS)), dtype=np.int64)
    for code in range(len(KEYS)):
        counts[1:, code] = np.cumsum(sorted_codes == code, dtype=np.int64)[run_ends]
    thresholds = np.concatenate(([float(sorted_values[0]) - 1e-8], sorted_values[run_ends]))
    return thresholds, counts


def _a_dcf_from_counts(
    thresholds: np.ndarray, counts: np.ndarray, totals: np.ndarray, cost: ADCFCostModel
) -> MinCost | None:
    if (totals == 0).any():
        return None
    n_tar, n_non, n_spf = (float(t) for t in totals)
    # The official code's arithmetic, term by term: miss rate, ASV and CM false-alarm rates as count / total.
    frr = counts[:, 0] / n_tar
    far_asv = (n_non - counts[:, 1]) / n_non
    far_cm = (n_spf - counts[:, 2]) / n_spf
    costs = (
        (cost.c_miss * cost.p_target) * frr
        + (cost.c_fa_asv * cost.p_nontarget) * far_asv
        + (cost.c_fa_cm * cost.p_spoof) * far_cm
    )
    normed = costs / cost.normaliser()
    best = int(np.argmin(normed))  # the first minimum, i.e. the lowest threshold reaching it, like np.argmin
    return MinCost(float(normed[best]), float(thresholds[best]))


def _min_dcf_from_counts(
    thresholds: np.ndarray,
    counts: np.ndarray,
    totals: np.ndarray,
    p_target: float,
    c_miss: float,
    c_fa: float,
) -> MinCost | None:
    n_tar, n_non = float(totals[0]), float(totals[1])
    if n_tar == 0 or n_non == 0:
        return None
    p_miss = counts[:, 0] / n_tar
    p_fa = (n_non - counts[:, 1]) / n_non
    normed = (c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa) / min(
        c_miss * p_target, c_fa * (1.0 - p_target)
    )
    best = int(np.argmin(normed))
    return MinCost(float(normed[best]), float(thresholds[best]))


def min_a_dcf(
    scores: Sequence[float] | np.ndarray,
    keys: Sequence[str] | np.ndarray,
    cost: ADCFCostModel = DEFAULT_A_DCF_COST,
) -> MinCost | None:
    """Minimum normalised a-DCF of SASV scores over thresholds, as ``calculate_a_dcf`` of shimhz/a_DCF.

    a-DCF(t) = (Cmiss Ptar Pmiss(t) + Cfa_asv Pnon Pfa_nontarget(t) + Cfa_cm Pspf Pfa_spoof(t)) / normaliser,
    rejecting trials with score <= t. Unlike the SASV-EER it weights spoofs and nontargets separately and
    sits at an operating point an application would use. ``None`` when a key is missing: every term of the
    cost needs its population. Vectorised: one sort, cumulative counts (1e6 trials well under a second).
    """
    ranked = RankedScores.of(scores, keys)
    if ranked.scores.size == 0:
        return None
    thresholds, counts = _reject_counts(ranked)
    return _a_dcf_from_counts(thresholds, counts, counts[-1], cost)


def min_dcf(
    scores: Sequence[float] | np.ndarray,
    keys: Sequence[str] | np.ndarray,
    p_target: float,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> MinCost | None:
    """NIST-style normalised minDCF of the SV task: target vs nontarget trials only (spoofs are ignored).

    DCF(t) = Cmiss p_target Pmiss(t) + Cfa (1 - p_target) Pfa(t), divided by min(Cmiss p_target,
    Cfa (1 - p_target)) (the better trivial system), minimised over thresholds (reject score <= t). The
    recipe reports p_target 0.01 and 0.05 with Cmiss = Cfa = 1 (``MIN_DCF_P_TARGETS``). ``None`` without
    targets or nontargets.

    The operating points are those a threshold reaches: accept-all, and rejecting every trial up to the end
    of each run of tied scores. Kaldi's ``sid/compute_min_dcf.py`` and wespeaker's ``compute_c_norm`` (over
    ``compute_pmiss_pfa_rbst``) instead step through the sorted trials one at a time, which differs in two
    ways (tests/metrics/test_kaldi_parity.py, tests/scoring/test_wespeaker_scoring_parity.py; equal to 1e-15
    elsewhere): they stop inside runs of tied target/nontarget scores, at points no threshold reaches, so on
    tied scores they can report a *lower* minDCF that depends on the order of the tied trials (Kaldi: the
    file's, by a stable sort; wespeaker: ``np.argsort``'s, unspecified); and they lack the accept-all point,
    which can only be the minimum for p_target > 0.5 (targets scoring below every nontarget at p_target 0.9:
    1.0 here, 1 + 9 / n_target there). With the targets first within each tie, Kaldi's value is this one.
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    ranked = RankedScores.of(scores, keys)
    if ranked.scores.size == 0:
        return None
    thresholds, counts = _reject_counts(ranked)
    return _min_dcf_from_counts(thresholds, counts, counts[-1], p_target, c_miss, c_fa)


def min_dcf_name(p_target: float) -> str:
    """Result key of a minDCF operating point, e.g. ``min_dcf_0.01``."""
    return f"min_dcf_{p_target:g}"


def min_dcf_threshold_key(p_target: float) -> str:
    """Result key of the threshold reaching :func:`min_dcf_name`'s minimum."""
    return f"min_dcf_threshold_{p_target:g}"


def actual_a_dcf_key(model: str) -> str:
    """Result key of the a-DCF at a threshold chosen on another set (dev), e.g. ``act_a_dcf[paper]``."""
    return f"act_a_dcf[{model}]"


def actual_dcf_key(p_target: float) -> str:
    """Result key of the SV DCF at a threshold chosen on another set (dev), e.g. ``act_dcf_0.01``."""
    return f"act_dcf_{p_target:g}"


def detection_costs(
    scores: Sequence[float] | np.ndarray,
    keys: Sequence[str] | np.ndarray,
    a_dcf_models: Sequence[str] = ("paper",),
    p_targets: Sequence[float] = MIN_DCF_P_TARGETS,
) -> dict[str, float | None]:
    """The minimum a-DCF and its threshold under each named cost model of ``A_DCF_COST_MODELS``
    (:func:`a_dcf_key`, :func:`a_dcf_threshold_key`) and ``min_dcf_<p>`` for each p_target, from one sort.

    These are the result keys of the recipe's JSON records; a cost whose classes are missing is ``None``.
    """
    return ranked_costs(RankedScores.of(scores, keys), a_dcf_models, p_targets)


def ranked_costs(
    ranked: RankedScores,
    a_dcf_models: Sequence[str] = ("paper",),
    p_targets: Sequence[float] = MIN_DCF_P_TARGETS,
) -> dict[str, float | None]:
    """:func:`detection_costs` of a ranked list (its sort shared with the EERs of the same list)."""
    unknown = [m for m in a_dcf_models if m not in A_DCF_COST_MODELS]
    if unknown:
        raise ValueError(f"unknown a-DCF cost model {unknown[0]!r} (known: {', '.join(A_DCF_COST_MODELS)})")
    result: dict[str, float | None] = {}
    for model in a_dcf_models:
        result.update({a_dcf_key(model): None, a_dcf_threshold_key(model): None})
    for p in p_targets:
        result.update({min_dcf_name(p): None, min_dcf_threshold_key(p): None})
    if ranked.scores.size == 0:
        return result
    thresholds, counts = _reject_counts(ranked)
    totals = counts[-1]
    for model in a_dcf_models:
        a_dcf = _a_dcf_from_counts(thresholds, counts, totals, A_DCF_COST_MODELS[model])
        if a_dcf is not None:
            result[a_dcf_key(model)], result[a_dcf_threshold_key(model)] = a_dcf.value, a_dcf.threshold
    for p in p_targets:
        dcf = _min_dcf_from_counts(thresholds, counts, totals, p, 1.0, 1.0)
        if dcf is not None:
            result[min_dcf_name(p)], result[min_dcf_threshold_key(p)] = dcf.value, dcf.threshold
    return result


def costs_at_thresholds(
    ranked: RankedScores,
    a_dcf_thresholds: dict[str, float | None],
    dcf_thresholds: dict[float, float | None],
) -> dict[str, float | None]:
    """*Actual* costs: the a-DCF of each named cost model and the SV DCF of each p_target at a given
    threshold (reject ``score <= threshold``), e.g. the one that minimised the same cost on dev. A minimum
    cost picks its threshold on the very scores it judges (an oracle); this is what a deployed system
    with a threshold set beforehand would pay. Keys :func:`actual_a_dcf_key` and :func:`actual_dcf_key`;
    ``None`` where the threshold is ``None`` or a needed class is missing. Same arithmetic as the minima,
    so at the minimising threshold of the same scores the actual cost equals the minimum."""
    ascending = ranked.scores[::-1]
    codes = ranked.codes[::-1]
    by_key = [ascending[codes == code] for code in range(len(KEYS))]
    totals = np.array([k.size for k in by_key], dtype=np.int64)

    def rejected(threshold: float) -> np.ndarray:
        counts = [np.searchsorted(k, threshold, side="right") for k in by_key]
        return np.array([counts], dtype=np.int64)

    result: dict[str, float | None] = {}
    for model, threshold in a_dcf_thresholds.items():
        cost = None
        if threshold is not None:
            cost = _a_dcf_from_counts(
                np.array([threshold]), rejected(threshold), totals, A_DCF_COST_MODELS[model]
            )
        result[actual_a_dcf_key(model)] = None if cost is None else cost.value
    for p, threshold in dcf_thresholds.items():
        cost = None
        if threshold is not None:
            cost = _min_dcf_from_counts(np.array([threshold]), rejected(threshold), totals, p, 1.0, 1.0)
        result[actual_dcf_key(p)] = None if cost is None else cost.value
    return result
