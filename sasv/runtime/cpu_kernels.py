"""CPU kernel routing: the kernels a model already has, chosen better for inference on this CPU.

torch picks im2col + BLAS for small single-threaded 1x1 convolutions, and MKL for ``F.linear``; on AMD CPUs
both run MKL's AVX2 code, at about half the rate of oneDNN's AVX-512 kernels. :func:`prepare_model` swaps
the class of those modules for subclasses that call oneDNN directly (names, parameters and state dicts stay
those of the torch module) and stores 2-D convolution weights channels-last, so oneDNN keeps activations in
its native layout. The function computed is the same up to float rounding: the kernels sum in another
order. docs/PERFORMANCE.md has the speed-ups and the size of the differences.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from sasv.runtime.allocator import keep_freed_memory

CPU_KERNELS = ("onednn", "torch")


def onednn_available() -> bool:
    """Whether this torch build has the oneDNN conv and linear kernels that :func:`prepare_model` uses."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._linear_pointwise  # noqa: B018 (the attribute lookup is the check)
    except (AttributeError, RuntimeError):
        return False
    return True


def _onednn_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """fp32 CPU inference only: autocast, gradients and other dtypes take torch's own path."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
    )


class OneDnnConv1d(nn.Conv1d):
    """A kernel-1 ``nn.Conv1d`` run by oneDNN on CPU.

    torch sends single-threaded unstrided 1x1 convolutions with a batch under 16 to its im2col + BLAS path
    (its heuristic: "THNN is faster when single-threaded"). The class is swapped onto an existing module, so
    names, parameters and pickling stay those of a Conv1d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or not _onednn_applies(x, self.weight):
            return super().forward(x)
        return torch.mkldnn_convolution(
            x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups
        )


class OneDnnConv2d(nn.Conv2d):
    """A 1x1 ``nn.Conv2d`` run by oneDNN on CPU (see :class:`OneDnnConv1d`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or not _onednn_applies(x, self.weight):
            return super().forward(x)
        return torch.mkldnn_convolution(
            x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups
        )


class OneDnnLinear(nn.Linear):
    """An ``nn.Linear`` run by oneDNN on CPU instead of MKL's ``F.linear`` (WavLM's transformer is mostly
    these layers)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or not _onednn_applies(x, self.weight):
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")


_ROUTED: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv1d: OneDnnConv1d,
    nn.Conv2d: OneDnnConv2d,
    nn.Linear: OneDnnLinear,
}


@functools.cache
def mkl_runs_avx512() -> bool:
    """Whether MKL's ``F.linear`` runs its AVX-512 code here: on Intel CPUs only (MKL dispatches on the
    vendor; elsewhere it runs AVX2 code at about half oneDNN's rate). On an Intel CPU routing linear layers to
    oneDNN gains nothing and costs XLS-R's transformer 14 % (docs/PERFORMANCE.md), so they stay MKL's."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return any(line.startswith("vendor_id") and "GenuineIntel" in line for line in f)
    except OSError:
        return False


def _routable(module: nn.Module) -> bool:
    if type(module) is nn.Linear:
        return not mkl_runs_avx512()
    if type(module) in (nn.Conv1d, nn.Conv2d):
        return (
            module.padding_mode == "zeros"
            and not isinstance(module.padding, str)
            and all(k == 1 for k in module.kernel_size)
        )
    return False


def has_2d_convolutions(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def prepare_model(model: nn.Module, device: torch.device, cpu_kernels: str = "onednn") -> nn.Module:
    """Put ``model`` on ``device`` in eval mode and, on CPU with ``cpu_kernels='onednn'``, route its kernels.

    In place (like ``model.to``). The model computes the same function up to float rounding (checked per
    model family by tests/extraction/test_engines.py):

    * 2-D convolution weights are stored channels-last;
    * exact ``nn.Conv1d``/``nn.Conv2d`` with 1x1 kernels and ``nn.Linear`` become :class:`OneDnnConv1d`,
      :class:`OneDnnConv2d`, :class:`OneDnnLinear` (``nn.Linear`` only where MKL runs AVX2 code:
      :func:`mkl_runs_avx512`).

    ``cpu_kernels='torch'`` leaves torch's own kernel choice (only eval mode and the device are set). On
    CPU either way, freed activations stay in the process for the next batch
    (:func:`sasv.runtime.allocator.keep_freed_memory`).
    """
    if cpu_kernels not in CPU_KERNELS:
        raise ValueError(f"cpu_kernels must be 'onednn' or 'torch', got {cpu_kernels!r}")
    model = model.to(device).eval()
    if device.type == "cpu":
        keep_freed_memory()
    if device.type != "cpu" or cpu_kernels != "onednn" or not onednn_available():
        return model
    if has_2d_convolutions(model):
        model.to(memory_format=torch.channels_last)
    for module in model.modules():
        if _routable(module):
            module.__class__ = _ROUTED[type(module)]
    return model
