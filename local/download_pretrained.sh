#!/usr/bin/env bash
# Download the pretrained checkpoints that the model confs name, into the path each conf gives.
# Usage: local/download_pretrained.sh [NAME ...]    NAME = a conf's `name` (default: every conf)
#   e.g. local/download_pretrained.sh ecapa_tdnn aasist
# URLs and sha256 come from conf/asv/*.yaml and conf/cm/*.yaml (one source of truth). Downloads resume
# (curl -C -), are verified against the conf's sha256 when it is known, and are renamed into place only
# when complete. Offline, or for links that need a browser (Google Drive), it says which file to put where.
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  -*) echo "$0: unknown option $1 (see --help)" >&2; exit 1 ;;
esac
cd "$(dirname "$0")/.."
. ./path.sh

entries="$(python - "$@" <<'PY'
import sys
from pathlib import Path
from sasv.conf import load_conf
wanted = set(sys.argv[1:])
confs = [load_conf(p) for p in sorted(Path("conf").glob("*/*.yaml"))]
known = {c.name for c in confs}
unknown = wanted - known
if unknown:
    sys.exit(f"unknown model name(s) {sorted(unknown)}; known: {sorted(known)}")
for c in confs:
    if c.checkpoint is None or (wanted and c.name not in wanted):
        continue
    ck = c.checkpoint
    print("\t".join([c.name, ck.path, ck.url or "-", ck.sha256 or "-"]))
PY
)"

failed=0
while IFS=$'\t' read -r name path url sha; do
  [ -n "${name}" ] || continue
  if [ -f "${path}" ]; then
    if [ "${sha}" = "-" ] || [ "$(sha256sum "${path}" | cut -d' ' -f1)" = "${sha}" ]; then
      echo "${name}: ${path} present"
      continue
    fi
    echo "${name}: ${path} has the wrong sha256 (expected ${sha}); downloading again" >&2
    mv "${path}" "${path}.bad"
  fi
  manual="put the file at ${path} by hand (see pretrained/README.md)"
  case "${url}" in
    -) echo "${name}: no download URL is known: ${manual}" >&2; failed=1; continue ;;
    *drive.google.com*) echo "${name}: ${url} is a Google Drive page: download it in a browser (or with gdown) and ${manual}" >&2; failed=1; continue ;;
  esac
  mkdir -p "$(dirname "${path}")"
  echo "${name}: downloading ${url}"
  if ! curl -fL --connect-timeout 10 --retry 1 -C - -o "${path}.part" "${url}"; then
    [ -s "${path}.part" ] || rm -f "${path}.part"
    echo "${name}: download of ${url} failed (offline?): ${manual}; a partial ${path}.part resumes next time" >&2
    failed=1
    continue
  fi
  got="$(sha256sum "${path}.part" | cut -d' ' -f1)"
  if [ "${sha}" != "-" ] && [ "${got}" != "${sha}" ]; then
    echo "${name}: ${url} has sha256 ${got}, expected ${sha}: not installed (kept as ${path}.part)" >&2
    failed=1
    continue
  fi
  mv "${path}.part" "${path}"
  echo "${name}: ${path} installed (sha256 ${got})"
done <<< "${entries}"
exit "${failed}"
