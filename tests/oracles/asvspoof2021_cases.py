"""Score arrays for the ASVspoof 2021 evaluation-package fixture, generated from a seed.

The package's metric functions take arrays: the CM's bona fide and spoof scores, and the ASV's target,
nontarget and spoof scores, from which it fixes the ASV at its EER threshold and derives the t-DCF weights
(C0, C1, C2). Each case draws them here; the fixture stores the arrays' sha256, so a generator that drifts
fails loudly instead of comparing other numbers. Needs numpy only (``record_asvspoof2021.py`` runs it beside
the package in a scratch environment).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

ARRAYS = ("cm_bonafide", "cm_spoof", "asv_target", "asv_nontarget", "asv_spoof")


@dataclass(frozen=True)
class Case:
    """``n`` scores per array (in :data:`ARRAYS` order); the classes are Gaussians ``separation`` apart;
    ``decimals`` rounds every score (1 makes ties across classes)."""

    name: str
    seed: int
    n: tuple[int, int, int, int, int]
    separation: float = 2.0
    decimals: int | None = None


CASES = (
    Case("small_ties", 1, (40, 60, 30, 50, 45), separation=1.0, decimals=1),
    Case("medium", 2, (2000, 3000, 1500, 2500, 2200)),
    Case("weak_cm_strong_asv", 3, (500, 700, 400, 600, 650), separation=0.3),
    Case("spoofs_pass_the_asv", 4, (300, 400, 200, 350, 380), separation=3.0),
    Case("unbalanced", 5, (25, 4000, 60, 3000, 2500), separation=1.5, decimals=2),
    Case("no_asv_spoof_trials", 6, (100, 120, 80, 90, 0)),
    Case("no_nontarget_trials", 7, (100, 120, 80, 0, 70)),
)


def arrays(case: Case) -> dict[str, np.ndarray]:
    """The case's five score arrays (float64). ASV spoofs sit between nontargets and targets, as spoofs
    aimed at a speaker do; CM spoofs below the bona fide scores."""
    rng = np.random.default_rng(case.seed)
    centres = {
        "cm_bonafide": case.separation,
        "cm_spoof": 0.0,
        "asv_target": case.separation,
        "asv_nontarget": -case.separation,
        "asv_spoof": 0.4 * case.separation,
    }
    out = {}
    for name, n in zip(ARRAYS, case.n, strict=True):
        scores = rng.normal(centres[name], 1.0, n)
        out[name] = np.round(scores, case.decimals) if case.decimals is not None else scores
    return out


def digest(values: dict[str, np.ndarray]) -> str:
    """sha256 of the arrays' float64 bytes, in :data:`ARRAYS` order, each preceded by its length."""
    h = hashlib.sha256()
    for name in ARRAYS:
        a = np.ascontiguousarray(values[name], dtype=np.float64)
        h.update(len(a).to_bytes(8, "little") + a.tobytes())
    return h.hexdigest()
