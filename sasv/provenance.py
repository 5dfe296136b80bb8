"""Where a system's numbers came from: model records, the data and the environment of a results file.

Every stage that runs a model writes a ``model.json`` next to its outputs; the scoring stage reads them so
that a table computed from randomly initialised weights says so instead of looking like a result. The
scoring stage also records how the ASV model's embeddings were stored (:func:`stored_embedding_dtype`) and
the data each set was scored on (:func:`data_record`), so that the tools that gather systems into one table
or one fusion can see records that say different things about the same model or set
(:func:`record_disagreements`). Whether an output is still current is :mod:`sasv.markers`' business.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from sasv.corpora.registry import DEFAULT_CORPUS
from sasv.errors import MissingInputError, SasvError
from sasv.exp_layout import MODEL_RECORD, StageOutput
from sasv.fileio import atomic_write_text, sha256_file
from sasv.models.conf import ConfError, LoadedModel, ModelConf

RANDOM_INIT_NOTE = (
    "RANDOMLY INITIALISED weights (no pretrained checkpoint found): these numbers mean nothing."
)


def model_record(loaded: LoadedModel) -> dict:
    ckpt = loaded.conf.checkpoint
    return {
        "name": loaded.conf.name,
        "kind": loaded.conf.kind,
        "arch": loaded.conf.arch,
        "conf": loaded.conf.source,
        "conf_sha256": sha256_file(loaded.conf.source) if Path(loaded.conf.source).is_file() else None,
        "checkpoint": ckpt.path if ckpt else None,
        "checkpoint_sha256": loaded.checkpoint_sha256,
        "pretrained": loaded.pretrained,
        "trained_on": ckpt.trained_on if ckpt else None,
    }


def weights_origin(record: dict) -> str:
    """Where a model record's weights came from, in words, for tables: trained here (on what), a published
    checkpoint, or random initialisation."""
    if not record.get("pretrained"):
        return "RANDOMLY INITIALISED (no checkpoint)"
    if record.get("trained_on"):
        return f"trained on {record['trained_on']}"
    return "published checkpoint"


def model_key(loaded: LoadedModel) -> str:
    """A string that changes whenever the model's conf or weights change (input to output fingerprints)."""
    conf_text = Path(loaded.conf.source).read_text() if Path(loaded.conf.source).is_file() else ""
    return json.dumps({"conf": conf_text, "sha256": loaded.checkpoint_sha256}, sort_keys=True)


def check_model_name_owner(record_path: str | Path, conf: ModelConf) -> None:
    """Refuse a conf that reuses the name of another conf: both would write the same ``exp/<name>/``.

    ``record_path`` is the name's existing model record, if any. The same conf file, even edited, and an
    identical copy are fine (an edit is caught as a changed input later); another conf is refused.
    """
    record_path = Path(record_path)
    if not record_path.is_file():
        return
    record = json.loads(record_path.read_text())
    other, other_sha = record.get("conf"), record.get("conf_sha256")
    if other is None or other_sha is None or Path(other).resolve() == Path(conf.source).resolve():
        return
    if Path(conf.source).is_file() and sha256_file(conf.source) == other_sha:
        return
    raise ConfError(
        f"{conf.source}: name {conf.name!r} is already used by another conf, {other}, whose outputs are in "
        f"{record_path.parent}; give one of the two confs another name"
    )


def write_model_record(loaded: LoadedModel, path: str | Path) -> None:
    atomic_write_text(Path(path), json.dumps(model_record(loaded), indent=2) + "\n")


def read_model_record(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path} not found: run the stage that writes it first")
    return json.loads(path.read_text())


def stage_output_model(output: StageOutput) -> dict | None:
    """What a model stage's output records of the model that made it: the model record of its folder
    (``exp/<name>/scores/model.json``: name, conf, checkpoint, sha256, pretrained) with the conf and
    checkpoint sha256 its completion marker holds (which vouch for this output; the model record is the
    last run's); None for a file with neither (scores made elsewhere)."""
    record_path = output.dir.parent / MODEL_RECORD
    record = read_model_record(record_path) if record_path.is_file() else {}
    if output.marker.is_file():
        inputs = json.loads(output.marker.read_text()).get("inputs") or {}
        record = {
            **record,
            **{k: inputs[k] for k in ("conf", "conf_sha256", "checkpoint_sha256") if k in inputs},
        }
    return record or None


def environment_info() -> dict[str, str]:
    """What produced a results file: date, recipe commit, interpreter, library versions and device."""
    import numpy
    import scipy
    import sklearn
    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    if torch.cuda.is_available():
        device = f"CUDA: {torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"
    else:
        device = f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "recipe commit": commit,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "device": device,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
    }


# ------------------------------------------------------------------------------ what a record was made of

EMBEDDING_DTYPE_KEY = "embedding_dtype"  # in the ASV model's entry of a results.json's "models"
# the data-dir lists whose content defines what a set's numbers are about (wav.scp: which audio)
DATA_LISTS = ("trials", "enroll", "wav.scp")


class RecordsDisagreeError(SasvError, ValueError):
    """Systems to be combined (a fusion) were made from different inputs than their records claim to
    share: another version of a model, other data for a set, other metrics."""


