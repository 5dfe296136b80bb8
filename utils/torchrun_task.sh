#!/usr/bin/env bash
# One node's share of a training run: starts NPROC processes of a training tool on this node.
#   utils/torchrun_task.sh NPROC ARGS ...      (ARGS follow `python`, e.g. -m sasv train_cm --model_conf ...)
# Inside a Slurm job step (srun; utils/slurm.sh --num-nodes N runs it so), every task is one node of the run:
# nodes = $SLURM_NTASKS, this node's rank = $SLURM_PROCID, rendezvous on the first host of
# $SLURM_JOB_NODELIST at port $SASV_MASTER_PORT (default 20000 + job id % 20000), torchrun's static
# rendezvous (ranks in node order). Elsewhere, or with one task: python for one process, torchrun
# --standalone for more. Used by run_train_{asv,cm}.sh through cmd.sh's train_cmd, and by
# local/slurm_train.sbatch.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 1; }
nproc=$1
shift
case "${nproc}" in ''|*[!0-9]*|0) echo "ERROR: $0: NPROC must be a positive integer, got '${nproc}'" >&2; exit 1 ;; esac
. "$(dirname "${BASH_SOURCE[0]}")/../path.sh"

tasks=${SLURM_NTASKS:-1}
if [ -n "${SLURM_STEP_ID:-}" ] && [ "${tasks}" -gt 1 ]; then
  master=$(scontrol show hostnames "${SLURM_JOB_NODELIST}" | head -n 1)
  port=${SASV_MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}
  echo "$(date '+%Y-%m-%dT%H:%M:%S') (torchrun_task) node ${SLURM_PROCID} of ${tasks} on $(hostname -s):" \
    "torchrun x ${nproc}, rendezvous ${master}:${port} (Slurm job ${SLURM_JOB_ID})"
  exec python -m torch.distributed.run --nnodes "${tasks}" --node_rank "${SLURM_PROCID}" \
    --nproc_per_node "${nproc}" --master_addr "${master}" --master_port "${port}" "$@"
fi
if [ "${nproc}" -gt 1 ]; then
  exec python -m torch.distributed.run --standalone --nproc_per_node "${nproc}" "$@"
fi
exec python "$@"
