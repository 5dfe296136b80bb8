# Where the recipe's jobs run: sourced by every run_*.sh. Switch a whole run to a Slurm cluster by setting
# cmd_backend=slurm here and your partitions/accounts in conf/slurm.conf; nothing else changes.
#
# Each *_cmd is a Kaldi-style job command (`$cmd [--opt value] JOB=1:N log/x.JOB.log command ... JOB ...`):
#   extract_cmd  stages 2-3 of run_spk_ebd_extract.sh: --nj tasks, each a share of a set's chunks
#   train_cmd    run_train_asv.sh stages 1-3 (the training: one task per node, torchrun) and
#                run_train_cm.sh stage 2
#   score_cmd    the run_test stages (seconds of work): '' runs them here, in the terminal
# '' means: no job command; stages 2-3 spawn their --nj jobs in their own process (live progress bar).
# utils/run.sh is Kaldi's run.pl (tasks on this machine, one log each); utils/slurm.sh is its slurm.pl.
cmd_backend=${SASV_CMD_BACKEND:-local}

case "${cmd_backend}" in
  local)
    extract_cmd=""
    train_cmd=""
    score_cmd=""
    ;;
  run)  # the same, with Kaldi's run.pl behaviour: every task logs to its own file
    extract_cmd="utils/run.sh"
    train_cmd="utils/run.sh"
    score_cmd=""
    ;;
  slurm)
    # add --gpu 1 to extract_cmd to embed on GPU nodes (and pass --device cuda); train_cmd gets
    # --gpu <GPUs per node> and --num-nodes from the training scripts' --nproc_per_node and --nnodes
    extract_cmd="utils/slurm.sh --config conf/slurm.conf"  # e.g. add --mem 16G, --time 4:00:00
    train_cmd="utils/slurm.sh --config conf/slurm.conf"
    score_cmd=""
    ;;
  *)
    echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local, run or slurm)" >&2
    exit 1
    ;;
esac
