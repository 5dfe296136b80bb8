"""Completion markers of data preparation: which protocol files a data dir was made from.

Kept free of torch so that data preparation stays light. The model stages check the marker of every data
dir they read: when a protocol file changed after stage 1 (a newer trial list, a fixed enrolment file),
the data dir is stale and running models on it would silently evaluate the old protocol.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from sasv.fileio import atomic_write_text, sha256_file

PREPARED_MARKER = "prepared.json"


class StaleOutputError(RuntimeError):
    """A stage's outputs were made from inputs that have changed since."""


def write_prepared_marker(data_dir: str | Path, sources: Iterable[Path]) -> None:
    record = {"sources": {str(Path(p).resolve()): sha256_file(p) for p in sorted(set(sources))}}
    atomic_write_text(Path(data_dir) / PREPARED_MARKER, json.dumps(record, indent=1) + "\n")


def check_prepared_marker(data_dir: str | Path) -> bool:
    """Raise :class:`StaleOutputError` if a source of ``data_dir`` changed since stage 1.

    Returns False when there is no marker (a data dir made by hand or by another tool is allowed).
    """
    marker = Path(data_dir) / PREPARED_MARKER
    if not marker.is_file():
        return False
    sources = json.loads(marker.read_text()).get("sources", {})
    changed = [p for p, sha in sources.items() if not Path(p).is_file() or sha256_file(p) != sha]
    if changed:
        raise StaleOutputError(
            f"{data_dir} was prepared from protocol files that have changed or gone since: "
            f"{', '.join(changed[:3])}; re-run stage 1 (run_spk_ebd_extract.sh --stage 1)"
        )
    return True
