"""What the two model stages write, and how it is read back: each reader beside its writer.

* ASV embeddings: a Kaldi ark/scp, a (6, D) float32 matrix per utterance (``xvector.scp``).
* CM scores: a text file, ``UTT logit_spoof logit_bonafide p_bonafide`` per line (``cm_scores.txt``).

:data:`OUTPUTS` maps a conf's kind (``asv``, ``cm``) to its :class:`OutputFormat`; the chunked driver
(:mod:`sasv.extraction.chunks`) writes every chunk through it, and scoring reads the merged file through it.
Where the files live is :mod:`sasv.exp_layout`'s business.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np
from scipy.special import log_softmax

from sasv.errors import SasvError
from sasv.metrics.eer import require_finite

Rows = list[tuple[str, np.ndarray]]


class NonFiniteOutputError(SasvError, RuntimeError):
    """A model produced NaN or Inf for an utterance."""


class MalformedOutputError(SasvError, ValueError):
    """A stage output file is malformed (the message names the file and line)."""


def bona_fide_probability(logits: np.ndarray) -> np.ndarray:
    """CM score of the reference: softmax(logits)[:, 1], index 1 being bona fide in AASIST.

    Computed as exp(log_softmax) in float64, which cannot overflow for large logits and keeps tiny spoof
    probabilities accurate; returned in the logits' float dtype (float32 for real CM output).
    """
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"expected (n, 2) CM logits [spoof, bona fide], got shape {logits.shape}")
    require_finite(logits.reshape(-1), "CM logits")
    out_dtype = np.result_type(logits.dtype, np.float32)
    return np.exp(log_softmax(logits.astype(np.float64), axis=1)[:, 1]).astype(out_dtype)


def check_finite(values: np.ndarray, utts: Sequence[str], what: str) -> None:
    bad = ~np.isfinite(values.reshape(len(utts), -1)).all(axis=1)
    if bad.any():
        names = [u for u, b in zip(utts, bad, strict=True) if b]
        raise NonFiniteOutputError(
            f"{what} is NaN or Inf for {len(names)} utterance(s), first: {', '.join(names[:5])}"
        )


def write_embedding_chunk(rows: Rows, stem: Path) -> str:
    """Write ``<stem>.ark``; return the chunk's scp lines (the caller renames them into place last)."""
    utts = [u for u, _ in rows]
    check_finite(np.stack([r for _, r in rows]), utts, "embedding")
    ark = stem.parent / f"{stem.name}.ark"
    tmp_scp = stem.parent / f"{stem.name}.scp.tmp"
    # float32 (and float64) rows are Kaldi matrices; other dtypes (float16 storage) are .npy records in the
    # ark, which kaldiio reads back with their dtype (Kaldi's own binaries cannot)
    kaldi = all(r.dtype in (np.float32, np.float64) for _, r in rows)
    kaldiio.save_ark(str(ark), dict(rows), scp=str(tmp_scp), write_function=None if kaldi else "numpy")
    text = tmp_scp.read_text()
    tmp_scp.unlink()
    return text


def read_embeddings(scp: str | Path) -> dict[str, np.ndarray]:
    """utt -> (rows, D) float32 from a kaldi scp, all in memory (an AS-norm cohort, tests); scoring streams
    through :class:`EmbeddingArchive` instead."""
    return {utt: np.asarray(mat, dtype=np.float32) for utt, mat in kaldiio.load_scp_sequential(str(scp))}


class EmbeddingArchive:
    """A merged ``xvector.scp`` read lazily: which utterances it holds (from the index text alone), and
    the rows of the utterances asked for, streamed in index order.

    At ASVspoof 5's size the six rows of every utterance do not fit in memory at once, and scoring never
    needs them at once: it keeps one vector per test utterance and the enrolment rows.
    """

    def __init__(self, scp: str | Path) -> None:
        self.scp = Path(scp)
        self._utts: frozenset[str] | None = None

    def __contains__(self, utt: object) -> bool:
        if self._utts is None:
            with open(self.scp, encoding="utf-8") as handle:
                self._utts = frozenset(fields[0] for fields in map(str.split, handle) if fields)
        return utt in self._utts

    def rows(self, wanted: Container[str]) -> Iterator[tuple[str, np.ndarray]]:
        """(utt, (rows, D) float32) of every utterance of the index that is in ``wanted``, in index order."""
        with open(self.scp, encoding="utf-8") as handle:
            lines = _Lines(line for line in handle if (head := line.split(maxsplit=1)) and head[0] in wanted)
            for utt, mat in kaldiio.load_scp_sequential(lines):
                yield utt, np.asarray(mat, dtype=np.float32)


