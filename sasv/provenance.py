"""Where a system's numbers came from: model records and the environment of a results file.

Every stage that runs a model writes a ``model.json`` next to its outputs; the scoring stage reads them so
that a table computed from randomly initialised weights says so instead of looking like a result. Whether
an output is still current is :mod:`sasv.markers`' business.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from sasv.conf import ConfError, LoadedModel, ModelConf
from sasv.errors import MissingInputError
from sasv.fileio import atomic_write_text, sha256_file

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
