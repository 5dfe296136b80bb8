"""Batched inference: speaker embeddings (6 rows per utterance) and countermeasure scores.

Outputs are written in fixed chunks of the sorted utterance list. A chunk's data file is written first and
its index (``.scp``/``.txt``) is renamed into place last, so a chunk with an index is complete; a killed run
leaves at most the chunks in progress to redo. A fingerprint of the inputs (conf, checkpoint, utterance
list) guards the chunks: when it changes, stale chunks are discarded instead of being mixed with new ones.

Speed (docs/PERFORMANCE.md has the measurements):

* one DataLoader over every unfinished chunk, its workers decoding ahead of the model; batches never cross
  a chunk boundary, so a chunk is computed with the same batches whether it runs alone (resume, another
  job) or with others, and a resumed run writes bit-identical embeddings;
* ``num_jobs`` processes (one per GPU, or CPU processes sharing the cores) take every ``num_jobs``-th
  unfinished chunk and write into the same chunk dir; the caller holds the output lock, the jobs do not;
* on CPU, :func:`prepare_model` routes pointwise convolutions and linear layers to oneDNN and stores 2-D
  conv weights channels-last, and the default batch is 1 (larger batches push activations out of cache);
* on GPU, pinned host memory and non-blocking copies, TF32 off in the fp32 path (it would change the
  numbers by ~1e-3), optional bf16/fp16 autocast.

Only memory that does not grow with the corpus is held: one chunk of results and the decoder prefetch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kaldiio
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from sasv.audio import CM_SAMPLES, AudioError, cm_input, embedding_segments, read_audio
from sasv.fileio import atomic_write_text
from sasv.scoring import bona_fide_probability

if TYPE_CHECKING:
    from sasv.conf import ModelConf

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 200
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# Utterances decoded per DataLoader batch (the unit the workers hand over), not the model's batch size.
DECODE_BATCH = 8
# Model batch on CPU for models with 2-D convolutions (ResNets, AASIST), measured fastest for each of them
# (docs/PERFORMANCE.md): their activations are ~12 MB per 3 s segment, so a batch of 5 already runs the
# element-wise ops from memory instead of cache. 1-D models (ECAPA, WavLM) get 2 waveforms per intra-op
# thread, at most 5: ECAPA with 2 threads ran 12 % faster at batch 3-5 than at 1, WavLM is even.
CPU_BATCH = 1
CPU_BATCH_1D_PER_THREAD = 2
CPU_BATCH_1D_MAX = 5
# Decoding workers per job on a GPU when --num_workers is auto (a FLAC decode costs about as much as a GPU
# forward); on CPU decoding is <1 % of the model's time, so it runs in the job itself.
GPU_DECODE_WORKERS = 4


class NonFiniteOutputError(RuntimeError):
    """A model produced NaN or Inf for an utterance."""


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return dev


def default_batch_size(
    device: torch.device, conf_batch_size: int, model: nn.Module | None = None, threads: int | None = None
) -> int:
    """Model batch size: the conf's (sized for GPU memory) on a GPU; on CPU :data:`CPU_BATCH` for a model
    with 2-D convolutions (or an unknown one), else 2 waveforms per intra-op thread (``threads``, default
    torch's current setting), at most 5 (see the constants' comment)."""
    if device.type != "cpu":
        return conf_batch_size
    if model is None or any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return CPU_BATCH
    per_thread = CPU_BATCH_1D_PER_THREAD * max(1, threads or torch.get_num_threads())
    return min(CPU_BATCH_1D_MAX, per_thread)


def default_num_workers(device: torch.device, num_jobs: int = 1) -> int:
    """Decoding workers per job: none on CPU (decoding is negligible there), a few per GPU job."""
    if device.type == "cpu":
        return 0
    return max(1, min(GPU_DECODE_WORKERS, (os.cpu_count() or 1) // max(1, num_jobs) - 1))


# --------------------------------------------------------------------------------------- CPU kernel routing


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
    (its heuristic: "THNN is faster when single-threaded"). With MKL's AVX2 kernels on AMD CPUs that runs at
    about half the rate of oneDNN's AVX-512 kernels; the result differs only by rounding (~1e-7 relative).
    The class is swapped onto an existing module, so names, parameters and pickling stay those of a Conv1d.
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
    """An ``nn.Linear`` run by oneDNN on CPU: fp32 ``F.linear`` calls MKL, whose AVX2 code path on AMD CPUs
    reaches about half of oneDNN's AVX-512 rate (WavLM's transformer is mostly these layers)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or not _onednn_applies(x, self.weight):
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")


