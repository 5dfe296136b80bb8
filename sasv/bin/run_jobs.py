"""``sasv run_jobs {local,slurm} [--opt value ...] [JOB=1:N] LOG COMMAND ...``: a Kaldi-style job command,
what ``utils/run.sh`` (this machine, :func:`sasv.jobs.commands.run_local`) and ``utils/slurm.sh``
(:func:`sasv.jobs.slurm.run_slurm`) run."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sasv.cli import run_cli
from sasv.jobs import commands, slurm
from sasv.jobs.commands import parse_job_command, run_local
from sasv.jobs.slurm import run_slurm

BACKENDS = {"local": "utils/run.sh", "slurm": "utils/slurm.sh"}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in BACKENDS:
        print(f"usage: sasv run_jobs {{{','.join(BACKENDS)}}} [--opt value ...] [JOB=1:N] LOG COMMAND ...")
        return 2
    backend, rest = args[0], args[1:]
    if rest[:1] in (["-h"], ["--help"]):
        print(f"usage: {BACKENDS[backend]} [--opt value ...] [JOB=1:N] LOG COMMAND ...\n\n{commands.__doc__}")
        if backend == "slurm":
            print(slurm.__doc__)
        return 0
    job = parse_job_command(rest)
    if backend == "local":
        job.options.pop("config", None)
        run_local(job)
    else:
        run_slurm(job)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
