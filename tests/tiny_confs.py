"""Tiny model confs (random weights, seeded) on which every stage runs in seconds; one definition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TINY_ECAPA: dict[str, Any] = {"name": "tiny_ecapa", "kind": "asv", "arch": "ecapa_tdnn", "args": {"C": 16}}
TINY_RESNET: dict[str, Any] = {
    "name": "tiny_resnet",
    "kind": "asv",
    "arch": "se_resnet34",
    "args": {"layers": [1, 1, 1, 1], "num_filters": [8, 8, 16, 16], "embedding_dim": 16},
    "frontend": {"n_mels": 64, "f_min": 0.0, "f_max": None, "input_scale": 32768.0, "norm": "instance"},
    "embedding_dim": 16,
}
TINY_AASIST: dict[str, Any] = {
    "name": "tiny_aasist",
    "kind": "cm",
    "arch": "aasist",
    "args": {"filts": [20, [1, 8], [8, 8], [8, 16], [16, 16]], "gat_dims": [16, 16]},
}


def write_tiny_conf(folder: Path, raw: dict[str, Any], **changes: Any) -> Path:
    """``<folder>/<name>.yaml`` with a checkpoint that does not exist (so: --allow_random_init true)."""
    conf = {**raw, **changes}
    conf.setdefault("checkpoint", {"path": str(folder / f"absent_{conf['name']}.pt"), "format": "plain"})
    path = folder / f"{conf['name']}.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    return path
