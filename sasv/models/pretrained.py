"""Pretrained checkpoints from their public sources: mirrors tried in order, checked before use.

A conf's ``checkpoint`` names its sources (``url`` or ``urls``, each with where the link was read) and,
when known, the file's sha256. Public links die (Google Drive files are replaced, lab servers move), so:

* :func:`install` tries every source in turn, resumes a partial ``<path>.part`` with an HTTP range
  request, verifies the sha256 and renames the file into place only then; when no source serves it, one
  error lists each source's failure and says what to do instead (the training conf that makes the weights,
  or where to put a file fetched by hand);
* where the conf has no sha256, the first verified download (or a file found in place) records it in a
  local, git-ignored lock file (:class:`ChecksumLock`, ``pretrained/checksums.lock``), and every later run
  is verified against that: a file that changes upstream or on disk is noticed, never silently used. Only
  a download of the size the server announced is recorded (a connection that drops early ends the read
  as if the file were complete: the truncated file would be trusted forever, and the right one refused);
  ``sasv download_pretrained --forget NAME`` removes one entry on purpose (:meth:`ChecksumLock.forget`);
* :func:`probe` asks a source whether the file is there without downloading it (a one-byte range request,
  after Google Drive's confirm step), for ``sasv download_pretrained --check``.

Google Drive serves large files through a confirm page ("can't scan this file for viruses"): its form's
hidden fields are submitted to get the file, as a browser does.
"""

from __future__ import annotations

import html
import http.client
import logging
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sasv.fileio import sha256_file
from sasv.models.checksum_lock import ChecksumLock, DownloadError
from sasv.models.conf import CheckpointSource, ModelConf
from sasv.progress import progress_bar

log = logging.getLogger(__name__)

# Google Drive's download endpoint (a file id and its confirm form go here); a test points it elsewhere.
DRIVE_DOWNLOAD = "https://drive.usercontent.google.com/download"
_DRIVE_ID = re.compile(r"drive\.google\.com/(?:file/d/([\w-]+)|.*[?&]id=([\w-]+))")
_BLOCK = 1 << 20


class OfflineError(DownloadError):
    """No source could be connected to at all: this machine is offline (or behind a proxy)."""


@dataclass(frozen=True)
class Probe:
    """What a source answered: reachable (it serves the file), why not, and the file's size if it said."""

    url: str
    reachable: bool
    status: str
    size: int | None = None
    connected: bool = True  # False: no connection at all (DNS, refused, timeout), not an HTTP answer


def drive_file_id(url: str) -> str | None:
    """The file id of a Google Drive link (``/file/d/<id>/view`` or ``?id=<id>``), else None."""
    match = _DRIVE_ID.search(url)
    return (match.group(1) or match.group(2)) if match else None


def _request(url: str, timeout: float, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, headers={"User-Agent": "sasv-recipe", **(headers or {})})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) URLs from the confs)


def _hidden_form(page: str) -> tuple[str, dict[str, str]] | None:
    """(action, hidden fields) of the download form on a Google Drive confirm page, if there is one."""
    action = re.search(r'<form[^>]*action="([^"]+)"', page)
    if not action:
        return None
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    return html.unescape(action.group(1)), {k: html.unescape(v) for k, v in fields.items()}


def _open_source(url: str, timeout: float, headers: dict[str, str] | None = None):
    """The response that carries the file: a plain URL as it is; a Google Drive link through its download
    endpoint and, for large files, its confirm form."""
    file_id = drive_file_id(url)
    if file_id is None:
        return _request(url, timeout, headers)
    response = _request(f"{DRIVE_DOWNLOAD}?{urllib.parse.urlencode({'id': file_id, 'export': 'download'})}",
                        timeout, headers)  # fmt: skip
    if not response.headers.get("Content-Type", "").startswith("text/html"):
        return response
    page = response.read().decode("utf-8", "replace")
    response.close()
    form = _hidden_form(page)
    if form is None:
        raise DownloadError(
            f"{url}: Google Drive answered with a page, not the file (removed, private, or over quota)"
        )
    action, fields = form
    response = _request(f"{action}?{urllib.parse.urlencode(fields)}", timeout, headers)
    if response.headers.get("Content-Type", "").startswith("text/html"):
        response.close()
        raise DownloadError(
            f"{url}: Google Drive did not serve the file after its confirm step (over quota?)"
        )
    return response


