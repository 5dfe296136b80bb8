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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import brentq

TARGET = "target"
NONTARGET = "nontarget"
SPOOF = "spoof"
KEYS: tuple[str, str, str] = (TARGET, NONTARGET, SPOOF)

# EER name -> (positive class, negative classes): the official definitions of get_all_EERs.
EER_DEFINITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sasv_eer": (TARGET, (NONTARGET, SPOOF)),
    "sv_eer": (TARGET, (NONTARGET,)),
    "spf_eer": (TARGET, (SPOOF,)),
}


def _as_scores(scores: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    """Return finite 1-D float64 scores; a non-finite score means a broken upstream stage, so refuse it.

    float32 -> float64 is exact and order preserving, so converting never changes the ROC.
    """
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of scores, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what} contain {int(bad.sum())} NaN/Inf value(s) (first at index {first}); "
            "an EER over them is meaningless: fix the stage that produced them instead of dropping trials"
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
