"""One task of a model stage run through a job command (--cmd): compute its chunks of tasks.json.

The stage (sasv extract_embeddings / score_cm with --cmd) writes <chunk dir>/tasks.json and runs this tool
once per task, e.g. as a Slurm job array; see sasv/jobs/submitted.py. A task computes only its chunks that
are not finished yet, and refuses to run when the conf, its checkpoint or the chunk dir changed since the
tasks were written.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sasv.cli import ArgumentParser, positive_int, run_cli
from sasv.jobs.submitted import run_task


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv compute_chunks", description=__doc__)
    p.add_argument("--tasks", required=True, help="the stage's tasks.json")
    p.add_argument(
        "--task", required=True, type=positive_int, help="this task's number (1-based, Kaldi's JOB)"
    )
    args = p.parse_args(argv)
    run_task(args.tasks, args.task)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
