#!/usr/bin/env bash
# Kaldi's slurm.pl for this recipe: run a command once per task as one Slurm job array, wait, check.
#   utils/slurm.sh [--config conf/slurm.conf] [--mem X] [--gpu N] [--num-threads N] [--max-jobs-run N]
#                  [--num-nodes N] [JOB=1:N] log/x.JOB.log command ... JOB ...
# conf/slurm.conf maps the options onto sbatch options. Details: utils/slurm.sh --help (sasv/jobs/slurm.py).
. "$(dirname "${BASH_SOURCE[0]}")/../path.sh"
exec python -m sasv run_jobs slurm "$@"
