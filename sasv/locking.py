"""Exclusive locks on output directories, so two runs pointed at the same exp dir cannot interleave writes.

``flock`` locks belong to the open file description: the kernel drops them when the holder exits, even on
SIGKILL, so there are no stale lock files to clean up by hand.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sasv.errors import SasvError


class LockedError(SasvError, RuntimeError):
    """Another process holds the lock on an output directory."""


@contextmanager
def exclusive_lock(directory: str | Path, what: str = "outputs") -> Iterator[None]:
    """Hold ``directory/.lock`` for the duration; fail at once (never wait) when another run holds it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lock_path = directory / ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise LockedError(
                f"{directory}: another run (pid {holder}) is writing these {what}; wait for it to finish "
                f"or point this run at another --exp_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
