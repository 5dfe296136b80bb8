"""Score arrays and key files for the ASVspoof 2021 evaluation-package fixtures, generated from a seed.

The package's metric functions take arrays: the CM's bona fide and spoof scores, and the ASV's target,
nontarget and spoof scores, from which it fixes the ASV at its EER threshold and derives the t-DCF weights
(C0, C1, C2). Each case of :data:`CASES` draws them here; the fixture stores the arrays' sha256, so a
generator that drifts fails loudly instead of comparing other numbers. The cases of :data:`KEY_CASES` write
whole keys and score files instead, for the package's per-condition tables (:func:`key_files`). Needs numpy
only (``record_asvspoof2021.py`` and ``record_asvspoof2021_tables.py`` run it beside the package in a scratch
environment).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

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


# ------------------------------------------------------------------------------ key files for the tables
#
# The package's main.py reads keys and score files from disk (pandas) and tabulates EER and min t-DCF per
# condition; these cases write those files in the release's layout (``keys/LA/CM/trial_metadata.txt``,
# ``keys/LA/ASV/trial_metadata.txt``, ``keys/LA/ASV/ASVTorch_Kaldi/score.txt``, ``keys/DF/CM/...``) and a
# CM score file ``score.txt`` (``TRIAL SCORE``), for ``record_asvspoof2021_tables.py`` to run the package (and
# SSL_Anti-spoofing's evaluate_2021_{LA,DF}.py) on, and for the parity test to read with the recipe's readers.

LA_CODECS = ("none", "alaw", "pstn", "g722", "ulaw", "gsm", "opus")
LA_TRANSMISSIONS = {"none": "-", "alaw": "ita_tx", "pstn": "loc_tx", "g722": "sin_tx", "ulaw": "mad_tx",
                    "gsm": "ita_tx", "opus": "sin_tx"}  # fmt: skip
LA_ATTACKS = tuple(f"A{i:02d}" for i in range(7, 20))
DF_COMPRESSIONS = ("nocodec", "low_mp3", "high_mp3", "low_m4a", "high_m4a", "low_ogg", "high_ogg", "mp3m4a",
                   "oggm4a")  # fmt: skip
DF_VOCODERS = ("traditional_vocoder", "waveform_concatenation", "neural_vocoder_autoregressive",
               "neural_vocoder_nonautoregressive", "unknown")  # fmt: skip
DF_ATTACKS = (*LA_ATTACKS, "Task1-team20", "Task2-team12")
SUBSETS = ("eval", "progress", "hidden")
TABLE_SUBSETS = ("eval", "progress")  # the subsets recorded


@dataclass(frozen=True)
class KeyCase:
    """A track's keys: ``n_bonafide`` and ``n_spoof`` CM trials (each subset drawn 0.7 eval, 0.2 progress,
    0.1 hidden; conditions and attacks uniform; means that differ by condition), for LA also ``n_asv``
    (target, nontarget, spoof) ASV trials with their scores; ``decimals`` rounds every score (1 makes ties).
    ``drop``: (key file, column, value, subset) whose lines are left out, which empties cells: a column's
    bona fide trials (no EER there), an attack's spoofs (an empty row), an ASV class of a codec (no min
    t-DCF there)."""

    name: str
    track: str
    seed: int
    n_bonafide: int
    n_spoof: int
    n_asv: tuple[int, int, int] = (0, 0, 0)
    decimals: int = 6
    drop: tuple[tuple[str, str, str, str], ...] = ()


KEY_CASES = (
    KeyCase("la_medium", "LA", 2101, 700, 3200, (800, 2600, 1900)),
    KeyCase("la_ties", "LA", 2102, 600, 2800, (700, 2200, 1600), decimals=1),
    KeyCase(
        "la_gaps",
        "LA",
        2103,
        700,
        3000,
        (800, 2400, 1800),
        drop=(
            ("cm", "codec", "pstn", "bonafide eval"),
            ("cm", "attack", "A19", "spoof eval"),
            ("asv", "codec", "gsm", "spoof eval"),
            ("asv", "codec", "opus", "nontarget eval"),
        ),
    ),  # fmt: skip
    KeyCase("df_medium", "DF", 2111, 800, 4000),
    KeyCase(
        "df_ties_gaps",
        "DF",
        2112,
        700,
        3600,
        decimals=1,
        drop=(("cm", "vocoder", "unknown", "spoof eval"), ("cm", "compression", "oggm4a", "bonafide eval")),
    ),  # fmt: skip
)

CM_COLUMNS = {
    "LA": ("speaker", "trial", "codec", "transmission", "attack", "label", "trim", "subset"),
    "DF": ("speaker", "trial", "compression", "source", "attack", "label", "trim", "subset", "vocoder",
           "task", "team", "gender_pair", "language"),
}  # fmt: skip
ASV_COLUMNS = ("speaker", "trial", "codec", "transmission", "attack", "label", "trim", "subset")


def _score(rng: np.random.Generator, mean: float, decimals: int) -> str:
    return f"{round(float(rng.normal(mean, 1.0)), decimals):.{decimals}f}"


def _dropped(case: KeyCase, file: str, row: dict[str, str]) -> bool:
    for where, column, value, label_subset in case.drop:
        label, subset = label_subset.split()
        if where == file and row[column] == value and row["label"] == label and row["subset"] == subset:
            return True
    return False


def key_files(case: KeyCase) -> dict[str, str]:
    """The case's files, path (relative to the folder holding ``keys/``) -> text."""
    rng = np.random.default_rng(case.seed)
    la = case.track == "LA"
    codecs = LA_CODECS if la else DF_COMPRESSIONS
    numbers = 1_000_000 + rng.choice(9_000_000, case.n_bonafide + case.n_spoof, replace=False)
    cm_rows, score_rows = [], []
    for i, number in enumerate(numbers):
        bonafide = i < case.n_bonafide
        c = int(rng.integers(len(codecs)))
        subset = str(rng.choice(SUBSETS, p=(0.7, 0.2, 0.1)))
        attacks = LA_ATTACKS if la else DF_ATTACKS
        a = int(rng.integers(len(attacks)))
        row = {
            "speaker": f"LA_{int(rng.integers(1, 100)):04d}",
            "trial": f"{'LA' if la else 'DF'}_E_{number}",
            "codec": codecs[c],
            "compression": codecs[c],
            "transmission": LA_TRANSMISSIONS.get(codecs[c], "-"),
            "source": ("asvspoof", "vcc2018", "vcc2020")[c % 3],
            "attack": (str(rng.choice(("-", "bonafide"))) if la else "-") if bonafide else attacks[a],
            "label": "bonafide" if bonafide else "spoof",
            "trim": "trim" if subset == "hidden" else "notrim",
            "subset": subset,
            "vocoder": "bonafide" if bonafide else DF_VOCODERS[a % len(DF_VOCODERS)],
            "task": "-", "team": "-", "gender_pair": "-", "language": "-",
        }  # fmt: skip
        # bona fide above spoofs, every condition and attack a little apart
        mean = 2.0 - 0.25 * c if bonafide else 0.15 * (a % 5) - 0.1 * c
        score = _score(rng, mean, case.decimals)
        if _dropped(case, "cm", row):
            continue
        cm_rows.append(" ".join(row[k] for k in CM_COLUMNS[case.track]))
        score_rows.append(f"{row['trial']} {score}")
    files = {
        f"keys/{case.track}/CM/trial_metadata.txt": "".join(r + "\n" for r in cm_rows),
        "score.txt": "".join(r + "\n" for r in score_rows),
    }
    if not la:
        return files
    asv_rows, asv_scores = [], []
    keys = [k for k, n in zip(("target", "nontarget", "spoof"), case.n_asv, strict=True) for _ in range(n)]
    numbers = 1_000_000 + rng.choice(9_000_000, len(keys), replace=False)
    for key, number in zip(keys, numbers, strict=True):
        codec = LA_CODECS[int(rng.integers(len(LA_CODECS)))]
        transmission = LA_TRANSMISSIONS[codec]
        subset = str(rng.choice(SUBSETS, p=(0.7, 0.2, 0.1)))
        attack = LA_ATTACKS[int(rng.integers(len(LA_ATTACKS)))] if key == "spoof" else "bonafide"
        trial = f"LA2021-LA_E_{number}" if key == "spoof" else f"LA_E_{number}-{codec}-{transmission}"
        row = {
            "speaker": f"LA_{int(rng.integers(1, 100)):04d}-{codec}-{transmission}",
            "trial": trial, "codec": codec, "transmission": transmission, "attack": attack, "label": key,
            "trim": "trim" if subset == "hidden" else "notrim", "subset": subset,
        }  # fmt: skip
        mean = {"target": 3.0, "nontarget": -3.0, "spoof": 1.0}[key] - 0.2 * LA_CODECS.index(codec)
        score = _score(rng, mean, case.decimals)
        if _dropped(case, "asv", row):
            continue
        asv_rows.append(" ".join(row[k] for k in ASV_COLUMNS))
        asv_scores.append(f"{row['speaker']} {trial} {score}")
    files["keys/LA/ASV/trial_metadata.txt"] = "".join(r + "\n" for r in asv_rows)
    files["keys/LA/ASV/ASVTorch_Kaldi/score.txt"] = "".join(r + "\n" for r in asv_scores)
    return files


def write_key_case(case: KeyCase, folder: str | Path) -> dict[str, str]:
    """Write the case's files under ``folder``; their sha256 by relative path."""
    out = {}
    for name, text in key_files(case).items():
        path = Path(folder) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out[name] = hashlib.sha256(text.encode()).hexdigest()
    return out
