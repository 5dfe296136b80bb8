# Sourced by the training scripts (run_train_asv.sh, run_train_cm.sh) after option parsing.
#   set_launcher   sets the array ${launch[@]} that starts a training tool: `python` for one process,
#                  torchrun on one node for --nproc_per_node > 1, torchrun with a c10d rendezvous at
#                  --rdzv_endpoint for --nnodes > 1 (run the script on every node with its --node_rank).
#                  Reads nproc_per_node, nnodes, node_rank, rdzv_endpoint.
set_launcher() {
  launch=(python)
  if [ "${nnodes}" -gt 1 ]; then
    if [ -z "${rdzv_endpoint}" ]; then
      echo "${script_name:-$0}: --nnodes ${nnodes} needs --rdzv_endpoint HOST:PORT" >&2
      exit 1
    fi
    launch=(python -m torch.distributed.run --nnodes "${nnodes}" --node_rank "${node_rank}"
      --nproc_per_node "${nproc_per_node}" --rdzv_backend c10d --rdzv_endpoint "${rdzv_endpoint}")
  elif [ "${nproc_per_node}" -gt 1 ]; then
    launch=(python -m torch.distributed.run --standalone --nproc_per_node "${nproc_per_node}")
  fi
}
