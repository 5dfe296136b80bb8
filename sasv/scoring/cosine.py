"""ASV cosine scoring and ASV/CM score fusion, numerically following the reference system (DoubleRoc).

The reference averages the 6 embedding rows of every utterance (optionally L2-normalising each row first),
averages all rows of all enrolment utterances of a speaker, scores trials with
``torch.nn.CosineSimilarity(dim=1, eps=1e-6)`` and fuses with the AASIST bona fide probability as
``softmax1 * (cos + 1) / 2``, all in float32. Results here are float32 whenever the inputs are, so that the
tie structure of the fused scores (which the EER sees) is the reference's; intermediate quantities that decide
the value (norms, dot products) are computed in float64 and rounded once. Everything is vectorised over
trials.
Score lists and their files are :mod:`sasv.scoring.score_files`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sasv.metrics.eer import require_finite

NORMS: tuple[str, str] = ("nonorm", "l2norm")
# How a trial's ASV and CM scores become its SASV score: the score rule. Its option (``--fusion``) and its
# results.json key ("fusion") keep the reference's word, so users' commands and records stay as they were;
# in the code "fusion" means the learned fusion of several systems (sasv.scoring.learned_fusion) only.
SCORE_RULES: tuple[str, str] = ("product", "sum")

# torch.nn.functional.normalize default eps; the reference's per-row normalisation used it.
ROW_NORM_EPS = 1e-12
# torch.nn.CosineSimilarity eps of the reference scoring script.
COSINE_EPS = 1e-6
# A BLAS matrix product is ~an order of magnitude cheaper per cell than gathering two rows per trial, so the
# full (speakers x utterances) matrix is built when it has at most this many cells per trial, and at most
# _MAX_MATRIX_CELLS float64 cells (256 MiB) in all.
_MATRIX_ADVANTAGE = 16
_MAX_MATRIX_CELLS = 1 << 25
# trials (and test vectors) per chunk of the row-wise path: two 8192 x 512 float64 blocks are 64 MiB
_ROW_CHUNK = 1 << 13


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"unknown embedding norm {norm!r}; expected one of {', '.join(NORMS)}")


def normalize_rows(rows: np.ndarray, eps: float = ROW_NORM_EPS) -> np.ndarray:
    """Divide each row by max(||row||, eps) in the rows' dtype, like ``torch.nn.functional.normalize``.

    The norm is taken in float64 and rounded to the row dtype, then divided in that dtype, which is what a
    float32 torch pipeline does up to its summation order.
    """
    rows = np.asarray(rows)
    dtype = rows.dtype if np.issubdtype(rows.dtype, np.floating) else np.dtype(np.float32)
    wide = rows.astype(np.float64)
    norms = np.sqrt(np.einsum("...i,...i->...", wide, wide))[..., None]
    return rows.astype(dtype) / np.maximum(norms, eps).astype(dtype)


def utterance_vector(rows: np.ndarray, norm: str) -> np.ndarray:
    """One test-utterance vector from its (R, D) embedding rows (R = 6 in the reference protocol).

    'nonorm' is the float32 mean of the rows; 'l2norm' first scales every row to unit length, so that each
    segment votes equally regardless of its embedding norm.
    """
    _check_norm(norm)
    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ValueError(f"expected a non-empty (rows, dim) array of embeddings, got shape {rows.shape}")
    if norm == "l2norm":
        rows = normalize_rows(rows)
    return rows.mean(axis=0)


def speaker_model(rows_per_utt: Sequence[np.ndarray], norm: str) -> np.ndarray:
    """Enrolment vector: the mean over *all rows* of all enrolment utterances, not a mean of utterance means.

    This matches the reference (rows concatenated, then averaged), which weights utterances by their number of
    rows; with the 6-row protocol every utterance weighs the same anyway.
    """
    _check_norm(norm)
    if len(rows_per_utt) == 0:
        raise ValueError("a speaker model needs at least one enrolment utterance")
    return utterance_vector(np.concatenate([np.asarray(r, dtype=np.float32) for r in rows_per_utt]), norm)


def cosine_scores(
    enrol: np.ndarray, test: np.ndarray, spk_idx: np.ndarray, utt_idx: np.ndarray
) -> np.ndarray:
    """Cosine of trials (enrol[spk_idx[t]], test[utt_idx[t]]) as torch 2.x ``CosineSimilarity(eps=1e-6)``.

    torch divides each vector by max(||x||, eps) separately and sums the products, so a zero vector scores 0
    and vectors shorter than eps are not rescaled to unit length; that is reproduced here. Each vector is
    normalised once; trials are scored with one (speakers x utterances) matrix product when that matrix is
    small relative to the trial list (the usual SASV case: few speakers, many trials per speaker), otherwise
    with chunked row-wise dot products. Returns float32 for float32 embeddings (like torch), else float64.
    """
    enrol = np.asarray(enrol)
    test = np.asarray(test)
    spk_idx = np.asarray(spk_idx, dtype=np.intp)
    utt_idx = np.asarray(utt_idx, dtype=np.intp)
    if enrol.ndim != 2 or test.ndim != 2 or enrol.shape[1] != test.shape[1]:
        raise ValueError(f"enrol {enrol.shape} and test {test.shape} must be (n, dim) with the same dim")
    if spk_idx.shape != utt_idx.shape or spk_idx.ndim != 1:
        raise ValueError(f"spk_idx {spk_idx.shape} and utt_idx {utt_idx.shape} must be equal-length 1-D")
    for name, idx, size in (("spk_idx", spk_idx, enrol.shape[0]), ("utt_idx", utt_idx, test.shape[0])):
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            raise ValueError(f"{name} has indices outside [0, {size})")
    out_dtype = np.result_type(enrol.dtype, test.dtype, np.float32)
    e = _scaled(enrol)
    n_trials = spk_idx.size
    cells = e.shape[0] * test.shape[0]
    if cells <= _MATRIX_ADVANTAGE * max(n_trials, 1) and cells <= _MAX_MATRIX_CELLS:
        u = _scaled(test)
        scores = np.take((e @ u.T).ravel(), spk_idx * u.shape[0] + utt_idx)
    else:
        # the test vectors are scaled chunk by chunk (a float64 copy of all of them would be twice their
        # size: 2.8 GB for ASVspoof 5 eval at 512-d); the same per-row operations as _scaled
        norms = np.concatenate(
            [_norms(test[start : start + _ROW_CHUNK]) for start in range(0, test.shape[0], _ROW_CHUNK)]
        )
        scores = np.empty(n_trials, dtype=np.float64)
        for start in range(0, n_trials, _ROW_CHUNK):
            chunk = slice(start, start + _ROW_CHUNK)
            utts = utt_idx[chunk]
            u = test[utts].astype(np.float64) / np.maximum(norms[utts], COSINE_EPS)[:, None]
            scores[chunk] = np.einsum("ij,ij->i", e[spk_idx[chunk]], u)
    return scores.astype(out_dtype)


def _norms(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", vectors, vectors))


def _scaled(vectors: np.ndarray) -> np.ndarray:
    return vectors.astype(np.float64) / np.maximum(_norms(vectors)[:, None], COSINE_EPS)


def fuse_scores(asv_cos: np.ndarray, cm_prob: np.ndarray, rule: str = "product") -> np.ndarray:
    """Combine an ASV cosine and a CM bona fide probability into one SASV score per trial.

    'product' (the reference rule) = cm_prob * (cos + 1) / 2: both factors in [0, 1], so a trial needs to be
    both the right speaker and bona fide to score high. 'sum' = cos + cm_prob (the earlier DoubleRoc script).
    Computed in the inputs' common float dtype with the reference's operation order, so float32 inputs give
    the reference's float32 values. Non-finite inputs are rejected: they would corrupt every EER silently.
    """
    if rule not in SCORE_RULES:
        raise ValueError(f"unknown score rule {rule!r}; expected one of {', '.join(SCORE_RULES)}")
    asv_cos = np.asarray(asv_cos)
    cm_prob = np.asarray(cm_prob)
    if asv_cos.ndim != 1 or asv_cos.shape != cm_prob.shape:
        raise ValueError(f"ASV scores {asv_cos.shape} and CM scores {cm_prob.shape} must be equal-length 1-D")
    require_finite(asv_cos, "ASV cosine scores")
    require_finite(cm_prob, "CM scores")
    dtype = np.result_type(asv_cos.dtype, cm_prob.dtype, np.float32)
    asv_cos = asv_cos.astype(dtype, copy=False)
    cm_prob = cm_prob.astype(dtype, copy=False)
    if rule == "product":
        return cm_prob * ((asv_cos + dtype.type(1)) / dtype.type(2))
    return asv_cos + cm_prob


# ----------------------------------------------------------------------------------------------- score files
