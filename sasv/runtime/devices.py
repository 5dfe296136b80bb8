"""Where a model runs: the device a ``--device`` value names on this machine, and what it must support.

Resolved where the work runs (a job, a Slurm task), never by the process that submits it: a login node
without a GPU must be able to submit GPU work (:func:`check_device_spelling` there, :func:`resolve_device`
in the task). Every refusal is one :class:`DeviceError` line, not a CUDA traceback at the first tensor.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

import torch

from sasv.errors import SasvError

log = logging.getLogger(__name__)


class DeviceError(SasvError, RuntimeError):
    """The requested device does not exist on this machine."""


def check_device_spelling(device: str) -> None:
    """Refuse a device that no machine has (``--device gpu``), without asking this machine for CUDA: the
    process that submits tasks (``--cmd``, a login node) validates the spelling only, each task resolves
    the device where it runs (:func:`resolve_device`)."""
    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DeviceError(f"--device {device}: not a device (auto, cpu, cuda or cuda:N)") from None
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"--device {device}: not a device (auto, cpu, cuda or cuda:N)")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; ``cuda[:N]`` without CUDA, or ``cuda:N`` beyond
    this machine's GPUs, is one error line (torch's own is an "invalid device ordinal" traceback at the
    first tensor). ``auto`` on CPU warns when ``nvidia-smi`` sees a GPU this torch cannot use (a CPU build
    of torch, installed on a login node): the run would be silently slow."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        unused = unused_gpus()
        if unused:
            log.warning(
                "--device auto: running on the CPU, but nvidia-smi sees %s, which this torch (%s) cannot "
                "use: install a CUDA build of torch (local/setup_env.sh --torch-index-url URL)",
                unused, torch.__version__,
            )  # fmt: skip
        return torch.device("cpu")
    check_device_spelling(device)
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {device}: CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(
                f"--device {device}: this machine has {count} GPU(s), cuda:0..cuda:{count - 1} "
                "(CUDA_VISIBLE_DEVICES renumbers them from 0)"
            )
    return dev


def unused_gpus() -> str | None:
    """The GPUs ``nvidia-smi -L`` lists (e.g. "1 GPU(s): NVIDIA H100 ..."), or None when there is no
    nvidia-smi or it lists none; asked only when torch sees no CUDA device."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = [line.split("(UUID")[0].strip() for line in listing.splitlines() if line.startswith("GPU ")]
    return f"{len(gpus)} GPU(s): {'; '.join(gpus)}" if gpus else None


def bind_device(device: torch.device) -> None:
    """Make ``device`` this process's current CUDA device, before any CUDA work.

    ``.to("cuda:k")`` alone puts the tensors on GPU k, but CUDA's context, pinned host memory and the
    caching allocator's first calls still go to the current device, GPU 0 by default: every job of
    ``--nj N`` would also hold a context (~500 MB) on GPU 0, and N of them could fill it.
    """
    if device.type == "cuda":
        torch.cuda.set_device(device)


def check_autocast(device: torch.device, autocast: str) -> None:
    """Refuse ``--autocast bf16`` on a GPU without bfloat16 (V100, T4): it would run emulated, if at all,
    many times slower. Refused, not replaced by fp16 or fp32: the outputs are fingerprinted as bf16, and a
    silent switch would give numbers of another precision under that name."""
    if device.type == "cuda" and autocast == "bf16" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise DeviceError(f"--autocast bf16: {name} has no bfloat16 support; use --autocast fp16 or none")


OUT_OF_MEMORY_MARKERS = (
    "out of memory",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUFFT_ALLOC_FAILED",
    "CUSOLVER_STATUS_ALLOC_FAILED",
)
"""What the CUDA libraries say when they cannot allocate: cuDNN, cuBLAS, cuFFT and cuSOLVER allocate their
own workspaces and report a failure as a plain ``RuntimeError`` (a ``torch.AcceleratorError`` in recent
torch), not as ``torch.OutOfMemoryError``."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a GPU running out of memory, whichever library said it (the caching allocator's
    ``torch.OutOfMemoryError``, or a CUDA library's RuntimeError: :data:`OUT_OF_MEMORY_MARKERS`)."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(m in str(error) for m in OUT_OF_MEMORY_MARKERS)


def usable_cpus() -> int:
    """The cores this process may run on: its CPU affinity (a Slurm task's allocation, ``taskset``), which
    ``os.cpu_count()`` ignores (it counts the whole machine)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
