#!/usr/bin/env bash
# The recipe's test suite: unit, golden-parity and end-to-end tests (the README's test command).
# Extra arguments go to pytest, e.g. ./run_tests.sh -k metrics -x
#   SASV_TEST_WORKERS  test processes (pytest-xdist; default: the cores, at most 4; 0 = one process).
#                      Each test file runs on one worker, the Slurm tests together on one.
set -euo pipefail
cd "$(dirname "$0")"
local/setup_env.sh
. ./path.sh
# 2 shared cores: one intra-op thread per process is faster than two fighting over them
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cores="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"   # nproc alone obeys OMP_NUM_THREADS
workers="${SASV_TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}"
python -m pytest -n "${workers}" --dist loadfile --no-loadscope-reorder "$@"
