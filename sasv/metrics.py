"""Equal error rates of the SASV 2022 challenge, computed exactly like the official evaluation code.

The official EER (SASVC2022_Baseline ``metrics.py``) builds an sklearn ROC curve with labels 1/0, linearly
interpolates TPR as a function of FPR and takes the ``scipy.optimize.brentq`` root of ``1 - fpr - tpr`` on
[0, 1]. Published SASV numbers are only comparable if we follow that recipe to the last rounding, so this
module rebuilds the same ROC points (same thresholds, same dropped collinear points, same divisions) and feeds
them to the same interpolation (``interp1d`` on float64 data delegates to ``np.interp``) and root finder.
The ROC is built here instead of calling ``sklearn.metrics.roc_curve`` because the three SASV EERs can then
share one sort of the scores, which keeps a million-trial evaluation far below a second.

Missing classes: an EER whose defining classes are not all present is reported as ``None`` (never a number
computed on a different trial population). The SASV-EER is defined on target vs nontarget *and* spoof trials,
so it needs all three classes; the SV-EER needs target and nontarget, the SPF-EER target and spoof.

Beyond the challenge EERs: the minimum a-DCF of the SASV follow-up work (``min_a_dcf``, matching the authors'
``calculate_a_dcf`` to the last bit), NIST-style minDCF of the SV task (``min_dcf``), the CM-only EER over
unique test utterances (``cm_eer``) and the SPF-EER per spoofing attack (``spf_eer_by_attack``). The same
``None`` rule applies to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from sasv.protocols import KEYS, NONTARGET, SPOOF, TARGET

# EER name -> (positive class, negative classes): the official definitions of get_all_EERs.
EER_DEFINITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sasv_eer": (TARGET, (NONTARGET, SPOOF)),
    "sv_eer": (TARGET, (NONTARGET,)),
    "spf_eer": (TARGET, (SPOOF,)),
}


def require_finite(values: np.ndarray, what: str, advice: str = "fix the stage that produced them") -> None:
    """Refuse NaN/Inf with their count and first index: one bad score silently corrupts every EER."""
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what} contain {int(bad.sum())} NaN/Inf value(s) (first at index {first}); {advice}"
        )


def _as_scores(scores: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    """Return finite 1-D float64 scores; a non-finite score means a broken upstream stage, so refuse it.

    float32 -> float64 is exact and order preserving, so converting never changes the ROC.
    """
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of scores, got shape {array.shape}")
    require_finite(
        array,
        what,
        "an EER over them is meaningless: fix the stage that produced them instead of dropping trials",
    )
    return array


def key_codes(keys: Sequence[str] | np.ndarray) -> np.ndarray:
    """Map key strings to 0/1/2 (the index in ``KEYS``) so later masks are cheap integer comparisons.

    An unknown key is an error rather than a silently ignored trial (the official code would silently drop
    it from two of the three EERs but keep it in the SASV-EER labels, which misaligns the labels).
    """
    array = np.asarray(keys)
    if array.ndim != 1:
        raise ValueError(f"keys must be 1-D, got shape {array.shape}")
    codes = np.full(array.shape, -1, dtype=np.int8)
    for code, name in enumerate(KEYS):
        codes[array == name] = code
    unknown = codes < 0
    if unknown.any():
        first = int(np.flatnonzero(unknown)[0])
        raise ValueError(
            f"{int(unknown.sum())} trial key(s) are not one of {', '.join(KEYS)} "
            f"(first at index {first}: {str(array[first])!r})"
        )
    return codes


def count_keys(keys: Sequence[str] | np.ndarray) -> dict[str, int]:
    """Count trials per key (plus ``total``), so reports can show which populations an EER rests on."""
    codes = key_codes(keys)
    counts = np.bincount(codes, minlength=len(KEYS)) if codes.size else np.zeros(len(KEYS), dtype=np.int64)
    result = {name: int(counts[code]) for code, name in enumerate(KEYS)}
    result["total"] = int(codes.size)
    return result


def _roc_from_descending(sorted_scores: np.ndarray, is_positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC points of scores already sorted in descending order, identical to ``sklearn.metrics.roc_curve``.

    One point per distinct score (ties are one threshold), collinear interior points dropped the way sklearn
    drops them, and a leading (0, 0). Matching sklearn point-for-point matters because brentq's iterates, and
    so the last bits of the EER, depend on which points the interpolation sees.
    """
    n = sorted_scores.size
    last_of_run = np.flatnonzero(np.diff(sorted_scores))
    threshold_idx = np.append(last_of_run, n - 1)
    tps = np.cumsum(is_positive, dtype=np.float64)[threshold_idx]
    fps = 1.0 + threshold_idx.astype(np.float64) - tps
    if fps.size > 2:
        corner = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
        keep = np.concatenate(([True], corner, [True]))
        fps = fps[keep]
        tps = tps[keep]
    fps = np.concatenate(([0.0], fps))
    tps = np.concatenate(([0.0], tps))
    return fps / fps[-1], tps / tps[-1]


