# Kaldi-style option parsing, sourced by the stage scripts after they set their defaults.
# Every `--some-name value` or `--some_name=value` sets the shell variable some_name, which must already
# exist (a typo is an error, not a silently ignored option). `--help`/`-h` prints $help_message and exits.
#
# split_list ARRAY VALUE   the items of a list option (--asv_conf, --cm_conf: several confs in one value)
#                          into the array ARRAY, each item one word whatever it holds:
#                            a VALUE of several lines: one item per line (paths with spaces:
#                              --asv_conf "$(printf '%s\n' 'my models/a.yaml' conf/asv/ecapa_tdnn.yaml)");
#                            a VALUE that names an existing file: that one path, spaces and all
#                              (--asv_conf "my models/model.yaml");
#                            else its space-separated words (--asv_conf "conf/asv/a.yaml conf/asv/b.yaml").
#                          No glob is expanded.

split_list() {
  local -n _split_into=$1
  local _item
  _split_into=()
  if [[ "$2" == *$'\n'* ]]; then
    while IFS= read -r _item; do [ -z "${_item}" ] || _split_into+=("${_item}"); done <<< "$2"
  elif [ -f "$2" ]; then
    _split_into=("$2")
  else
    read -r -a _split_into <<< "$2"
  fi
}

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
