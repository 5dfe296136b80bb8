#!/usr/bin/env bash
# Create (or refresh) the recipe's virtual environment: torch first, then the package with its test extras.
# Idempotent: does nothing when the environment already matches pyproject.toml.
#   SASV_VENV         where the venv lives (default: <recipe>/.venv)
#   SASV_TORCH_SPEC   the torch requirement installed first (default: torch==2.13.0). On a GPU machine,
#                     install your CUDA build of torch into the venv beforehand; it is kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${SASV_VENV:-${root}/.venv}"
torch_spec="${SASV_TORCH_SPEC:-torch==2.13.0}"
python="${PYTHON:-python3}"

if [ ! -x "${venv}/bin/python" ]; then
  echo "setup_env: creating ${venv}"
  "${python}" -m venv "${venv}"
fi
stamp="${venv}/.sasv-installed"
want="$(sha256sum "${root}/pyproject.toml" | cut -d' ' -f1)"
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ]; then
  exit 0
fi
if ! "${venv}/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup_env: installing ${torch_spec}"
  "${venv}/bin/pip" install -q "${torch_spec}"
fi
echo "setup_env: installing the sasv package and test tools"
"${venv}/bin/pip" install -q -e "${root}[dev]"
echo "${want}" > "${stamp}"
