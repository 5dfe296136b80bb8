"""ASVspoof 5 Track 1 files as the organisers' evaluation package reads them: CM scores and CM keys.

  scores  ``filename cm-score`` (header first)
  keys    ``filename cm-label`` (header first; bonafide|spoof), or a full key table whose header names at
          least those two columns and, for the attack x codec breakdown, ``attack_anon`` and ``codec``

Columns are found by their header names (the package's aliases ``trial_anon`` for ``filename`` and
``cm_label`` for ``cm-label`` too), fields split on whitespace. Strict like the Track 2 readers: a missing
column, a bad score or label, a duplicated or missing file is an error naming file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sasv.protocols import BONAFIDE, CM_LABELS, ProtocolError, read_lines
from sasv.track2_files import parse_score

COLUMN_ALIASES = {"trial_anon": "filename", "cm_label": "cm-label"}


@dataclass(frozen=True)
class Track1Trials:
    """Scores and labels of the files both lists hold, in the score file's order; ``attack`` and
    ``codec`` are ``None`` unless the keys are a full key table."""

    filename: np.ndarray
    score: np.ndarray
    is_bonafide: np.ndarray
    attack: np.ndarray | None
    codec: np.ndarray | None


def _table(path: Path, required: tuple[str, ...]) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
    lines = read_lines(path)
    header = [COLUMN_ALIASES.get(name, name) for name in lines[0][1].split()]
    missing = [name for name in required if name not in header]
    if missing:
        raise ProtocolError(
            f"{path}:1: the header names no column {', '.join(missing)} (expected at least "
            f"'{' '.join(required)}'), got {lines[0][1].strip()!r}"
        )
    rows = []
    for n, line in lines[1:]:
        fields = line.split()
        if len(fields) != len(header):
            raise ProtocolError(
                f"{path}:{n}: expected {len(header)} fields, got {len(fields)}: {line.strip()!r}"
            )
        rows.append((n, fields))
    return {name: i for i, name in enumerate(header)}, rows


def read_track1(scores_path: str | Path, keys_path: str | Path) -> Track1Trials:
    """The CM score file joined with its keys (see the module doc)."""
    scores_path, keys_path = Path(scores_path), Path(keys_path)
    columns, rows = _table(keys_path, ("filename", "cm-label"))
    full = "attack_anon" in columns and "codec" in columns
    labels: dict[str, tuple[str, ...]] = {}
    for n, fields in rows:
        name, label = fields[columns["filename"]], fields[columns["cm-label"]]
        if label not in CM_LABELS:
            raise ProtocolError(
                f"{keys_path}:{n}: unknown label {label!r}; expected one of {', '.join(CM_LABELS)}"
            )
        if name in labels:
            raise ProtocolError(f"{keys_path}:{n}: file {name} listed twice")
        extra = (fields[columns["attack_anon"]], fields[columns["codec"]]) if full else ()
        labels[name] = (label, *extra)
    score_columns, score_rows = _table(scores_path, ("filename", "cm-score"))
    names: list[str] = []
    scores: list[float] = []
    seen: set[str] = set()
    for n, fields in score_rows:
        name = fields[score_columns["filename"]]
        if name in seen:
            raise ProtocolError(f"{scores_path}:{n}: file {name} listed twice")
        if name not in labels:
            raise ProtocolError(f"{scores_path}:{n}: file {name} is not in the keys {keys_path}")
        seen.add(name)
        names.append(name)
        scores.append(parse_score(scores_path, n, fields[score_columns["cm-score"]], allow_missing=False))
    if len(seen) != len(labels):
        missing = next(name for name in labels if name not in seen)
        raise ProtocolError(
            f"{scores_path}: {len(labels) - len(seen)} file(s) of the keys have no score, e.g. {missing}"
        )
    joined = [labels[name] for name in names]
    return Track1Trials(
        filename=np.array(names),
        score=np.array(scores, dtype=np.float64),
        is_bonafide=np.array([j[0] == BONAFIDE for j in joined], dtype=bool),
        attack=np.array([j[1] for j in joined]) if full else None,
        codec=np.array([j[2] for j in joined]) if full else None,
    )