_ROUTED: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv1d: OneDnnConv1d,
    nn.Conv2d: OneDnnConv2d,
    nn.Linear: OneDnnLinear,
}


def _routable(module: nn.Module) -> bool:
    if type(module) is nn.Linear:
        return True
    if type(module) in (nn.Conv1d, nn.Conv2d):
        return (
            module.padding_mode == "zeros"
            and not isinstance(module.padding, str)
            and all(k == 1 for k in module.kernel_size)
        )
    return False


def prepare_model(model: nn.Module, device: torch.device, cpu_kernels: str = "onednn") -> nn.Module:
    """Put ``model`` on ``device`` in eval mode and, on CPU with ``cpu_kernels='onednn'``, make it fast.

    In place (like ``model.to``): the model computes the same function, up to float rounding (~1e-6
    relative on an embedding, checked per model family by tests/test_extract_equivalence.py):

    * 2-D convolution weights are stored channels-last, so oneDNN keeps activations in its native layout
      instead of converting around every conv (AASIST 1.6x, Res2NeXt-50 1.4x on one core here);
    * exact ``nn.Conv1d``/``nn.Conv2d`` with 1x1 kernels and ``nn.Linear`` become :class:`OneDnnConv1d`,
      :class:`OneDnnConv2d`, :class:`OneDnnLinear` (ECAPA 1.8x, WavLM 1.7x on one core here).

    ``cpu_kernels='torch'`` leaves torch's own kernel choice (only eval mode and the device are set).
    """
    if cpu_kernels not in ("onednn", "torch"):
        raise ValueError(f"cpu_kernels must be 'onednn' or 'torch', got {cpu_kernels!r}")
    model = model.to(device).eval()
    if device.type != "cpu" or cpu_kernels != "onednn" or not onednn_available():
        return model
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    for module in model.modules():
        if _routable(module):
            module.__class__ = _ROUTED[type(module)]
    return model


