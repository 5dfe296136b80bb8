"""Where a system's numbers came from: model conf, checkpoint hash, random initialisation.

Every stage that runs a model writes a ``model.json`` next to its outputs; the scoring stage reads them so
that a table computed from randomly initialised weights says so instead of looking like a result.
"""

from __future__ import annotations

import json
from pathlib import Path

from sasv.conf import LoadedModel

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
        "checkpoint": ckpt.path if ckpt else None,
        "checkpoint_sha256": loaded.checkpoint_sha256,
        "pretrained": loaded.pretrained,
    }


def model_key(loaded: LoadedModel) -> str:
    """A string that changes whenever the model's conf or weights change (input to output fingerprints)."""
    conf_text = Path(loaded.conf.source).read_text() if Path(loaded.conf.source).is_file() else ""
    return json.dumps({"conf": conf_text, "sha256": loaded.checkpoint_sha256}, sort_keys=True)


def write_model_record(loaded: LoadedModel, path: str | Path) -> None:
    from sasv.fileio import atomic_write_text

    atomic_write_text(Path(path), json.dumps(model_record(loaded), indent=2) + "\n")


def read_model_record(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the stage that writes it first")
    return json.loads(path.read_text())
