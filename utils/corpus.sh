# Sourced by the scripts that read a corpus (run_spk_ebd_extract.sh, run_train_cm.sh) after option parsing.
#   check_corpus   --corpus la | asvspoof5: for la, --root (if given) is the LA/ folder (sets la_root);
#                  asvspoof5 needs --root when stage 1 runs, and has no download stage.
#                  Reads corpus, root, la_root, stage, stop_stage, download.
check_corpus() {
  case "${corpus}" in
    la) [ -z "${root}" ] || la_root=${root} ;;
    asvspoof5)
      if [ -z "${root}" ] && [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
        echo "${script_name:-$0}: --corpus asvspoof5 needs --root <ASVspoof 5 folder> for stage 1" >&2
        exit 1
      fi
      if [ "${download}" = true ]; then
        echo "${script_name:-$0}: stage 0 downloads LA only; get ASVspoof 5 by hand" >&2
        exit 1
      fi
      ;;
    *) echo "${script_name:-$0}: --corpus must be la or asvspoof5, got '${corpus}'" >&2; exit 1 ;;
  esac
}
