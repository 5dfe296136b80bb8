"""Parallel jobs of a model stage run through a job command (``--cmd``: utils/run.sh, utils/slurm.sh).

The stage's own process (which holds the output lock) splits the unfinished chunks into N tasks (task k
takes chunks k, k + N, ..., as the local job pool does), writes them with everything a task needs to
``<chunk dir>/tasks.json`` on the shared filesystem, and runs ``$cmd JOB=1:N <out>/log/<kind>.JOB.log
python -m sasv compute_chunks --tasks <chunk dir>/tasks.json --task JOB``. Each task builds the model from
its conf, checks that conf and checkpoint still give the submitted model key (and that the chunk dir is
the submitted plan's), and computes its chunks that have no index yet, so a re-run task resumes. Chunk
files are the same whichever process computes them; the stage merges them exactly as after local jobs,
so the outputs are bit-identical to a single-process run.

While the command runs, the stage follows the finished chunks on its progress bar. Afterwards, every
chunk must have its index: the tasks that left some unfinished are reported with their logs and the log's
last error line. A re-run of the stage with the same --nj submits only the tasks that still hold
unfinished chunks, under their old numbers and logs (a cancelled task is re-run alone); with another --nj,
or when the chunks changed, the unfinished chunks are split into new tasks.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sasv.errors import StaleOutputError
from sasv.extraction.chunks import Chunk, ChunkPlan, compute_chunks
from sasv.fileio import atomic_write_text
from sasv.jobs.local import JobFailedError, default_num_workers, job_devices
from sasv.runtime.devices import usable_cpus

if TYPE_CHECKING:
    from tqdm import tqdm

    from sasv.exp_layout import StageOutput
    from sasv.extraction.engines import EngineSpec
    from sasv.jobs.local import JobOptions, PendingWork
    from sasv.progress import LogProgress

log = logging.getLogger(__name__)

TASKS_FILE = "tasks.json"
TASKS_VERSION = 1
POLL_SECONDS = 1.0
LOG_NAMES = {"asv": "embeddings", "cm": "cm_scores"}


def task_log(out: StageOutput, kind: str) -> Path:
    """The log path of the stage's tasks, with ``JOB`` for the task number."""
    return out.dir / "log" / f"{LOG_NAMES[kind]}.JOB.log"


def write_tasks(
    spec: EngineSpec, model_key: str, plan: ChunkPlan, tasks: list[list[Chunk]], num_jobs: int,
    decode_batch: int, num_workers: int | None,
) -> Path:  # fmt: skip
    """Write ``tasks.json``: what every task computes and how (JSON: readable, nothing executable).
    ``num_workers`` None (null) lets each task choose from its device and cores."""
    record = {
        "version": TASKS_VERSION,
        "num_jobs": num_jobs,
        "conf": str(Path(spec.conf.source).resolve()),
        "allow_random_init": spec.allow_random_init,
        "options": asdict(spec.options),
        "model_key": model_key,
        "plan_key": plan.key,
        "chunk_dir": str(plan.chunk_dir.resolve()),
        "decode_batch": decode_batch,
        "num_workers": num_workers,
        "tasks": [[{"name": name, "items": items} for name, items in chunks] for chunks in tasks],
    }
    path = plan.chunk_dir / TASKS_FILE
    atomic_write_text(path, json.dumps(record) + "\n")
    return path


