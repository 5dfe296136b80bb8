"""Score lists of a system (:class:`TrialScores`) and their two file formats, read and written exactly.

The per-system score file (``spk utt attack key asv cm fused``) and the SASV 2022 submission format
(``SPK UTT ATTACK KEY SCORE``) are how every stage exchanges scores: one strict, round-trip-exact format
(floats written as the shortest repr that parses back to the same float64), written atomically, read with
one error per bad line naming the file and line. A trial (SPK, UTT) is scored once: a file that lists one
twice, with the same score or another, is an error naming both lines (a repeated line would count twice in
every metric, two scores would make the metric depend on which one a reader keeps).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from itertools import repeat

import numpy as np

from sasv.errors import SasvError
from sasv.fileio import atomic_output
from sasv.metrics.eer import KEYS, key_codes, require_finite


class ScoreFileError(SasvError, ValueError):
    """A score file is malformed (the message names the file and the line)."""


SCORE_FILE_COLUMNS: tuple[str, ...] = ("spk", "utt", "attack", "key", "asv", "cm", "fused")
SUBMISSION_COLUMNS: tuple[str, ...] = ("SPK", "UTT", "ATTACK", "KEY", "SCORE")

ScoreRow = tuple[str, str, str, str, float, float, float]

# characters per block of _read_table (~33,000 trial lines): its text, tokens and arrays are in memory at once
_READ_BLOCK_CHARS = 1 << 21
_NEWLINE = ord("\n")
_KEY_INDEX = {name: code for code, name in enumerate(KEYS)}
_KEY_NAMES = np.array(KEYS)


@dataclass(frozen=True, eq=False)  # element-wise array equality has no single truth value
class TrialScores:
    """Scores of one system on one trial list, column-wise (one numpy array per column, trial order kept).

    ``fused`` is the SASV decision score (the submission's SCORE column). ``asv`` and ``cm`` are the component
    scores; they are ``None`` when read from a submission file, which does not carry them.
    """

    spk: np.ndarray
    utt: np.ndarray
    attack: np.ndarray
    key: np.ndarray
    fused: np.ndarray
    asv: np.ndarray | None = None
    cm: np.ndarray | None = None
    # the key column as codes (index in KEYS), checked and converted once for every metric of the list
    codes: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        columns = [f for f in fields(self) if f.init]
        for column in columns:
            value = getattr(self, column.name)
            if value is None:
                continue
            if column.name in ("spk", "utt", "attack", "key"):
                array = np.asarray(value, dtype=str)
            else:
                array = np.asarray(value, dtype=np.float64)
            if array.ndim != 1:
                raise ValueError(f"TrialScores.{column.name} must be 1-D, got shape {array.shape}")
            object.__setattr__(self, column.name, array)
        lengths = {f.name: len(getattr(self, f.name)) for f in columns if getattr(self, f.name) is not None}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"TrialScores columns differ in length: {lengths}")
        object.__setattr__(self, "codes", key_codes(self.key))

    def __len__(self) -> int:
        return len(self.key)


def _format_float(value: float) -> str:
    # repr of a Python float is the shortest string that parses back to the same float64: exact round trip.
    return repr(float(value))


def _write_atomic(path: str | os.PathLike[str], lines: Iterable[str]) -> None:
    """Stream lines into ``path`` through :func:`sasv.fileio.atomic_output`.

    A crashed or killed stage then leaves either the old file or the complete new one, never a truncated
    score file that a later stage would happily evaluate.
    """
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(lines)


def write_score_file(path: str | os.PathLike[str], rows: TrialScores | Iterable[ScoreRow]) -> None:
    """Write ``spk utt attack key asv cm fused`` lines (no header), floats round-trip exact, atomically.

    ``rows`` is a :class:`TrialScores` with all three score columns, or an iterable of 7-tuples.
    """
    if not isinstance(rows, TrialScores):
        rows = _trials_from_rows(list(rows))
    if rows.asv is None or rows.cm is None:
        raise ValueError(
            "a score file needs asv, cm and fused scores; use write_submission_file for fused only"
        )
    require_finite(rows.asv, "ASV scores")
    require_finite(rows.cm, "CM scores")
    require_finite(rows.fused, "fused scores")
    _write_columns(path, rows, (rows.asv, rows.cm, rows.fused))


def write_submission_file(path: str | os.PathLike[str], trials: TrialScores) -> None:
    """Write the SASV 2022 submission format ``SPK UTT ATTACK KEY SCORE`` (SCORE = fused), atomically."""
    require_finite(trials.fused, "fused scores")
    _write_columns(path, trials, (trials.fused,))


def _write_columns(path: str | os.PathLike[str], trials: TrialScores, scores: Sequence[np.ndarray]) -> None:
    """``spk utt attack key`` and the given score columns, one trial per line, floats round-trip exact."""
    _check_tokens(trials)
    ids = (trials.spk.tolist(), trials.utt.tolist(), trials.attack.tolist(), trials.key.tolist())
    values = [map(_format_float, column.tolist()) for column in scores]
    lines = (line + "\n" for line in map(" ".join, zip(*ids, *values, strict=True)))
    _write_atomic(path, lines)


def _check_tokens(trials: TrialScores) -> None:
    """Refuse identifiers that would break the whitespace-separated format when read back."""
    for name in ("spk", "utt", "attack"):
        column = getattr(trials, name)
        for index, token in enumerate(column.tolist()):
            if not token or any(ch.isspace() for ch in token):
                raise ValueError(f"{name} of trial {index} ({token!r}) is empty or contains whitespace")


def _trials_from_rows(rows: list[ScoreRow]) -> TrialScores:
    for index, row in enumerate(rows):
        if len(row) != len(SCORE_FILE_COLUMNS):
            raise ValueError(f"row {index} has {len(row)} fields, expected {' '.join(SCORE_FILE_COLUMNS)}")
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(SCORE_FILE_COLUMNS)
    spk, utt, attack, key, asv, cm, fused = columns
    return TrialScores(spk=spk, utt=utt, attack=attack, key=key, fused=fused, asv=asv, cm=cm)


def _read_table(
    path: str | os.PathLike[str], columns: Sequence[str], n_text: int = 4, keep: Sequence[int] | None = None
) -> list[np.ndarray]:
    """Read a whitespace-separated table column-wise; the first bad line fails as ``file:line: problem``.

    The first ``n_text`` columns are identifiers (the first two the trial, SPK and UTT; the last of them the
    key, returned as codes: its index in ``KEYS``), the rest finite floats. Blank lines are skipped and CRLF
    endings tolerated (files often pass through other tools); anything else that is not exactly one trial is
    an error, because a misparsed trial silently shifts an EER, and so is a trial listed twice
    (:func:`_check_unique_trials`). ``keep``: the indices of the columns to return (default all); every
    column is checked either way. The file is read in blocks of :data:`_READ_BLOCK_CHARS` characters, each
    checked column-wise (field counts, keys, numbers; a failure is mapped back to its line number), so the
    text and its tokens never exist for the whole file at once: what stays is one numpy array per kept
    column, and one 64-bit hash per trial.
    """
    kept = list(range(len(columns))) if keep is None else list(keep)
    blocks: list[list[np.ndarray]] = [[] for _ in kept]
    hashes: list[np.ndarray] = []
    first_lineno = 1
    for text in _text_blocks(path):
        n_lines = text.count("\n") + 1
        *block, trial_hashes = _read_block(path, text, first_lineno, columns, n_text, kept)
        for index, column in enumerate(block):
            blocks[index].append(column)
        hashes.append(trial_hashes)
        first_lineno += n_lines
    if not blocks[0] or not sum(map(len, blocks[0])):
        raise ScoreFileError(f"{path}: no trials (empty file)")
    _check_unique_trials(path, np.concatenate(hashes), columns)
    del hashes
    table = []
    for index in range(len(kept)):  # one column at a time, its blocks freed as soon as they are joined
        table.append(np.concatenate(blocks[index]))
        blocks[index] = []
    return table


def _text_blocks(path: str | os.PathLike[str]) -> Iterator[str]:
    """The file's text in blocks of whole lines (about :data:`_READ_BLOCK_CHARS` characters; the newline
    that ends a block is dropped, so a block has ``count("\\n") + 1`` lines)."""
    # universal newlines: CRLF and CR become "\n"; utf-8-sig: a byte-order mark is not part of the first id
    with open(path, encoding="utf-8-sig") as handle:
        rest = ""
        while chunk := handle.read(_READ_BLOCK_CHARS):
            text = rest + chunk
            end = text.rfind("\n")
            if end < 0:
                rest = text
                continue
            rest = text[end + 1 :]
            yield text[:end]
        if rest:
            yield rest


def _fields_per_line(text: str) -> np.ndarray:
    """``len(line.split())`` of every line of ``text`` (split at "\\n"), vectorised for ASCII text.

    A token starts at each non-whitespace character that follows whitespace (or starts the text); the
    count per line is a bincount of those starts by line (the running count of newlines before them).
    Whitespace is what ``str.split`` splits at (in ASCII also the separators \\x1c-\\x1f); other text
    takes the per-line split.
    """
    if not text.isascii():
        return np.fromiter(map(len, map(str.split, text.split("\n"))), dtype=np.int64)
    chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    if not chars.size:
        return np.zeros(1, dtype=np.int64)
    # \t\n\v\f\r (9-13), the separators \x1c-\x1f (28-31) and the space (32): unsigned wrap-around
    # makes each range one comparison
    space = (chars == 32) | ((chars - np.uint8(9)) <= 4) | ((chars - np.uint8(28)) <= 3)
    starts = ~space
    starts[1:] &= space[:-1]
    line_of_char = np.cumsum(chars == _NEWLINE, dtype=np.int32)
    return np.bincount(line_of_char[starts], minlength=int(line_of_char[-1]) + 1)


def _read_block(
    path: str | os.PathLike[str],
    text: str,
    first_lineno: int,
    columns: Sequence[str],
    n_text: int,
    kept: Sequence[int],
) -> list[np.ndarray]:
    """The ``kept`` columns of one block of text (line ``first_lineno`` first), checked as
    :func:`_read_table` says, and last the :func:`_trial_hashes` of its trials."""
    n_columns = len(columns)
    counts = _fields_per_line(text)
    wrong = (counts != 0) & (counts != n_columns)
    if wrong.any():
        first = int(np.flatnonzero(wrong)[0])
        line = text.split("\n")[first]
        raise ScoreFileError(
            f"{path}:{first_lineno + first}: expected {n_columns} fields '{' '.join(columns)}', got "
            f"{counts[first]}: {line.strip()[:120]!r}"
        )
    linenos = np.flatnonzero(counts) + first_lineno
    # Splitting the block's text equals concatenating the per-line splits, and builds no per-line lists
    # (a million small lists would make the garbage collector dominate the run time).
    tokens = text.split()
    raw = [tokens[index::n_columns] for index in range(n_columns)]
    del tokens
    trial_hashes = _trial_hashes(raw[0], raw[1])
    table: dict[int, np.ndarray] = {i: np.array(raw[i], dtype=str) for i in kept if i < n_text - 1}
    # the key column through a dict (4x faster than a string array and isin)
    keys = raw[n_text - 1]
    codes = np.fromiter(map(_KEY_INDEX.get, keys, repeat(-1)), dtype=np.int8, count=len(keys))
    if (codes < 0).any():
        first = int(np.flatnonzero(codes < 0)[0])
        raise ScoreFileError(f"{path}:{linenos[first]}: key {keys[first]!r} is not one of {', '.join(KEYS)}")
    table[n_text - 1] = codes
    for index in range(n_text, n_columns):
        column = raw[index]
        try:
            values = np.fromiter(map(float, column), dtype=np.float64, count=len(column))
        except ValueError:
            first = next(i for i, token in enumerate(column) if not _is_float(token))
            raise ScoreFileError(
                f"{path}:{linenos[first]}: {columns[index]} {column[first]!r} is not a number"
            ) from None
        finite = np.isfinite(values)
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            raise ScoreFileError(
                f"{path}:{linenos[first]}: {columns[index]} is {column[first]!r}; scores must be finite"
            )
        table[index] = values
    return [*(table[index] for index in kept), trial_hashes]


def _trial_hashes(spk: list[str], utt: list[str]) -> np.ndarray:
    """A 64-bit hash of each trial (SPK, UTT): Python's tuple hash, which costs ~0.07 s per million trials
    where keeping the two identifier columns would cost two string arrays as large as the file."""
    return np.fromiter(map(hash, zip(spk, utt, strict=True)), dtype=np.int64, count=len(spk))


def _check_unique_trials(path: str | os.PathLike[str], hashes: np.ndarray, columns: Sequence[str]) -> None:
    """Refuse a file that lists a trial (SPK, UTT) twice, naming both lines.

    One sort of the trials' hashes finds the candidates (~0.01 s per million); only when two hashes are
    equal is the file read again, line by line, to tell a real repeat from a hash collision (which is then
    accepted) and to name the lines: the first repeat in file order is the error, ``listed twice`` when the
    lines are the same trial with the same values, else what differs (two scores for one trial).
    """
    ordered = np.sort(hashes)
    if not (ordered[1:] == ordered[:-1]).any():
        return
    order = np.argsort(hashes, kind="stable")
    same = hashes[order][1:] == hashes[order][:-1]
    candidates = set(order[1:][same].tolist()) | set(order[:-1][same].tolist())
    lines = _trial_lines(path, candidates)
    first: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for index in sorted(candidates):
        lineno, fields = lines[index]
        trial = (fields[0], fields[1])
        if trial not in first:
            first[trial] = (lineno, fields)
            continue
        first_lineno, first_fields = first[trial]
        where = (
            f"{path}:{lineno}: trial {fields[0]} {fields[1]} is listed twice (lines {first_lineno}, {lineno})"
        )
        differ = [i for i, (a, b) in enumerate(zip(first_fields, fields, strict=True)) if a != b]
        if not differ:
            raise ScoreFileError(f"{where}: a repeated line would count twice in every metric")
        names = ", ".join(columns[i] for i in differ)
        values = "; ".join(f"{first_fields[i]}, {fields[i]}" for i in differ)
        raise ScoreFileError(f"{where} with different {names} ({values}): a trial has one score")


def _trial_lines(path: str | os.PathLike[str], indices: set[int]) -> dict[int, tuple[int, list[str]]]:
    """(line number, fields) of the trials with the given indices (0-based, blank lines not counted), read
    line by line as :func:`_text_blocks` splits the text (universal newlines, a byte-order mark dropped)."""
    found: dict[int, tuple[int, list[str]]] = {}
    index = 0
    with open(path, encoding="utf-8-sig") as handle:
        for lineno, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if index in indices:
                found[index] = (lineno, fields)
            index += 1
    return found


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_score_file(path: str | os.PathLike[str]) -> TrialScores:
    """Read a file written by :func:`write_score_file`; scores come back as the exact float64 values."""
    spk, utt, attack, codes, asv, cm, fused = _read_table(path, SCORE_FILE_COLUMNS)
    return TrialScores(spk=spk, utt=utt, attack=attack, key=_KEY_NAMES[codes], fused=fused, asv=asv, cm=cm)


def read_submission_scores(path: str | os.PathLike[str]) -> TrialScores:
    """Read a SASV 2022 submission ``SPK UTT ATTACK KEY SCORE``; SCORE becomes ``fused``."""
    spk, utt, attack, codes, score = _read_table(path, SUBMISSION_COLUMNS)
    return TrialScores(spk=spk, utt=utt, attack=attack, key=_KEY_NAMES[codes], fused=score)


def read_submission_keys(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """SCORE and the key codes (index in ``KEYS``) of a submission, every line checked as
    :func:`read_submission_scores` checks it: all that the EERs and detection costs need, without the
    identifier columns (three string arrays as large as the file)."""
    codes, score = _read_table(path, SUBMISSION_COLUMNS, keep=(3, 4))
    return score, codes
