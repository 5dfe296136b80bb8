"""The chunk worker of both model stages: the plan of an utterance list in resumable chunks, their decoding,
and :func:`compute_chunks`, which computes chunks and writes each one. The driver that decides which chunks
to compute and who computes them (this process, local jobs, submitted tasks) is
:mod:`sasv.stages.driver`; the job runners (:mod:`sasv.jobs`) call the worker, never the reverse.

Outputs are written in fixed chunks of the sorted utterance list. A chunk's data is written first and its
index (``.scp``/``.txt``) is renamed into place last, so a chunk with an index is complete; a killed run
leaves at most the chunks in progress to redo. Two fingerprints decide what may be reused:

* the *plan* (model key, chunk size, decode batch: everything that decides what a chunk holds and how it is
  computed) guards the whole chunk dir: when it changes, every chunk is discarded;
* each chunk's name carries the fingerprint of its utterances (id, path, file size and mtime), so a resumed
  run reuses a chunk only if its audio files are the ones it was made from, and redoes just the chunks of
  audio that changed.

One DataLoader decodes every unfinished chunk, its workers ahead of the model; batches never cross a chunk
boundary, so a chunk is computed with the same batches whether it runs alone (resume, another job) or with
others, and a resumed run writes bit-identical results. Only memory that does not grow with the corpus is
held: one chunk of results and the decoder prefetch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, Dataset, Sampler

from sasv.audio import AudioError, read_audio
from sasv.extraction.engines import Engine
from sasv.extraction.outputs import OutputFormat
from sasv.fileio import atomic_write_text

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 200
# Utterances decoded per DataLoader batch (the unit the workers hand over), not the model's batch size.
DECODE_BATCH = 8

Item = tuple[str, str]
Chunk = tuple[str, list[Item]]  # (chunk name, its items)


def fingerprint(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def audio_stamps(items: Sequence[Item]) -> list[str]:
    """``utt path size mtime_ns`` per item: what identifies the audio an output was computed from, cheaply
    (a stat, not a hash). A replaced file changes size or mtime; a missing one is an error naming it."""
    stamps = []
    for utt, path in items:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise AudioError(f"{path}: audio file does not exist") from None
        stamps.append(f"{utt} {path} {st.st_size} {st.st_mtime_ns}")
    return stamps


@dataclass(frozen=True)
class ChunkPlan:
    """A sorted item list cut into fixed chunks, stored under ``chunk_dir``; ``key`` is the plan's
    fingerprint and ``stamps`` the items' :func:`audio_stamps`."""

    items: list[Item]
    chunk_dir: Path
    chunk_size: int
    key: str
    stamps: list[str]

    def chunks(self) -> list[Chunk]:
        """(name, items) of every chunk; the name is its index and the fingerprint of its audio."""
        out = []
        for start in range(0, len(self.items), self.chunk_size):
            stop = start + self.chunk_size
            name = f"{start // self.chunk_size:05d}.{fingerprint(*self.stamps[start:stop])[:16]}"
            out.append((name, self.items[start:stop]))
        return out

    def prepare(self) -> None:
        """Create the chunk dir, discarding chunks made from other inputs."""
        stamp = self.chunk_dir / "FINGERPRINT"
        if self.chunk_dir.exists():
            old = stamp.read_text().strip() if stamp.exists() else ""
            if old != self.key:
                log.warning(
                    "model or chunking changed since %s was written: discarding its chunks", self.chunk_dir
                )
                shutil.rmtree(self.chunk_dir)
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        if not stamp.exists():
            atomic_write_text(stamp, self.key + "\n")


# ----------------------------------------------------------------------------------------- audio decoding


class AudioListDataset(Dataset):
    """(utt, path) pairs -> (utt, waveform); decoding runs in DataLoader workers when there are any."""

    def __init__(self, items: Sequence[Item]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray | AudioError]:
        utt, path = self.items[index]
        try:
            return utt, read_audio(path)
        except AudioError as e:
            # returned, not raised: a DataLoader worker would wrap it in a traceback-laden message
            return utt, e


