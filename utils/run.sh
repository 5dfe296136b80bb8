#!/usr/bin/env bash
# Kaldi's run.pl for this recipe: run a command once per task on this machine, each task logged.
#   utils/run.sh [--max-jobs-run N] [--num-threads N] [JOB=1:N] log/x.JOB.log command ... JOB ...
# Details and options: utils/run.sh --help (sasv/jobs/commands.py, sasv/bin/run_jobs.py).
. "$(dirname "${BASH_SOURCE[0]}")/../path.sh"
exec python -m sasv run_jobs local "$@"