def stored_embedding_dtype(scp: str | Path) -> str:
    """The dtype the rows of an ``xvector.scp`` are stored in (``float32``, or ``float16`` after stage 2
    with ``--embedding_dtype float16``), read off its first row.

    Read from the archive rather than from an option record: the rows are what scoring used, every row of
    a finished output has one dtype (the dtype is part of the output fingerprint, so chunks of another are
    redone), and archives written before any record existed answer too.
    """
    import kaldiio  # scoring has it loaded already; the lighter users of this module never call this

    with open(scp, encoding="utf-8") as handle:
        first = next((line.split(maxsplit=1) for line in handle if line.strip()), None)
    if first is None or len(first) < 2:
        return "unknown (empty index)"
    return str(kaldiio.load_mat(first[1].strip()).dtype)


def joined_by_set(values: Mapping[str, str]) -> str:
    """One value for a record: the value every set shares, else ``value (set), ...`` per set."""
    distinct = list(dict.fromkeys(values.values()))
    if len(distinct) == 1:
        return distinct[0]
    return ", ".join(f"{value} ({set_name})" for set_name, value in values.items())


def data_record(data_dir: str | Path) -> dict:
    """What a set was scored on: its data dir (resolved) and the sha256 of the lists that decide its
    numbers (:data:`DATA_LISTS`): two records with equal hashes scored the same trials of the same audio
    with the same enrolment, wherever the data dir was."""
    data_dir = Path(data_dir)
    return {
        "dir": str(data_dir.resolve()),
        "sha256": {name: sha256_file(data_dir / name) for name in DATA_LISTS if (data_dir / name).is_file()},
    }


def _named(systems: Sequence[str]) -> str:
    return ", ".join(systems[:3]) + (f" and {len(systems) - 3} more" if len(systems) > 3 else "")


def _versions(what: str, by_version: Mapping[str, list[str]]) -> str:
    return f"{what}: " + "; ".join(
        f"{version} in {_named(systems)}" for version, systems in by_version.items()
    )


# what of a model entry must be the same wherever its name appears, and how a version is shown
_MODEL_FIELDS = {
    "checkpoint_sha256": lambda v: f"checkpoint {v[:12]}" if v else "random weights",
    "conf_sha256": lambda v: f"conf {(v or '?')[:12]}",
    EMBEDDING_DTYPE_KEY: lambda v: f"embeddings stored as {v}",
}


def _data_versions(by_hashes: Mapping[tuple[tuple[str, str], ...], list[str]]) -> dict[str, list[str]]:
    """A set's data versions as a table shows them: the sha256 of the lists that differ between them."""
    versions = [dict(hashes) for hashes in by_hashes]
    names = sorted({n for v in versions for n in v})
    differ = [n for n in names if len({v.get(n) for v in versions}) > 1]
    return {
        ", ".join(f"{n} {(v.get(n) or 'absent')[:12]}" for n in differ): systems
        for v, systems in zip(versions, by_hashes.values(), strict=True)
    }


def _metrics_version(record: Mapping) -> str:
    metrics = record.get("metrics") or {}
    extras = [
        name for key, name in (("tandem", "t-DCF, t-EER"), ("track1", "CM Track 1")) if metrics.get(key)
    ]
    costs = "+".join(metrics.get("a_dcf", ["paper"]))
    return ", ".join([f"{record.get('benchmark', DEFAULT_CORPUS)}: a-DCF[{costs}]", *extras])


def record_disagreements(records: Sequence[tuple[str, Mapping]]) -> list[str]:
    """What ``(system, results.json record)`` pairs, meant to be read side by side, say differently about
    the same thing, one line each: a model name recorded with another checkpoint, conf or embedding
    storage (a model re-run under the same name between two scorings), a set scored on other data (another
    trial list, enrolment or audio: the lists' hashes decide, the data dirs are named), other benchmarks or
    metrics. Different models and different norms are what a table compares, not a disagreement; what a
    record does not hold (records written before it was recorded) is not compared."""
    models: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    data: dict[str, dict[tuple[tuple[str, str], ...], list[str]]] = defaultdict(lambda: defaultdict(list))
    metrics: dict[str, list[str]] = defaultdict(list)
    for system, record in records:
        for model in record.get("models") or []:
            for field, show in _MODEL_FIELDS.items():
                if field in model and system not in (
                    seen := models[model["name"], field][show(model[field])]
                ):
                    seen.append(system)
        for set_name, used in (record.get("data") or {}).items():
            hashes = tuple(sorted((used.get("sha256") or {}).items()))
            data[set_name][hashes].append(f"{system} ({used.get('dir')})")
        if "metrics" in record or "benchmark" in record:
            metrics[_metrics_version(record)].append(system)
    found = [_versions(f"model {name}", by) for (name, _), by in sorted(models.items()) if len(by) > 1]
    found += [
        _versions(f"{name} data", _data_versions(by)) for name, by in sorted(data.items()) if len(by) > 1
    ]
    if len(metrics) > 1:
        found.append(_versions("benchmark and metrics", metrics))
    return found


def check_records_agree(records: Sequence[tuple[str, Mapping]], where: str | Path, what: str) -> None:
    """Refuse records that disagree (:func:`record_disagreements`), naming ``where`` and ``what`` they are
    gathered for."""
    found = record_disagreements(records)
    if found:
        raise RecordsDisagreeError(
            f"{where}: {what} were not made from the same inputs: {' | '.join(found)}; re-score the stale "
            f"system(s) (run_test stage 1) so that they share them"
        )
