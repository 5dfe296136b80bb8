"""Kaldi-style job commands: ``$cmd [--opt value ...] [JOB=1:N] log/x.JOB.log command ...``.

Kaldi's ``run.pl``/``queue.pl``/``slurm.pl`` interface is what speech researchers know, so the recipe's
backends take exactly it (``utils/run.sh`` for this machine, ``utils/slurm.sh`` for a Slurm cluster; a
recipe picks one in ``cmd.sh``). Tasks ``JOB=a:b`` run the command once per task, with every occurrence of
the variable name (``JOB``) in the command and the log path replaced by the task number; without one, the
command runs once. Each task's output goes to its log file, which starts with the command and ends with
``# Ended (code N) ...``, as Kaldi's do. The exit status is 0 when every task ended with code 0; otherwise
one line names the failed tasks and their logs.

How the command is run: tokens are quoted for bash, except standalone shell operators (``|``, ``&&``,
``>`` ...), which a caller passes escaped (``\\|``) to pipe inside a task, as in Kaldi.

Options (``--name value``; dashes and underscores are the same): ``--num-threads N``, ``--mem X``,
``--gpu N``, ``--max-jobs-run N``, ``--num-nodes N``, ``--config FILE`` (Slurm). This machine's backend
(:func:`run_local`) runs at most ``--max-jobs-run`` tasks at once (default: all) and gives each
``OMP_NUM_THREADS`` = ``--num-threads`` (default: the cores, or ``OMP_NUM_THREADS``, divided among the
tasks that run at once); ``--mem``, ``--gpu`` and ``--num-nodes`` ask a scheduler for resources and mean
nothing here. The Slurm backend is :mod:`sasv.jobs.slurm`.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sasv.errors import SasvError
from sasv.runtime.devices import usable_cpus

SHELL_OPERATORS = frozenset({"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1", "&>", "|&"})
_TASKS = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")
_ENDED = re.compile(r"^# Ended \(code (-?\d+)\)", re.MULTILINE)


class JobCommandError(SasvError, ValueError):
    """A job command line that does not parse (no log file, no command, a bad task range)."""


class TasksFailedError(SasvError, RuntimeError):
    """Tasks of a job command did not end with code 0 (the message names them and their logs)."""


@dataclass(frozen=True)
class JobCommand:
    """One parsed job command: options, tasks ``first..last`` of ``variable``, a log path and a command
    (both may hold the variable)."""

    options: dict[str, str]
    log: str
    command: list[str]
    variable: str | None = None
    first: int = 1
    last: int = 1
    cwd: Path = field(default_factory=Path.cwd)

    @property
    def tasks(self) -> range:
        return range(self.first, self.last + 1)

    def for_task(self, text: str, task: int) -> str:
        """``text`` with the task variable replaced by ``task`` (Kaldi replaces every occurrence)."""
        return text.replace(self.variable, str(task)) if self.variable else text

    def shell(self) -> str:
        """The command as one bash command line (see the module doc for the quoting)."""
        return shell_line(self.command)

    def int_option(self, name: str, default: int) -> int:
        value = self.options.get(name)
        if value is None:
            return default
        if not value.isdigit() or int(value) < 1:
            raise JobCommandError(f"--{name.replace('_', '-')}: expected a positive integer, got {value!r}")
        return int(value)

    def failed_tasks(self) -> list[int]:
        """Tasks whose log does not end with code 0 (no log, killed before its end line, or failed)."""
        return [task for task in self.tasks if task_exit_code(Path(self.for_task(self.log, task))) != 0]

    def failure(self, failed: Sequence[int], backend: str) -> TasksFailedError:
        pattern = self.log.replace(self.variable, "*") if self.variable else self.log
        n = len(self.tasks)
        which = ", ".join(map(str, failed))
        return TasksFailedError(
            f"{pattern}: {len(failed)} / {n} task(s) of {backend} failed "
            f"({self.variable or 'task'} {which}); first log: {self.for_task(self.log, failed[0])}"
        )


def shell_line(tokens: Sequence[str]) -> str:
    return " ".join(t if t in SHELL_OPERATORS else shlex.quote(t) for t in tokens)


def task_exit_code(log: Path) -> int | None:
    """The code of a task's ``# Ended (code N)`` line; None when it has none (never ran, or was killed)."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return None
    ended = _ENDED.findall(text)
    return int(ended[-1]) if ended else None


