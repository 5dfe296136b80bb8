# Sourced by the stage scripts after option parsing.
#   check_stage_range          --stage after --stop_stage, or --download true without stage 0, is an error,
#                              not a run that does nothing
#   start_log <exp_dir> <name> everything the script prints goes to the terminal and to
#                              <exp_dir>/logs/<name>.<timestamp>.<pid>.log (two runs never share one);
#                              the first line is the command with every option's value (from $help_message);
#                              Ctrl-C (SIGINT to the process group) ends the script with one line
#                              `ERROR: interrupted (Ctrl-C); re-run the same command to resume`, in the
#                              terminal and the log, and exit status 130 (the log's tee ignores SIGINT, so it
#                              outlives the script and carries that line; the Python tools the script runs
#                              leave the line to it: SASV_INTERRUPT_REPORTER, sasv/cli.py)
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
  exec > >(trap '' INT; exec tee -a "${log_file}") 2>&1
  _log_name="$2"
  # the outermost script reports an interruption; a tool or script it runs exits 130 without a line
  [ -n "${SASV_INTERRUPT_REPORTER:-}" ] || export SASV_INTERRUPT_REPORTER=$$
  trap 'exit 130' INT
  trap _log_exit EXIT
  local _opt _command="${script_name:-$0}"   # _-prefixed: an option may be called `name` or `command`
  for _opt in $(printf '%s\n' "${help_message}" | grep -o -- '--[a-z0-9_]*' | awk '!seen[$0]++'); do
    _opt="${_opt#--}"
    if ! declare -p "${_opt}" >/dev/null 2>&1; then continue; fi
    if [[ "${!_opt}" == *$'\n'* ]]; then  # a list of one item per line: $'...' keeps the line one line
      _command+=" --${_opt} $(printf '%q' "${!_opt}")"
    else
      _command+=" --${_opt} '${!_opt}'"
    fi
  done
  log "${_command}  (log: ${log_file})"
}

# the EXIT trap of start_log: exit status 130 (Ctrl-C here, or a tool interrupted) is one line
_log_exit() {
  local status=$?
  if [ "${status}" -eq 130 ] && [ "${SASV_INTERRUPT_REPORTER:-}" = "$$" ]; then
    echo "ERROR: interrupted (Ctrl-C); re-run the same command to resume"
  fi
  exit "${status}"
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
  local _status=0
  # shellcheck disable=SC2086  # ${cmd} is a command line: it splits into words, as in Kaldi
  ${cmd} "${_opts[@]}" "${_job_log}" "$@" || _status=$?
  [ "${_status}" -ne 130 ] || exit 130  # interrupted: one line (the EXIT trap), not a failure report
  if [ "${_status}" -ne 0 ]; then
    echo "${script_name:-$0}: ${_name} failed through '${cmd}'; the end of ${_job_log}:" >&2
    tail -n 20 "${_job_log}" >&2 || true
    return 1
  fi
}
