"""Completion markers: which inputs a stage's outputs were made from, and the checks that refuse stale ones.

* Stage 1 writes ``data/<set>/prepared.json``: the sha256 of the protocol files a data dir was made from.
  When a protocol file changes after stage 1 (a newer trial list, a fixed enrolment file), the data dir is
  stale and running models on it would silently evaluate the old protocol.
* Stages 2 and 3 write ``<output>.done`` beside each finished output (``xvector.done``,
  ``cm_scores.txt.done``): the fingerprint of the model and utterance list that decides whether the output
  can be reused (:func:`is_complete`), what the output was when finished (:func:`output_record`: the
  index's size and sha256, its arks' sizes; a re-run skips only an output still as recorded,
  :func:`output_damage`), and the stage's inputs (conf, checkpoint, data lists; :func:`stage_inputs`).
  Scoring recomputes the inputs as they are now and refuses outputs made from other ones
  (:func:`check_stage_inputs`): a table never mixes numbers from a stale stage with new ones.

Kept free of torch so that data preparation and scoring stay light.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sasv.errors import StaleOutputError
from sasv.fileio import atomic_write_text, sha256_file

if TYPE_CHECKING:
    from sasv.models.conf import ModelConf

PREPARED_MARKER = "prepared.json"


# the files of a data dir that stage 1 writes, and later stages trust (the utt2<x> conditions and
# asv_scores: ASVspoof 2021's, sasv/corpora/asvspoof2021.py)
DATA_DIR_FILES = (
    "wav.scp", "utt2spk", "spk2utt", "utt2spf", "utt2codec", "utt2transmission", "utt2attack", "utt2vocoder",
    "utt2subset", "enroll", "trials", "asv_scores",
)  # fmt: skip


def write_prepared_marker(
    data_dir: str | Path, sources: Iterable[Path], benchmark: str | None = None
) -> None:
    """Record the sha256 of the protocol files ``data_dir`` was made from and of its own files, and for a
    trial dir the benchmark its trials belong to (a corpus of :data:`sasv.corpora.registry.CORPORA`: it
    decides which metrics scoring reports, :data:`sasv.reports.records.BENCHMARK_METRICS`)."""
    data_dir = Path(data_dir)
    record: dict = {
        "sources": {str(Path(p).resolve()): sha256_file(p) for p in sorted(set(sources))},
        "files": {n: sha256_file(data_dir / n) for n in DATA_DIR_FILES if (data_dir / n).is_file()},
    }
    if benchmark is not None:
        record["benchmark"] = benchmark
    atomic_write_text(data_dir / PREPARED_MARKER, json.dumps(record, indent=1) + "\n")


def recorded_benchmark(data_dir: str | Path) -> str | None:
    """The benchmark stage 1 recorded for a trial dir; None for a data dir made by hand or before the record
    existed (:func:`sasv.corpora.registry.prepared_benchmark` gives it the default corpus)."""
    marker = Path(data_dir) / PREPARED_MARKER
    if not marker.is_file():
        return None
    return json.loads(marker.read_text()).get("benchmark")


def check_prepared_marker(data_dir: str | Path) -> bool:
    """Raise :class:`StaleOutputError` if a source of ``data_dir``, or one of its own files, changed since
    stage 1 (a newer protocol, a hand-edited ``trials``).

    Returns False when there is no marker (a data dir made by hand or by another tool is allowed, and one
    edited on purpose can be used by deleting its marker).
    """
    data_dir = Path(data_dir)
    marker = data_dir / PREPARED_MARKER
    if not marker.is_file():
        return False
    record = json.loads(marker.read_text())
    sources = record.get("sources", {})
    changed = [p for p, sha in sources.items() if not Path(p).is_file() or sha256_file(p) != sha]
    if changed:
        raise StaleOutputError(
            f"{data_dir} was prepared from protocol files that have changed or gone since: "
            f"{', '.join(changed[:3])}; re-run stage 1 (run_spk_ebd_extract.sh --stage 1)"
        )
    edited = [
        n
        for n, sha in record.get("files", {}).items()
        if not (data_dir / n).is_file() or sha256_file(data_dir / n) != sha
    ]
    if edited:
        raise StaleOutputError(
            f"{data_dir}: {', '.join(edited)} changed since stage 1 wrote it (edited by hand?); re-run "
            f"stage 1 (run_spk_ebd_extract.sh --stage 1), or delete {marker} to use the data dir as it is now"
        )
    return True


def is_complete(output: Path, marker: Path, fingerprint: str) -> bool:
    """An earlier run finished ``output`` from the same inputs (its marker holds the same fingerprint)."""
    return (
        output.exists()
        and marker.exists()
        and json.loads(marker.read_text()).get("fingerprint") == fingerprint
    )


def write_done_marker(
    path: Path, fingerprint: str, num_utts: int, inputs: dict | None, output: dict | None = None
) -> None:
    """``output``: what the marker vouches for (:func:`output_record`), checked by :func:`output_damage`
    before a re-run skips the stage."""
    record = {"fingerprint": fingerprint, "num_utts": num_utts, "inputs": inputs or {}}
    if output is not None:
        record["output"] = output
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def output_record(output: Path, data_files: Iterable[Path] = ()) -> dict:
    """The size, line count and sha256 of a finished output (an index: ``xvector.scp``, ``cm_scores.txt``)
    and the sizes of the data files it points into (arks): a completion marker vouches for these, so a file
    damaged after the stage finished (a line deleted, an ark truncated) is not skipped as complete. Arks are
    not hashed: at ASVspoof 5's scale they are GBs, and the index's sha256 already pins every offset."""
    return {
        "size": output.stat().st_size,
        "lines": _count_lines(output),
        "sha256": sha256_file(output),
        "data": {str(p): Path(p).stat().st_size for p in sorted(set(map(str, data_files)))},
    }


def output_damage(output: Path, marker: Path) -> tuple[str, list[Path]] | None:
    """Why ``output`` is not what ``marker`` vouched for, and which of its data files changed or went;
    None when it is. A marker without an output record (written by an older version) vouches for nothing
    checkable: that is a reason too."""
    record = json.loads(marker.read_text()).get("output")
    if not isinstance(record, dict):
        return (
            f"{marker} records no checksum of {output.name} (written before markers recorded their output)",
            [],
        )
    if output.stat().st_size != record.get("size") or sha256_file(output) != record.get("sha256"):
        lines = _count_lines(output)
        return (
            f"{output} changed since it was marked complete ({lines} lines, {record.get('lines')} then)",
            [],
        )
    changed = [
        Path(p)
        for p, size in record.get("data", {}).items()
        if not Path(p).is_file() or Path(p).stat().st_size != size
    ]
    if changed:
        return (
            f"{len(changed)} file(s) that {output} points into changed or went since it was marked "
            f"complete: {', '.join(map(str, changed[:3]))}",
            changed,
        )
    return None


def stage_inputs(conf: ModelConf, checkpoint_sha256: str | None, lists: dict[str, Path]) -> dict:
    """The fingerprint of what a model stage consumed: conf file, checkpoint and data lists."""
    record: dict = {
        "conf": conf.source,
        "conf_sha256": sha256_file(conf.source),
        "checkpoint_sha256": checkpoint_sha256,
        "lists": {name: sha256_file(path) for name, path in sorted(lists.items())},
    }
    if checkpoint_sha256 is not None and conf.checkpoint is not None:
        st = conf.checkpoint.resolved_path(Path(".")).stat()
        record["checkpoint_stat"] = [st.st_size, st.st_mtime_ns]
    return record


def check_stage_inputs(marker: str | Path, conf: ModelConf | None, lists: dict[str, Path]) -> None:
    """Refuse a stage output whose marker records other inputs than the ones on disk now (``conf`` None:
    the data lists only, for an output whose conf is not at hand).

    The checkpoint is re-hashed only when its size or mtime changed (hashing a 1.3 GB WavLM file on every
    scoring run would be wasteful); a checkpoint that appeared or vanished since also counts as a change.
    """
    marker = Path(marker)
    if not marker.is_file():
        raise StaleOutputError(f"{marker} not found: the stage that writes it did not finish; run it (again)")
    recorded = json.loads(marker.read_text()).get("inputs") or {}
    what = marker.parent
    changed = []
    if conf is not None and recorded.get("conf_sha256") != sha256_file(conf.source):
        changed.append(f"conf {conf.source}")
    for name, path in lists.items():
        if recorded.get("lists", {}).get(name) != sha256_file(path):
            changed.append(f"{name} {path}")
    if conf is not None:
        changed += _checkpoint_change(conf, recorded)
    if changed:
        raise StaleOutputError(
            f"{what} was made from other inputs than the current ones (changed: {', '.join(changed)}); "
            f"re-run the stage that writes it (run_spk_ebd_extract.sh --stage 2 or 3)"
        )


def _checkpoint_change(conf: ModelConf, recorded: dict) -> list[str]:
    """The conf's checkpoint, if it is not the one the marker's inputs record (by sha256, re-hashed only
    after a change of size or mtime)."""
    had, stat = recorded.get("checkpoint_sha256"), recorded.get("checkpoint_stat")
    ckpt = conf.checkpoint.resolved_path(Path(".")) if conf.checkpoint else None
    has = ckpt is not None and ckpt.is_file()
    if bool(had) != has:
        return [f"checkpoint {ckpt} ({'appeared' if has else 'missing'} since)"]
    if has and had:
        st = ckpt.stat()
        if stat != [st.st_size, st.st_mtime_ns] and sha256_file(ckpt) != had:
            return [f"checkpoint {ckpt}"]
    return []
