"""Progress of long loops: a live bar on a terminal, a log line per step of 10 % everywhere else.

The stage scripts tee their output into exp/logs, so a tool's stderr is a pipe even when a user watches:
tqdm's carriage-return redraws would turn the log into one unreadable line. A bar is drawn only when
stderr is a terminal; otherwise progress is logged, one line each time another ``step`` percent is done.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from tqdm import tqdm

log = logging.getLogger(__name__)


class LogProgress:
    """The part of tqdm's interface the recipe uses (``update``, context manager), written as log lines."""

    def __init__(
        self, total: int, initial: int = 0, desc: str = "", unit: str = "it", step: int = 10
    ) -> None:
        self.total, self.n, self.desc, self.unit, self.step = total, initial, desc, unit, step
        self._shown = self._percent()
        self._start = time.perf_counter()

    def _percent(self) -> int:
        return 100 if self.total <= 0 else int(100 * self.n / self.total) // self.step * self.step

    def update(self, n: int = 1) -> None:
        self.n += n
        percent = self._percent()
        if percent > self._shown:
            self._shown = percent
            elapsed = time.perf_counter() - self._start
            log.info(
                "%s: %d/%d %s (%d %%, %.0f s)", self.desc, self.n, self.total, self.unit, percent, elapsed
            )

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def progress_bar(total: int, initial: int = 0, desc: str = "", unit: str = "it") -> tqdm | LogProgress:
    """A tqdm bar on a terminal, else a :class:`LogProgress`."""
    if sys.stderr.isatty():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
    return LogProgress(total, initial, desc, unit)
