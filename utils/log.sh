# Sourced by the stage scripts after option parsing.
#   check_stage_range          --stage after --stop_stage, or --download true without stage 0, is an error,
#                              not a run that does nothing
#   start_log <exp_dir> <name> everything the script prints goes to the terminal and to
#                              <exp_dir>/logs/<name>.<timestamp>.<pid>.log (two runs never share one);
#                              the first line is the command with every option's value (from $help_message)
#   log MESSAGE                a timestamped line naming the script and line (like ESPnet's log())
#   run_job [--num-threads N] NAME COMMAND ...
#                              COMMAND here, or through the job command ${cmd} when the script has one
#                              (cmd.sh), as one task with N cores: then its output goes to
#                              <log_file without .log>/NAME.log, and the end of that log is shown when it fails
check_stage_range() {
  if [ "${stage}" -gt "${stop_stage}" ]; then
    echo "${script_name:-$0}: --stage ${stage} is after --stop_stage ${stop_stage}: nothing would run" >&2
    exit 1
  fi
  # --download true (the scripts with an opt-in download stage 0) needs stage 0 in the range
  if [ "${download:-false}" = true ] && { [ "${stage}" -gt 0 ] || [ "${stop_stage}" -lt 0 ]; }; then
    echo "${script_name:-$0}: --download true runs in stage 0, which --stage ${stage} --stop_stage" \
      "${stop_stage} skips; pass --stage 0" >&2
    exit 1
  fi
}

start_log() {
  mkdir -p "$1/logs"
  log_file="$1/logs/$2.$(date +%Y%m%d-%H%M%S).$$.log"
  exec > >(tee -a "${log_file}") 2>&1
  _log_name="$2"
  local _opt _command="${script_name:-$0}"   # _-prefixed: an option may be called `name` or `command`
  for _opt in $(printf '%s\n' "${help_message}" | grep -o -- '--[a-z0-9_]*' | awk '!seen[$0]++'); do
    _opt="${_opt#--}"
    if declare -p "${_opt}" >/dev/null 2>&1; then _command+=" --${_opt} '${!_opt}'"; fi
  done
  log "${_command}  (log: ${log_file})"
}

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${_log_name:-${0##*/}}:${BASH_LINENO[0]}) $*"; }

run_job() {
  local _opts=() _name _job_log
  while [ "${1:-}" = --num-threads ]; do _opts+=("$1" "$2"); shift 2; done
  _name=$1
  shift
  if [ -z "${cmd:-}" ]; then
    "$@"
    return
  fi
  _job_log="${log_file%.log}/${_name}.log"
  # shellcheck disable=SC2086  # ${cmd} is a command line: it splits into words, as in Kaldi
  if ! ${cmd} "${_opts[@]}" "${_job_log}" "$@"; then
    echo "${script_name:-$0}: ${_name} failed through '${cmd}'; the end of ${_job_log}:" >&2
    tail -n 20 "${_job_log}" >&2 || true
    return 1
  fi
}
