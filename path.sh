# Sourced by every stage script: the Python environment and the package on PYTHONPATH.
# Override SASV_VENV to use another virtual environment; with no venv, the current python3 is used.
SASV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SASV_VENV="${SASV_VENV:-${SASV_ROOT}/.venv}"
if [ -f "${SASV_VENV}/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "${SASV_VENV}/bin/activate"
fi
export PYTHONPATH="${SASV_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export PYTHONUNBUFFERED=1
export LC_ALL=C
