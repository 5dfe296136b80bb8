"""A training run's epoch checkpoints (``<out>/checkpoints/epoch_<n>.pt``, each written atomically by the
loop, :mod:`sasv.train.loop`): where they are, which are complete, and their average (what the trainers
export)."""

from __future__ import annotations

from pathlib import Path

import torch


def checkpoint_path(out_dir: Path, epoch: int) -> Path:
    return out_dir / "checkpoints" / f"epoch_{epoch:04d}.pt"


def epoch_checkpoints(out_dir: Path) -> list[Path]:
    """Every complete epoch checkpoint, oldest first (written atomically: a file there is complete)."""
    return sorted((out_dir / "checkpoints").glob("epoch_[0-9][0-9][0-9][0-9].pt"))


def last_checkpoint(out_dir: Path) -> Path | None:
    found = epoch_checkpoints(out_dir)
    return found[-1] if found else None


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The model weights averaged over epoch checkpoints (wespeaker's model averaging, the weight average of
    clovaai's SWA): float parameters and buffers are averaged in float64, integer buffers (BatchNorm's batch
    counters) taken from the last."""
    if not paths:
        raise ValueError("no checkpoints to average")
    states = [torch.load(p, map_location="cpu", weights_only=True)["model"] for p in paths]
    averaged = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            averaged[key] = (sum(s[key].double() for s in states) / len(states)).to(last.dtype)
        else:
            averaged[key] = last.clone()
    return averaged
