#!/usr/bin/env bash
# Create (or refresh) the recipe's virtual environment: torch first, then the package with its test extras.
# Idempotent: does nothing when the environment already matches pyproject.toml and the torch source asked for.
#   SASV_VENV            where the venv lives (default: <recipe>/.venv)
#   SASV_TORCH_SPEC      the torch requirement installed first (default: torch==2.13.0)
#   SASV_TORCH_INDEX_URL (or --torch-index-url URL) the index torch comes from, e.g. a CUDA build's
#                        https://download.pytorch.org/whl/cu128. Given, torch is (re)installed from it
#                        once, replacing a torch already in the venv (a CPU build made on a login node);
#                        not given, a torch already in the venv is kept.
# On a machine where nvidia-smi sees a GPU that the venv's torch cannot use, it says so (and how to fix it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${SASV_VENV:-${root}/.venv}"
torch_spec="${SASV_TORCH_SPEC:-torch==2.13.0}"
torch_index="${SASV_TORCH_INDEX_URL:-}"
python="${PYTHON:-python3}"

while [ $# -gt 0 ]; do
  case "$1" in
    --torch-index-url|--torch_index_url)
      [ $# -ge 2 ] || { echo "ERROR: setup_env: $1 needs a URL" >&2; exit 2; }
      torch_index="$2"; shift 2 ;;
    --torch-index-url=*|--torch_index_url=*) torch_index="${1#*=}"; shift ;;
    *) echo "ERROR: setup_env: unknown option $1 (--torch-index-url URL)" >&2; exit 2 ;;
  esac
done

# A GPU that nvidia-smi sees but this torch cannot use: a CPU build of torch (the run would be slow, silently).
warn_unused_gpu() {
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  local gpus
  gpus="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
  [ "${gpus:-0}" -gt 0 ] || return 0
  if ! "${venv}/bin/python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" \
      2>/dev/null; then
    local version
    version="$("${venv}/bin/python" -c "import torch; print(torch.__version__)" 2>/dev/null || echo none)"
    echo "WARNING: setup_env: nvidia-smi sees ${gpus} GPU(s), but the venv's torch (${version}) cannot use" \
      "them: re-run with --torch-index-url https://download.pytorch.org/whl/<cuda tag, e.g. cu128>" >&2
  fi
}

if [ ! -x "${venv}/bin/python" ]; then
  echo "setup_env: creating ${venv}"
  "${python}" -m venv "${venv}"
fi
index_stamp="${venv}/.sasv-torch-index"
if [ -n "${torch_index}" ] && [ "$(cat "${index_stamp}" 2>/dev/null || true)" != "${torch_spec} ${torch_index}" ]; then
  echo "setup_env: installing ${torch_spec} from ${torch_index} (replacing any torch in ${venv})"
  "${venv}/bin/pip" install -q --force-reinstall --index-url "${torch_index}" "${torch_spec}"
  echo "${torch_spec} ${torch_index}" > "${index_stamp}"
elif ! "${venv}/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup_env: installing ${torch_spec}"
  "${venv}/bin/pip" install -q "${torch_spec}"
fi
# a torch the venv keeps must be new enough (sasv/runtime/torch_version.py; pip would not object to an old one)
if ! "${venv}/bin/python" -c "import sys, torch; sys.exit(tuple(map(int, torch.__version__.split('.')[:2])) < (2, 4))"; then
  version="$("${venv}/bin/python" -c "import torch; print(torch.__version__)" 2>/dev/null || echo none)"
  echo "ERROR: setup_env: the venv keeps torch ${version}; the recipe needs torch >= 2.4: re-run with" \
    "--torch-index-url https://download.pytorch.org/whl/<cuda tag> (or SASV_TORCH_SPEC)" >&2
  exit 1
fi
stamp="${venv}/.sasv-installed"
want="$(sha256sum "${root}/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "${stamp}" ] || [ "$(cat "${stamp}")" != "${want}" ]; then
  echo "setup_env: installing the sasv package and test tools"
  "${venv}/bin/pip" install -q -e "${root}[dev]"
  echo "${want}" > "${stamp}"
fi
warn_unused_gpu
