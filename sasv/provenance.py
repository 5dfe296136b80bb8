"""Where a system's numbers came from, and whether they are still current.

Every stage that runs a model writes a ``model.json`` next to its outputs; the scoring stage reads them so
that a table computed from randomly initialised weights says so instead of looking like a result.

Each finished output also carries a completion marker with the fingerprint of its inputs (conf text,
checkpoint, data lists). A later stage recomputes that fingerprint from the inputs as they are now and
refuses outputs made from other inputs: a table never mixes numbers from a stale stage with new ones.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from sasv.conf import LoadedModel, ModelConf
from sasv.fileio import sha256_file
from sasv.markers import StaleOutputError

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


def check_stage_inputs(marker: str | Path, conf: ModelConf, lists: dict[str, Path]) -> None:
    """Refuse a stage output whose marker records other inputs than the ones on disk now.

    The checkpoint is re-hashed only when its size or mtime changed (hashing a 1.3 GB WavLM file on every
    scoring run would be wasteful); a checkpoint that appeared or vanished since also counts as a change.
    """
    marker = Path(marker)
    if not marker.is_file():
        raise StaleOutputError(f"{marker} not found: the stage that writes it did not finish; run it (again)")
    recorded = json.loads(marker.read_text()).get("inputs") or {}
    what = marker.parent
    changed = []
    if recorded.get("conf_sha256") != sha256_file(conf.source):
        changed.append(f"conf {conf.source}")
    for name, path in lists.items():
        if recorded.get("lists", {}).get(name) != sha256_file(path):
            changed.append(f"{name} {path}")
    ckpt = conf.checkpoint.resolved_path(Path(".")) if conf.checkpoint else None
    had = recorded.get("checkpoint_sha256")
    has = ckpt is not None and ckpt.is_file()
    if bool(had) != has:
        changed.append(f"checkpoint {ckpt} ({'appeared' if has else 'missing'} since)")
    elif has and had:
        st = ckpt.stat()
        if recorded.get("checkpoint_stat") != [st.st_size, st.st_mtime_ns] and sha256_file(ckpt) != had:
            changed.append(f"checkpoint {ckpt}")
    if changed:
        raise StaleOutputError(
            f"{what} was made from other inputs than the current ones (changed: {', '.join(changed)}); "
            f"re-run the stage that writes it (run_spk_ebd_extract.sh --stage 2 or 3)"
        )


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
