"""The checksum lock: the sha256 of each checkpoint whose conf names none, as first verified here
(``pretrained/checksums.lock``). Below :mod:`sasv.models.conf`, which checks a checkpoint against it when it
loads one, and :mod:`sasv.models.pretrained`, which records it when it downloads one."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sasv.errors import SasvError
from sasv.fileio import atomic_write_text

DEFAULT_LOCK = Path("pretrained") / "checksums.lock"


class DownloadError(SasvError):
    """A checkpoint could not be downloaded or verified (the message says what to do instead)."""


class ChecksumLock:
    """sha256 of checkpoints whose conf has none, as first verified here: ``{path: {sha256, url, recorded}}``
    in a JSON file. An entry is written once and never replaced by the tools: a different file later is an
    error, until the entry is deleted on purpose."""

    def __init__(self, path: str | Path = DEFAULT_LOCK) -> None:
        self.path = Path(path)

    def _read(self) -> dict:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except json.JSONDecodeError as err:
            raise DownloadError(f"{self.path}: not a JSON checksum lock ({err})") from None
        if not isinstance(data, dict):
            raise DownloadError(f"{self.path}: not a JSON checksum lock (expected an object)")
        return data

    def get(self, key: str) -> str | None:
        entry = self._read().get(key)
        return entry.get("sha256") if isinstance(entry, dict) else None

    def forget(self, key: str) -> dict | None:
        """Remove the entry of ``key`` (the other entries stay); returns it, or None when there was none.
        The one way the tools change an entry: a wrong one (recorded by an older version from a truncated
        download) or a file replaced upstream on purpose is then recorded anew by the next download."""
        data = self._read()
        entry = data.pop(key, None)
        if entry is not None:
            atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
        return entry

    def record(self, key: str, sha256: str, url: str | None) -> None:
        data = self._read()
        if key in data:
            return
        data[key] = {"sha256": sha256, "url": url, "recorded": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