def _reason(err: BaseException) -> tuple[str, bool]:
    """(words, whether a server answered) of a failed request."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}", True
    if isinstance(err, urllib.error.URLError):
        return f"no connection ({err.reason})", False
    if isinstance(err, (TimeoutError, socket.timeout)):
        return "no connection (timed out)", False
    if isinstance(err, DownloadError):
        return str(err).split(": ", 1)[-1], True
    return f"{type(err).__name__}: {err}", False


def probe(source: CheckpointSource, timeout: float = 15.0) -> Probe:
    """Whether ``source`` serves its file, and its size: a one-byte range request (HEAD is refused by some
    hosts), after Google Drive's confirm step."""
    try:
        with _open_source(source.url, timeout, {"Range": "bytes=0-0"}) as response:
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            length = response.headers.get("Content-Length")
            size = (
                int(total)
                if total.isdigit()
                else (int(length) if length and response.status == 200 else None)
            )
            return Probe(source.url, True, f"HTTP {response.status}", size)
    except (urllib.error.URLError, OSError, DownloadError) as err:
        words, answered = _reason(err)
        return Probe(source.url, False, words, None, connected=answered)


def _announced_size(response, have: int) -> int | None:
    """The whole file's size as the server announced it: ``Content-Range``'s total of a resumed (206)
    answer, else ``Content-Length`` (plus the part already there when resumed); None when it said none."""
    total = response.headers.get("Content-Range", "").rpartition("/")[2]
    if response.status == 206 and total.isdigit():
        return int(total)
    length = response.headers.get("Content-Length")
    if not (length and length.isdigit()):
        return None
    return int(length) + (have if response.status == 206 else 0)


def _fetch(source: CheckpointSource, part: Path, timeout: float) -> bool:
    """Download ``source`` into ``part``, resuming what a previous attempt left there. Returns whether the
    part has the size the server announced (False: it announced none); a part shorter than announced (the
    connection dropped) raises :class:`DownloadError` and is kept, to be resumed."""
    have = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={have}-"} if have else None
    try:
        response = _open_source(source.url, timeout, headers)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the range starts at the end: the part is complete already
            total = (err.headers.get("Content-Range") or "").rpartition("/")[2]
            if total.isdigit() and int(total) != have:
                part.unlink()
                raise DownloadError(
                    f"{source.url}: {part} holds {have:,} bytes, the file has {total}: removed"
                ) from None
            return total.isdigit()
        raise
    with response:
        resumed = have and response.status == 206
        size = _announced_size(response, have)
        with part.open("ab" if resumed else "wb") as out, progress_bar(size or 0, have if resumed else 0,
                                                                       part.name, "B") as bar:  # fmt: skip
            try:
                while block := response.read(_BLOCK):
                    out.write(block)
                    bar.update(len(block))
            except http.client.IncompleteRead:  # a chunked transfer that ended early
                pass
    got = part.stat().st_size
    if size is not None and got != size:
        raise DownloadError(
            f"{source.url}: truncated: {got:,} of {size:,} bytes (the connection dropped; the part is kept "
            f"and resumed by the next run)"
        )
    return size is not None


