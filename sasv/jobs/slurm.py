"""The Slurm backend of the job commands (``utils/slurm.sh``): one job array per command, on a real cluster.

The tasks of ``JOB=a:b`` are one ``sbatch --array=a-b[%max-jobs-run]`` job whose generated batch script
(``<log dir>/q/<name>.sh``) replaces ``JOB`` by ``$SLURM_ARRAY_TASK_ID`` and writes each task's log as the
local backend does (command, start, output, ``# Ended (code N)``); Slurm's own messages about a task (time
limit, cancellation) go to ``<log dir>/q/<name>.<task>.out``. The submitter polls ``squeue`` until the array
has left the queue, then judges every task by its log's end line: a task cancelled or killed never writes
one. Ctrl-C (or SIGTERM) of the submitter cancels the array. With ``--num-nodes N`` the command runs under
``srun`` once per node (multi-node training; see utils/slurm_torchrun.sh).

The options map onto sbatch options through a Kaldi ``slurm.pl``-style config (``conf/slurm.conf``)::

    command sbatch --export=ALL        # the submit command and options every job gets
    option mem=* --mem $0              # --mem X  ->  --mem X ($0 is the value)
    option gpu=0                       # --gpu 0  ->  nothing
    option gpu=* -p gpu --gres=gpu:$0  # --gpu N  ->  the GPU partition and N GPUs
    default gpu=0                      # what an option is when a command does not give it

An exact rule (``gpu=0``) wins over a ``*`` rule. ``--max-jobs-run`` is the array's ``%`` throttle and needs
no rule; any other option without a rule is an error naming the config.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from sasv.errors import SasvError
from sasv.jobs.commands import JobCommand, JobCommandError

DEFAULT_CONFIG = Path("conf/slurm.conf")
POLL_SECONDS = float(os.environ.get("SASV_SLURM_POLL", "2"))
BACKEND_OPTIONS = ("config", "max_jobs_run")


class SlurmConfigError(SasvError, ValueError):
    """A malformed Slurm config, or an option it has no rule for."""


class SlurmError(SasvError, RuntimeError):
    """sbatch or squeue failed (the message carries Slurm's own)."""


@dataclass
class SlurmConfig:
    """A parsed Kaldi-style slurm config: the submit command, option rules and defaults."""

    path: Path
    command: list[str] = field(default_factory=lambda: ["sbatch"])
    exact: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    wildcard: dict[str, list[str]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | Path) -> SlurmConfig:
        path = Path(path)
        if not path.is_file():
            raise SlurmConfigError(f"{path}: Slurm config not found (copy and edit conf/slurm.conf)")
        config = cls(path)
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.split("#", 1)[0].split()
            if not line:
                continue
            where = f"{path}:{number}"
            if line[0] == "command" and len(line) > 1:
                config.command = line[1:]
            elif line[0] in ("option", "default") and len(line) > 1 and "=" in line[1]:
                name, value = line[1].split("=", 1)
                if line[0] == "default":
                    config.defaults[name] = value
                elif value == "*":
                    config.wildcard[name] = line[2:]
                else:
                    config.exact[name, value] = line[2:]
            else:
                raise SlurmConfigError(
                    f"{where}: expected 'command ...', 'option NAME=VALUE ...' or 'default NAME=VALUE', "
                    f"got {raw.strip()!r}"
                )
        return config

    def sbatch_options(self, options: dict[str, str]) -> list[str]:
        """The sbatch options for a command's ``--name value`` options (defaults filled in)."""
        out: list[str] = []
        for name, value in {**self.defaults, **options}.items():
            if name in BACKEND_OPTIONS:
                continue
            if (name, value) in self.exact:
                out += self.exact[name, value]
            elif name in self.wildcard:
                out += [arg.replace("$0", value) for arg in self.wildcard[name]]
            else:
                raise SlurmConfigError(
                    f"{self.path}: no rule for --{name.replace('_', '-')} {value} "
                    f"(add 'option {name}=* <sbatch options with $0>')"
                )
        return out


def batch_script(job: JobCommand) -> str:
    """The bash script every array task runs (``JOB`` replaced at run time by the task number)."""
    variable = job.variable or "JOB"
    srun = ""
    if "num_nodes" in job.options:
        srun = (
            'srun --nodes="${SLURM_NNODES}" --ntasks="${SLURM_NNODES}" --ntasks-per-node=1 '
            '--cpus-per-task="${SLURM_CPUS_PER_TASK:-1}" '
        )
    lines = [
        "#!/usr/bin/env bash",
        "# written by utils/slurm.sh; one array task: the command with its task number, logged",
        f"cd {_quote(str(job.cwd))}",
        f'{variable}="${{SLURM_ARRAY_TASK_ID:-{job.first}}}"',
        f"log={_quote(job.log)}",
        f"cmd={_quote(job.shell())}",
    ]
    if job.variable:
        lines += [
            f'log="${{log//{variable}/${{{variable}}}}}"',
            f'cmd="${{cmd//{variable}/${{{variable}}}}}"',
        ]
    lines += [
        'mkdir -p "$(dirname "${log}")"',
        # the task's cores are its allocation's (--num-threads -> --cpus-per-task), not the submitter's
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
        '{ echo "# ${cmd}"; echo "# Started at $(date) on $(hostname) (Slurm job ${SLURM_JOB_ID})"; }'
        ' > "${log}"',
        "start=$(date +%s)",
        f'{srun}bash -c "${{cmd}}" >> "${{log}}" 2>&1',
        "code=$?",
        "seconds=$(( $(date +%s) - start ))",
        'echo "# Accounting: time=${seconds} threads=${SLURM_CPUS_PER_TASK:-1}" >> "${log}"',
        'echo "# Ended (code ${code}) at $(date), elapsed time ${seconds} seconds" >> "${log}"',
        'exit "${code}"',
    ]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _job_name(job: JobCommand) -> str:
    """The log's base name without the task variable and suffix: ``log/extract.JOB.log`` -> ``extract``."""
    name = Path(job.log).name
    if job.variable:
        name = name.replace(job.variable, "")
    name = re.sub(r"\.log$", "", name).strip("._-") or "sasv"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def submit(job: JobCommand, config: SlurmConfig) -> str:
    """Write the batch script, submit the array; returns Slurm's job id."""
    queue_dir = Path(job.for_task(job.log, job.first)).parent / "q"
    queue_dir.mkdir(parents=True, exist_ok=True)
    name = _job_name(job)
    script = queue_dir / f"{name}.sh"
    script.write_text(batch_script(job))
    array = f"{job.first}-{job.last}"
    if "max_jobs_run" in job.options:
        array += f"%{job.int_option('max_jobs_run', 1)}"
    for task in job.tasks:  # a previous run's end lines must not pass for this run's
        Path(job.for_task(job.log, task)).unlink(missing_ok=True)
    argv = [
        *config.command, "--parsable", f"--array={array}", f"--job-name={name}",
        f"--output={queue_dir / name}.%a.out", *config.sbatch_options(job.options), str(script),
    ]  # fmt: skip
    try:
        out = subprocess.run(argv, capture_output=True, text=True, cwd=job.cwd, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SlurmError(f"{config.path}: {argv[0]} not found: is this a Slurm submit host?") from None
    if out.returncode != 0:
        raise SlurmError(
            f"{config.path}: {' '.join(argv[:1])} failed: {out.stderr.strip() or out.stdout.strip()}"
        )
    return out.stdout.strip().split(";")[0]


def in_queue(job_id: str) -> bool:
    """Whether any task of the job is still pending or running."""
    out = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%i"], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if out.returncode != 0:
        if "Invalid job id" in out.stderr:  # finished and purged from the controller's memory
            return False
        raise SlurmError(f"squeue -j {job_id}: {out.stderr.strip()}")
    return bool(out.stdout.strip())


def run_slurm(job: JobCommand) -> None:
    """Submit ``job`` as one job array, wait for it, raise :class:`~sasv.jobs.commands.TasksFailedError`
    naming the tasks that did not end with code 0. Interrupted, it cancels the array."""
    config = SlurmConfig.read(job.options.get("config", DEFAULT_CONFIG))
    if "num_nodes" in job.options and len(job.tasks) > 1:
        raise JobCommandError("--num-nodes: one multi-node task at a time, not a task range")
    job_id = None
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        job_id = submit(job, config)
        while in_queue(job_id):
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        if job_id is not None:
            subprocess.run(["scancel", job_id], capture_output=True, stdin=subprocess.DEVNULL)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    failed = job.failed_tasks()
    if failed:
        raise job.failure(failed, f"Slurm job {job_id}")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
