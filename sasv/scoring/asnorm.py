"""Adaptive symmetric score normalisation (AS-norm) of cosine ASV scores against an imposter cohort.

Raw cosine scores are not comparable across speakers and test utterances: some speaker models score high
against everybody. AS-norm (Matejka et al., Interspeech 2017; "AS-norm1" / adaptive S-norm) standardises
each trial score by the statistics of the top-K cohort scores of both sides,

    s' = 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t),

where mu_e, sd_e are the mean and standard deviation of the K highest cosines between the enrolment model
and the cohort, and mu_t, sd_t the same for the test utterance. Taking only the top K ("adaptive") keeps
the statistics about the imposters that actually compete with the trial.

Cohort: one vector per bona fide utterance of the ASVspoof 2019 LA *train* speakers, built exactly like the
test vectors (same embedding rows, same ``nonorm``/``l2norm`` recipe,
:func:`sasv.scoring.cosine.utterance_vector`). Per utterance rather than per speaker because LA train has only
20 speakers (2,580 bona fide utterances): 20 speaker means would make a top-K of any useful size the whole
cohort, i.e. plain S-norm. The train speakers are disjoint from the dev and eval speakers, so no trial side
can find itself in the cohort and no self-exclusion is needed. ``top_k`` defaults to ``DEFAULT_TOP_K`` (300, a
common choice for cohorts of a few thousand); it has not been tuned on LA dev. A cohort smaller than ``top_k``
(the mini corpus has a few dozen utterances) is used whole: :func:`effective_top_k` caps K at the cohort size,
which is what a top-K of a larger cohort would approach, rather than stopping a run whose default simply does
not fit; a K below 2 is an error, since one score has no spread.

Everything is vectorised: the cohort statistics of every enrolment model and every test utterance come
from chunked matrix products (each chunk at most ``_CHUNK_CELLS`` cosines) and ``np.partition`` top-K
selection, and are computed once per model/utterance, not once per trial. Statistics use the population
standard deviation (ddof 0). Cosines follow :func:`sasv.scoring.cosine.cosine_scores` (torch eps semantics),
in float64; the result is float64.
"""

from __future__ import annotations

import numpy as np

from sasv.errors import SasvError
from sasv.scoring.cosine import COSINE_EPS, cosine_scores

DEFAULT_TOP_K = 300
MIN_TOP_K = 2  # the statistics need a spread
_CHUNK_CELLS = 1 << 22  # 32 MiB of float64 cosines per chunk
# A cohort standard deviation this small means degenerate vectors (e.g. all-zero embeddings); dividing by
# it would produce huge scores that look valid, so it is an error instead.
_MIN_STD = 1e-12


class AsNormError(SasvError, ValueError):
    """An AS-norm setting that cannot work: a top-K below 2, or a cohort of fewer than 2 utterances."""


def check_top_k(top_k: int) -> int:
    """``top_k`` if it can be a top-K of cohort scores (>= :data:`MIN_TOP_K`), else :class:`AsNormError`."""
    if top_k < MIN_TOP_K:
        raise AsNormError(
            f"--top_k {top_k}: AS-norm averages the K highest cohort scores and needs their spread, so K "
            f"must be at least {MIN_TOP_K} (default {DEFAULT_TOP_K})"
        )
    return top_k


def effective_top_k(top_k: int, n_cohort: int, cohort: str = "the cohort") -> int:
    """The K that AS-norm uses with a cohort of ``n_cohort`` utterances: ``top_k`` (checked by
    :func:`check_top_k`), capped at the cohort size (the caller says so in its log); a cohort of fewer than
    :data:`MIN_TOP_K` utterances is an :class:`AsNormError` naming ``cohort``."""
    check_top_k(top_k)
    if n_cohort < MIN_TOP_K:
        raise AsNormError(
            f"{cohort}: {n_cohort} cohort utterance(s); AS-norm needs at least {MIN_TOP_K} (their scores' "
            "spread)"
        )
    return min(top_k, n_cohort)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))[:, None]
    return vectors / np.maximum(norms, COSINE_EPS)


def top_k_stats(vectors: np.ndarray, cohort: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the ``top_k`` highest cosines of each row of ``vectors`` with the
    cohort, as two (n,) arrays. Rows are processed in chunks so memory stays bounded for 70k test rows."""
    unit_cohort = _unit_rows(cohort)
    n_cohort = unit_cohort.shape[0]
    if not 1 <= top_k <= n_cohort:
        raise ValueError(f"top_k must be in [1, {n_cohort}] (the cohort size), got {top_k}")
    unit = _unit_rows(vectors)
    mean = np.empty(unit.shape[0])
    std = np.empty(unit.shape[0])
    step = max(1, _CHUNK_CELLS // n_cohort)
    for start in range(0, unit.shape[0], step):
        cos = unit[start : start + step] @ unit_cohort.T
        top = np.partition(cos, n_cohort - top_k, axis=1)[:, n_cohort - top_k :]
        mean[start : start + step] = top.mean(axis=1)
        std[start : start + step] = top.std(axis=1)
    return mean, std


def as_norm(
    enrol_vecs: np.ndarray,
    test_vecs: np.ndarray,
    cohort_vecs: np.ndarray,
    spk_idx: np.ndarray,
    utt_idx: np.ndarray,
    top_k: int = DEFAULT_TOP_K,
) -> np.ndarray:
    """AS-norm scores (float64) of trials (enrol_vecs[spk_idx[t]], test_vecs[utt_idx[t]]).

    Arguments are those of :func:`sasv.scoring.cosine.cosine_scores` plus the (n_cohort, dim) cohort vectors
    (see the module docstring for what they should be) and ``top_k`` (>= 2: one score has no spread).
    """
    enrol = np.asarray(enrol_vecs, dtype=np.float64)
    test = np.asarray(test_vecs, dtype=np.float64)
    cohort = np.asarray(cohort_vecs, dtype=np.float64)
    if cohort.ndim != 2 or cohort.shape[1] != enrol.shape[-1]:
        raise ValueError(f"cohort {cohort.shape} must be (n, dim) with the embeddings' dim {enrol.shape[-1]}")
    if top_k < 2:
        raise ValueError(f"top_k must be at least 2 (a standard deviation needs two scores), got {top_k}")
    if not (np.isfinite(cohort).all() and np.isfinite(enrol).all() and np.isfinite(test).all()):
        raise ValueError("enrolment, test and cohort vectors must be finite")
    raw = cosine_scores(enrol, test, spk_idx, utt_idx)  # validates shapes and indices
    spk_idx = np.asarray(spk_idx, dtype=np.intp)
    utt_idx = np.asarray(utt_idx, dtype=np.intp)
    mu_e, sd_e = top_k_stats(enrol, cohort, top_k)
    mu_t, sd_t = top_k_stats(test, cohort, top_k)
    for what, sd in (("enrolment model", sd_e), ("test utterance", sd_t)):
        bad = sd < _MIN_STD
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} {what}(s) have a zero-spread top-{top_k} cohort (first: row "
                f"{int(np.flatnonzero(bad)[0])}); the cohort or the vectors are degenerate"
            )
    return 0.5 * ((raw - mu_e[spk_idx]) / sd_e[spk_idx] + (raw - mu_t[utt_idx]) / sd_t[utt_idx])
