# Sourced by the stage scripts after option parsing: `start_log <exp_dir> <name>` sends everything the script
# prints to the terminal and to <exp_dir>/logs/<name>.<timestamp>.log; `log MESSAGE` prints a timestamped
# line naming the script and line (like ESPnet's log()).
start_log() {
  mkdir -p "$1/logs"
  log_file="$1/logs/$2.$(date +%Y%m%d-%H%M%S).log"
  exec > >(tee -a "${log_file}") 2>&1
  _log_name="$2"
}
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${_log_name:-${0##*/}}:${BASH_LINENO[0]}) $*"; }
