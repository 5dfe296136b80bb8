"""Score files for the ASVspoof 5 evaluation-package fixtures, generated from a seed.

Each case writes the package's own formats (tab separated, header first) so the package reads exactly what
``sasv compute_metrics`` reads:

* Track 2: ``spk filename cm-score asv-score sasv-score`` and its keys ``spk filename cm-label asv-label``;
* Track 1: ``filename cm-score`` and ``filename cm-label``, plus a full key table (``filename cm-label
  attack_anon codec``, space separated as the package reads it) for the per-attack x codec breakdown of
  ``evaluation_full.py``.

This module needs numpy only (no torch, no sasv), so ``record_asvspoof5.py`` can run it beside the package in
a scratch environment. Scores are written with few decimals: every parser reads them to the same double.
The fixture stores each file's sha256, so a generator that drifts fails loudly instead of comparing other
numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Track2Case:
    """``n_*`` trials per key; ``decimals`` rounds every score (1 or 2 make ties across classes); with
    ``utts_per_claim`` > 1 a CM score is shared by that many trials of one utterance, as in the real lists;
    with ``mixture`` every class's ASV and CM scores come from two Gaussians of random means and widths, whose
    error curves can have two near-intersections far apart (where the package's coarse-then-fine t-EER search
    can settle on another point than its exhaustive search)."""

    seed: int
    n_target: int
    n_nontarget: int
    n_spoof: int
    decimals: int = 6
    separation: float = 1.0
    utts_per_claim: int = 1
    mixture: bool = False


@dataclass(frozen=True)
class Track1Case:
    """``scale`` x (a logit-like score): 1 gives log-odds, ``as_probability`` maps them through a sigmoid
    (a P_CM, not an LLR); ``n_attacks`` and ``n_codecs`` label the trials for the breakdown; the first
    ``n_at_threshold`` scores of each class lie exactly on actDCF's Bayes threshold (written with ``repr``),
    where ``<`` and ``<=`` decide differently."""

    seed: int
    n_bonafide: int
    n_spoof: int
    decimals: int = 6
    separation: float = 3.0
    as_probability: bool = False
    n_attacks: int = 4
    n_codecs: int = 3
    n_at_threshold: int = 0


TRACK2_CASES: dict[str, Track2Case] = {
    "small": Track2Case(seed=2501, n_target=30, n_nontarget=80, n_spoof=60),
    "ties": Track2Case(seed=2502, n_target=50, n_nontarget=120, n_spoof=90, decimals=1),
    "shared_cm": Track2Case(seed=2503, n_target=200, n_nontarget=400, n_spoof=300, utts_per_claim=3),
    "sparse_nontarget": Track2Case(seed=2504, n_target=300, n_nontarget=2, n_spoof=300),
    "sparse_spoof": Track2Case(seed=2505, n_target=300, n_nontarget=300, n_spoof=3),
    "weak": Track2Case(seed=2506, n_target=400, n_nontarget=900, n_spoof=700, separation=0.3),
    "accelerated": Track2Case(seed=2507, n_target=1500, n_nontarget=3200, n_spoof=2600),
    "accelerated_ties": Track2Case(seed=2508, n_target=2000, n_nontarget=4000, n_spoof=3000, decimals=3),
    "accelerated_weak": Track2Case(
        seed=2509, n_target=6000, n_nontarget=14000, n_spoof=12000, separation=0.4
    ),
    # the seed was picked (2510-2571) for the coarse-then-fine search to end elsewhere than the exhaustive one
    "accelerated_mixture": Track2Case(seed=2571, n_target=2500, n_nontarget=3500, n_spoof=3000, mixture=True),
    # picked (2600-2695) so that a fine window of +-1,700 or a grid of 3,100 points would end elsewhere
    "accelerated_window": Track2Case(seed=2695, n_target=2500, n_nontarget=3500, n_spoof=3000, mixture=True),
    "mixture": Track2Case(seed=2510, n_target=300, n_nontarget=500, n_spoof=400, mixture=True),
}

TRACK1_CASES: dict[str, Track1Case] = {
    "small": Track1Case(seed=1501, n_bonafide=40, n_spoof=90),
    "ties": Track1Case(seed=1502, n_bonafide=120, n_spoof=300, decimals=0),
    "probabilities": Track1Case(seed=1503, n_bonafide=200, n_spoof=500, as_probability=True),
    "sparse_spoof": Track1Case(seed=1504, n_bonafide=300, n_spoof=2),
    "overlapping": Track1Case(seed=1505, n_bonafide=2000, n_spoof=6000, separation=0.8),
    "at_threshold": Track1Case(seed=1507, n_bonafide=150, n_spoof=150, separation=0.5, n_at_threshold=20),
    "large": Track1Case(seed=1506, n_bonafide=8000, n_spoof=30000, separation=2.0),
}


KEY_ORDER = ("target", "nontarget", "spoof")
# actDCF's threshold under the package's Track 1 costs (Pspoof 0.05, Cmiss 1, Cfa 10): -log(0.95 / 0.5)
BAYES_THRESHOLD = float(-np.log(1 * (1 - 0.05) / (10 * 0.05)))


def _mixture(rng: np.random.Generator, n: int) -> np.ndarray:
    first = rng.random(n) < rng.uniform(0.1, 0.9)
    a, b = (rng.normal(rng.uniform(-3, 3), rng.uniform(0.1, 1.5), n) for _ in "ab")
    return np.where(first, a, b)


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_track2_case(case: Track2Case, directory: Path) -> tuple[Path, Path]:
    """(submission, keys) of ``case`` in ``directory``: trials shuffled, so classes interleave in the file
    (the order the package breaks ties in)."""
    rng = np.random.default_rng(case.seed)
    keys = [
        k
        for k, m in zip(KEY_ORDER, (case.n_target, case.n_nontarget, case.n_spoof), strict=True)
        for _ in range(m)
    ]
    keys_arr = np.array(keys)
    n = keys_arr.size
    s = case.separation
    asv_mean = np.select([keys_arr == "target", keys_arr == "nontarget"], [2.0 * s, -1.0 * s], 1.2 * s)
    asv = asv_mean + rng.normal(0.0, 1.0, n)
    # one CM score per utterance; an utterance is tried against utts_per_claim claimed speakers
    n_utts = -(-n // case.utts_per_claim)
    utt_of_trial = rng.permutation(np.arange(n) // case.utts_per_claim)
    cm_utt = rng.normal(0.0, 1.5, n_utts)
    cm = cm_utt[utt_of_trial] + np.where(keys_arr == "spoof", -2.0 * s, 2.0 * s)
    # a spoof utterance's trials share its score only when the utterance is spoofed in all of them; the
    # per-class offset above keeps classes apart, the shared noise makes the ties
    if case.mixture:
        asv, cm = (
            np.concatenate([_mixture(rng, int((keys_arr == k).sum())) for k in KEY_ORDER]) for _ in "ac"
        )
    sasv = 0.5 * asv + 0.5 * cm + rng.normal(0.0, 0.3, n)
    order = rng.permutation(n)
    spk = [f"E_{rng.integers(0, 400):04d}" for _ in range(n)]
    sub = ["spk\tfilename\tcm-score\tasv-score\tsasv-score"]
    key = ["spk\tfilename\tcm-label\tasv-label"]
    d = case.decimals
    for rank, i in enumerate(order):
        name = f"E_{rank:010d}"
        sub.append(f"{spk[i]}\t{name}\t{_fmt(cm[i], d)}\t{_fmt(asv[i], d)}\t{_fmt(sasv[i], d)}")
        cm_label = "spoof" if keys[i] == "spoof" else "bonafide"
        key.append(f"{spk[i]}\t{name}\t{cm_label}\t{keys[i]}")
    directory.mkdir(parents=True, exist_ok=True)
    return _write(directory / "scores.tsv", sub), _write(directory / "keys.tsv", key)


def write_track2_full_keys(case: Track2Case, directory: Path, n_attacks: int = 3, n_codecs: int = 3) -> Path:
    """The case's full key table (``spk filename cm-label asv-label attack_anon codec track_2_tag``, space
    separated as ``evaluation_full.py`` reads it): an attack per spoof trial and a codec per trial, drawn
    from their own stream so the other files stay as recorded."""
    _, keys_path = write_track2_case(case, directory)
    rng = np.random.default_rng(case.seed + 1000)
    lines = ["spk filename cm-label asv-label attack_anon codec track_2_tag"]
    for line in keys_path.read_text(encoding="utf-8").splitlines()[1:]:
        spk, name, cm_label, asv_label = line.split("\t")
        attack = f"A{rng.integers(1, n_attacks + 1):02d}" if asv_label == "spoof" else "bonafide"
        lines.append(f"{spk} {name} {cm_label} {asv_label} {attack} C{rng.integers(0, n_codecs):02d} -")
    return _write(directory / "keys_full.txt", lines)


def write_track2_single(case: Track2Case, directory: Path) -> Path:
    """The same submission with ``-`` in the CM and ASV columns (a single integrated system)."""
    scores, _ = write_track2_case(case, directory)
    lines = scores.read_text(encoding="utf-8").splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        spk, name, _cm, _asv, sasv = line.split("\t")
        out.append(f"{spk}\t{name}\t-\t-\t{sasv}")
    return _write(directory / "scores_single.tsv", out)


def write_track1_case(case: Track1Case, directory: Path) -> tuple[Path, Path, Path]:
    """(scores, keys, full keys) of ``case`` in ``directory``; the full key table names each trial's attack
    (``bonafide`` for bona fide, as the release's) and codec."""
    rng = np.random.default_rng(case.seed)
    labels = np.array(["bonafide"] * case.n_bonafide + ["spoof"] * case.n_spoof)
    n = labels.size
    attack = np.where(labels == "spoof", rng.integers(1, case.n_attacks + 1, n), 0)
    codec = rng.integers(0, case.n_codecs, n)
    # attacks differ in strength, codecs blur the scores: the cells of the breakdown differ
    shift = np.where(labels == "bonafide", case.separation, -case.separation + 0.5 * attack)
    score = shift + rng.normal(0.0, 1.0 + 0.3 * codec, n)
    if case.as_probability:
        score = 1.0 / (1.0 + np.exp(-score))
    on_threshold = np.zeros(n, dtype=bool)
    for label in ("bonafide", "spoof"):
        on_threshold[np.flatnonzero(labels == label)[: case.n_at_threshold]] = True
    order = rng.permutation(n)
    scores = ["filename\tcm-score"]
    keys = ["filename\tcm-label"]
    full = ["filename cm-label attack_anon codec"]
    for rank, i in enumerate(order):
        name = f"E_{rank:08d}"
        text = repr(BAYES_THRESHOLD) if on_threshold[i] else _fmt(score[i], case.decimals)
        scores.append(f"{name}\t{text}")
        keys.append(f"{name}\t{labels[i]}")
        attack_name = "bonafide" if attack[i] == 0 else f"A{attack[i]:02d}"
        full.append(f"{name} {labels[i]} {attack_name} C{codec[i]:02d}")
    directory.mkdir(parents=True, exist_ok=True)
    return (
        _write(directory / "cm_scores.tsv", scores),
        _write(directory / "cm_keys.tsv", keys),
        _write(directory / "cm_full_keys.tsv", full),
    )
