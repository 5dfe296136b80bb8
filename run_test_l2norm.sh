#!/usr/bin/env bash
# SASV recipe, part 2 (l2norm): test embeddings are the mean of their 6 rows, each row L2-normalised first.
# Options: see local/run_test.sh --help.
set -euo pipefail
SASV_SCRIPT="$0" exec "$(dirname "$0")/local/run_test.sh" --norm l2norm "$@"
