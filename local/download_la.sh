#!/usr/bin/env bash
# Stage 0: download ASVspoof 2019 LA (LA.zip, about 7.1 GB) and the SASV 2022 trial lists.
#
# Usage: local/download_la.sh <download_dir> <la_parent>
#   <download_dir>  where LA.zip is kept; an interrupted download resumes on the next run (curl -C -)
#   <la_parent>     LA.zip is unzipped here, giving <la_parent>/LA/ASVspoof2019_LA_{train,dev,eval}/flac,
#                   <la_parent>/LA/ASVspoof2019_LA_{asv,cm}_protocols/ ...; the SASV trial lists
#                   ASVspoof2019.LA.asv.{dev,eval}.gi.trl.txt are put in <la_parent>/LA/ASVspoof2019_LA_asv_protocols/
#   e.g. local/download_la.sh downloads .     (then: sasv prepare_la --la_root LA)
#
# Sources:
#   LA.zip       Edinburgh DataShare item https://datashare.ed.ac.uk/handle/10283/3336 (ODC-By 1.0), bitstream
#                https://datashare.ed.ac.uk/bitstream/handle/10283/3336/LA.zip?sequence=3&isAllowed=y
#                No checksum for LA.zip is published that we could find: export LA_ZIP_SHA256 (or LA_ZIP_MD5)
#                to check against a value you trust; otherwise every member's CRC is checked (unzip -t)
#                and the archive's sha256 is recorded in <download_dir>/LA.zip.sha256.
#   trial lists  https://github.com/sasv-challenge/SASVC2022_Baseline, protocols/, at a pinned commit;
#                their sha256 below was computed from the files at that commit.
# Environment overrides (mirrors, tests): LA_ZIP_URL, SASV_TRIALS_BASE_URL, CONNECT_TIMEOUT (seconds, 15).
#
# Each step is skipped when its result is already there, so a re-run only does what is missing. Offline,
# it fails within CONNECT_TIMEOUT and prints which file to put where by hand.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ $# -ne 2 ]; then
  usage >&2
  echo "ERROR: expected 2 arguments, <download_dir> <la_parent>; got $#" >&2
  exit 1
fi
download_dir=$1
la_parent=$2

la_zip_url=${LA_ZIP_URL:-"https://datashare.ed.ac.uk/bitstream/handle/10283/3336/LA.zip?sequence=3&isAllowed=y"}
sasv_commit=1545f2bbc5860504cd24003e864fa06adcfdd26e
trials_base=${SASV_TRIALS_BASE_URL:-"https://raw.githubusercontent.com/sasv-challenge/SASVC2022_Baseline/${sasv_commit}/protocols"}
declare -A trials_sha256=(
  [dev]=716031424bd2f90bb912831e0e02224c7b087ecf7ed02487fba031cf3fe5c6b4
  [eval]=2a742094893202c6324657dd40a1d287ef16de7122a6d7ce265e2a2b77796b17
)
connect_timeout=${CONNECT_TIMEOUT:-15}

la_root="${la_parent}/LA"
asv_dir="${la_root}/ASVspoof2019_LA_asv_protocols"
zip="${download_dir}/LA.zip"
unpacked_stamp="${la_root}/.LA.zip.unpacked"

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*"; }

manual_help() {
  cat >&2 <<EOF
Put the files in place by hand, then re-run this script (or go on with stage 1):
  1. LA.zip from https://datashare.ed.ac.uk/handle/10283/3336
       -> ${zip}        (this script then checks and unzips it)
     or unzip it yourself so that ${la_root}/ASVspoof2019_LA_dev/flac exists.
  2. ${trials_base}/ASVspoof2019.LA.asv.dev.gi.trl.txt
       -> ${asv_dir}/ASVspoof2019.LA.asv.dev.gi.trl.txt    (sha256 ${trials_sha256[dev]})
  3. ${trials_base}/ASVspoof2019.LA.asv.eval.gi.trl.txt
       -> ${asv_dir}/ASVspoof2019.LA.asv.eval.gi.trl.txt   (sha256 ${trials_sha256[eval]})
EOF
}

fail() {
  echo "ERROR: $*" >&2
  manual_help
  exit 1
}

