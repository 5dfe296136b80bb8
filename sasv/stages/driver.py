"""The one driver of both model stages: an utterance list -> resumable chunks -> one checked output file.

It plans the chunks (:class:`~sasv.extraction.chunks.ChunkPlan`), skips an output that is complete for these
inputs, and has the unfinished chunks computed by the chunk worker
(:func:`~sasv.extraction.chunks.compute_chunks`): in this process, by local jobs (:mod:`sasv.jobs.local`,
``--nj``) or by tasks of a job command (:mod:`sasv.jobs.submitted`, ``--cmd``, e.g. a Slurm job array).

The merged output is checked to hold exactly the expected utterances, in order, before its completion
marker is written (:mod:`sasv.markers`, which later stages check). The marker records the output (the
index's size and sha256, the sizes of the arks it points into): a re-run skips the output only while it is
as recorded; a damaged one (a line deleted, an ark truncated) is merged again from its chunks, and the
chunks of a changed ark are computed again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from sasv.errors import StaleOutputError
from sasv.exp_layout import StageOutput
from sasv.extraction.chunks import (
    DECODE_BATCH,
    DEFAULT_CHUNK_SIZE,
    Chunk,
    ChunkPlan,
    Item,
    audio_stamps,
    compute_chunks,
    fingerprint,
    resumed_parts,
)
from sasv.extraction.engines import Engine, EngineSpec
from sasv.extraction.outputs import OUTPUTS
from sasv.fileio import atomic_write_text
from sasv.jobs.local import JobOptions, PendingWork, run_jobs
from sasv.jobs.submitted import run_submitted
from sasv.markers import is_complete, output_damage, output_record, write_done_marker
from sasv.progress import progress_bar

log = logging.getLogger(__name__)


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
