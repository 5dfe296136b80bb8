#!/usr/bin/env bash
# Stage 0 of run_train_asv.sh: download, check and unpack the training corpora (VoxCeleb, MUSAN, RIRS_NOISES).
#
# Usage: local/download_train_corpora.sh <download_dir> <corpora_dir> [voxceleb|musan|rirs|vox1_dev ...]
#   <download_dir>  where the archives are kept; an interrupted download resumes on the next run (curl -C -)
#   <corpora_dir>   where they are unpacked, giving what run_train_asv.sh's stages 1 and 2 read:
#                     <corpora_dir>/VoxCeleb1/wav/idXXXXX/...    vox1_test_wav.zip (--vox1_root VoxCeleb1)
#                     <corpora_dir>/VoxCeleb1/veri_test2.txt     the Vox1-O trial list (--vox1_trials)
#                     <corpora_dir>/VoxCeleb2/dev/aac/idXXXXX/... vox2_aac.zip, 8 parts (--vox2_root VoxCeleb2)
#                     <corpora_dir>/musan/{music,noise,speech}/  musan.tar.gz (--musan_root musan)
#                     <corpora_dir>/RIRS_NOISES/simulated_rirs/  rirs_noises.zip (--rirs_root RIRS_NOISES)
#   corpora         default: voxceleb musan rirs; vox1_dev (vox1_dev_wav.zip, 4 parts: the other 1,211
#                   VoxCeleb1 speakers, into VoxCeleb1/wav/) only when named
#   e.g. local/download_train_corpora.sh downloads .     (then: ./run_train_asv.sh --stage 1)
#
# Sizes: vox1_test_wav.zip 1 GB, vox2_aac.zip 72 GB, musan.tar.gz 11 GB, rirs_noises.zip 1.3 GB (vox1_dev
# 31 GB), about as much again unpacked; the archives are kept in <download_dir> (delete them once unpacked).
# URLs and published md5 come from sasv/corpora/train_downloads.py and sasv/corpora/voxceleb.py (one source of truth;
# `sasv training_downloads` prints them). Each part is checked against its md5; the parts of a
# multi-part archive are concatenated in order, the whole is checked against its md5, then the parts are
# deleted. An archive without a published md5 is tested instead (unzip -t, gzip -t) and its sha256 is
# recorded in <download_dir>/<archive>.sha256.
# Environment: SASV_DOWNLOAD_BASE_URL (a folder holding every file by its name: a mirror, or file:// in
# tests), VOXCELEB_BASE_URL, MUSAN_BASE_URL, RIRS_BASE_URL (the same for one corpus, e.g.
# https://openslr.elda.org/resources/17), CONNECT_TIMEOUT (seconds, 15), SASV_DOWNLOAD_MANIFEST (a file of
# manifest lines, with their own URLs and md5, used instead of the recorded ones: tests).
#
# Each step is skipped when its result is already there (a verified file leaves <file>.md5, an unpacked
# archive <corpora_dir>/<folder>/.<archive>.unpacked), so a re-run only does what is missing; a corpus
# unpacked by hand is used as it is. Offline, or when the VoxCeleb host asks for registration, it fails
# within CONNECT_TIMEOUT and prints which file to put where by hand.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ $# -lt 2 ]; then
  usage >&2
  echo "ERROR: expected at least 2 arguments, <download_dir> <corpora_dir> [corpus ...]; got $#" >&2
  exit 1
fi
download_dir=$1
corpora_dir=$2
shift 2
connect_timeout=${CONNECT_TIMEOUT:-15}
# shellcheck disable=SC1091
. "$(cd "$(dirname "$0")/.." && pwd)/path.sh"

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*"; }

