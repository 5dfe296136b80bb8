"""What the engines do when a GPU runs out of memory: split the model batch, then compute the one input that
still does not fit on the CPU (:class:`SplitsOnOutOfMemory`, the engines' base), with a CPU copy of the model
made without touching the GPU's memory (:func:`cpu_copy`)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from sasv.runtime.cpu_kernels import prepare_model
from sasv.runtime.devices import is_out_of_memory

log = logging.getLogger(__name__)


def cpu_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its parameters and buffers on the CPU, made without allocating GPU memory
    (``copy.deepcopy`` of a GPU model would copy it on the GPU first: the memory that just ran out)."""
    memo: dict[int, object] = {}
    for param in model.parameters():
        memo[id(param)] = nn.Parameter(param.detach().cpu(), requires_grad=param.requires_grad)
    for buffer in model.buffers():
        memo[id(buffer)] = buffer.detach().cpu()
    return copy.deepcopy(model, memo)


class SplitsOnOutOfMemory:
    """A model batch that runs out of GPU memory (:func:`sasv.runtime.devices.is_out_of_memory`: the
    allocator's error or a CUDA library's) is split in halves, down to one input; one input that
    still does not fit (a very long utterance) is computed on the CPU, with a log line.

    Without this a CUDA OOM lost the chunk in flight, and a resume met the same utterance and failed again,
    forever. Rows are independent in eval mode, so smaller batches change nothing but float rounding, and
    the CPU's fp32 result is the GPU's within the same rounding (the device is not in the fingerprint:
    :meth:`EngineOptions.fingerprint_suffix`). The batches after an OOM keep the model batch: a batch that
    fits is computed as it would be without the OOM. Split pieces run the eager model (a compiled one would
    compile again for each new shape).
    """

    device: torch.device
    cpu_kernels: str

    def _run(
        self, batch: np.ndarray, model: Callable[[torch.Tensor], torch.Tensor], device: torch.device
    ) -> np.ndarray:
        raise NotImplementedError

    def _eager_model(self) -> nn.Module:
        raise NotImplementedError

    def _fitting(
        self, batch: np.ndarray, model: Callable[[torch.Tensor], torch.Tensor], n_real: int | None = None
    ) -> np.ndarray:
        """``model`` on ``batch`` (its first ``n_real`` rows real, the rest padding), splitting on OOM."""
        try:
            return self._run(batch, model, self.device)
        except RuntimeError as error:  # torch.OutOfMemoryError is one; cuDNN's and cuBLAS's are plain
            if self.device.type == "cpu" or not is_out_of_memory(error):
                raise
        # here, not in the except block: the traceback no longer holds the failed forward's tensors
        torch.cuda.empty_cache()
        batch = batch[:n_real]
        eager = self._eager_model()
        if len(batch) > 1:
            half = (len(batch) + 1) // 2
            log.warning(
                "out of GPU memory on a batch of %d inputs of %d samples: splitting it in two "
                "(a smaller --model_batch avoids the retries)", len(batch), batch.shape[-1],
            )  # fmt: skip
            return np.concatenate([self._fitting(batch[:half], eager), self._fitting(batch[half:], eager)])
        log.warning(
            "out of GPU memory on one input of %d samples (%.1f s) alone: computing it on the CPU",
            batch.shape[-1], batch.shape[-1] / 16000,
        )  # fmt: skip
        if getattr(self, "_cpu_model", None) is None:
            self._cpu_model = prepare_model(cpu_copy(eager), torch.device("cpu"), self.cpu_kernels)
        return self._run(batch, self._cpu_model, torch.device("cpu"))
