"""Inference engines: a model plus how it is run (device, batch, precision), one ``compute`` per engine.

* :class:`EmbeddingEngine` (ASV): the reference 6 rows per utterance, full utterance + five 3 s segments.
* :class:`CountermeasureEngine` (CM): AASIST logits on the first 64,600 samples.
* :class:`EngineOptions` owns every default of how an engine runs (device, model batch, intra-op threads,
  mixed precision, CPU kernels, storage dtype, ``torch.compile``). The stages, the benchmark and the
  Python API (:func:`load_engine`) all resolve them here, so the same conf runs the same way everywhere.
* :class:`EngineSpec` is a conf plus options: what a spawned job needs to build its own engine.

Both engines have ``compute(wavs)`` -> one result per waveform, which is all the chunked driver
(:mod:`sasv.extraction.chunks`) needs; ``kind`` is the conf's kind (``asv`` or ``cm``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from sasv.audio import CM_SAMPLES, cm_input, embedding_segments
from sasv.errors import SasvError
from sasv.extraction.out_of_memory import SplitsOnOutOfMemory
from sasv.runtime.compiled import compiled_model
from sasv.runtime.cpu_kernels import CPU_KERNELS, has_2d_convolutions, prepare_model
from sasv.runtime.devices import bind_device, check_autocast, resolve_device
from sasv.runtime.torch_version import require_torch

if TYPE_CHECKING:
    from sasv.models.conf import LoadedModel, ModelConf

require_torch()  # the engines use torch >= 2.4 APIs (autocast, GradScaler): one line on an older one
log = logging.getLogger(__name__)

AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# how embedding rows are stored: float16 halves the arks, at a small measured cost in the scores
# (docs/PERFORMANCE.md), where disk is the limit (ASVspoof 5)
EMBEDDING_DTYPES: dict[str, type[np.floating]] = {"float32": np.float32, "float16": np.float16}
# Model batch on CPU for models with 2-D convolutions (ResNets, AASIST), measured fastest for each of them
# (docs/PERFORMANCE.md): their activations are ~12 MB per 3 s segment, so a batch of 5 already runs the
# element-wise ops from memory instead of cache. 1-D models (ECAPA, WavLM) get 2 waveforms per intra-op
# thread, at most 5.
CPU_BATCH_2D = 1
CPU_BATCH_1D_PER_THREAD = 2
CPU_BATCH_1D_MAX = 5


class EmbeddingRangeError(SasvError, ValueError):
    """An embedding value does not fit the storage dtype (float16 holds magnitudes up to 65,504)."""


def padded_batches(x: np.ndarray, model_batch: int, pad: bool) -> Iterator[tuple[np.ndarray, int]]:
    """``(batch, n_real)`` for consecutive batches of ``model_batch`` rows of ``x``; with ``pad`` a short
    last batch is filled up with copies of its last row, so a compiled graph sees one shape only (a new
    shape would compile again). Rows are independent in eval mode, so padding changes no real row."""
    for start in range(0, len(x), model_batch):
        batch = x[start : start + model_batch]
        n_real = len(batch)
        if pad and n_real < model_batch:
            batch = np.concatenate([batch, np.repeat(batch[-1:], model_batch - n_real, axis=0)])
        yield batch, n_real


def default_model_batch(
    device: torch.device, conf_batch_size: int, model: nn.Module | None = None, threads: int | None = None
) -> int:
    """Model batch: the conf's ``batch_size`` (sized for GPU memory) on a GPU; on CPU :data:`CPU_BATCH_2D`
    for a model with 2-D convolutions (or an unknown one), else :data:`CPU_BATCH_1D_PER_THREAD` waveforms
    per intra-op thread (``threads``, default torch's current setting), at most :data:`CPU_BATCH_1D_MAX`."""
    if device.type != "cpu":
        return conf_batch_size
    if model is None or has_2d_convolutions(model):
        return CPU_BATCH_2D
    per_thread = CPU_BATCH_1D_PER_THREAD * max(1, threads or torch.get_num_threads())
    return min(CPU_BATCH_1D_MAX, per_thread)


@dataclass(frozen=True)
class EngineOptions:
    """How a model is run; every field's default is resolved here and nowhere else.

    ``device``: auto | cpu | cuda | cuda:N. ``model_batch``: waveforms per forward pass (None:
    :func:`default_model_batch`, resolved in the process that runs the model, after its threads are set).
    ``threads``: intra-op threads of that process (None: torch's setting, i.e. OMP_NUM_THREADS or all cores).
    ``autocast``: none | bf16 | fp16 (ASV models only; changes the numbers). ``cpu_kernels``: onednn | torch.
    ``embedding_dtype``: float32 | float16, how the rows are stored (ASV models only; float16 rounds them).
    ``compile``: run the fixed-shape forwards (ASV: the 3 s segments; CM: all) through ``torch.compile``
    (:func:`compiled_model`); full utterances stay eager, since each length would compile again.
    """

    device: str = "auto"
    model_batch: int | None = None
    threads: int | None = None
    autocast: str = "none"
    cpu_kernels: str = "onednn"
    embedding_dtype: str = "float32"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"autocast must be one of {sorted(AUTOCAST_DTYPES)}, got {self.autocast!r}")
        if self.embedding_dtype not in EMBEDDING_DTYPES:
            raise ValueError(
                f"embedding_dtype must be one of {sorted(EMBEDDING_DTYPES)}, got {self.embedding_dtype!r}"
            )
        if self.cpu_kernels not in CPU_KERNELS:
            raise ValueError(f"cpu_kernels must be one of {CPU_KERNELS}, got {self.cpu_kernels!r}")

    def fingerprint_suffix(self, kind: str) -> str:
        """What of these options changes the numbers an engine computes, for output fingerprints (float32
        storage and eager forwards add nothing, so outputs made before those options existed stay valid).

        The device is not part of it, on purpose, like the model batch and the threads: in fp32 (TF32 off)
        a GPU and the CPU differ by float rounding only (within the engines' 1e-5, tests/test_gpu.py), as
        two batch sizes do, so a run resumed on another device (a CPU node after a GPU one, or the OOM
        fallback computing one utterance on the CPU) keeps its finished chunks instead of redoing hours of
        them. The price is bit-reproducibility across devices: a re-run on one device alone gives the same
        bits, a mixed one the same numbers within rounding. What changes numbers beyond rounding (autocast,
        float16 storage, compile) is in it."""
        compiled = " compile=true" if self.compile else ""
        if kind != "asv":
            return compiled
        stored = f" embedding_dtype={self.embedding_dtype}" if self.embedding_dtype != "float32" else ""
        return f" autocast={self.autocast}{stored}{compiled}"


