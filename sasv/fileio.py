"""Atomic file output: a file of the recipe is either absent, the old version, or complete.

Stages are re-run after crashes and interruptions and decide what to redo by looking at what exists, so a
half-written list or archive must never appear under its final name. Everything is written to a temporary
file in the same directory (same file system, so the rename is atomic) and renamed over the target only
when the writer finished without an exception. No fsync: this guards against killed processes, which is
what interrupted recipe runs are, not against power loss.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# mkstemp creates files with mode 0600; finished outputs should get the mode any other new file would get.
# The umask can only be read by setting it, so read it once, at import, before any threads exist.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``, on failure removed.

    The temporary name keeps the target's suffix, so writers that pick a format from the extension
    (soundfile, kaldiio) write the right thing. Parent directories are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints reach 1.3 GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