def _eer_from_roc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """The official root of 1 - FPR - TPR(FPR) on [0, 1].

    f(0) >= 0 and f(1) = -1, so the bracket is always valid; f(0) == 0 (perfect separation) returns 0.
    """
    return float(brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0))


def _eer_sorted(sorted_scores: np.ndarray, is_positive: np.ndarray) -> float:
    return _eer_from_roc(*_roc_from_descending(sorted_scores, is_positive))


def compute_eer(
    target_scores: Sequence[float] | np.ndarray, nontarget_scores: Sequence[float] | np.ndarray
) -> float:
    """EER (a fraction in [0, 1]) of positives vs negatives, bit-compatible with the SASV 2022 evaluation.

    Higher scores must mean "more likely positive". Raises ``ValueError`` for an empty class or non-finite
    scores, because either would otherwise yield a number that looks valid but is not.
    """
    positives = _as_scores(target_scores, "target scores")
    negatives = _as_scores(nontarget_scores, "nontarget scores")
    if positives.size == 0 or negatives.size == 0:
        raise ValueError(
            f"an EER needs both classes: got {positives.size} target and {negatives.size} nontarget scores"
        )
    scores = np.concatenate((positives, negatives))
    labels = np.concatenate((np.ones(positives.size, dtype=bool), np.zeros(negatives.size, dtype=bool)))
    order = np.argsort(-scores)
    return _eer_sorted(scores[order], labels[order])


def sasv_eers(
    scores: Sequence[float] | np.ndarray, keys: Sequence[str] | np.ndarray
) -> dict[str, float | None]:
    """SASV-, SV- and SPF-EER (fractions) of one score list, as ``get_all_EERs`` of the SASV 2022 baseline.

    Returns ``{'sasv_eer', 'sv_eer', 'spf_eer'}``; an EER whose classes are not all present is ``None`` (see
    the module docstring), so a caller has to decide how to show it instead of printing a wrong number.
    All three EERs reuse one descending sort of the scores: a subset of a sorted array is still sorted.
    """
    values = _as_scores(scores, "scores")
    codes = key_codes(keys)
    if codes.size != values.size:
        raise ValueError(f"{values.size} scores but {codes.size} keys: they must describe the same trials")
    present = set(np.unique(codes).tolist())
    order = np.argsort(-values)
    sorted_scores = values[order]
    sorted_codes = codes[order]
    result: dict[str, float | None] = {}
    for name, (positive, negatives) in EER_DEFINITIONS.items():
        needed = [KEYS.index(positive), *(KEYS.index(k) for k in negatives)]
        if not all(code in present for code in needed):
            result[name] = None
            continue
        is_positive = sorted_codes == needed[0]
        if len(needed) == len(KEYS):
            result[name] = _eer_sorted(sorted_scores, is_positive)
        else:
            used = np.isin(sorted_codes, needed)
            result[name] = _eer_sorted(sorted_scores[used], is_positive[used])
    return result