# drop_empty, fetch URL DEST (resumable, renamed into place when complete)
. "$(dirname "$0")/../utils/download.sh"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# --- LA.zip -------------------------------------------------------------------------------------------
if [ -f "${unpacked_stamp}" ] && [ -d "${la_root}/ASVspoof2019_LA_eval/flac" ]; then
  log "LA.zip already unpacked in ${la_root}"
elif [ ! -f "${zip}" ] && [ -d "${la_root}/ASVspoof2019_LA_dev/flac" ] && [ -d "${la_root}/ASVspoof2019_LA_eval/flac" ]; then
  log "${la_root} was unpacked by hand (there is no ${zip}): using it as it is"
else
  if [ -f "${zip}" ]; then
    log "${zip} present, not downloading"
  else
    log "downloading ${la_zip_url} -> ${zip} (about 7.1 GB; an interrupted download resumes)"
    fetch "${la_zip_url}" "${zip}" \
      || fail "could not download LA.zip from ${la_zip_url} (offline, or the link moved?)$([ -f "${zip}.part" ] && echo "; the partial ${zip}.part resumes next time")"
  fi
  # a login or error page saved as LA.zip is the usual failure of a moved link: say so plainly
  [ "$(head -c 2 "${zip}")" = PK ] || fail "${zip} is not a zip archive (an HTML page from a moved link?); delete it"
  if [ -n "${LA_ZIP_SHA256:-}" ]; then
    got=$(sha256_of "${zip}")
    [ "${got}" = "${LA_ZIP_SHA256}" ] || fail "${zip} has sha256 ${got}, expected ${LA_ZIP_SHA256} (delete it and re-run)"
    log "LA.zip sha256 verified"
  elif [ -n "${LA_ZIP_MD5:-}" ]; then
    got=$(md5sum "${zip}" | cut -d' ' -f1)
    [ "${got}" = "${LA_ZIP_MD5}" ] || fail "${zip} has md5 ${got}, expected ${LA_ZIP_MD5} (delete it and re-run)"
    log "LA.zip md5 verified"
  else
    log "no published checksum for LA.zip: testing every member's CRC (unzip -t), this takes a minute"
    unzip -tq "${zip}" >/dev/null || fail "${zip} is corrupt or incomplete (delete it and re-run)"
    sha256_of "${zip}" > "${zip}.sha256"
    log "LA.zip is intact; its sha256 ($(cat "${zip}.sha256")) is recorded in ${zip}.sha256"
  fi
  mkdir -p "${la_parent}"
  log "unzipping ${zip} into ${la_parent}"
  unzip -q -o "${zip}" -d "${la_parent}"
  [ -d "${la_root}/ASVspoof2019_LA_eval/flac" ] \
    || fail "${zip} did not unpack to ${la_root}/ASVspoof2019_LA_eval/flac: is it the ASVspoof 2019 LA archive?"
  touch "${unpacked_stamp}"
fi

# --- SASV trial lists -----------------------------------------------------------------------------------
for set in dev eval; do
  name="ASVspoof2019.LA.asv.${set}.gi.trl.txt"
  dest="${asv_dir}/${name}"
  want=${trials_sha256[${set}]}
  if [ -f "${dest}" ] && [ "$(sha256_of "${dest}")" = "${want}" ]; then
    log "${dest} present and verified"
    continue
  fi
  tmp="${download_dir}/${name}"
  rm -f "${tmp}" "${tmp}.part"
  log "downloading ${trials_base}/${name}"
  fetch "${trials_base}/${name}" "${tmp}" || fail "could not download ${trials_base}/${name}"
  got=$(sha256_of "${tmp}")
  [ "${got}" = "${want}" ] || fail "${trials_base}/${name} has sha256 ${got}, expected ${want}"
  if [ -f "${dest}" ]; then
    log "${dest} differs from the SASV list: kept as ${dest}.orig"
    mv -f "${dest}" "${dest}.orig"
  fi
  mkdir -p "${asv_dir}"
  mv -f "${tmp}" "${dest}"
done
log "done: ASVspoof 2019 LA in ${la_root}; next: sasv prepare_la --la_root ${la_root}"
