"""Scoring one SASV system (ASV embeddings x CM scores) on the trials of one data dir.

This is the glue between the stored stage outputs and :mod:`sasv.scoring.cosine` / :mod:`sasv.metrics.eer`: it
turns trials into index arrays over speakers and test utterances, so scoring is one vectorised pass, and it
refuses to score a trial whose embedding or CM score is missing instead of dropping it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import expit

from sasv.corpora.datadir import DataDir, DataDirError
from sasv.corpora.protocols import offenders
from sasv.exp_layout import DEFAULT_SCORE_RULE
from sasv.extraction.outputs import EmbeddingArchive
from sasv.scoring.asnorm import DEFAULT_TOP_K, as_norm
from sasv.scoring.cosine import (
    NORMS,
    cosine_scores,
    fuse_scores,
    normalize_rows,
    speaker_model,
    utterance_vector,
)
from sasv.scoring.score_files import TrialScores

# utterances per block in utterance_vectors: 256 x 6 x 256 float64 values are ~3 MB, about one L2 cache
_VECTOR_BLOCK = 256


class MissingScoresError(DataDirError):
    """Stage outputs do not cover every trial of a data dir (an incomplete or stale earlier stage)."""


def _require(available: Mapping[str, object], needed: list[str], what: str, source: str) -> None:
    missing = sorted({u for u in needed if u not in available})
    if missing:
        raise MissingScoresError(
            f"{len(missing)} {what} missing from {source}: {offenders(missing)} (re-run the stage that "
            f"writes it for this data dir)"
        )


def utterance_vectors(rows_per_utt: Sequence[np.ndarray], norm: str) -> np.ndarray:
    """:func:`sasv.scoring.cosine.utterance_vector` of every utterance, stacked into (n, D), with the same
    values.

    With the 6-row protocol every utterance has the same (rows, D) shape, and the per-row normalisation and
    the mean over rows run vectorised over blocks of :data:`_VECTOR_BLOCK` utterances: a Python call per
    utterance was half the time of scoring a million trials, and blocks keep the float64 norms in cache (one
    block of 10^5 utterances is slower than the loop). Both reduce the rows in the same order, so the result
    is bit-identical (tests/scoring/test_evaluate_vectorised.py); other shapes fall back to the per-utterance
    call.
    """
    rows = [np.asarray(r, dtype=np.float32) for r in rows_per_utt]
    shape = rows[0].shape if rows else None
    if (
        norm not in NORMS
        or shape is None
        or len(shape) != 2
        or shape[0] == 0
        or any(r.shape != shape for r in rows)
    ):
        return np.stack([utterance_vector(r, norm) for r in rows])  # (no rows: numpy's error, as before)
    out = np.empty((len(rows), shape[1]), dtype=np.float32)
    for start in range(0, len(rows), _VECTOR_BLOCK):
        block = np.stack(rows[start : start + _VECTOR_BLOCK])
        if norm == "l2norm":
            block = normalize_rows(block)
        out[start : start + len(block)] = block.mean(axis=1)
    return out


def scoring_vectors(
    embeddings: Mapping[str, np.ndarray] | EmbeddingArchive,
    speakers: Sequence[str],
    enroll: Mapping[str, Sequence[str]],
    test_utts: Sequence[str],
    norm: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Speaker models (one per speaker, in order) and test-utterance vectors (one per test utterance, in
    order) from one pass over ``embeddings``: only the enrolment rows and one vector per test utterance are
    kept, so an :class:`~sasv.extraction.outputs.EmbeddingArchive` is streamed in bounded memory (the six rows
    of a test utterance are dropped as soon as its block of :data:`_VECTOR_BLOCK` vectors is made). The values
    are those of :func:`speaker_model` and :func:`utterance_vectors` on the whole set: each vector depends on
    its own rows only.
    """
    enrol_wanted = {u for s in speakers for u in enroll[s]}
    test_pos = {u: i for i, u in enumerate(test_utts)}
    enrol_rows: dict[str, np.ndarray] = {}
    test: np.ndarray | None = None
    block_rows: list[np.ndarray] = []
    block_pos: list[int] = []

    def add_block() -> None:
        nonlocal test
        vectors = utterance_vectors(block_rows, norm)
        if test is None:
            test = np.empty((len(test_utts), vectors.shape[1]), dtype=np.float32)
        test[block_pos] = vectors
        block_rows.clear()
        block_pos.clear()

    if isinstance(embeddings, EmbeddingArchive):
        stream = embeddings.rows(enrol_wanted | test_pos.keys())
    else:
        stream = ((u, embeddings[u]) for u in [*test_utts, *sorted(enrol_wanted - test_pos.keys())])
    for utt, rows in stream:
        if utt in enrol_wanted:
            enrol_rows[utt] = rows
        pos = test_pos.get(utt)
        if pos is not None:
            block_rows.append(rows)
            block_pos.append(pos)
            if len(block_rows) == _VECTOR_BLOCK:
                add_block()
    if block_rows or test is None:
        add_block()
    models = np.stack([speaker_model([enrol_rows[u] for u in enroll[s]], norm) for s in speakers])
    return models, test


