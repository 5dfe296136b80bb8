"""ASVspoof 5 Track 1 files as the organisers' evaluation package reads them: CM scores and CM keys.

  scores  ``filename cm-score`` (header first)
  keys    ``filename cm-label`` (header first; bonafide|spoof), or a full key table whose header names at
          least those two columns and, for the breakdown, ``attack_anon`` (per attack) and ``codec``

The recipe writes both for every ASVspoof 5 system (:func:`write_track1`), the scores being the CM's log-odds
(what CLLR and actDCF read as LLRs), the keys with the attack (and codec, where known) of each file.

Columns are found by their header names (the package's aliases ``trial_anon`` for ``filename`` and
``cm_label`` for ``cm-label`` too), fields split on whitespace. Strict like the Track 2 readers: a missing
column, a bad score or label, a duplicated or missing file is an error naming file and line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sasv.corpora.protocols import BONAFIDE, CM_LABELS, SPOOF, ProtocolError, read_lines
from sasv.fileio import atomic_write_text
from sasv.scoring.track2_files import parse_score

COLUMN_ALIASES = {"trial_anon": "filename", "cm_label": "cm-label"}


@dataclass(frozen=True)
class Track1Trials:
    """Scores and labels of the files both lists hold, in the score file's order; ``attack`` and
    ``codec`` are ``None`` where the keys have no such column."""

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
    with_attack, with_codec = "attack_anon" in columns, "codec" in columns
    labels: dict[str, tuple[str, ...]] = {}
    for n, fields in rows:
        name, label = fields[columns["filename"]], fields[columns["cm-label"]]
        if label not in CM_LABELS:
            raise ProtocolError(
                f"{keys_path}:{n}: unknown label {label!r}; expected one of {', '.join(CM_LABELS)}"
            )
        if name in labels:
            raise ProtocolError(f"{keys_path}:{n}: file {name} listed twice")
        attack = fields[columns["attack_anon"]] if with_attack else ""
        codec = fields[columns["codec"]] if with_codec else ""
        labels[name] = (label, attack, codec)
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
        attack=np.array([j[1] for j in joined]) if with_attack else None,
        codec=np.array([j[2] for j in joined]) if with_codec else None,
    )


def write_track1(
    scores_path: str | os.PathLike[str],
    keys_path: str | os.PathLike[str],
    utts: Sequence[str],
    scores: Sequence[float],
    is_spoof: Sequence[bool],
    attacks: Sequence[str],
    codecs: Sequence[str] | None = None,
) -> None:
    """Write a Track 1 score file (``filename cm-score``, ``repr`` scores: they read back exactly) and its
    key table (``filename cm-label attack_anon`` and ``codec`` when given; ``bonafide`` as the attack of a
    bona fide file, as the release's), tab separated, header first, atomically."""
    lines = ["filename\tcm-score", *(f"{u}\t{float(x)!r}" for u, x in zip(utts, scores, strict=True))]
    atomic_write_text(Path(scores_path), "\n".join(lines) + "\n")
    header = ["filename", "cm-label", "attack_anon", *(["codec"] if codecs is not None else [])]
    rows = []
    for i, (utt, spoofed, attack) in enumerate(zip(utts, is_spoof, attacks, strict=True)):
        row = [utt, SPOOF if spoofed else BONAFIDE, attack if spoofed else BONAFIDE]
        rows.append("\t".join([*row, *([codecs[i]] if codecs is not None else [])]))
    atomic_write_text(Path(keys_path), "\n".join(["\t".join(header), *rows]) + "\n")
