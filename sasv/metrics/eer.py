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

Beyond the challenge EERs: the CM-only EER over unique test utterances (``cm_eer``, the ASVspoof scorers'
EER of :mod:`sasv.metrics.cm`, as published CM-EERs are) and the SPF-EER per spoofing attack
(``spf_eer_by_attack``), with the same ``None`` rule. Detection costs (a-DCF, minDCF) are
in :mod:`sasv.metrics.detection_costs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from sasv.corpora.protocols import KEYS, NONTARGET, SPOOF, TARGET
from sasv.metrics.cm import asvspoof_eer

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


def as_scores(scores: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
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
    return count_codes(key_codes(keys))


def count_codes(codes: np.ndarray) -> dict[str, int]:
    """:func:`count_keys` of key codes already checked by :func:`key_codes`."""
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
    positives = as_scores(target_scores, "target scores")
    negatives = as_scores(nontarget_scores, "nontarget scores")
    if positives.size == 0 or negatives.size == 0:
        raise ValueError(
            f"an EER needs both classes: got {positives.size} target and {negatives.size} nontarget scores"
        )
    scores = np.concatenate((positives, negatives))
    labels = np.concatenate((np.ones(positives.size, dtype=bool), np.zeros(negatives.size, dtype=bool)))
    order = np.argsort(-scores)
    return _eer_sorted(scores[order], labels[order])


@dataclass(frozen=True, eq=False)
class RankedScores:
    """One score list sorted once, highest score first, with its key codes in the same order.

    Sorting is the only super-linear step of the metrics: the three EERs (:func:`ranked_eers`) and every
    detection cost (:func:`sasv.metrics.detection_costs.ranked_costs`) of a list are read off this one sort.
    The order within a run of tied scores is unspecified; no metric depends on it (each counts trials at the
    ends of runs only).
    """

    scores: np.ndarray
    codes: np.ndarray

    @classmethod
    def of(cls, scores: Sequence[float] | np.ndarray, keys: Sequence[str] | np.ndarray) -> RankedScores:
        """Check scores and keys (:func:`scores_and_codes`) and sort them."""
        return cls.of_codes(*scores_and_codes(scores, keys))

    @classmethod
    def of_codes(cls, values: np.ndarray, codes: np.ndarray) -> RankedScores:
        """Sort finite float64 scores and their key codes, both already checked."""
        order = np.argsort(-values)
        return cls(values[order], codes[order])


def sasv_eers(
    scores: Sequence[float] | np.ndarray, keys: Sequence[str] | np.ndarray
) -> dict[str, float | None]:
    """SASV-, SV- and SPF-EER (fractions) of one score list, as ``get_all_EERs`` of the SASV 2022 baseline.

    Returns ``{'sasv_eer', 'sv_eer', 'spf_eer'}``; an EER whose classes are not all present is ``None`` (see
    the module docstring), so a caller has to decide how to show it instead of printing a wrong number.
    """
    return ranked_eers(RankedScores.of(scores, keys))


def ranked_eers(ranked: RankedScores) -> dict[str, float | None]:
    """:func:`sasv_eers` of a ranked list: all three EERs reuse its sort (a subset of a sorted array is
    still sorted)."""
    sorted_scores, sorted_codes = ranked.scores, ranked.codes
    present = set(np.unique(sorted_codes).tolist())
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


def scores_and_codes(
    scores: Sequence[float] | np.ndarray, keys: Sequence[str] | np.ndarray
) -> tuple[np.ndarray, ...]:
    """Finite float64 scores and their key codes, checked to describe the same trials."""
    values = as_scores(scores, "scores")
    codes = key_codes(keys)
    if codes.size != values.size:
        raise ValueError(f"{values.size} scores but {codes.size} keys: they must describe the same trials")
    return values, codes


# ------------------------------------------------------------------------------------ CM and per-attack EERs


def cm_utterance_scores(
    utts: Sequence[str] | np.ndarray,
    keys: Sequence[str] | np.ndarray,
    cm_scores: Sequence[float] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CM score of each unique test utterance of a trial list: (utterances, scores, is_spoof), in the
    order of the utterances' first trials.

    The trial list repeats a test utterance once per claimed speaker, so a CM metric counts each test
    utterance once (a trial-level metric would weight utterances by how many trials they appear in). An
    utterance is bona fide when its trials are target/nontarget, spoofed when they are spoof; an utterance
    with both kinds, or with different CM scores in different trials, is an error (the CM score does not
    depend on the claimed speaker).
    """
    utts = np.asarray(utts, dtype=str)
    values = as_scores(cm_scores, "CM scores")
    codes = key_codes(keys)
    if not utts.shape == values.shape == codes.shape:
        raise ValueError(
            f"utts {utts.shape}, keys {codes.shape} and CM scores {values.shape} differ in length"
        )
    _, first, inverse = np.unique(utts, return_index=True, return_inverse=True)
    is_spoof = codes == KEYS.index(SPOOF)
    for what, column in (("both bona fide and spoof trials", is_spoof), ("different CM scores", values)):
        bad = column[first][inverse] != column
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            raise ValueError(f"test utterance {str(utts[at])!r} has {what} (first conflict at trial {at})")
    first = np.sort(first)
    return utts[first], values[first], is_spoof[first]


def cm_eer(
    utts: Sequence[str] | np.ndarray,
    keys: Sequence[str] | np.ndarray,
    cm_scores: Sequence[float] | np.ndarray,
) -> float | None:
    """EER of the countermeasure alone: bona fide vs spoofed *test utterances* (each once,
    :func:`cm_utterance_scores`), higher CM score = bona fide, computed as the ASVspoof scorers compute a
    CM's EER (:func:`sasv.metrics.cm.asvspoof_eer`: the DET point where the two rates are nearest), so it
    is comparable with published CM-EERs. The population is the SASV trial list's test utterances, not the
    ASVspoof 2019 LA CM protocol, so the value is close to but not the official LA CM EER. ``None`` when
    either class is absent.
    """
    _, scores, is_spoof = cm_utterance_scores(utts, keys, cm_scores)
    if is_spoof.all() or not is_spoof.any():
        return None
    return asvspoof_eer(scores[~is_spoof], scores[is_spoof])


def spf_eer_by_attack(
    scores: Sequence[float] | np.ndarray,
    keys: Sequence[str] | np.ndarray,
    attacks: Sequence[str] | np.ndarray,
) -> dict[str, float | None]:
    """SPF-EER (target vs spoof trials) separately for each attack id of the spoof trials (A01..A19).

    Averages hide that a few attacks (A17, A18 in LA eval) dominate the errors; the breakdown shows which.
    Keys are the attack ids sorted; a value is ``None`` when there are no target trials. One shared sort.
    """
    values, codes = scores_and_codes(scores, keys)
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
