# Kaldi-style option parsing, sourced by the stage scripts after they set their defaults.
# Every `--some-name value` or `--some_name=value` sets the shell variable some_name, which must already
# exist (a typo is an error, not a silently ignored option). `--help`/`-h` prints $help_message and exits.

_sasv_usage() { printf '%s\n' "${help_message:-no help available}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) _sasv_usage; exit 0 ;;
    --*=*) _name="${1%%=*}"; _value="${1#*=}"; shift ;;
    --*)
      _name="$1"
      if [ $# -lt 2 ]; then echo "${script_name:-$0}: option $1 needs a value" >&2; exit 1; fi
      _value="$2"; shift 2 ;;
    *) break ;;
  esac
  _name="${_name#--}"; _name="${_name//-/_}"
  if ! declare -p "${_name}" >/dev/null 2>&1; then
    echo "${script_name:-$0}: unknown option --${_name} (see --help)" >&2
    exit 1
  fi
  printf -v "${_name}" '%s' "${_value}"
done
unset _name _value
