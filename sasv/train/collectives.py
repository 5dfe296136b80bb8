"""The one door through which training talks to the other ranks: every collective of the loop and of the
validation goes through :class:`Collectives`, which checks that each tensor it is given lives on the rank's
training device.

Why the check: NCCL (the GPU backend) has no CPU implementation, gloo (the CPU tests' backend) accepts
tensors on any device it can read. A CPU tensor handed to a collective therefore passes every CPU test and
stops the first multi-GPU run at that collective (the per-epoch totals once did, at the end of epoch 1).
The check is a comparison of devices, free next to the collective itself, and always on: a CPU test that
trains with tensors created on another default device (``torch.set_default_device``) sees such a tensor
as what it is on a GPU, a tensor not on the training device.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

PROCESS_GROUP_TIMEOUT = datetime.timedelta(hours=2)
"""How long a rank waits in a collective for the others (``init_process_group(timeout=...)``). The ranks
validate together, but rank 0 still writes the checkpoint, the log and the curves alone while the others
wait in a barrier, and the last shard of a validation can be slower than the rest; NCCL's default (10
minutes) is shorter than an ASVspoof 5 dev validation on one GPU. A rank that is really stuck still fails,
after this long."""


class CollectiveDeviceError(RuntimeError):
    """A tensor given to a collective is not on the rank's training device (a bug: NCCL would fail)."""


def _same_device(tensor_device: torch.device, device: torch.device) -> bool:
    """Whether ``tensor_device`` is ``device`` (``cuda`` without an index is the current GPU)."""
    if tensor_device.type != device.type:
        return False
    return device.index is None or tensor_device.index is None or tensor_device.index == device.index


class Collectives:
    """The collectives of one rank, on ``device`` (its training device) among ``world_size`` ranks.

    With one process (``world_size`` 1) every collective is the identity and no process group is needed, so
    the code that calls them is the same with and without torchrun. Each method checks its tensors first
    (:class:`CollectiveDeviceError`), whether or not a process group exists: a single-process CPU test
    catches a tensor on the wrong device as surely as a multi-GPU run would.
    """

    def __init__(self, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        self.device, self.rank, self.world_size = device, rank, world_size

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def check(self, op: str, tensors: Sequence[torch.Tensor]) -> None:
        """Raise :class:`CollectiveDeviceError` naming ``op`` unless every tensor is on the training
        device."""
        for tensor in tensors:
            if not _same_device(tensor.device, self.device):
                raise CollectiveDeviceError(
                    f"{op}: a tensor of shape {tuple(tensor.shape)} is on {tensor.device}, not on the "
                    f"training device {self.device}: NCCL (GPU training) cannot take it; create it there"
                )

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks, in place; returns it."""
        self.check("all_reduce", [tensor])
        if self.distributed:
            torch.distributed.all_reduce(tensor)
        return tensor

    def broadcast(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Give every rank rank ``src``'s ``tensor``, in place; returns it."""
        self.check("broadcast", [tensor])
        if self.distributed:
            torch.distributed.broadcast(tensor, src)
        return tensor

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's ``tensor`` (same shape on all), in rank order."""
        self.check("all_gather", [tensor])
        if not self.distributed:
            return [tensor]
        gathered = [torch.empty_like(tensor) for _ in range(self.world_size)]
        self.check("all_gather", gathered)
        torch.distributed.all_gather(gathered, tensor)
        return gathered

    def all_gather_rows(self, rows: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's ``rows`` (N_r, ...), in rank order, where N_r may differ between ranks: the counts
        are gathered first, each block padded to the largest and cut back."""
        self.check("all_gather_rows", [rows])
        count = torch.tensor([rows.shape[0]], dtype=torch.int64, device=self.device)
        counts = [int(c) for c in self.all_gather(count)]
        padded = torch.zeros((max(counts), *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
        padded[: rows.shape[0]] = rows
        return [block[:n] for block, n in zip(self.all_gather(padded), counts, strict=True)]

    def barrier(self) -> None:
        """Wait for every rank (NCCL's barrier runs on the GPU that ``torch.cuda.set_device`` chose)."""
        if self.distributed:
            torch.distributed.barrier()


@dataclass(frozen=True)
class Ranks:
    """This process's place in a torchrun launch (RANK, WORLD_SIZE, LOCAL_RANK); one process without it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Ranks:
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device, ranks: Ranks) -> torch.device:
    """Join the torchrun process group (NCCL on GPUs, gloo on CPU); a GPU rank takes its local GPU. The
    group waits :data:`~sasv.train.collectives.PROCESS_GROUP_TIMEOUT` for a rank, not NCCL's 10 minutes."""
    if not ranks.distributed:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, timeout=PROCESS_GROUP_TIMEOUT)
    return device


def finish_distributed(ranks: Ranks) -> None:
    """Leave the torchrun process group once training is over: every rank waits for the others, then the
    group is torn down before the process exits. A rank that exits with a gloo group still alive can abort
    in its thread teardown ("terminate called without an active exception", SIGABRT), which fails the
    whole torchrun run and leaves the other node's agent waiting (seen in a Slurm test, intermittently)."""
    if ranks.distributed and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