@contextmanager
def _exact_fp32(device: torch.device) -> Iterator[None]:
    """TF32 off for CUDA convolutions and matmuls (cuDNN convs use it by default on Ampere and later).

    TF32 keeps 10 mantissa bits, which moves embeddings by ~1e-3: far more than the rounding this module
    allows itself. Restored afterwards, so other code in the process keeps its own settings.
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


def _to_device(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """float32 host array -> tensor on ``device``; to a GPU through pinned memory, copied asynchronously."""
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x if device.type == "cpu" else x.to(device)


# ----------------------------------------------------------------------------------------------- engines


class EmbeddingEngine:
    """Embeds utterances as the reference 6 rows: the full utterance + five 3 s segments.

    Full utterances differ in length and the models normalise features over time (mean/instance norm,
    attentive statistics, WavLM's waveform normalisation and attention over all frames), and none takes a
    mask, so zero-padding would change their embeddings: they are batched only with utterances of exactly
    the same length. Segments all have the same length and are batched freely across utterances. Batching
    changes nothing but float rounding (tests/test_extract_equivalence.py holds every model family to the
    reference per-utterance computation within 1e-5).

    ``segment_batch`` is the largest model batch; None: :func:`default_batch_size` for this model on CPU
    with the intra-op threads at construction (what the stage script uses on CPU), 32 on a GPU. The model is
    prepared in place by :func:`prepare_model`.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        segment_batch: int | None = 32,
        autocast_dtype: torch.dtype | None = None,
        cpu_kernels: str = "onednn",
    ) -> None:
        self.model = prepare_model(model, device, cpu_kernels)
        self.device = device
        self.segment_batch = segment_batch or default_batch_size(device, 32, self.model)
        self.autocast_dtype = autocast_dtype

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        x = _to_device(batch, self.device)
        if self.autocast_dtype is not None:
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
                out = self.model(x)
        else:
            with _exact_fp32(self.device):
                out = self.model(x)
        return out.float().cpu().numpy()

    def embed(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """A (6, D) float32 array per waveform: row 0 the full utterance, rows 1-5 the segments."""
        full: list[np.ndarray | None] = [None] * len(wavs)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(wavs):
            by_length.setdefault(len(w), []).append(i)
        for indices in by_length.values():
            for start in range(0, len(indices), self.segment_batch):
                group = indices[start : start + self.segment_batch]
                out = self._forward(np.stack([wavs[i] for i in group]))
                for i, row in zip(group, out, strict=True):
                    full[i] = row
        segments = np.concatenate([embedding_segments(w) for w in wavs])
        seg_out = np.concatenate(
            [
                self._forward(segments[s : s + self.segment_batch])
                for s in range(0, len(segments), self.segment_batch)
            ]
        )
        n_seg = seg_out.shape[0] // len(wavs)
        return [
            np.concatenate([full[i][None], seg_out[i * n_seg : (i + 1) * n_seg]]).astype(np.float32)
            for i in range(len(wavs))
        ]


class CountermeasureEngine:
    """AASIST-style CM on the first 64,600 samples (tiled when shorter); returns logits (B, 2).

    ``batch_size`` is the largest model batch (None: all waveforms of a call at once; the stage script passes
    :func:`default_batch_size`, 1 on CPU).
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        num_samples: int = CM_SAMPLES,
        batch_size: int | None = None,
        cpu_kernels: str = "onednn",
    ) -> None:
        self.model = prepare_model(model, device, cpu_kernels)
        self.device = device
        self.num_samples = num_samples
        self.batch_size = batch_size

    @torch.inference_mode()
    def logits(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        x = np.stack([cm_input(w, self.num_samples) for w in wavs]).astype(np.float32)
        out = []
        with _exact_fp32(self.device):
            step = self.batch_size or len(x)
            for start in range(0, len(x), step):
                out.append(self.model(_to_device(x[start : start + step], self.device)))
        return torch.cat(out).float().cpu().numpy()


@dataclass(frozen=True)
class EngineSpec:
    """How a job process builds its own engine: a conf and options, not a model.

    Job processes are spawned (forking a process that has run OpenMP or CUDA is unsafe), and shipping a
    model to them would need shared memory the size of the model (1.3 GB for WavLM; containers often give
    /dev/shm 64 MB). Building from the conf is deterministic, also for seeded random initialisation.
    """

    conf: ModelConf
    allow_random_init: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, device: torch.device) -> EmbeddingEngine | CountermeasureEngine:
        from sasv.conf import load_model

        loaded = load_model(self.conf, allow_random_init=self.allow_random_init)
        if self.conf.kind == "asv":
            return EmbeddingEngine(loaded.model, device, **self.options)
        return CountermeasureEngine(loaded.model, device, **self.options)


# ----------------------------------------------------------------------------------------- audio decoding


class AudioListDataset(Dataset):
    """(utt, path) pairs -> (utt, waveform); decoding runs in DataLoader workers when there are any."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray | AudioError]:
        utt, path = self.items[index]
        try:
            return utt, read_audio(path)
        except AudioError as e:
            # returned, not raised: a DataLoader worker would wrap it in a traceback-laden message
            return utt, e


class ChunkBatchSampler(Sampler[list[int]]):
    """Batches of at most ``batch_size`` consecutive indices that start at each chunk's start and never
    cross a chunk boundary, over chunks of the given lengths laid end to end."""

    def __init__(self, chunk_lengths: Sequence[int], batch_size: int) -> None:
        self.chunk_lengths = list(chunk_lengths)
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[int]]:
        offset = 0
        for length in self.chunk_lengths:
            for start in range(0, length, self.batch_size):
                yield list(range(offset + start, offset + min(start + self.batch_size, length)))
            offset += length

    def __len__(self) -> int:
        return sum(-(-n // self.batch_size) for n in self.chunk_lengths)


def _collate_list(batch: list) -> list:
    return batch


def iterate_audio(
    chunks: Sequence[Sequence[tuple[str, str]]], batch_size: int, num_workers: int
) -> Iterator[list[tuple[str, np.ndarray]]]:
    """Decoded batches of every chunk in turn, from one DataLoader (its workers start once, not per chunk)."""
    items = [item for chunk in chunks for item in chunk]
    loader = DataLoader(
        AudioListDataset(items),
        batch_sampler=ChunkBatchSampler([len(c) for c in chunks], batch_size),
        num_workers=num_workers,
        collate_fn=_collate_list,
        prefetch_factor=4 if num_workers > 0 else None,
        persistent_workers=False,
    )
    for batch in loader:
        for _, wav in batch:
            if isinstance(wav, AudioError):
                raise wav
        yield batch


def _check_finite(values: np.ndarray, utts: Sequence[str], what: str) -> None:
    bad = ~np.isfinite(values.reshape(len(utts), -1)).all(axis=1)
    if bad.any():
        names = [u for u, b in zip(utts, bad, strict=True) if b]
        raise NonFiniteOutputError(
            f"{what} is NaN or Inf for {len(names)} utterance(s), first: {', '.join(names[:5])}"
        )


# ------------------------------------------------------------------------------------------------ chunks


def fingerprint(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def items_fingerprint(items: Sequence[tuple[str, str]]) -> str:
    return fingerprint(*(f"{u} {p}" for u, p in items))


@dataclass(frozen=True)
class ChunkPlan:
    """A sorted item list cut into fixed chunks, stored under ``chunk_dir`` and guarded by ``key``."""

    items: list[tuple[str, str]]
    chunk_dir: Path
    chunk_size: int
    key: str

    def chunks(self) -> list[list[tuple[str, str]]]:
        return [self.items[i : i + self.chunk_size] for i in range(0, len(self.items), self.chunk_size)]

    def prepare(self) -> None:
        """Create the chunk dir, discarding chunks made from other inputs."""
        stamp = self.chunk_dir / "FINGERPRINT"
        if self.chunk_dir.exists():
            old = stamp.read_text().strip() if stamp.exists() else ""
            if old != self.key:
                log.warning("inputs changed since %s was written: discarding its chunks", self.chunk_dir)
                shutil.rmtree(self.chunk_dir)
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        if not stamp.exists():
            atomic_write_text(stamp, self.key + "\n")


Chunk = tuple[int, list[tuple[str, str]]]


def _write_embedding_chunk(rows: list[tuple[str, np.ndarray]], stem: Path) -> str:
    utts = [u for u, _ in rows]
    _check_finite(np.stack([r for _, r in rows]), utts, "embedding")
    ark = stem.with_suffix(".ark")
    tmp_scp = stem.with_suffix(".scp.tmp")
    kaldiio.save_ark(str(ark), dict(rows), scp=str(tmp_scp))
    text = tmp_scp.read_text()
    tmp_scp.unlink()
    return text


def _write_cm_chunk(rows: list[tuple[str, np.ndarray]], stem: Path) -> str:
    utts = [u for u, _ in rows]
    logits = np.stack([r for _, r in rows])
    _check_finite(logits, utts, "CM logits")
    prob = bona_fide_probability(logits)
    lines = zip(utts, logits.tolist(), prob.tolist(), strict=True)
    return "".join(f"{u} {lg[0]!r} {lg[1]!r} {p!r}\n" for u, lg, p in lines)


# stage kind -> (index suffix, chunk writer)
_STAGES: dict[str, tuple[str, Callable[[list[tuple[str, np.ndarray]], Path], str]]] = {
    "embed": (".scp", _write_embedding_chunk),
    "cm": (".txt", _write_cm_chunk),
}


def _compute_fn(engine: EmbeddingEngine | CountermeasureEngine) -> Callable[[list[np.ndarray]], list]:
    if isinstance(engine, EmbeddingEngine):
        return engine.embed
    return lambda wavs: list(engine.logits(wavs))


def _compute_chunks(
    kind: str,
    plan: ChunkPlan,
    todo: Sequence[Chunk],
    compute: Callable[[list[np.ndarray]], list],
    batch_size: int,
    num_workers: int,
    progress: Callable[[int], None],
) -> None:
    """Compute and write the ``todo`` chunks; only the current chunk's results are held in memory."""
    suffix, write = _STAGES[kind]
    batches = iterate_audio([chunk for _, chunk in todo], batch_size, num_workers)
    for n, chunk in todo:
        results: list = []
        while len(results) < len(chunk):
            batch = next(batches)
            results.extend(compute([w for _, w in batch]))
            progress(len(batch))
        text = write([(u, r) for (u, _), r in zip(chunk, results, strict=True)], plan.chunk_dir / f"{n:05d}")
        atomic_write_text(plan.chunk_dir / f"{n:05d}{suffix}", text)


@dataclass(frozen=True)
class JobOptions:
    """Parallel jobs: ``num_jobs`` processes, job k on ``devices[k % len(devices)]`` with ``threads``
    intra-op threads (None: the cores divided among the jobs)."""

    num_jobs: int = 1
    devices: tuple[str, ...] = ()
    threads: int | None = None


def job_devices(device: torch.device, num_jobs: int) -> tuple[str, ...]:
    """One GPU per job when the device is plain ``cuda`` and there are several, else ``device`` for all."""
    if device.type == "cuda" and device.index is None and num_jobs > 1 and torch.cuda.device_count() > 1:
        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    return (str(device),)


@dataclass(frozen=True)
class _Job:
    index: int
    kind: str
    spec: EngineSpec
    plan: ChunkPlan
    todo: list[Chunk]
    batch_size: int
    num_workers: int
    device: str
    threads: int
    parent_pid: int
    error_file: Path


# expected errors a job reports back by class name, re-raised in the parent as the same one-line error
def _reraisable() -> dict[str, type[BaseException]]:
    from sasv.checkpoints import CheckpointError
    from sasv.conf import ConfError

    return {
        c.__name__: c
        for c in (AudioError, NonFiniteOutputError, CheckpointError, ConfError, FileNotFoundError)
    }


def _job_main(job: _Job, counter: Any) -> None:
    """Entry point of a spawned job process: build the engine, compute its chunks, report errors to a file."""
    try:
        torch.set_num_threads(job.threads)
        logging.getLogger("sasv.conf").setLevel(logging.ERROR)  # the parent already warned about the model
        engine = job.spec.build(torch.device(job.device))

        def progress(n: int) -> None:
            with counter.get_lock():
                counter.value += n
            if os.getppid() != job.parent_pid:  # the parent died: stop instead of writing unsupervised
                raise SystemExit(1)

        _compute_chunks(
            job.kind, job.plan, job.todo, _compute_fn(engine), job.batch_size, job.num_workers, progress
        )
    except BaseException as e:
        record = {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}
        atomic_write_text(job.error_file, json.dumps(record))
        raise SystemExit(1) from None


def _run_jobs(
    kind: str,
    spec: EngineSpec,
    plan: ChunkPlan,
    todo: list[Chunk],
    batch_size: int,
    num_workers: int,
    jobs: JobOptions,
    bar: tqdm,
) -> None:
    """Spawn the jobs (job k takes todo chunks k, k + N, ...), follow their progress, fail as the first failed
    job did (its expected error re-raised with its message, the other jobs stopped)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    num_jobs = min(jobs.num_jobs, len(todo))
    threads = jobs.threads or max(1, torch.get_num_threads() // num_jobs)
    devices = jobs.devices or ("cpu",)
    counter = ctx.Value("q", 0)
    procs = []
    error_files = [plan.chunk_dir / f".job{k}.error" for k in range(num_jobs)]
    for f in error_files:
        f.unlink(missing_ok=True)
    log.info("%d jobs, %d intra-op threads each, on %s", num_jobs, threads, ", ".join(devices))
    try:
        for k in range(num_jobs):
            job = _Job(
                k, kind, spec, plan, todo[k::num_jobs], batch_size, num_workers,
                devices[k % len(devices)], threads, os.getpid(), error_files[k],
            )  # fmt: skip
            proc = ctx.Process(
                target=_job_main, args=(job, counter), name=f"sasv-{kind}-job{k}", daemon=False
            )
            proc.start()
            procs.append(proc)
        shown = 0
        while True:
            alive = [p for p in procs if p.exitcode is None]
            failed = [k for k, p in enumerate(procs) if p.exitcode not in (None, 0)]
            done = counter.value
            bar.update(done - shown)
            shown = done
            if failed:
                _raise_job_error(failed[0], procs[failed[0]].exitcode, error_files[failed[0]])
            if not alive:
                break
            alive[0].join(timeout=0.5)
    finally:
        for proc in procs:
            if proc.exitcode is None:
                proc.terminate()
            proc.join()
        for f in error_files:
            f.unlink(missing_ok=True)


def _raise_job_error(k: int, exitcode: int | None, error_file: Path) -> None:
    if not error_file.exists():
        raise RuntimeError(f"job {k} died (exit code {exitcode}); see the log above, then re-run to resume")
    record = json.loads(error_file.read_text())
    cls = _reraisable().get(record["type"])
    if cls is not None:
        raise cls(record["message"])
    raise RuntimeError(f"job {k} failed: {record['type']}: {record['message']}\n{record['traceback']}")


def _run_chunks(
    kind: str,
    plan: ChunkPlan,
    desc: str,
    engine: EmbeddingEngine | CountermeasureEngine | EngineSpec,
    batch_size: int,
    num_workers: int,
    jobs: JobOptions | None,
) -> list[Path]:
    """Compute every unfinished chunk (in this process, or in parallel jobs); return all chunk indexes."""
    suffix, _ = _STAGES[kind]
    plan.prepare()
    todo: list[Chunk] = []
    indexes = []
    for n, chunk in enumerate(plan.chunks()):
        index = plan.chunk_dir / f"{n:05d}{suffix}"
        indexes.append(index)
        if not index.exists():
            todo.append((n, chunk))
    done_utts = len(plan.items) - sum(len(c) for _, c in todo)
    if done_utts:
        log.info("%s: resuming, %d of %d utterances already done", desc, done_utts, len(plan.items))
    num_jobs = jobs.num_jobs if jobs else 1
    start = time.perf_counter()
    with tqdm(total=len(plan.items), initial=done_utts, desc=desc, unit="utt", dynamic_ncols=True) as bar:
        if todo and num_jobs > 1:
            if not isinstance(engine, EngineSpec):
                raise ValueError("parallel jobs build their own engines: pass an EngineSpec, not an engine")
            _run_jobs(kind, engine, plan, todo, batch_size, num_workers, jobs, bar)
        elif todo:
            if isinstance(engine, EngineSpec):
                device = torch.device(jobs.devices[0]) if jobs and jobs.devices else torch.device("cpu")
                engine = engine.build(device)
            _compute_chunks(kind, plan, todo, _compute_fn(engine), batch_size, num_workers, bar.update)
    if todo:
        seconds = time.perf_counter() - start
        n_utts = sum(len(c) for _, c in todo)
        log.info("%s: %d utterances in %.1f s (%.2f utt/s)", desc, n_utts, seconds, n_utts / seconds)
    return indexes


# ------------------------------------------------------------------------------------------------ stages


def _is_complete(output: Path, marker: Path, key: str) -> bool:
    """An earlier run finished ``output`` from the same inputs (its marker holds the same fingerprint)."""
    if output.exists() and marker.exists() and json.loads(marker.read_text()).get("fingerprint") == key:
        log.info("%s is complete for these inputs: skipping", output)
        return True
    return False


def extract_embeddings(
    engine: EmbeddingEngine | EngineSpec,
    items: Sequence[tuple[str, str]],
    out_dir: str | Path,
    model_key: str,
    batch_size: int = DECODE_BATCH,
    num_workers: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    inputs: dict | None = None,
    jobs: JobOptions | None = None,
) -> Path:
    """Embed every (utt, path) of ``items`` into ``out_dir/xvector.scp`` (kaldi ark/scp, (6, D) per utt).

    ``model_key`` identifies the model (conf + checkpoint); with the item list it forms the fingerprint that
    decides whether finished chunks can be reused. ``inputs`` (see :func:`sasv.provenance.stage_inputs`) is
    recorded in the completion marker ``xvector.done`` for later stages to check. ``batch_size`` is the
    number of utterances decoded and embedded together (the engine splits them into model batches).
    ``jobs`` with more than one job needs an :class:`EngineSpec`; the caller holds the output-dir lock, and
    its script must guard its entry point with ``if __name__ == "__main__":`` (jobs are spawned processes,
    which import the main module). Returns ``xvector.scp``.
    """
    out_dir = Path(out_dir)
    items = sorted(items)
    key = fingerprint(model_key, items_fingerprint(items))
    scp = out_dir / "xvector.scp"
    done = out_dir / "xvector.done"
    if _is_complete(scp, done, key):
        return scp
    plan = ChunkPlan(items, out_dir / "chunks", chunk_size, key)
    indexes = _run_chunks("embed", plan, f"embed {out_dir}", engine, batch_size, num_workers, jobs)
    merged = "".join(p.read_text() for p in indexes)
    if merged.count("\n") != len(items):
        raise RuntimeError(
            f"{out_dir}: {merged.count(chr(10))} embeddings written for {len(items)} utterances"
        )
    atomic_write_text(scp, merged)
    _write_marker(done, key, len(items), inputs)
    return scp


def score_countermeasure(
    engine: CountermeasureEngine | EngineSpec,
    items: Sequence[tuple[str, str]],
    out_path: str | Path,
    model_key: str,
    batch_size: int = DECODE_BATCH,
    num_workers: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    inputs: dict | None = None,
    jobs: JobOptions | None = None,
) -> Path:
    """Write ``UTT logit_spoof logit_bonafide p_bonafide`` lines for every item to ``out_path``.

    Resumes, runs jobs and records ``inputs`` in ``<out_path>.done`` like :func:`extract_embeddings`.
    """
    out_path = Path(out_path)
    items = sorted(items)
    key = fingerprint(model_key, items_fingerprint(items))
    done = out_path.with_name(out_path.name + ".done")
    if _is_complete(out_path, done, key):
        return out_path
    plan = ChunkPlan(items, out_path.parent / f".{out_path.name}.chunks", chunk_size, key)
    indexes = _run_chunks("cm", plan, f"CM {out_path}", engine, batch_size, num_workers, jobs)
    atomic_write_text(out_path, "".join(p.read_text() for p in indexes))
    _write_marker(done, key, len(items), inputs)
    return out_path


def _write_marker(path: Path, key: str, num_utts: int, inputs: dict | None) -> None:
    record = {"fingerprint": key, "num_utts": num_utts, "inputs": inputs or {}}
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def read_embeddings(scp: str | Path) -> dict[str, np.ndarray]:
    """utt -> (rows, D) float32 from a kaldi scp (loads everything: fine for LA's ~10^5 x 6 x 256)."""
    return {utt: np.asarray(mat, dtype=np.float32) for utt, mat in kaldiio.load_scp_sequential(str(scp))}


def read_cm_scores(path: str | Path) -> dict[str, float]:
    """utt -> P(bona fide) from a ``cm_scores.txt``; malformed lines name file and line."""
    scores: dict[str, float] = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 4:
                raise ValueError(f"{path}:{n}: expected 'UTT logit_spoof logit_bonafide p_bonafide'")
            try:
                p = float(fields[3])
            except ValueError:
                raise ValueError(f"{path}:{n}: P(bona fide) {fields[3]!r} is not a number") from None
            if not np.isfinite(p):
                raise ValueError(f"{path}:{n}: P(bona fide) of {fields[0]} is {p}")
            if fields[0] in scores:
                raise ValueError(f"{path}:{n}: utterance {fields[0]} scored twice")
            scores[fields[0]] = p
    return scores
