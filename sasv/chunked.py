"""The one driver of both model stages: an utterance list -> resumable chunks -> one checked output file.

Outputs are written in fixed chunks of the sorted utterance list. A chunk's data is written first and its
index (``.scp``/``.txt``) is renamed into place last, so a chunk with an index is complete; a killed run
leaves at most the chunks in progress to redo. Two fingerprints decide what may be reused:

* the *plan* (model key, chunk size, decode batch: everything that decides what a chunk holds and how it is
  computed) guards the whole chunk dir: when it changes, every chunk is discarded;
* each chunk's name carries the fingerprint of its utterances (id, path, file size and mtime), so a resumed
  run reuses a chunk only if its audio files are the ones it was made from, and redoes just the chunks of
  audio that changed.

The merged output is checked to hold exactly the expected utterances, in order, before its completion
marker is written (:mod:`sasv.markers`, which later stages check). The marker records the output (the
index's size and sha256, the sizes of the arks it points into): a re-run skips the output only while it is
as recorded; a damaged one (a line deleted, an ark truncated) is merged again from its chunks, and the
chunks of a changed ark are computed again.

One DataLoader decodes every unfinished chunk, its workers ahead of the model; batches never cross a chunk
boundary, so a chunk is computed with the same batches whether it runs alone (resume, another job) or with
others, and a resumed run writes bit-identical results. Only memory that does not grow with the corpus is
held: one chunk of results and the decoder prefetch. With more than one job the chunks are computed by
:mod:`sasv.jobs`; with a job command (``--cmd``, e.g. a Slurm job array) by :mod:`sasv.submitted_jobs`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from sasv.audio import AudioError, read_audio
from sasv.engines import Engine, EngineSpec
from sasv.errors import StaleOutputError
from sasv.exp_layout import StageOutput
from sasv.fileio import atomic_write_text
from sasv.jobs import JobOptions, PendingWork, run_jobs
from sasv.markers import is_complete, output_damage, output_record, write_done_marker
from sasv.outputs import OUTPUTS, OutputFormat
from sasv.progress import progress_bar
from sasv.submitted_jobs import run_submitted

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


# ------------------------------------------------------------------------------------------------ driver


def _pending(plan: ChunkPlan, suffix: str) -> tuple[list[Path], list[Chunk]]:
    """Every chunk's index path, and the chunks without one (still to compute). Files of chunks made from
    other audio (or beyond the last chunk) are removed: nothing stale stays beside the current chunks."""
    chunks = plan.chunks()
    current = {name for name, _ in chunks}
    for path in plan.chunk_dir.glob("[0-9]*.*"):
        if ".".join(path.name.split(".")[:2]) not in current:
            path.unlink()
    indexes, todo = [], []
    for name, chunk in chunks:
        index = plan.chunk_dir / f"{name}{suffix}"
        indexes.append(index)
        if not index.exists():
            todo.append((name, chunk))
    return indexes, todo


def _discard_chunks_of(out: StageOutput, files: Sequence[Path]) -> None:
    """Remove the chunks whose data ``files`` (arks) changed since the output was marked complete, so that
    the run computes them again."""
    for path in files:
        if path.parent.resolve() != out.chunk_dir.resolve():
            raise StaleOutputError(
                f"{out.file} points into {path}, which changed since it was marked complete and is not in "
                f"{out.chunk_dir}; delete {out.file.parent} and re-run"
            )
        name = ".".join(path.name.split(".")[:2])
        for chunk_file in out.chunk_dir.glob(f"{name}.*"):
            chunk_file.unlink()


def _check_merged(merged: str, items: Sequence[Item], out: StageOutput, what: str) -> None:
    """The merged output holds exactly the expected utterances, in order, or nothing is marked complete."""
    got = [line.split(maxsplit=1)[0] for line in merged.splitlines() if line.strip()]
    expected = [u for u, _ in items]
    if got != expected:
        first = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None)
        where = (
            f"first difference at line {first + 1}: {got[first]} vs {expected[first]}"
            if first is not None
            else ""
        )
        raise StaleOutputError(
            f"{out.chunk_dir}: the chunks hold {len(got)} {what} for {len(expected)} expected utterances "
            f"{where}; delete that folder and re-run"
        )


def run_chunked(
    engine: Engine | EngineSpec,
    items: Sequence[Item],
    out: StageOutput,
    model_key: str,
    decode_batch: int = DECODE_BATCH,
    num_workers: int | None = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    inputs: dict | None = None,
    jobs: JobOptions | None = None,
) -> Path:
    """Compute the output of ``engine``'s kind for every (utt, path) of ``items`` into ``out.file``.

    ``model_key`` identifies the model (conf + checkpoint + options that change numbers); with the item
    list it forms the fingerprint that decides whether finished chunks and outputs can be reused.
    ``inputs`` (see :func:`sasv.markers.stage_inputs`) is recorded in ``out.marker`` for later stages to
    check. ``decode_batch`` utterances are decoded together, and enough of those batches computed together
    to fill a model batch (:func:`compute_group`). ``num_workers`` None: each job or task chooses.
    ``jobs`` with more than one job needs an :class:`EngineSpec`; the caller holds the output
    lock, and its script must guard its entry point with ``if __name__ == "__main__":`` (jobs are spawned
    processes, which import the main module). Returns ``out.file``.
    """
    output = OUTPUTS[engine.kind]
    items = sorted(items)
    stamps = audio_stamps(items)
    plan_key = fingerprint(model_key, f"chunk_size={chunk_size}", f"decode_batch={decode_batch}")
    key = fingerprint(plan_key, *stamps)
    if is_complete(out.file, out.marker, key):
        damage = output_damage(out.file, out.marker)
        if damage is None:
            log.info("%s is complete for these inputs: skipping", out.file)
            return out.file
        reason, changed = damage
        log.warning("%s: doing it again (from the chunks that are intact)", reason)
        _discard_chunks_of(out, changed)
        out.marker.unlink()
    plan = ChunkPlan(items, out.chunk_dir, chunk_size, plan_key, stamps)
    plan.prepare()
    indexes, todo = _pending(plan, output.index_suffix)
    desc = f"{output.what} {out.file}"
    saved = sum(resumed_parts(plan.chunk_dir, name, output.index_suffix)[0] for name, _ in todo)
    done_utts = len(items) - sum(len(c) for _, c in todo) + saved
    if done_utts:
        log.info("%s: resuming, %d of %d utterances already done", desc, done_utts, len(items))
    num_jobs = min(jobs.num_jobs if jobs else 1, max(1, len(todo)))
    if jobs and todo and num_jobs < jobs.num_jobs:
        log.info(
            "%s: %d chunk(s) left to compute, so %d job(s) instead of --nj %d (a job takes whole chunks of "
            "--chunk_size %d utterances)",
            desc, len(todo), num_jobs, jobs.num_jobs, chunk_size,
        )  # fmt: skip
    start = time.perf_counter()
    with progress_bar(len(items), done_utts, desc, "utt") as bar:
        if todo and jobs and (jobs.cmd or num_jobs > 1):
            if not isinstance(engine, EngineSpec):
                raise ValueError("parallel jobs build their own engines: pass an EngineSpec, not an engine")
            work = PendingWork(engine, output, plan, todo, decode_batch, num_workers)
            if jobs.cmd:
                run_submitted(work, model_key, jobs, out, bar)
            else:
                run_jobs(work, jobs, bar)
        elif todo:
            if isinstance(engine, EngineSpec):
                device = torch.device(jobs.devices[0]) if jobs and jobs.devices else torch.device("cpu")
                engine = engine.build(device)
            compute_chunks(engine, output, plan.chunk_dir, todo, decode_batch, num_workers or 0, bar.update)
    if todo:
        seconds = time.perf_counter() - start
        n_utts = sum(len(c) for _, c in todo) - saved
        log.info("%s: %d utterances in %.1f s (%.2f utt/s)", desc, n_utts, seconds, n_utts / seconds)
    merged = "".join(p.read_text() for p in indexes)
    _check_merged(merged, items, out, output.what)
    atomic_write_text(out.file, merged)
    write_done_marker(out.marker, key, len(items), inputs, output_record(out.file, output.data_files(merged)))
    log.info("wrote %s", out.file)
    return out.file