def embedding_arks(index: str) -> list[Path]:
    """The arks the lines ``UTT <ark path>:<offset>`` of an ``xvector.scp`` point into (a path may hold
    spaces or colons: the offset is after the last colon)."""
    arks = {
        fields[1].rsplit(":", 1)[0]
        for fields in (ln.split(maxsplit=1) for ln in index.splitlines())
        if len(fields) == 2
    }
    return sorted(map(Path, arks))


def no_data_files(index: str) -> list[Path]:
    """An output that is its index alone (``cm_scores.txt``)."""
    del index
    return []


class _Lines:
    """Lines as the open text file that :func:`kaldiio.load_scp_sequential` accepts."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines

    def __enter__(self) -> Iterator[str]:
        return self._lines

    def __exit__(self, *exc: object) -> None:
        return None


def write_cm_chunk(rows: Rows, stem: Path) -> str:
    """The chunk's ``UTT logit_spoof logit_bonafide p_bonafide`` lines (nothing is written beside them)."""
    del stem
    utts = [u for u, _ in rows]
    logits = np.stack([r for _, r in rows])
    check_finite(logits, utts, "CM logits")
    prob = bona_fide_probability(logits)
    lines = zip(utts, logits.tolist(), prob.tolist(), strict=True)
    return "".join(f"{u} {lg[0]!r} {lg[1]!r} {p!r}\n" for u, lg, p in lines)


CM_FIELDS = ("logit_spoof", "logit_bonafide", "p_bonafide")


def _read_cm_fields(path: str | Path, fields_wanted: Sequence[int]) -> dict[str, tuple[float, ...]]:
    """utt -> the wanted numeric fields (1-based after UTT) of a ``cm_scores.txt``; a malformed line, a
    non-finite number or a repeated utterance names file and line."""
    rows: dict[str, tuple[float, ...]] = {}
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 4:
                raise MalformedOutputError(
                    f"{path}:{n}: expected 'UTT logit_spoof logit_bonafide p_bonafide'"
                )
            values = []
            for i in fields_wanted:
                name = "P(bona fide)" if CM_FIELDS[i - 1] == "p_bonafide" else CM_FIELDS[i - 1]
                try:
                    value = float(fields[i])
                except ValueError:
                    raise MalformedOutputError(f"{path}:{n}: {name} {fields[i]!r} is not a number") from None
                if not np.isfinite(value):
                    raise MalformedOutputError(f"{path}:{n}: {name} of {fields[0]} is {value}")
                values.append(value)
            if fields[0] in rows:
                raise MalformedOutputError(f"{path}:{n}: utterance {fields[0]} scored twice")
            rows[fields[0]] = tuple(values)
    return rows


def read_cm_scores(path: str | Path) -> dict[str, float]:
    """utt -> P(bona fide) from a ``cm_scores.txt``; malformed lines name file and line."""
    return {utt: values[0] for utt, values in _read_cm_fields(path, (3,)).items()}


def read_cm_field(path: str | Path, field: str) -> dict[str, float]:
    """utt -> one of :data:`CM_FIELDS` from a ``cm_scores.txt`` (``logit_bonafide``: the raw bona fide
    logit, the score SSL-AASIST's published ASVspoof 2021 numbers rank by)."""
    if field not in CM_FIELDS:
        raise ValueError(f"CM score field {field!r}: expected one of {', '.join(CM_FIELDS)}")
    return {utt: values[0] for utt, values in _read_cm_fields(path, (CM_FIELDS.index(field) + 1,)).items()}


def read_cm_log_odds(path: str | Path) -> dict[str, float]:
    """utt -> ``logit_bonafide - logit_spoof`` (float64) from a ``cm_scores.txt``: the CM's log-odds of
    bona fide, the score ASVspoof's calibration metrics (CLLR, actDCF) read as an LLR. P(bona fide) is no
    substitute: in float32 it saturates at 1.0 for confident utterances, where the log-odds keep ranking."""
    return {utt: b - s for utt, (s, b) in _read_cm_fields(path, (1, 2)).items()}


@dataclass(frozen=True)
class OutputFormat:
    """One stage output: ``write_chunk(rows, stem)`` returns a chunk's index text (``index_suffix``),
    the merged index is the output file, ``read`` loads it; ``data_files`` of an index are the files it
    points into (their sizes are part of what a completion marker vouches for,
    :func:`sasv.markers.output_record`)."""

    what: str
    index_suffix: str
    write_chunk: Callable[[Rows, Path], str]
    read: Callable[[str | Path], dict]
    data_files: Callable[[str], list[Path]] = no_data_files


OUTPUTS: dict[str, OutputFormat] = {
    "asv": OutputFormat("embeddings", ".scp", write_embedding_chunk, read_embeddings, embedding_arks),
    "cm": OutputFormat("CM scores", ".txt", write_cm_chunk, read_cm_scores),
}
