#!/usr/bin/env bash
# Download the pretrained checkpoints that the model confs name, into the path each conf gives.
# Usage: local/download_pretrained.sh [--check] [NAME ...]    NAME = a conf's `name` (default: every conf)
#   e.g. local/download_pretrained.sh ecapa_tdnn aasist
#   --check   ask every source whether it serves its file (no download): name, source, reachable, size,
#             sha256 known; offline it says so in one line
#   --forget NAME ...   remove those names' entries from pretrained/checksums.lock, nothing else: the next
#             download (or the file in place) is recorded anew (a file replaced upstream on purpose)
# Sources (`checkpoint.url`, or the mirrors of `checkpoint.urls`, tried in order) and sha256 come from
# conf/asv/*.yaml and conf/cm/*.yaml. Downloads resume, are verified against the conf's sha256 or, where it
# has none, against pretrained/checksums.lock (the first complete download, of the size the server
# announced, records it there), and are renamed into place only when verified. The tool behind it:
# `sasv download_pretrained --help`.
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
cd "$(dirname "$0")/.."
. ./path.sh
exec python -m sasv download_pretrained "$@"