@contextmanager
def exact_fp32(device: torch.device) -> Iterator[None]:
    """TF32 off for CUDA convolutions and matmuls (cuDNN convs use it by default on Ampere and later).

    TF32 keeps 10 mantissa bits, which moves embeddings by ~1e-3: far more than the rounding the engines
    allow themselves. Restored afterwards, so other code in the process keeps its own settings.
    """
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def to_device(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """float32 host array -> tensor on ``device``; to a GPU through pinned memory, copied asynchronously."""
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x if device.type == "cpu" else x.to(device)


class EmbeddingEngine(SplitsOnOutOfMemory):
    """Embeds utterances as the reference 6 rows: the full utterance + five 3 s segments.

    Full utterances differ in length and the models normalise features over time (mean/instance norm,
    attentive statistics, WavLM's waveform normalisation and attention over all frames), and none takes a
    mask, so zero-padding would change their embeddings: they are batched only with utterances of exactly
    the same length. Segments all have the same length and are batched freely across utterances. Batching
    changes nothing but float rounding (tests/extraction/test_engines.py holds every model family to the
    reference per-utterance computation within 1e-5). The model is prepared in place by
    :func:`sasv.runtime.cpu_kernels.prepare_model`. Out of GPU memory:
    :class:`~sasv.extraction.out_of_memory.SplitsOnOutOfMemory`.
    """

    kind = "asv"

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        model_batch: int,
        autocast_dtype: torch.dtype | None = None,
        cpu_kernels: str = "onednn",
        storage_dtype: type[np.floating] = np.float32,
        compile: bool = False,
    ) -> None:
        # ``compile`` (EngineOptions.compile): the fixed-shape forwards, here the 3 s segments
        # the compiled copy first: prepare_model routes the model in place
        self.segment_model = compiled_model(model, device) if compile else None
        self.model = prepare_model(model, device, cpu_kernels)
        self.device = device
        self.model_batch = model_batch
        self.autocast_dtype = autocast_dtype
        self.storage_dtype = storage_dtype
        self.cpu_kernels = cpu_kernels
        self._cpu_model: nn.Module | None = None

    def _eager_model(self) -> nn.Module:
        return self.model

    @torch.inference_mode()
    def _run(
        self, batch: np.ndarray, model: Callable[[torch.Tensor], torch.Tensor], device: torch.device
    ) -> np.ndarray:
        x = to_device(batch, device)
        if self.autocast_dtype is not None:
            with torch.autocast(device_type=device.type, dtype=self.autocast_dtype):
                out = model(x)
        else:
            with exact_fp32(device):
                out = model(x)
        return out.float().cpu().numpy()

    def _forward(
        self,
        batch: np.ndarray,
        model: Callable[[torch.Tensor], torch.Tensor] | None = None,
        n_real: int | None = None,
    ) -> np.ndarray:
        return self._fitting(batch, self.model if model is None else model, n_real)

    def compute(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """A (6, D) float32 array per waveform: row 0 the full utterance, rows 1-5 the segments."""
        full: list[np.ndarray | None] = [None] * len(wavs)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(wavs):
            by_length.setdefault(len(w), []).append(i)
        for indices in by_length.values():
            for start in range(0, len(indices), self.model_batch):
                group = indices[start : start + self.model_batch]
                out = self._forward(np.stack([wavs[i] for i in group]))
                for i, row in zip(group, out, strict=True):
                    full[i] = row
        segments = np.concatenate([embedding_segments(w) for w in wavs])
        compiled = self.segment_model is not None
        seg_out = np.concatenate(
            [
                self._forward(batch, self.segment_model, n_real)[:n_real]
                for batch, n_real in padded_batches(segments, self.model_batch, pad=compiled)
            ]
        )
        n_seg = seg_out.shape[0] // len(wavs)
        return [
            self._stored(np.concatenate([full[i][None], seg_out[i * n_seg : (i + 1) * n_seg]]))
            for i in range(len(wavs))
        ]

    def _stored(self, rows: np.ndarray) -> np.ndarray:
        """float32 rows in the storage dtype; a finite value that float16 cannot hold is an error, not Inf."""
        with np.errstate(over="ignore"):  # checked below, with a message that says what to do
            stored = rows.astype(self.storage_dtype)
        if self.storage_dtype is not np.float32 and np.isfinite(rows).all() and not np.isfinite(stored).all():
            raise EmbeddingRangeError(
                f"an embedding value ({np.abs(rows).max():.4g}) does not fit {np.dtype(self.storage_dtype)}: "
                f"store float32 (--embedding_dtype float32)"
            )
        return stored


class CountermeasureEngine(SplitsOnOutOfMemory):
    """AASIST-style CM on the first 64,600 samples (tiled when shorter), in model batches of
    ``model_batch``; out of GPU memory: :class:`~sasv.extraction.out_of_memory.SplitsOnOutOfMemory`."""

    kind = "cm"

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        model_batch: int,
        num_samples: int = CM_SAMPLES,
        cpu_kernels: str = "onednn",
        compile: bool = False,
    ) -> None:
        self.compiled = compile
        # every CM input has one shape: a compiled model serves all of them
        self.model = compiled_model(model, device) if compile else prepare_model(model, device, cpu_kernels)
        # the model as given (compiled_model works on a copy): the eager model of an OOM split, made then
        self._plain = model if compile else None
        self.device = device
        self.num_samples = num_samples
        self.model_batch = model_batch
        self.cpu_kernels = cpu_kernels
        self._cpu_model: nn.Module | None = None

    def _eager_model(self) -> nn.Module:
        if self._plain is not None:
            self.model_eager = prepare_model(self._plain, self.device, cpu_kernels="torch")
            self._plain = None
        return getattr(self, "model_eager", self.model)

    @torch.inference_mode()
    def _run(
        self, batch: np.ndarray, model: Callable[[torch.Tensor], torch.Tensor], device: torch.device
    ) -> np.ndarray:
        with exact_fp32(device):
            return model(to_device(batch, device)).float().cpu().numpy()

    def compute(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        """Logits (B, 2) [spoof, bona fide], one row per waveform."""
        x = np.stack([cm_input(w, self.num_samples) for w in wavs]).astype(np.float32)
        return np.concatenate(
            [
                self._fitting(batch, self.model, n_real)[:n_real]
                for batch, n_real in padded_batches(x, self.model_batch, pad=self.compiled)
            ]
        )


Engine = EmbeddingEngine | CountermeasureEngine


def build_engine(loaded: LoadedModel, device: torch.device, options: EngineOptions) -> Engine:
    """The engine of a loaded model's kind, its model batch resolved by :func:`default_model_batch` in this
    process (with its threads already set: :meth:`EngineSpec.build` sets them). The device is made the
    process's current CUDA device (:func:`bind_device`) and checked for the options' precision
    (:func:`check_autocast`)."""
    bind_device(device)
    check_autocast(device, options.autocast)
    model_batch = options.model_batch or default_model_batch(device, loaded.conf.batch_size, loaded.model)
    if loaded.conf.kind == "asv":
        return EmbeddingEngine(
            loaded.model, device, model_batch, AUTOCAST_DTYPES[options.autocast], options.cpu_kernels,
            EMBEDDING_DTYPES[options.embedding_dtype], options.compile,
        )  # fmt: skip
    if options.autocast != "none":
        raise ValueError("mixed precision (autocast) is for ASV models only")
    if options.embedding_dtype != "float32":
        raise ValueError("the embedding storage dtype is for ASV models only")
    # the input length the CM was trained on: the conf's args.nb_samp (AASIST), else the reference's 64,600
    num_samples = int(getattr(loaded.model, "nb_samp", CM_SAMPLES))
    return CountermeasureEngine(
        loaded.model, device, model_batch, num_samples, options.cpu_kernels, options.compile
    )


@dataclass(frozen=True)
class EngineSpec:
    """How an engine is built: a conf and options, not a model. The one way every process builds one (the
    stage itself, a local job, a task of a job command, the Python API), so the threads, the model batch
    and the output fingerprint are decided in one place.

    Job processes are spawned (forking a process that has run OpenMP or CUDA is unsafe), and shipping a
    model to them would need shared memory the size of the model (1.3 GB for WavLM; containers often give
    /dev/shm 64 MB). Building from the conf is deterministic, also for seeded random initialisation.
    """

    conf: ModelConf
    allow_random_init: bool = False
    options: EngineOptions = field(default_factory=EngineOptions)

    @property
    def kind(self) -> str:
        return self.conf.kind

    def load(self) -> LoadedModel:
        """The conf's model with its weights (random ones only where ``allow_random_init``)."""
        from sasv.models.conf import load_model

        return load_model(self.conf, allow_random_init=self.allow_random_init)

    def output_key(self, loaded: LoadedModel) -> str:
        """The fingerprint of what the engine computes: the model (conf and checkpoint) and the options
        that change its numbers (:meth:`EngineOptions.fingerprint_suffix`). Outputs and tasks carry it."""
        from sasv.provenance import model_key

        return model_key(loaded) + self.options.fingerprint_suffix(self.kind)

    def build(
        self, device: torch.device, threads: int | None = None, loaded: LoadedModel | None = None
    ) -> Engine:
        """The engine on ``device``, with ``threads`` intra-op threads (default: the options'; None in
        both: torch's setting) set first, since the CPU model batch depends on them; ``loaded`` saves a
        second load where the caller already has the model."""
        threads = threads or self.options.threads
        if threads:
            torch.set_num_threads(threads)
        return build_engine(loaded or self.load(), device, self.options)


def load_engine(
    conf: str | Path | ModelConf, options: EngineOptions | None = None, allow_random_init: bool = False
) -> Engine:
    """The Python API: a conf file (or parsed conf) -> a ready engine, run exactly as the stages run it.

    >>> engine = load_engine("conf/asv/ecapa_tdnn.yaml")            # doctest: +SKIP
    >>> rows = engine.compute([read_audio("LA_E_1000147.flac")])[0]  # doctest: +SKIP
    """
    from sasv.models.conf import load_conf

    options = options or EngineOptions()
    conf = conf if not isinstance(conf, str | Path) else load_conf(conf)
    return EngineSpec(conf, allow_random_init, options).build(resolve_device(options.device))
