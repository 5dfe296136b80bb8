#!/usr/bin/env bash
# Mutation testing (mutmut) of the modules that carry the recipe's semantics: audio, front-end, scoring,
# metrics and detection costs, checkpoints, provenance and markers, the chunked driver ([tool.mutmut] in
# pyproject.toml lists them and the tests that run). Not in CI: about 1.5 h on 2 cores.
# Usage: local/mutation_test.sh [MUTANT_NAME_GLOB ...]     e.g. local/mutation_test.sh 'sasv.audio*'
#   Re-runs resume (mutmut remembers results in mutants/); then `mutmut results` lists the survivors and
#   `mutmut show NAME` shows one. docs/MUTATION.md holds the last score and why each survivor survives.
#   Needs: pip install mutmut==3.8.1 (the `mutation` extra: pip install -e .[mutation]).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
cd "$(dirname "$0")/.."
. ./path.sh
command -v mutmut >/dev/null || { echo "$0: mutmut is not installed: pip install mutmut==3.8.1" >&2; exit 1; }
# the tests run inside mutants/ (a copy): point them at the shared fixtures beside this checkout
shared="$(cd .. && pwd)/shared"
export SASV_GOLDEN_DIR="${SASV_GOLDEN_DIR:-${shared}/golden}"
export SASV_PROTOCOLS_DIR="${SASV_PROTOCOLS_DIR:-${shared}/protocols/ASVspoof2019_LA}"
export OMP_NUM_THREADS=1
cores="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
mutmut run --max-children "${cores}" "$@"
