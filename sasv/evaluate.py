"""Scoring one SASV system (ASV embeddings x CM scores) on one data dir, and its results record.

This is the glue between the stored stage outputs and :mod:`sasv.scoring` / :mod:`sasv.metrics`: it turns
trials into index arrays over speakers and test utterances, so scoring is one vectorised pass, and it refuses
to score a trial whose embedding or CM score is missing instead of dropping it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import expit

from sasv.analysis import extended_metrics
from sasv.asnorm import DEFAULT_TOP_K, as_norm
from sasv.datadir import DataDir, DataDirError, offenders
from sasv.metrics import count_keys, sasv_eers
from sasv.scoring import TrialScores, cosine_scores, fuse_scores, speaker_model, utterance_vector


class MissingScoresError(DataDirError):
    """Stage outputs do not cover every trial of a data dir (an incomplete or stale earlier stage)."""


def _require(available: Mapping[str, object], needed: list[str], what: str, source: str) -> None:
    missing = sorted({u for u in needed if u not in available})
    if missing:
        raise MissingScoresError(
            f"{len(missing)} {what} missing from {source}: {offenders(missing)} (re-run the stage that "
            f"writes it for this data dir)"
        )


def score_trials(
    data: DataDir,
    embeddings: Mapping[str, np.ndarray],
    cm_scores: Mapping[str, float],
    norm: str,
    fusion: str = "product",
    emb_source: str = "embeddings",
    cm_source: str = "CM scores",
    cohort: Mapping[str, np.ndarray] | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> TrialScores:
    """ASV score, CM P(bona fide) and fused score for every trial of ``data``, in trial order.

    The ASV score is the cosine, or with a ``cohort`` (utt -> embedding rows, e.g. LA train bona fide) its
    AS-norm. An AS-normed score is not a cosine, so the product rule maps it to (0, 1) with the logistic
    sigmoid instead of (cos + 1) / 2; the sum rule adds it as it is.
    """
    speakers = sorted({t.spk for t in data.trials})
    test_utts = sorted({t.utt for t in data.trials})
    enrol_utts = [u for s in speakers for u in data.enroll[s]]
    _require(embeddings, enrol_utts, "enrolment embeddings", emb_source)
    _require(embeddings, test_utts, "test embeddings", emb_source)
    _require(cm_scores, test_utts, "test-utterance CM scores", cm_source)

    enrol = np.stack([speaker_model([embeddings[u] for u in data.enroll[s]], norm) for s in speakers])
    test = np.stack([utterance_vector(embeddings[u], norm) for u in test_utts])
    spk_index = {s: i for i, s in enumerate(speakers)}
    utt_index = {u: i for i, u in enumerate(test_utts)}
    spk_idx = np.fromiter((spk_index[t.spk] for t in data.trials), dtype=np.intp, count=len(data.trials))
    utt_idx = np.fromiter((utt_index[t.utt] for t in data.trials), dtype=np.intp, count=len(data.trials))

    cm_per_utt = np.array([cm_scores[u] for u in test_utts], dtype=np.float32)
    cm = cm_per_utt[utt_idx]
    if cohort is None:
        asv = cosine_scores(enrol, test, spk_idx, utt_idx)
        fused = fuse_scores(asv, cm, fusion)
    else:
        cohort_vecs = np.stack([utterance_vector(rows, norm) for rows in cohort.values()])
        asv = as_norm(enrol, test, cohort_vecs, spk_idx, utt_idx, top_k)
        if fusion == "product":  # P_CM * sigmoid(s') in place of P_CM * (cos + 1) / 2
            fused = cm.astype(np.float64) * expit(asv)
        else:
            fused = fuse_scores(asv, cm.astype(np.float64), fusion)
    return TrialScores(
        spk=[t.spk for t in data.trials],
        utt=[t.utt for t in data.trials],
        attack=[t.attack for t in data.trials],
        key=[t.key for t in data.trials],
        fused=fused,
        asv=asv,
        cm=cm,
    )


def evaluate(scores: TrialScores) -> dict:
    """SASV-, SV-, SPF-EER (fractions; None where a class is absent), trial counts per key, and the
    detection costs, CM-EER and per-attack SPF-EERs of :func:`sasv.analysis.extended_metrics`."""
    return {
        **sasv_eers(scores.fused, scores.key),
        "counts": count_keys(scores.key),
        **extended_metrics(scores),
    }