def install(conf: ModelConf, root: Path, lock: ChecksumLock, timeout: float = 30.0) -> Path:
    """The conf's checkpoint at its path, downloaded from the first source that serves a verified file.

    Verified: against the conf's sha256, else against the lock's entry, else recorded in the lock. A file
    already in place is verified the same way (a wrong one is moved to ``<path>.bad`` and downloaded again).
    """
    spec = conf.checkpoint
    if spec is None:
        raise DownloadError(f"{conf.source}: the conf names no checkpoint")
    path = spec.resolved_path(root)
    key = spec.path
    expected = spec.sha256 or lock.get(key)
    where = "the conf" if spec.sha256 else lock.path
    if path.is_file():
        got = sha256_file(path)
        if expected is None or got == expected:
            if expected is None:
                lock.record(key, got, None)
                log.info("%s: %s present; its sha256 %s recorded in %s", conf.name, path, got, lock.path)
            else:
                log.info("%s: %s present (sha256 verified against %s)", conf.name, path, where)
            return path
        log.warning("%s: %s has sha256 %s, not %s (%s): moved to %s.bad, downloading again",
                    conf.name, path, got, expected, where, path)  # fmt: skip
        path.replace(path.with_name(path.name + ".bad"))
    if not spec.sources:
        raise DownloadError(
            f"{conf.source}: {conf.name}: no download source is known; {_instead(conf, path)}"
        )
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for source in spec.sources:
        log.info("%s: downloading %s", conf.name, source.url)
        try:
            complete = _fetch(source, part, timeout)
        except (urllib.error.URLError, OSError, DownloadError, http.client.HTTPException) as err:
            failures.append(f"{source.url}: {_reason(err)[0]}")
            log.warning("%s: %s failed: %s", conf.name, source.url, _reason(err)[0])
            continue
        got = sha256_file(part)
        if expected is not None and got != expected:
            failures.append(f"{source.url}: served a file with sha256 {got}, not {expected} ({where})")
            log.warning("%s: %s", conf.name, failures[-1])
            part.unlink()
            continue
        part.replace(path)
        if expected is None and complete:
            lock.record(key, got, source.url)
            log.info("%s: sha256 %s recorded in %s (publish it in %s once verified)",
                     conf.name, got, lock.path, conf.source)  # fmt: skip
        elif expected is None:
            log.warning(
                "%s: %s announced no size, so a truncated transfer cannot be told from a complete one: its "
                "sha256 %s is not recorded in %s; check the file (pretrained/README.md gives sizes), then "
                "`sasv download_pretrained %s` records the file in place",
                conf.name, source.url, got, lock.path, conf.name,
            )  # fmt: skip
        log.info("%s: %s installed from %s", conf.name, path, source.url)
        return path
    raise DownloadError(
        f"{conf.source}: {conf.name}: no source served the checkpoint ({'; '.join(failures)}); "
        f"{_instead(conf, path)}"
    )


def _instead(conf: ModelConf, path: Path) -> str:
    spec = conf.checkpoint
    assert spec is not None
    if spec.train_with:
        kind = conf.kind
        return (
            f"train it instead: ./run_train_{kind}.sh --{kind}_conf {conf.source} --train_conf "
            f"{spec.train_with} (it writes exp/train/{conf.name}_trained/model.yaml, a conf to use as "
            f"--{kind}_conf), or put a copy at {path}"
        )
    return f"put the file at {path} by hand (pretrained/README.md says where it comes from)"


def check_table(confs: Iterable[ModelConf], lock: ChecksumLock, timeout: float = 15.0) -> list[str]:
    """Markdown rows (name, source, reachable, size, sha256 known) for every source of every conf, asking
    each source (nothing is downloaded). Raises :class:`OfflineError` when no source could be connected to
    at all: then nothing can be said about any of them."""
    confs = list(confs)
    rows = ["| name | source | reachable | size | sha256 known |", "| --- | --- | --- | ---: | --- |"]
    probes = []
    for conf in confs:
        spec = conf.checkpoint
        if spec is None:
            continue
        known = "conf" if spec.sha256 else ("lock" if lock.get(spec.path) else "no")
        for source in spec.sources or (CheckpointSource("-"),):
            result = probe(source, timeout) if source.url != "-" else Probe("-", False, "no source known")
            probes.append(result)
            reachable = "yes" if result.reachable else f"no: {result.status}"
            size = f"{result.size:,}" if result.size is not None else "?"
            rows.append(f"| {conf.name} | {source.url} | {reachable} | {size} | {known} |")
    tried = [p for p in probes if p.url != "-"]
    if tried and not any(p.connected for p in tried):
        folders = ", ".join(sorted({str(Path(c.source).parent) for c in confs}))
        raise OfflineError(f"{folders}: cannot check the checkpoints' sources: offline ({tried[0].status})")
    return rows
