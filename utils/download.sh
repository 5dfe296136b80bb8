# Sourced by the download scripts (local/download_*.sh): resumable downloads with curl or wget.
#   fetch URL DEST   download into DEST.part (resumed on the next run), renamed to DEST only when complete;
#                    returns non-zero when the source cannot be reached (the caller says what to do by hand)
#   signature FILE   size and mtime: what a verification stamp remembers of the file it verified (a file
#                    rewritten since has another; comparing mtimes with -nt is not enough: a file and its
#                    stamp written within one clock tick have equal mtimes)
# Uses ${connect_timeout} (seconds) from the caller.

drop_empty() { [ -s "$1" ] || rm -f "$1"; }

fetch() {
  local url=$1 dest=$2
  mkdir -p "$(dirname "${dest}")"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --connect-timeout "${connect_timeout}" -C - -o "${dest}.part" "${url}" || { drop_empty "${dest}.part"; return 1; }
  elif command -v wget >/dev/null 2>&1; then
    wget -c --connect-timeout="${connect_timeout}" --tries=1 -O "${dest}.part" "${url}" || { drop_empty "${dest}.part"; return 1; }
  else
    echo "ERROR: neither curl nor wget is installed" >&2
    return 1
  fi
  mv -f "${dest}.part" "${dest}"
}

signature() { stat -c '%s %y' "$1"; }