def compute_trial_scores(
    data: DataDir,
    embeddings: Mapping[str, np.ndarray] | EmbeddingArchive,
    cm_scores: Mapping[str, float],
    norm: str,
    score_rule: str = DEFAULT_SCORE_RULE,
    emb_source: str = "embeddings",
    cm_source: str = "CM scores",
    cohort: Mapping[str, np.ndarray] | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> TrialScores:
    """ASV score, CM P(bona fide) and fused score for every trial of ``data``, in trial order.

    ``embeddings``: utt -> (rows, D), or a stage's :class:`~sasv.extraction.outputs.EmbeddingArchive`
    (streamed, see
    :func:`scoring_vectors`).

    The ASV score is the cosine, or with a ``cohort`` (utt -> embedding rows, e.g. LA train bona fide) its
    AS-norm. An AS-normed score is not a cosine, so the product rule maps it to (0, 1) with the logistic
    sigmoid instead of (cos + 1) / 2; the sum rule adds it as it is.
    """
    # columns once (zip(*) transposes in C), then every per-trial step works on them
    spk_col, utt_col, attack_col, key_col = zip(*data.trials, strict=True) if data.trials else ((),) * 4
    speakers = sorted(set(spk_col))
    test_utts = sorted(set(utt_col))
    enrol_utts = [u for s in speakers for u in data.enroll[s]]
    _require(embeddings, enrol_utts, "enrolment embeddings", emb_source)
    _require(embeddings, test_utts, "test embeddings", emb_source)
    _require(cm_scores, test_utts, "test-utterance CM scores", cm_source)

    enrol, test = scoring_vectors(embeddings, speakers, data.enroll, test_utts, norm)
    spk_index = {s: i for i, s in enumerate(speakers)}
    utt_index = {u: i for i, u in enumerate(test_utts)}
    spk_idx = np.fromiter(map(spk_index.__getitem__, spk_col), dtype=np.intp, count=len(spk_col))
    utt_idx = np.fromiter(map(utt_index.__getitem__, utt_col), dtype=np.intp, count=len(utt_col))

    cm_per_utt = np.array([cm_scores[u] for u in test_utts], dtype=np.float32)
    cm = cm_per_utt[utt_idx]
    if cohort is None:
        asv = cosine_scores(enrol, test, spk_idx, utt_idx)
        fused = fuse_scores(asv, cm, score_rule)
    else:
        cohort_vecs = utterance_vectors(list(cohort.values()), norm)
        asv = as_norm(enrol, test, cohort_vecs, spk_idx, utt_idx, top_k)
        if score_rule == "product":  # P_CM * sigmoid(s') in place of P_CM * (cos + 1) / 2
            fused = cm.astype(np.float64) * expit(asv)
        else:
            fused = fuse_scores(asv, cm.astype(np.float64), score_rule)
    return TrialScores(
        spk=spk_col,
        utt=utt_col,
        attack=attack_col,
        key=key_col,
        fused=fused,
        asv=asv,
        cm=cm,
    )
