# Sourced by the training scripts (run_train_asv.sh, run_train_cm.sh) after option parsing.
#   set_launcher LOG  sets the array ${launch[@]} that starts a training tool (its python arguments follow).
#     With a job command ${cmd} (cmd.sh's train_cmd, e.g. utils/slurm.sh): one job of --nnodes nodes with
#     --nproc_per_node GPUs each (none with --device cpu), which starts utils/torchrun_task.sh on every node
#     (torchrun, rendezvous on the first node) with SASV_TRAIN_CPUS_PER_RANK (default 8) CPU cores per
#     process (--num-threads); its output goes to LOG.
#     Without: `python` for one process, torchrun on this node for --nproc_per_node > 1, torchrun with a
#     c10d rendezvous at --rdzv_endpoint for --nnodes > 1 (run the script on every node with its --node_rank).
#     Reads cmd, device, nproc_per_node, nnodes, node_rank, rdzv_endpoint.
set_launcher() {
  if [ -n "${cmd:-}" ]; then
    local gpus=${nproc_per_node}
    [ "${device}" != cpu ] || gpus=0
    # CPU cores per node: each rank's main process and its DataLoader workers (decoding, augmentation)
    # need cores of their own; without --num-threads a Slurm job gets one core for the whole node's ranks
    local threads=$(( nproc_per_node * ${SASV_TRAIN_CPUS_PER_RANK:-8} ))
    # shellcheck disable=SC2206  # ${cmd} is a command line: it splits into words, as in Kaldi
    launch=(${cmd} --num-nodes "${nnodes}" --gpu "${gpus}" --num-threads "${threads}" "$1"
      utils/torchrun_task.sh "${nproc_per_node}")
    log "the training runs through '${cmd}': ${nnodes} node(s) x ${gpus} GPU(s), ${threads} CPU core(s);" \
      "its output goes to $1"
    return
  fi
  launch=(python)
  if [ "${nnodes}" -gt 1 ]; then
    if [ -z "${rdzv_endpoint}" ]; then
      echo "${script_name:-$0}: --nnodes ${nnodes} needs --rdzv_endpoint HOST:PORT (or a job command:" \
        "--cmd 'utils/slurm.sh ...')" >&2
      exit 1
    fi
    launch=(python -m torch.distributed.run --nnodes "${nnodes}" --node_rank "${node_rank}"
      --nproc_per_node "${nproc_per_node}" --rdzv_backend c10d --rdzv_endpoint "${rdzv_endpoint}")
  elif [ "${nproc_per_node}" -gt 1 ]; then
    launch=(python -m torch.distributed.run --standalone --nproc_per_node "${nproc_per_node}")
  fi
}