if [ -n "${SASV_DOWNLOAD_MANIFEST:-}" ]; then
  manifest=$(cat "${SASV_DOWNLOAD_MANIFEST}")
  if [ $# -gt 0 ]; then  # the named corpora only, in the manifest's order
    manifest=$(printf '%s\n' "${manifest}" | awk -F'\t' -v want=" $* " 'index(want, " " $1 " ")')
  fi
else
  python=$(command -v python || command -v python3) || { echo "ERROR: no python on PATH (see path.sh)" >&2; exit 1; }
  manifest=$("${python}" -m sasv training_downloads "$@") || exit 1
fi
mapfile -t rows < <(printf '%s\n' "${manifest}" | grep -v '^$' || true)
if [ ${#rows[@]} -eq 0 ]; then
  echo "ERROR: nothing to download: no corpus of the manifest is called '$*'" >&2
  exit 1
fi

# ------------------------------------------------------------------------------------------- helpers
# One manifest row (sasv.corpora.train_downloads.manifest_row) into globals: corpus name kind md5 into probes note,
# then parts/urls/md5s; dest (the folder it goes into), archive (its file in <download_dir>), stamp.
load_row() {
  local -a f
  IFS=$'\t' read -r -a f <<< "$1"
  corpus=${f[0]} name=${f[1]} kind=${f[2]} md5=${f[3]} into=${f[4]} probes=${f[5]} note=${f[6]}
  parts=() urls=() md5s=()
  local i
  for ((i = 7; i + 2 < ${#f[@]}; i += 3)); do
    parts+=("${f[i]}") urls+=("${f[i + 1]}") md5s+=("${f[i + 2]}")
  done
  if [ "${into}" = . ]; then dest=${corpora_dir}; else dest=${corpora_dir}/${into}; fi
  archive=${download_dir}/${name}
  stamp=${dest}/.${name}.unpacked
}

missing_probe() {  # the first probe of the current row that is not there (nothing when all are)
  local p
  for p in ${probes}; do
    [ -e "${corpora_dir}/${p}" ] || { echo "${corpora_dir}/${p}"; return; }
  done
}

probe_list() { local p out=(); for p in ${probes}; do out+=("${corpora_dir}/${p}"); done; echo "${out[*]}"; }

# how the current row's files are put in place by hand (only the parts that are not there yet)
manual_help() {
  local i
  echo "Put it in place by hand, then re-run this script:"
  if [ "${kind}" = file ]; then
    echo "  ${urls[0]}  (md5 ${md5})"
    echo "    -> ${archive}    (or straight to ${dest}/${name})"
  elif [ ${#parts[@]} -eq 1 ]; then
    echo "  ${urls[0]}  (md5 ${md5})"
    echo "    -> ${archive}"
  else
    for i in "${!parts[@]}"; do
      [ -f "${download_dir}/${parts[i]}" ] && continue
      echo "  ${urls[i]}  (md5 ${md5s[i]})"
      echo "    -> ${download_dir}/${parts[i]}"
    done
    echo "  or their concatenation (cat ${parts[0]} ... ${parts[-1]}, in this order; md5 ${md5})"
    echo "    -> ${archive}"
  fi
  [ "${kind}" = file ] || echo "  or unpack ${name} yourself, so that these exist: $(probe_list)"
  [ "${note}" = - ] || echo "  Note: ${note}"
}

# the rows after the current one that are not in place yet, one line each
still_needed() {
  local j row lines=()
  for ((j = row_index + 1; j < ${#rows[@]}; j++)); do
    row=${rows[j]}
    (
      load_row "${row}"
      if [ -z "$(missing_probe)" ]; then exit 0; fi
      if [ ${#parts[@]} -eq 1 ]; then
        echo "  ${urls[0]} (md5 ${md5}) -> ${archive}"
      else
        echo "  ${urls[0]} ... ${parts[-1]} (${#parts[@]} parts, cat into ${name}, md5 ${md5}) -> ${download_dir}/"
      fi
    )
  done | { mapfile -t lines; if [ ${#lines[@]} -gt 0 ]; then echo "After that, this run also needs:"; printf '%s\n' "${lines[@]}"; fi; }
}

fail() {
  echo "ERROR: $*" >&2
  { manual_help; still_needed; } >&2
  exit 1
}

# drop_empty, fetch URL DEST (resumable, renamed into place when complete)
. "$(dirname "$0")/../utils/download.sh"

# get URL FILE: download FILE unless it is there
get() {
  local url=$1 file=$2
  if [ -f "${file}" ]; then
    log "${file} present, not downloading"
    return
  fi
  log "downloading ${url} -> ${file} (an interrupted download resumes)"
  fetch "${url}" "${file}" || fail "could not download ${url} (offline, or the host wants a login?)$(
    [ -f "${file}.part" ] && echo "; the partial ${file}.part resumes next time")"
}

looks_like_html() { head -c 1024 "$1" | LC_ALL=C grep -aqi -e '<html' -e '<!doctype'; }

# check_md5 FILE MD5: FILE has the published md5, or an ERROR naming it. A match is remembered in FILE.md5
# (md5sum's format, then the file's signature), so that a re-run does not read an 11 GB file again.
check_md5() {
  local file=$1 want=$2 got why
  if [ -f "${file}.md5" ] && [ "$(head -n 1 "${file}.md5" | cut -d' ' -f1)" = "${want}" ] \
    && [ "$(sed -n 2p "${file}.md5")" = "# $(signature "${file}")" ]; then
    return
  fi
  log "checking the md5 of ${file}"
  got=$(md5sum "${file}" | cut -d' ' -f1)
  if [ "${got}" != "${want}" ]; then
    why="an incomplete or different file"
    if looks_like_html "${file}"; then why="an HTML page, not the archive: a login page or a moved link"; fi
    fail "${file} has md5 ${got}, expected ${want} (${why}); delete it and re-run"
  fi
  printf '%s  %s\n# %s\n' "${got}" "${file##*/}" "$(signature "${file}")" > "${file}.md5"
  log "${file}: md5 verified"
}

# check_unpublished FILE: no md5 is published: test the archive's own CRCs, record its sha256
check_unpublished() {
  local file=$1
  if [ -f "${file}.sha256" ] && [ "$(sed -n 2p "${file}.sha256")" = "# $(signature "${file}")" ]; then
    return
  fi
  log "no published md5 for ${file}: testing it (${kind})"
  case "${kind}" in
    zip) unzip -tq "${file}" >/dev/null 2>&1 || fail "${file} is corrupt or incomplete (unzip -t); delete it and re-run" ;;
    tar.gz) gzip -t "${file}" 2>/dev/null || fail "${file} is corrupt or incomplete (gzip -t); delete it and re-run" ;;
  esac
  printf '%s\n# %s\n' "$(sha256sum "${file}" | cut -d' ' -f1)" "$(signature "${file}")" > "${file}.sha256"
  log "${file} is intact; its sha256 ($(head -n 1 "${file}.sha256")) is recorded in ${file}.sha256"
}

check_whole() {
  local want=${md5}
  [ "${want}" != - ] || [ ${#parts[@]} -ne 1 ] || want=${md5s[0]}
  if [ "${want}" = - ]; then check_unpublished "${archive}"; else check_md5 "${archive}" "${want}"; fi
}

# --------------------------------------------------------------------------------------- one row each
place_file() {  # a plain file (veri_test2.txt): checked, then moved to <dest>/<name>
  local target=${dest}/${name}
  if [ -f "${target}" ] && { [ "${md5}" = - ] || [ "$(md5sum "${target}" | cut -d' ' -f1)" = "${md5}" ]; }; then
    log "${target} present and verified"
    return
  fi
  get "${urls[0]}" "${archive}"
  check_whole
  if [ -f "${target}" ]; then
    log "${target} differs from the published file: kept as ${target}.orig"
    mv -f "${target}" "${target}.orig"
  fi
  mkdir -p "${dest}"
  mv -f "${archive}" "${target}"
  rm -f "${archive}.md5"
  log "${target} in place"
}

any_download_present() {
  local p
  for p in "${name}" "${parts[@]}"; do
    if [ -e "${download_dir}/${p}" ] || [ -e "${download_dir}/${p}.part" ]; then return 0; fi
  done
  return 1
}

place_archive() {
  local i part
  if [ -f "${stamp}" ] && [ -z "$(missing_probe)" ]; then
    log "${name}: already unpacked in ${dest}"
    return
  fi
  if [ ! -f "${stamp}" ] && [ -z "$(missing_probe)" ] && ! any_download_present; then
    log "${name}: $(probe_list) unpacked by hand (there is no ${archive}): used as they are"
    return
  fi
  if [ -f "${archive}" ]; then
    log "${archive} present, not downloading"
  elif [ ${#parts[@]} -eq 1 ]; then
    get "${urls[0]}" "${archive}"
  else
    for i in "${!parts[@]}"; do
      part=${download_dir}/${parts[i]}
      get "${urls[i]}" "${part}"
      [ "${md5s[i]}" = - ] || check_md5 "${part}" "${md5s[i]}"
    done
    log "concatenating ${#parts[@]} parts into ${archive}"
    : > "${archive}.cat"
    for part in "${parts[@]}"; do cat "${download_dir}/${part}" >> "${archive}.cat"; done
    mv -f "${archive}.cat" "${archive}"
  fi
  check_whole
  if [ ${#parts[@]} -gt 1 ]; then  # the whole is verified: its parts are not needed any more
    for i in "${!parts[@]}"; do rm -f "${download_dir}/${parts[i]}" "${download_dir}/${parts[i]}.md5"; done
  fi
  mkdir -p "${dest}"
  log "unpacking ${archive} into ${dest}"
  case "${kind}" in
    zip) unzip -q -o "${archive}" -d "${dest}" || fail "unzip of ${archive} failed (disk full?)" ;;
    tar.gz) tar -xzf "${archive}" -C "${dest}" || fail "tar -xzf of ${archive} failed (disk full?)" ;;
    *) fail "${name}: unknown archive kind ${kind}" ;;
  esac
  local missing
  missing=$(missing_probe)
  [ -z "${missing}" ] || fail "${archive} did not unpack to ${missing}: is it the ${corpus} archive ${name}?"
  touch "${stamp}"
  log "${name}: unpacked in ${dest}"
}

# ------------------------------------------------------------------------------------------------ main
mkdir -p "${download_dir}" "${corpora_dir}"
for row_index in "${!rows[@]}"; do
  load_row "${rows[row_index]}"
  if [ "${kind}" = file ]; then place_file; else place_archive; fi
done
log "done: the corpora are in ${corpora_dir}; next: ./run_train_asv.sh --stage 1 (roots under ${corpora_dir})"
