"""ASVspoof 5 Track 2 files as the organisers' evaluation package reads them: the submission and the keys.

  submission  ``spk filename cm-score asv-score sasv-score`` (header first, tab separated; ``-`` where a
              score does not apply, e.g. no CM in a single integrated system)
  keys        ``spk filename cm-label asv-label`` (header first; cm-label bonafide|spoof, asv-label
              target|nontarget|spoof)

A trial is the pair (claimed speaker, file). The readers are strict like the recipe's other lists: a
missing column, a score that is not a number, an unknown label or a duplicated trial is an error naming the
file and line; scores and keys must hold the same trials.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sasv.corpora.protocols import CM_LABELS, KEYS, ProtocolError, read_lines
from sasv.fileio import atomic_write_text

SUBMISSION_HEADER = ("spk", "filename", "cm-score", "asv-score", "sasv-score")
KEYS_HEADER = ("spk", "filename", "cm-label", "asv-label")
NOT_APPLICABLE = "-"


@dataclass(frozen=True)
class Track2Trials:
    """Scores (NaN where ``-``) and labels of the trials both files hold, in the score file's order."""

    spk: np.ndarray
    filename: np.ndarray
    cm: np.ndarray
    asv: np.ndarray
    sasv: np.ndarray
    cm_label: np.ndarray
    asv_label: np.ndarray


def _rows(path: Path, header: tuple[str, ...]) -> Iterable[tuple[int, list[str]]]:
    lines = read_lines(path)
    if tuple(lines[0][1].split()) != header:
        raise ProtocolError(
            f"{path}:1: expected the header '{' '.join(header)}', got {lines[0][1].strip()!r}"
        )
    for n, line in lines[1:]:
        fields = line.split()
        if len(fields) != len(header):
            raise ProtocolError(
                f"{path}:{n}: expected {len(header)} fields, got {len(fields)}: {line.strip()!r}"
            )
        yield n, fields


def parse_score(path: Path, n: int, token: str, allow_missing: bool = True) -> float:
    """A score field of line ``n``: a finite number, or NaN for ``-`` where ``allow_missing``."""
    if token == NOT_APPLICABLE and allow_missing:
        return math.nan
    try:
        value = float(token)
    except ValueError:
        alternative = " (or '-')" if allow_missing else ""
        raise ProtocolError(f"{path}:{n}: score {token!r} is not a number{alternative}") from None
    if not math.isfinite(value):
        raise ProtocolError(f"{path}:{n}: score {token!r} is not finite")
    return value


def read_track2(scores_path: str | Path, keys_path: str | Path) -> Track2Trials:
    """The submission joined with the keys (see the module doc)."""
    scores_path, keys_path = Path(scores_path), Path(keys_path)
    labels: dict[tuple[str, str], tuple[str, str]] = {}
    for n, (spk, name, cm_label, asv_label) in _rows(keys_path, KEYS_HEADER):
        if cm_label not in CM_LABELS or asv_label not in KEYS:
            raise ProtocolError(f"{keys_path}:{n}: unknown labels {cm_label!r} {asv_label!r}")
        if (spk, name) in labels:
            raise ProtocolError(f"{keys_path}:{n}: trial {spk} {name} listed twice")
        labels[spk, name] = (cm_label, asv_label)
    rows: list[tuple[str, str, float, float, float]] = []
    seen: set[tuple[str, str]] = set()
    for n, (spk, name, cm, asv, sasv) in _rows(scores_path, SUBMISSION_HEADER):
        if (spk, name) in seen:
            raise ProtocolError(f"{scores_path}:{n}: trial {spk} {name} listed twice")
        if (spk, name) not in labels:
            raise ProtocolError(f"{scores_path}:{n}: trial {spk} {name} is not in the keys {keys_path}")
        seen.add((spk, name))
        rows.append(
            (
                spk,
                name,
                parse_score(scores_path, n, cm),
                parse_score(scores_path, n, asv),
                parse_score(scores_path, n, sasv),
            )
        )
    if len(seen) != len(labels):
        missing = [f"{s} {f}" for s, f in labels if (s, f) not in seen]
        raise ProtocolError(
            f"{scores_path}: {len(missing)} trial(s) of the keys have no score, e.g. {missing[0]}"
        )
    trials = [labels[spk, name] for spk, name, *_ in rows]
    return Track2Trials(
        spk=np.array([r[0] for r in rows]),
        filename=np.array([r[1] for r in rows]),
        cm=np.array([r[2] for r in rows], dtype=np.float64),
        asv=np.array([r[3] for r in rows], dtype=np.float64),
        sasv=np.array([r[4] for r in rows], dtype=np.float64),
        cm_label=np.array([t[0] for t in trials]),
        asv_label=np.array([t[1] for t in trials]),
    )


def _format(value: float | None) -> str:
    return NOT_APPLICABLE if value is None or math.isnan(value) else repr(float(value))


def write_submission(
    path: str | os.PathLike[str],
    rows: Iterable[tuple[str, str, float | None, float | None, float | None]],
) -> None:
    """Write a Track 2 submission (header, then ``spk filename cm asv sasv`` tab separated; None -> ``-``),
    atomically; scores are written with ``repr`` so that they read back exactly."""
    lines = ["\t".join(SUBMISSION_HEADER)]
    lines += [
        "\t".join((spk, name, _format(cm), _format(asv), _format(sasv))) for spk, name, cm, asv, sasv in rows
    ]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def write_keys(path: str | os.PathLike[str], rows: Iterable[tuple[str, str, str]]) -> None:
    """Write a Track 2 key file from ``(spk, filename, key)`` rows (key target|nontarget|spoof): header,
    then ``spk filename cm-label asv-label`` tab separated, the CM label bona fide unless the key is spoof.
    With the submission it is what the organisers' scorer (and ``sasv compute_metrics --keys``) reads."""
    lines = ["\t".join(KEYS_HEADER)]
    cm_label = {key: "spoof" if key == "spoof" else "bonafide" for key in KEYS}
    lines += ["\t".join((spk, name, cm_label[key], key)) for spk, name, key in rows]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")
