# Sourced by the scripts that read a corpus (run_spk_ebd_extract.sh, run_train_cm.sh) after option parsing.
#   check_corpus   asks `sasv corpus check` (every corpus's rules are its record in sasv/corpora/registry.py)
#                  whether --corpus, --root, --download, the stage range and --trials_dir fit, and sets
#                  corpus_root: the folder stages 0 and 1 read (--root, else --la_root for la).
#                  Reads corpus, root, la_root, stage, stop_stage, download and trials_dir (if the script has it).
#   corpus_query Q asks `sasv corpus Q --corpus ${corpus}`: prepare_tool, download, title, sets, cm_only,
#                  cm_evaluation.
check_corpus() {
  local stage1=false
  if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then stage1=true; fi
  corpus_root=$(python -m sasv corpus check --caller "${script_name:-$0}" --corpus "${corpus}" --root "${root}" \
    --la_root "${la_root}" --stage1 "${stage1}" --download "${download}" --set_options ${trials_dir:+trials_dir})
}

corpus_query() {
  python -m sasv corpus "$1" --corpus "${corpus}"
}