def parse_job_command(argv: Sequence[str]) -> JobCommand:
    """``[--opt value ...] [VAR=a[:b]] log command ...`` -> :class:`JobCommand` (Kaldi's argument order)."""
    args = list(argv)
    options: dict[str, str] = {}
    while args and args[0].startswith("--"):
        name = args.pop(0)[2:].replace("-", "_")
        if "=" in name:
            name, value = name.split("=", 1)
        elif args:
            value = args.pop(0)
        else:
            raise JobCommandError(f"--{name}: missing its value")
        options[name] = value
    variable, first, last = None, 1, 1
    if args and (m := _TASKS.match(args[0])):
        args.pop(0)
        variable, first = m.group(1), int(m.group(2))
        last = int(m.group(3)) if m.group(3) is not None else first
        if first < 1 or last < first:
            raise JobCommandError(f"{m.group(0)}: task range must be 1 <= first <= last")
    if len(args) < 2:
        raise JobCommandError(
            "expected [--opt value ...] [JOB=1:N] LOG COMMAND ..., got " + (shlex.join(argv) or "nothing")
        )
    log, command = args[0], args[1:]
    if variable and len(job_tasks := range(first, last + 1)) > 1 and variable not in log:
        raise JobCommandError(f"{log}: the log of {len(job_tasks)} tasks must contain {variable}")
    return JobCommand(options, log, command, variable, first, last)


def log_header(command: str) -> str:
    return f"# {command}\n# Started at {time.strftime('%c')} on {socket.gethostname()}\n"


def log_footer(code: int, seconds: float, threads: int) -> str:
    return (
        f"# Accounting: time={seconds:.0f} threads={threads}\n"
        f"# Ended (code {code}) at {time.strftime('%c')}, elapsed time {seconds:.0f} seconds\n"
    )


def available_cores() -> int:
    """OMP_NUM_THREADS when set (the user's ceiling), else the cores this process may use."""
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return int(omp) if omp.isdigit() and int(omp) > 0 else usable_cpus()


def run_local(job: JobCommand) -> None:
    """Kaldi's run.pl: the tasks as processes of this machine, at most ``--max-jobs-run`` at once; raises
    :class:`TasksFailedError` when any failed. Ctrl-C stops the running tasks."""
    parallel = min(job.int_option("max_jobs_run", len(job.tasks)), len(job.tasks))
    threads = job.int_option("num_threads", max(1, available_cores() // parallel))
    procs: dict[int, subprocess.Popen] = {}

    def run_task(task: int) -> int:
        log = Path(job.for_task(job.log, task))
        log.parent.mkdir(parents=True, exist_ok=True)
        command = job.for_task(job.shell(), task)
        start = time.monotonic()
        with open(log, "w") as f:
            f.write(log_header(command))
            f.flush()
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            proc = subprocess.Popen(
                ["bash", "-c", command], stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=job.cwd, start_new_session=True,
            )  # fmt: skip
            procs[task] = proc
            code = proc.wait()
            f.write(log_footer(code, time.monotonic() - start, threads))
        return code

    pool = ThreadPoolExecutor(max_workers=parallel)
    try:
        codes = list(pool.map(run_task, job.tasks))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            proc.wait()
        raise
    pool.shutdown()
    failed = [task for task, code in zip(job.tasks, codes, strict=True) if code != 0]
    if failed:
        raise job.failure(failed, "utils/run.sh")