# ------------------------------------------------------------------------------------------ detection costs
#
# The EERs above are threshold-free summaries at one operating point; the SASV follow-up work (a-DCF,
# ASVspoof 5) and NIST SRE report *costs* at application-defined priors instead. Both are minimum costs
# over thresholds with the rule "reject a trial whose score is <= threshold, accept it otherwise", so they
# share one ascending sort and one cumulative count of rejected trials per key.


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
# NIST-style SV operating points of the recipe's tables: minDCF at these target priors, Cmiss = Cfa = 1.
MIN_DCF_P_TARGETS: tuple[float, ...] = (0.01, 0.05)


@dataclass(frozen=True)
class MinCost:
    """A minimum normalised detection cost and the threshold reaching it (reject ``score <= threshold``)."""

    value: float
    threshold: float


def _reject_counts(values: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds and per-key counts of rejected trials for every distinct operating point, ascending.

    Row 0 is the accept-everything state, with the threshold ``min(score) - 1e-8`` used by the official
    a-DCF code; row i > 0 rejects every trial scoring <= the i-th distinct score, which is its threshold.
    Operating points inside a run of tied scores are not reachable by any threshold, so they are skipped
    (the official a-DCF walk visits them too, but targets-first within a tie, so they never win; see the
    golden fixtures' README). Returns ``(thresholds (m,), counts (m, 3))`` with columns in ``KEYS`` order.
    """
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    sorted_codes = codes[order]
    run_ends = np.append(np.flatnonzero(np.diff(sorted_values)), sorted_values.size - 1)
    counts = np.zeros((run_ends.size + 1, len(KEYS)), dtype=np.int64)
    for code in range(len(KEYS)):
        counts[1:, code] = np.cumsum(sorted_codes == code, dtype=np.int64)[run_ends]
    thresholds = np.concatenate(([float(sorted_values[0]) - 1e-8], sorted_values[run_ends]))
    return thresholds, counts


def _checked(
    scores: Sequence[float] | np.ndarray, keys: Sequence[str] | np.ndarray
) -> tuple[np.ndarray, ...]:
    values = _as_scores(scores, "scores")
    codes = key_codes(keys)
    if codes.size != values.size:
        raise ValueError(f"{values.size} scores but {codes.size} keys: they must describe the same trials")
    return values, codes


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
    values, codes = _checked(scores, keys)
    if values.size == 0:
        return None
    thresholds, counts = _reject_counts(values, codes)
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
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    values, codes = _checked(scores, keys)
    if values.size == 0:
        return None
    thresholds, counts = _reject_counts(values, codes)
    return _min_dcf_from_counts(thresholds, counts, counts[-1], p_target, c_miss, c_fa)


def min_dcf_name(p_target: float) -> str:
    """Result key of a minDCF operating point, e.g. ``min_dcf_0.01``."""
    return f"min_dcf_{p_target:g}"


def detection_costs(
    scores: Sequence[float] | np.ndarray,
    keys: Sequence[str] | np.ndarray,
    cost: ADCFCostModel = DEFAULT_A_DCF_COST,
    p_targets: Sequence[float] = MIN_DCF_P_TARGETS,
) -> dict[str, float | None]:
    """``min_a_dcf``, ``min_a_dcf_threshold`` and ``min_dcf_<p>`` for each p_target, from one sort.

    These are the result keys of the recipe's JSON records; a cost whose classes are missing is ``None``.
    """
    values, codes = _checked(scores, keys)
    result: dict[str, float | None] = {"min_a_dcf": None, "min_a_dcf_threshold": None}
    result.update({min_dcf_name(p): None for p in p_targets})
    if values.size == 0:
        return result
    thresholds, counts = _reject_counts(values, codes)
    totals = counts[-1]
    a_dcf = _a_dcf_from_counts(thresholds, counts, totals, cost)
    if a_dcf is not None:
        result["min_a_dcf"], result["min_a_dcf_threshold"] = a_dcf.value, a_dcf.threshold
    for p in p_targets:
        dcf = _min_dcf_from_counts(thresholds, counts, totals, p, 1.0, 1.0)
        result[min_dcf_name(p)] = None if dcf is None else dcf.value
    return result


# ------------------------------------------------------------------------------------ CM and per-attack EERs


def cm_eer(
    utts: Sequence[str] | np.ndarray,
    keys: Sequence[str] | np.ndarray,
    cm_scores: Sequence[float] | np.ndarray,
) -> float | None:
    """EER of the countermeasure alone: bona fide vs spoofed *test utterances*, higher CM score = bona fide.

    The trial list repeats a test utterance once per claimed speaker, so the CM is scored once per unique
    test utterance (a trial-level EER would weight utterances by how many trials they appear in). An
    utterance is bona fide when its trials are target/nontarget, spoofed when they are spoof; an utterance
    with both kinds, or with different CM scores in different trials, is an error (the CM score does not
    depend on the claimed speaker). The population is the SASV trial list's test utterances, not the
    ASVspoof 2019 LA CM protocol, so the value is close to but not the official LA CM EER. ``None`` when
    either class is absent.
    """
    utts = np.asarray(utts, dtype=str)
    values = _as_scores(cm_scores, "CM scores")
    codes = key_codes(keys)
    if not utts.shape == values.shape == codes.shape:
        raise ValueError(
            f"utts {utts.shape}, keys {codes.shape} and CM scores {values.shape} differ in length"
        )
    if utts.size == 0:
        return None
    _, first, inverse = np.unique(utts, return_index=True, return_inverse=True)
    is_spoof = codes == KEYS.index(SPOOF)
    for what, column in (("both bona fide and spoof trials", is_spoof), ("different CM scores", values)):
        bad = column[first][inverse] != column
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            raise ValueError(f"test utterance {str(utts[at])!r} has {what} (first conflict at trial {at})")
    utt_scores, utt_spoof = values[first], is_spoof[first]
    if utt_spoof.all() or not utt_spoof.any():
        return None
    return compute_eer(utt_scores[~utt_spoof], utt_scores[utt_spoof])


def spf_eer_by_attack(
    scores: Sequence[float] | np.ndarray,
    keys: Sequence[str] | np.ndarray,
    attacks: Sequence[str] | np.ndarray,
) -> dict[str, float | None]:
    """SPF-EER (target vs spoof trials) separately for each attack id of the spoof trials (A01..A19).

    Averages hide that a few attacks (A17, A18 in LA eval) dominate the errors; the breakdown shows which.
    Keys are the attack ids sorted; a value is ``None`` when there are no target trials. One shared sort.
    """
    values, codes = _checked(scores, keys)
    attacks = np.asarray(attacks, dtype=str)
    if attacks.shape != codes.shape:
        raise ValueError(
            f"{attacks.size} attack ids but {codes.size} keys: they must describe the same trials"
        )
    is_spoof = codes == KEYS.index(SPOOF)
    names = sorted(np.unique(attacks[is_spoof]).tolist())
    if not (codes == KEYS.index(TARGET)).any():
        return dict.fromkeys(names)
    order = np.argsort(-values)
    sorted_values, sorted_codes, sorted_attacks = values[order], codes[order], attacks[order]
    is_target = sorted_codes == KEYS.index(TARGET)
    sorted_spoof = sorted_codes == KEYS.index(SPOOF)
    result: dict[str, float | None] = {}
    for name in names:
        used = is_target | (sorted_spoof & (sorted_attacks == name))
        result[name] = _eer_sorted(sorted_values[used], is_target[used])
    return result