def previous_split(plan: ChunkPlan, num_jobs: int, todo: list[Chunk]) -> list[list[Chunk]] | None:
    """The tasks of the last submission, when they still hold every unfinished chunk of the same plan and
    the same --nj: a re-run then submits the same task numbers (a cancelled task is re-run alone, with its
    own log). None when there is no such split."""
    path = plan.chunk_dir / TASKS_FILE
    try:
        record = json.loads(path.read_text())
        if record.get("version") != TASKS_VERSION or record.get("plan_key") != plan.key:
            return None
        if record.get("num_jobs") != num_jobs:
            return None
        names = [[chunk["name"] for chunk in task] for task in record["tasks"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    current = dict(plan.chunks())
    if not all(name in current for task in names for name in task):
        return None
    if not {name for name, _ in todo} <= {name for task in names for name in task}:
        return None
    return [[(name, current[name]) for name in task] for task in names]


def run_submitted(
    work: PendingWork, model_key: str, jobs: JobOptions, out: StageOutput, bar: tqdm | LogProgress
) -> None:
    """Run the pending chunks as ``jobs.num_jobs`` tasks of the job command ``jobs.cmd`` (see the module
    doc); raises :class:`~sasv.jobs.local.JobFailedError` naming the tasks that left chunks unfinished."""
    spec, output, plan, todo = work.spec, work.output, work.plan, work.todo
    suffix = output.index_suffix
    tasks = previous_split(plan, jobs.num_jobs, todo)
    if tasks is None:
        num_tasks = min(jobs.num_jobs, len(todo))
        tasks = [todo[k::num_tasks] for k in range(num_tasks)]
    tasks_file = write_tasks(spec, model_key, plan, tasks, jobs.num_jobs, work.decode_batch, work.num_workers)
    # the tasks that hold unfinished chunks (all of a new split): an interrupted run's are re-run alone
    pending = {name for name, _ in todo}
    numbers = [k + 1 for k, chunks in enumerate(tasks) if any(name in pending for name, _ in chunks)]
    first, last = numbers[0], numbers[-1]
    num_tasks = len(tasks)
    log_template = task_log(out, spec.kind)
    argv = shlex.split(jobs.cmd or "")
    if jobs.threads:
        argv += ["--num-threads", str(jobs.threads)]
    argv += [
        f"JOB={first}:{last}", str(log_template),
        sys.executable, "-m", "sasv", "compute_chunks", "--tasks", str(tasks_file), "--task", "JOB",
    ]  # fmt: skip
    if last - first + 1 < num_tasks:
        log.info("re-running task(s) %d..%d of %d: the unfinished ones", first, last, num_tasks)
    log.info("%d task(s) through %s; logs: %s", last - first + 1, jobs.cmd, log_template)

    def finished() -> int:
        return sum(len(items) for name, items in todo if (plan.chunk_dir / f"{name}{suffix}").exists())

    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    except FileNotFoundError:
        raise JobFailedError(f"{argv[0]}: job command not found (--cmd {jobs.cmd!r})") from None
    relay = threading.Thread(target=_relay_output, args=(proc, argv[0]), daemon=True)
    relay.start()
    shown = 0
    try:
        while proc.poll() is None:
            time.sleep(POLL_SECONDS)
            done = finished()
            bar.update(done - shown)
            shown = done
    except KeyboardInterrupt:
        proc.wait()  # it got the same Ctrl-C: it stops (or cancels) its tasks first
        raise
    relay.join()
    bar.update(finished() - shown)
    unfinished = [
        k + 1
        for k, chunks in enumerate(tasks)
        if any(not (plan.chunk_dir / f"{name}{suffix}").exists() for name, _ in chunks)
    ]
    if unfinished:
        first = Path(str(log_template).replace("JOB", str(unfinished[0])))
        raise JobFailedError(
            f"{first}: task(s) {', '.join(map(str, unfinished))} of {num_tasks} did not finish "
            f"({last_error(first)}); re-run the stage to redo only their unfinished chunks"
        )
    if proc.returncode != 0:
        log.warning("%s exited with %d, but every chunk is complete", jobs.cmd, proc.returncode)


def _relay_output(proc: subprocess.Popen, name: str) -> None:
    """The job command's own output, as log lines of this stage: its error line is not the stage's (the
    stage reports the tasks that did not finish, once)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip():
            log.info("%s: %s", Path(name).name, line.rstrip().removeprefix("ERROR: "))


def last_error(log_file: Path) -> str:
    """The last ``ERROR:`` line of a task's log, else its last line, else why there is none."""
    try:
        lines = [line.strip() for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return "no log: the task never started"
    errors = [line for line in lines if line.startswith("ERROR:")]
    if errors:
        return errors[-1]
    if lines and not lines[-1].startswith("# Ended"):
        return f"killed or cancelled, last line: {lines[-1]}"
    return lines[-1] if lines else "empty log"


# ------------------------------------------------------------------------------------------------- a task


class TasksFileError(StaleOutputError):
    """A tasks.json that does not fit the conf, the chunk dir or the task number asked for."""


def run_task(tasks_file: str | Path, task: int) -> None:
    """Compute the unfinished chunks of task ``task`` (1-based) of ``tasks_file`` (see the module doc)."""
    from sasv.extraction.engines import EngineOptions, EngineSpec
    from sasv.extraction.outputs import OUTPUTS
    from sasv.models.conf import load_conf
    from sasv.progress import LogProgress
    from sasv.runtime.devices import bind_device, resolve_device

    tasks_file = Path(tasks_file)
    try:
        record = json.loads(tasks_file.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        if record.get("version") != TASKS_VERSION:
            raise ValueError(f"version {record.get('version')}, expected {TASKS_VERSION}")
        tasks = record["tasks"]
    except (ValueError, KeyError, TypeError) as e:
        raise TasksFileError(f"{tasks_file}: not a tasks file of this recipe ({e})") from None
    if not 1 <= task <= len(tasks):
        raise TasksFileError(f"{tasks_file}: task {task} asked for, the file has tasks 1..{len(tasks)}")
    chunk_dir = Path(record["chunk_dir"])
    stamp = chunk_dir / "FINGERPRINT"
    if not stamp.is_file() or stamp.read_text().strip() != record["plan_key"]:
        raise TasksFileError(f"{chunk_dir}: its chunks were replaced since the tasks were written; re-run")
    signal.signal(signal.SIGTERM, _raise_interrupt)  # scancel, a time limit: save the finished utterances
    options = EngineOptions(**record["options"])
    device = resolve_device(options.device)  # here, where the task runs: the submitter may have no GPU
    slurm_cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    threads = options.threads or (int(slurm_cpus) if slurm_cpus.isdigit() else None)
    conf = load_conf(record["conf"])
    spec = EngineSpec(conf, record["allow_random_init"], options)
    loaded = spec.load()
    if spec.output_key(loaded) != record["model_key"]:
        raise TasksFileError(
            f"{conf.source}: the conf or its checkpoint changed since the tasks were written; "
            "re-run the stage"
        )
    devices = job_devices(device, len(tasks))
    device = torch.device(devices[(task - 1) % len(devices)])
    bind_device(device)  # this task's CUDA context on its own GPU only (sasv.runtime.devices.bind_device)
    num_workers = record["num_workers"]
    if num_workers is None:  # auto: from this task's machine (its Slurm allocation, else the tasks here)
        cores = int(slurm_cpus) if slurm_cpus.isdigit() else usable_cpus()
        num_workers = default_num_workers(device, 1 if slurm_cpus.isdigit() else len(tasks), cores)
    output = OUTPUTS[conf.kind]
    todo = [
        (chunk["name"], [tuple(item) for item in chunk["items"]])
        for chunk in tasks[task - 1]
        if not (chunk_dir / f"{chunk['name']}{output.index_suffix}").exists()
    ]
    total = sum(len(items) for _, items in todo)
    log.info(
        "task %d of %d: %d chunk(s), %d utterances on %s, %d thread(s), %d decoding worker(s)",
        task, len(tasks), len(todo), total, device, threads or torch.get_num_threads(), num_workers,
    )  # fmt: skip
    if not todo:
        return
    engine = spec.build(device, threads, loaded)
    bar = LogProgress(total, 0, f"task {task}: {output.what}", "utt")
    compute_chunks(engine, output, chunk_dir, todo, record["decode_batch"], num_workers, bar.update)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
