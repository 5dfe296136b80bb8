"""``torch.compile`` of the fixed-shape forwards (``--compile true``): whether it can run here, and the
compiled copy of a model the engines use for 3 s segments and CM inputs (:mod:`sasv.extraction.engines`).
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import sysconfig
from collections.abc import Callable

import torch
from torch import nn

from sasv.errors import SasvError
from sasv.runtime.cpu_kernels import prepare_model

log = logging.getLogger(__name__)


class CompileError(SasvError, RuntimeError):
    """``torch.compile`` cannot build kernels on this machine (no C/C++ compiler or Python headers)."""


def compile_problem(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here, or None.

    On CPU inductor compiles C++ kernels with ``$CXX`` (default g++) against the Python headers. On a GPU
    Triton (which comes with torch) writes the kernels, but builds each kernel's launcher, a small C
    extension, with ``$CC`` (else cc, gcc or clang) against the same Python headers: without them the first
    compiled forward fails deep in Triton, after the model was loaded, instead of here in one line.
    """
    if device.type == "cpu":
        compiler = os.environ.get("CXX", "g++")
        if shutil.which(compiler) is None:
            return f"no C++ compiler ({compiler}; install g++ or set CXX)"
    else:
        names = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
        if not any(shutil.which(name) for name in names):
            return f"no C compiler for Triton's launchers ({' or '.join(names)}; install gcc or set CC)"
    include = sysconfig.get_paths()["include"]
    if not os.path.isfile(os.path.join(include, "Python.h")):
        return f"no Python headers ({include}/Python.h; install python3-dev)"
    return None


def compiled_model(model: nn.Module, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``torch.compile``-d copy of ``model`` (inductor, one static graph per input shape, freezing).

    The copy keeps torch's own kernels (``cpu_kernels='torch'``): dynamo does not trace the oneDNN-routed
    modules. Inductor fuses the elementwise chains (BatchNorm, ReLU, SELU, adds) the eager model runs as
    separate passes; freezing (the weights are constants of the graph, as inference allows) lets it also
    prepack the convolution weights for oneDNN, without which the 2-D models gain little. Compiling happens
    on the first call of each shape, up to a minute per real-size model on CPU (docs/PERFORMANCE.md: the
    break-even in utterances), so it is for the fixed-shape forwards only: 3 s segments and CM inputs.
    Outputs differ from eager by float rounding.
    """
    problem = compile_problem(device)
    if problem:
        where = "CPU" if device.type == "cpu" else "GPU"
        raise CompileError(f"--compile true: torch.compile cannot build {where} kernels here: {problem}")
    plain = prepare_model(copy.deepcopy(model), device, cpu_kernels="torch")
    log.info("torch.compile: the first forward of each input shape compiles (up to a minute on CPU)")
    return _Frozen(torch.compile(plain, dynamic=False))


class _Frozen:
    """Calls a compiled model with inductor's ``freezing`` on. Compiling happens inside the first call of
    each shape, so the setting must be in force there; ``torch.compile(options={"freezing": True})`` was
    measured not to take effect (torch 2.13: the same kernels and speed as without)."""

    def __init__(self, compiled: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.compiled = compiled

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch._inductor.config as inductor_config  # imported by torch.compile's first call anyway

        with inductor_config.patch(freezing=True):
            return self.compiled(x)
