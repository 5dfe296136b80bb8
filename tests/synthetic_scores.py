"""SASV-like synthetic trial scores for metric, fusion, plot and CLI tests (no models, no corpus)."""

from __future__ import annotations

import dataclasses

import numpy as np

from sasv.scoring.cosine import fuse_scores
from sasv.scoring.score_files import TrialScores

DEV_ATTACKS = ("A01", "A02", "A03", "A04", "A05", "A06")
EVAL_ATTACKS = ("A07", "A08", "A17", "A18", "A19")


def make_trials(
    seed: int,
    n_utts: int = 400,
    attacks: tuple[str, ...] = DEV_ATTACKS,
    n_speakers: int = 12,
    asv_noise: float = 0.12,
) -> TrialScores:
    """Bona fide utterances are tried against their own speaker (target) and two others (nontarget), spoofs
    against the speaker they imitate. Spoofs score fairly high on ASV; the CM separates them, imperfectly.
    One CM P(bona fide) per utterance, shared by all its trials, as in the real trial lists."""
    rng = np.random.default_rng(seed)
    spoofed = rng.random(n_utts) < 0.5
    speaker = rng.integers(0, n_speakers, n_utts)
    attack = rng.choice(attacks, n_utts)
    cm_logit = np.where(spoofed, rng.normal(-4.0, 3.0, n_utts), rng.normal(5.0, 2.0, n_utts))
    rows: list[tuple[str, str, str, str, float, float]] = []
    for u in range(n_utts):
        cm = float(1.0 / (1.0 + np.exp(-cm_logit[u])))
        claims = (
            [speaker[u]] if spoofed[u] else [speaker[u], *[(speaker[u] + k) % n_speakers for k in (1, 5)]]
        )
        for s in claims:
            if spoofed[u]:
                key, att, mean = "spoof", str(attack[u]), 0.45
            else:
                key, att, mean = (
                    ("target", "bonafide", 0.6) if s == speaker[u] else ("nontarget", "bonafide", 0.1)
                )
            rows.append((f"LA_{s:04d}", f"LA_T_{seed:02d}{u:06d}", att, key, mean, cm))
    spk, utt, att, key, mean, cm = map(np.array, zip(*rows, strict=True))
    asv = np.clip(mean + rng.normal(0.0, asv_noise, mean.size), -1.0, 1.0).astype(np.float32)
    cm = cm.astype(np.float32)
    return TrialScores(spk=spk, utt=utt, attack=att, key=key, asv=asv, cm=cm, fused=fuse_scores(asv, cm))


def second_system(trials: TrialScores, seed: int, asv_noise: float = 0.12) -> TrialScores:
    """Another ASV system on the same trials (same CM): independent ASV noise around the same truth."""
    rng = np.random.default_rng(seed)
    base = np.where(trials.key == "target", 0.6, np.where(trials.key == "nontarget", 0.1, 0.45))
    asv = np.clip(base + rng.normal(0.0, asv_noise, base.size), -1.0, 1.0).astype(np.float32)
    cm = trials.cm.astype(np.float32)
    return dataclasses.replace(trials, asv=asv, cm=cm, fused=fuse_scores(asv, cm))