class ChunkBatchSampler(Sampler[list[int]]):
    """Batches of at most ``batch_size`` consecutive indices that start at each chunk's start and never
    cross a chunk boundary, over chunks of the given lengths laid end to end."""

    def __init__(self, chunk_lengths: Sequence[int], batch_size: int) -> None:
        self.chunk_lengths = list(chunk_lengths)
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[int]]:
        offset = 0
        for length in self.chunk_lengths:
            for start in range(0, length, self.batch_size):
                yield list(range(offset + start, offset + min(start + self.batch_size, length)))
            offset += length

    def __len__(self) -> int:
        return sum(-(-n // self.batch_size) for n in self.chunk_lengths)


def _collate_list(batch: list) -> list:
    return batch


def iterate_audio(
    chunks: Sequence[Sequence[Item]], decode_batch: int, num_workers: int
) -> Iterator[list[tuple[str, np.ndarray]]]:
    """Decoded batches of every chunk in turn, from one DataLoader (its workers start once, not per chunk)."""
    items = [item for chunk in chunks for item in chunk]
    loader = DataLoader(
        AudioListDataset(items),
        batch_sampler=ChunkBatchSampler([len(c) for c in chunks], decode_batch),
        num_workers=num_workers,
        collate_fn=_collate_list,
        prefetch_factor=4 if num_workers > 0 else None,
        persistent_workers=False,
    )
    for batch in loader:
        for _, wav in batch:
            if isinstance(wav, AudioError):
                raise wav
        yield batch


def resumed_parts(chunk_dir: Path, name: str, suffix: str) -> tuple[int, list[Path]]:
    """How many utterances of chunk ``name`` an interrupted run already saved, and the index files of those
    parts (``<name>.part<start>-<end><suffix>``, contiguous from 0)."""
    parts = sorted(chunk_dir.glob(f"{name}.part*{suffix}"))
    offset, kept = 0, []
    for path in parts:
        start, end = (int(x) for x in path.name[len(name) + 5 :].removesuffix(suffix).split("-"))
        if start != offset:
            break
        offset, kept = end, [*kept, path]
    return offset, kept


def compute_group(engine: Engine, decode_batch: int) -> int:
    """Utterances per ``engine.compute`` call: whole decode batches, enough to fill one model batch.

    The decode batch is what a DataLoader worker hands over; it must not cap the model batch (a GPU CM's
    conf batch of 24 ran at 8, and ``--compile`` padded 8 real rows to 24). On CPU the model batch (at most
    5) is below the decode batch, so each call is one decode batch, as before: the same batches, the same
    bits. The group restarts at each chunk's (and resumed part's) start and never crosses a chunk's end.
    """
    model_batch = int(getattr(engine, "model_batch", 1) or 1)
    return decode_batch * max(1, -(-model_batch // decode_batch))


def compute_chunks(
    engine: Engine,
    output: OutputFormat,
    chunk_dir: Path,
    todo: Sequence[Chunk],
    decode_batch: int,
    num_workers: int,
    progress: Callable[[int], None],
) -> None:
    """Compute and write the ``todo`` chunks into ``chunk_dir``; only the current chunk's results are held
    in memory.

    Ctrl-C (or any interruption raised as KeyboardInterrupt) saves the utterances of the current chunk
    that are finished as a part (``<name>.part<start>-<end>``), so a re-run loses seconds, not a chunk. A
    part always ends on a group of decode batches (:func:`compute_group`), and the rest of the chunk is
    decoded from there in the same groups, so a resumed chunk is bit-identical to an uninterrupted one.
    """
    suffix = output.index_suffix
    resumed = {name: resumed_parts(chunk_dir, name, suffix) for name, _ in todo}
    batches = iterate_audio([chunk[resumed[name][0] :] for name, chunk in todo], decode_batch, num_workers)
    per_compute = compute_group(engine, decode_batch)
    for name, chunk in todo:
        offset, parts = resumed[name]
        rest = chunk[offset:]
        results: list = []
        try:
            while len(results) < len(rest):
                group: list[tuple[str, np.ndarray]] = []
                while len(group) < per_compute and len(results) + len(group) < len(rest):
                    group.extend(next(batches))
                results.extend(engine.compute([w for _, w in group]))
                progress(len(group))
        except KeyboardInterrupt:
            if results:
                part = f"{name}.part{offset:05d}-{offset + len(results):05d}"
                rows = [(u, r) for (u, _), r in zip(rest, results, strict=False)]
                atomic_write_text(chunk_dir / f"{part}{suffix}", output.write_chunk(rows, chunk_dir / part))
            raise
        stem = name if offset == 0 else f"{name}.part{offset:05d}-{len(chunk):05d}"
        text = output.write_chunk([(u, r) for (u, _), r in zip(rest, results, strict=True)], chunk_dir / stem)
        atomic_write_text(chunk_dir / f"{name}{suffix}", "".join(p.read_text() for p in parts) + text)
        for path in parts:  # their data (arks) stay: the chunk's index points into them
            path.unlink()
