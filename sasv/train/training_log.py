"""A training run's log, ``<out>/train_log.csv``: one row per finished epoch (the loop's columns and the
task's,
:class:`~sasv.train.loop.TrainingTask`), rewritten atomically, read back for the curves and the trainers'
tables."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sasv.fileio import atomic_write_text


def append_epoch_row(out_dir: Path, row: dict[str, float], fields: tuple[str, ...]) -> None:
    """Append one epoch's row to ``train_log.csv`` (rewritten atomically, rows of later epochs dropped:
    a resumed run replaces what an interrupted one logged after its last checkpoint)."""
    path = out_dir / "train_log.csv"
    rows = []
    if path.is_file():
        rows = [r for r in csv.DictReader(io.StringIO(path.read_text())) if int(r["epoch"]) < row["epoch"]]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows([*rows, {k: row[k] for k in fields}])
    atomic_write_text(path, buffer.getvalue())


def read_training_log(out_dir: Path) -> dict[str, list[float]]:
    """``train_log.csv`` as columns of floats."""
    rows = list(csv.DictReader(io.StringIO((out_dir / "train_log.csv").read_text())))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {})}
