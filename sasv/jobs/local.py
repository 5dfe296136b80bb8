"""Parallel jobs of a model stage: ``num_jobs`` spawned processes share the unfinished chunks.

Job k takes chunks k, k + N, ... and writes them into the same chunk dir; the parent holds the output lock,
follows the jobs' progress and fails as the first failed job did: an expected error (:class:`SasvError`)
is re-raised in the parent under its own class with its one-line message, anything else with the job's
traceback. Jobs are spawned, not forked (forking a process that has run OpenMP or CUDA is unsafe), and
build their own engine from an :class:`~sasv.extraction.engines.EngineSpec`. A job whose parent died stops
instead of writing unsupervised.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sasv.errors import SasvError, error_class
from sasv.extraction.chunks import Chunk, ChunkPlan, compute_chunks
from sasv.fileio import atomic_write_text
from sasv.runtime.devices import usable_cpus

if TYPE_CHECKING:
    from tqdm import tqdm

    from sasv.extraction.engines import EngineSpec
    from sasv.extraction.outputs import OutputFormat
    from sasv.progress import LogProgress

log = logging.getLogger(__name__)

# Decoding workers per job on a GPU when --num_workers is auto (a FLAC decode costs about as much as a GPU
# forward); on CPU decoding is <1 % of the model's time, so it runs in the job itself.
GPU_DECODE_WORKERS = 4


class JobFailedError(SasvError, RuntimeError):
    """A job process died without reporting an error (killed, e.g. by the out-of-memory killer)."""


@dataclass(frozen=True)
class JobOptions:
    """Parallel jobs: ``num_jobs`` processes, job k on ``devices[k % len(devices)]`` with ``threads``
    intra-op threads (None: the cores divided among the jobs). With a job command ``cmd`` (Kaldi style,
    e.g. ``utils/slurm.sh``) the jobs are its tasks (:mod:`sasv.jobs.submitted`), else processes spawned
    here."""

    num_jobs: int = 1
    devices: tuple[str, ...] = ()
    threads: int | None = None
    cmd: str | None = None


@dataclass(frozen=True)
class PendingWork:
    """What a model stage's jobs compute, however they run: the ``todo`` chunks of ``plan``, with the engine
    ``spec`` builds, written in ``output``'s format, decoded ``decode_batch`` utterances at a time by
    ``num_workers`` workers per job (None: each job's :func:`default_num_workers`, for tasks of a job
    command that resolve their device where they run)."""

    spec: EngineSpec
    output: OutputFormat
    plan: ChunkPlan
    todo: list[Chunk]
    decode_batch: int
    num_workers: int | None


def job_devices(device: torch.device, num_jobs: int) -> tuple[str, ...]:
    """One GPU per job when the device is plain ``cuda`` and there are several, else ``device`` for all."""
    if device.type == "cuda" and device.index is None and num_jobs > 1 and torch.cuda.device_count() > 1:
        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    return (str(device),)


def default_num_workers(device: torch.device, num_jobs: int = 1, cores: int | None = None) -> int:
    """Decoding workers per job: none on CPU (decoding is negligible there), a few per GPU job, from the
    ``cores`` the jobs share (default: this machine's)."""
    if device.type == "cpu":
        return 0
    return max(1, min(GPU_DECODE_WORKERS, (cores or usable_cpus()) // max(1, num_jobs) - 1))


@dataclass(frozen=True)
class _Job:
    index: int
    work: PendingWork  # its own share of the pending chunks
    device: str
    threads: int
    parent_pid: int
    error_file: Path


def _job_main(job: _Job, counter: Any) -> None:
    """Entry point of a spawned job process: build the engine, compute its chunks, report errors to a file."""
    from sasv.runtime.devices import bind_device

    try:
        device = torch.device(job.device)
        bind_device(device)  # job k's context on GPU k only, before anything touches CUDA
        logging.getLogger("sasv.models.conf").setLevel(logging.ERROR)  # the parent warned about the model
        work = job.work
        engine = work.spec.build(device, job.threads)
        num_workers = work.num_workers
        if num_workers is None:
            num_workers = default_num_workers(device, 1)

        def progress(n: int) -> None:
            with counter.get_lock():
                counter.value += n
            if os.getppid() != job.parent_pid:  # the parent died: stop instead of writing unsupervised
                raise SystemExit(1)

        compute_chunks(
            engine, work.output, work.plan.chunk_dir, work.todo, work.decode_batch, num_workers, progress
        )
    except BaseException as e:
        record = {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}
        if isinstance(e, OSError):  # disk full, read-only dir: relayed as the same OSError
            record["os_error"] = [e.errno, e.strerror, e.filename]
        atomic_write_text(job.error_file, json.dumps(record))
        raise SystemExit(1) from None


def run_jobs(work: PendingWork, jobs: JobOptions, bar: tqdm | LogProgress) -> None:
    """Spawn the jobs, follow their progress on ``bar``, fail as the first failed job did (the others are
    stopped)."""
    import multiprocessing

    spec, plan, todo = work.spec, work.plan, work.todo
    ctx = multiprocessing.get_context("spawn")
    num_jobs = min(jobs.num_jobs, len(todo))
    threads = jobs.threads or max(1, torch.get_num_threads() // num_jobs)
    devices = jobs.devices or ("cpu",)
    counter = ctx.Value("q", 0)
    procs = []
    error_files = [plan.chunk_dir / f".job{k}.error" for k in range(num_jobs)]
    for f in error_files:
        f.unlink(missing_ok=True)
    log.info("%d jobs, %d intra-op threads each, on %s", num_jobs, threads, ", ".join(devices))
    try:
        for k in range(num_jobs):
            share = dataclasses.replace(work, todo=todo[k::num_jobs])
            job = _Job(k, share, devices[k % len(devices)], threads, os.getpid(), error_files[k])
            proc = ctx.Process(
                target=_job_main, args=(job, counter), name=f"sasv-{spec.kind}-job{k}", daemon=False
            )
            proc.start()
            procs.append(proc)
        shown = 0
        while True:
            alive = [p for p in procs if p.exitcode is None]
            failed = [k for k, p in enumerate(procs) if p.exitcode not in (None, 0)]
            done = counter.value
            bar.update(done - shown)
            shown = done
            if failed:
                _raise_job_error(failed[0], procs[failed[0]].exitcode, error_files[failed[0]])
            if not alive:
                break
            alive[0].join(timeout=0.5)
    finally:
        for proc in procs:
            if proc.exitcode is None:
                proc.terminate()
            proc.join()
        for f in error_files:
            f.unlink(missing_ok=True)


def _raise_job_error(k: int, exitcode: int | None, error_file: Path) -> None:
    if not error_file.exists():
        raise JobFailedError(f"job {k} died (exit code {exitcode}); see the log above, then re-run to resume")
    record = json.loads(error_file.read_text())
    if "os_error" in record:
        raise OSError(*record["os_error"])
    cls = error_class(record["type"])
    if cls is not None:
        raise cls(record["message"])
    if record["type"] == "KeyboardInterrupt":
        raise KeyboardInterrupt
    raise RuntimeError(f"job {k} failed: {record['type']}: {record['message']}\n{record['traceback']}")
