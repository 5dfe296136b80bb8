#!/usr/bin/env python3
"""How far the recipe's embedding engine is from the reference strategy, on trained-looking models.

For each real-size ASV conf (seeded random weights: no checkpoint is needed), on speech-like synthetic
utterances (:mod:`sasv.corpora.synthvoice`, 2-8 s at 16 kHz, peak 0.5), every path below is compared per
embedding row with the **reference strategy** of the original implementation: per utterance
``model(full[None])`` then ``model(five 3 s segments)`` as one batch of 5, torch's own kernels, float32, under
``no_grad``.

* ``engine default``: :class:`sasv.extraction.engines.EmbeddingEngine` as the stages run it on CPU: oneDNN
routing of
  1x1 convs and linear layers, 2-D conv weights channels-last, the default CPU model batch
  (:func:`sasv.extraction.engines.default_model_batch`: 1 for 2-D models, 2 per thread for 1-D ones);
* ``engine, oneDNN, no channels-last`` (models with 2-D convs only): the same engine with its conv weights
  put back in the contiguous layout: what the routing alone changes;
* ``engine, torch kernels, batch 1``: ``cpu_kernels="torch"`` (no routing, no channels-last), batch 1:
  what is left is the engine's batch composition (full utterances alone, segments one at a time);
* ``engine, torch kernels, batch 5``: the reference's kernels and its batch of 5 segments, through the engine
  (bit-identical to the reference: the engine itself adds nothing);
* ``reference, float64``: the reference strategy on ``model.double()`` with float64 input, the ground truth
  (``vs float64`` column). The front-ends and WavLM's float32 regions call ``Tensor.float()``; during this
  run it returns float64, so everything is float64;
* ``reference, float64 network``: the same but with the log-mel front-end left in float32 (ECAPA and the
  ResNets): the ground truth for the network alone (``vs float64 network`` column). The float32 front-end is
  the same code in every float32 path, so its rounding is common to them and cancels in the comparison with
  the reference, but it is most of their distance to the float64 result.

**Trained-looking BatchNorm statistics.** A freshly built model has running mean 0 and variance 1 in every
BatchNorm, which do not match its activations (whose variance is often far from 1): its BatchNorms then
barely rescale anything, and the float rounding of the layers before them is not amplified. A trained
model's BatchNorms divide by the real running standard deviation, which is small for many channels, and
deep residual stacks compound that; this is why random-init models understate the engine's difference.
Here the statistics are *calibrated* the way training would
have left them: every BatchNorm gets ``momentum=None`` (a cumulative average) and ``reset_running_stats()``,
the BatchNorms alone are put in train mode (everything else stays in eval mode, so dropout-like layers stay
off) and the model runs under ``torch.no_grad()`` on calibration utterances (other voices than the test
ones: their full waveforms as one batch and their 3 s segments as another); then ``eval()``. The
``random`` rows (``--bn``, both by default) keep the random-init statistics for comparison.

Metric: per embedding row ``max|got - ref| / max|ref|``; the table gives the worst and the median over
all rows of all utterances and the smallest cosine against the float32 reference, and the worst against
the two float64 runs. Markdown to stdout. Run with ``OMP_NUM_THREADS=1`` on a
shared machine.

    OMP_NUM_THREADS=1 python bench/accuracy.py                       # 4 models (timings: docs/PERFORMANCE.md)
    OMP_NUM_THREADS=1 python bench/accuracy.py --models ecapa_tdnn --utts 2 --bn calibrated
    OMP_NUM_THREADS=1 python bench/accuracy.py --models wavlm_ecapa --utts 1   # slow: ~1 GB of weights
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sasv.audio import SAMPLE_RATE, embedding_segments
from sasv.corpora.synthvoice import draw_voice, synthesize
from sasv.extraction.engines import EmbeddingEngine, default_model_batch
from sasv.models.conf import load_conf, load_model
from sasv.models.frontend import LogMelFrontend
from sasv.runtime.cpu_kernels import has_2d_convolutions, onednn_available

REPO = Path(__file__).resolve().parents[1]
CONFS: dict[str, str] = {
    "ecapa_tdnn": "conf/asv/ecapa_tdnn.yaml",
    "se_resnet34": "conf/asv/se_resnet34.yaml",
    "se_res2net50": "conf/asv/se_res2net50.yaml",
    "res2next50": "conf/asv/res2next50.yaml",
    "wavlm_ecapa": "conf/asv/wavlm_ecapa.yaml",
}
DEFAULT_MODELS = ["ecapa_tdnn", "se_resnet34", "se_res2net50", "res2next50"]  # WavLM only when named
PEAK = 0.5
CPU = torch.device("cpu")

Embeddings = list[np.ndarray]  # one (6, D) array per utterance


# ------------------------------------------------------------------------------------------------- audio


def speech_like(rng: np.random.Generator, n: int, min_s: float, max_s: float) -> list[np.ndarray]:
    """``n`` float32 utterances of ``min_s``-``max_s`` s, alternating female and male synthetic voices."""
    wavs = []
    for i in range(n):
        voice = draw_voice(rng, "female" if i % 2 == 0 else "male")
        samples = int(rng.uniform(min_s, max_s) * SAMPLE_RATE)
        wav = synthesize(voice, samples, rng)
        wavs.append((PEAK * wav / np.abs(wav).max()).astype(np.float32))
    return wavs


# ------------------------------------------------------------------------------------------------- models


def calibrate_batch_norm(model: nn.Module, wavs: Sequence[np.ndarray], seconds: float) -> int:
    """Give every BatchNorm running statistics measured on ``wavs``; returns how many BatchNorms there are.

    The waveforms are cut to ``seconds`` so that they form one batch (a BatchNorm over pooled (B, D)
    features needs more than one value per channel in train mode); their five 3 s segments form another.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    samples = int(seconds * SAMPLE_RATE)
    full = np.stack([w[:samples] for w in wavs])
    segments = np.concatenate([embedding_segments(w) for w in wavs])
    model.eval()
    for bn in norms:
        bn.momentum = None  # cumulative average over the calibration batches
        bn.reset_running_stats()
        bn.train()
    with torch.no_grad():
        model(torch.from_numpy(full))
        model(torch.from_numpy(segments))
    model.eval()
    return len(norms)


@contextmanager
def float_means_double() -> Iterator[None]:
    """``Tensor.float()`` returns float64 inside: the models' front-ends and WavLM's float32 regions call
    ``.float()`` to protect half-precision runs, which would otherwise cut a float64 run back to float32."""
    saved = torch.Tensor.float
    torch.Tensor.float = torch.Tensor.double  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.float = saved  # type: ignore[method-assign]


def reference(model: nn.Module, wavs: Sequence[np.ndarray], dtype: torch.dtype = torch.float32) -> Embeddings:
    """The reference strategy: per utterance the full waveform, then its five segments as one batch.

    With ``dtype=torch.float64`` (on a ``model.double()``) every computation is float64, front-end included.
    """
    out = []
    with torch.no_grad(), float_means_double() if dtype == torch.float64 else nullcontext():
        for wav in wavs:
            full = model(torch.from_numpy(wav).to(dtype)[None])
            segments = model(torch.from_numpy(embedding_segments(wav)).to(dtype))
            out.append(torch.cat([full, segments]).double().numpy())
    return out


def float64_network(model: nn.Module) -> nn.Module | None:
    """A float64 copy of ``model`` whose log-mel front-end stays float32 (its output is cast to float64);
    None for a model without one (WavLM reads the waveform)."""
    if not isinstance(getattr(model, "frontend", None), LogMelFrontend):
        return None
    copied = copy.deepcopy(model).double()
    copied.frontend.float()
    copied.frontend.register_forward_hook(lambda _module, _inputs, feats: feats.double())
    return copied


def engine_run(
    model: nn.Module,
    wavs: Sequence[np.ndarray],
    model_batch: int,
    cpu_kernels: str,
    channels_last: bool = True,
) -> Embeddings:
    """An engine on a private copy of ``model`` (prepare_model changes the modules in place); with
    ``channels_last=False`` its 2-D conv weights go back to the contiguous layout after preparation."""
    engine = EmbeddingEngine(copy.deepcopy(model), CPU, model_batch, cpu_kernels=cpu_kernels)
    if not channels_last:
        engine.model.to(memory_format=torch.contiguous_format)
    return [e.astype(np.float64) for e in engine.compute(wavs)]


# ------------------------------------------------------------------------------------------------ metrics


def row_stats(got: Embeddings, ref: Embeddings) -> tuple[float, float, float]:
    """(worst, median) of the per-row max|got - ref| / max|ref|, and the smallest per-row cosine."""
    rels, cosines = [], []
    for g, e in zip(got, ref, strict=True):
        rels += list(np.abs(g - e).max(axis=1) / np.abs(e).max(axis=1))
        cosines += list((g * e).sum(axis=1) / (np.linalg.norm(g, axis=1) * np.linalg.norm(e, axis=1)))
    return max(rels), statistics.median(rels), min(cosines)


def fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.1e}"


def machine_description() -> list[str]:
    config = torch.__config__.show()
    dnn = next((line.strip(" -") for line in config.splitlines() if "MKL-DNN" in line), "no oneDNN")
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return [
        f"CPU: {cpu}, {os.cpu_count()} logical CPUs; torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()} kernels), {dnn}, oneDNN routing "
        f"{'available' if onednn_available() else 'NOT available (engine default = torch kernels)'}",
        f"numpy {np.__version__}, Python {platform.python_version()}, intra-op threads "
        f"{torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})",
    ]


# ------------------------------------------------------------------------------------------------ main


def measure(
    name: str, bn: str, tests: Sequence[np.ndarray], calib: Sequence[np.ndarray], args: argparse.Namespace
) -> list[str]:
    """The table rows of one model with one kind of BatchNorm statistics."""
    started = time.perf_counter()
    conf = dataclasses.replace(load_conf(REPO / CONFS[name]), checkpoint=None)
    model = load_model(conf, allow_random_init=True, seed=args.seed).model
    if bn == "calibrated":
        calibrate_batch_norm(model, calib, args.calib_seconds)
    var = torch.cat(
        [m.running_var for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    )
    batch = default_model_batch(CPU, conf.batch_size, model)
    two_d = has_2d_convolutions(model)
    ref = reference(model, tests)
    paths: list[tuple[str, Embeddings]] = [
        ("reference (float32)", ref),
        (
            f"engine default (oneDNN{' + channels-last' if two_d else ''}, batch {batch})",
            engine_run(model, tests, batch, "onednn"),
        ),
    ]
    if two_d:
        paths.append(
            (
                f"engine, oneDNN, no channels-last, batch {batch}",
                engine_run(model, tests, batch, "onednn", False),
            )
        )
    paths += [
        ("engine, torch kernels, batch 1", engine_run(model, tests, 1, "torch")),
        ("engine, torch kernels, batch 5", engine_run(model, tests, 5, "torch")),
    ]
    net64 = float64_network(model)
    exact_net = None if net64 is None else reference(net64, tests)
    if exact_net is not None:
        paths.append(("reference, float64 network (float32 front-end)", exact_net))
    exact = reference(copy.deepcopy(model).double(), tests, torch.float64)
    paths.append(("reference, float64", exact))
    rows = []
    for label, got in paths:
        worst, median, cos = row_stats(got, ref)
        vs_net = "-" if exact_net is None else fmt(row_stats(got, exact_net)[0])
        rows.append(
            f"| {name} | {bn} | {label} | {fmt(worst)} | {fmt(median)} | {cos:.7f} "
            f"| {fmt(row_stats(got, exact)[0])} | {vs_net} |"
        )
    print(
        f"{name} ({bn} BN): {time.perf_counter() - started:.0f} s; BatchNorm running std over "
        f"{var.numel()} channels: min {var.min().sqrt():.2g}, median {var.median().sqrt():.2g}, "
        f"max {var.max().sqrt():.2g}",
        file=sys.stderr,
        flush=True,
    )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--models",
        nargs="+",
        default=DEFAULT_MODELS,
        choices=list(CONFS),
        help=f"ASV confs (default: {' '.join(DEFAULT_MODELS)}; wavlm_ecapa only when named: slow)",
    )
    p.add_argument("--utts", type=int, default=3, help="test utterances per model (default 3)")
    p.add_argument("--calib_utts", type=int, default=2, help="calibration utterances (default 2)")
    p.add_argument(
        "--calib_seconds", type=float, default=4.0, help="calibration waveforms are cut to this (default 4)"
    )
    p.add_argument("--min_seconds", type=float, default=2.0, help="shortest test utterance (default 2)")
    p.add_argument("--max_seconds", type=float, default=8.0, help="longest test utterance (default 8)")
    p.add_argument(
        "--bn",
        nargs="+",
        default=["random", "calibrated"],
        choices=["calibrated", "random"],
        help="BatchNorm statistics: random-init (mean 0, var 1) and/or calibrated on speech (default both)",
    )
    p.add_argument("--seed", type=int, default=0, help="weights and audio seed (default 0)")
    args = p.parse_args()
    if args.calib_utts < 2:
        p.error("--calib_utts must be at least 2 (BatchNorm in train mode needs a batch)")
    started = time.perf_counter()
    torch.manual_seed(args.seed)

    rng = np.random.default_rng(args.seed)
    tests = speech_like(rng, args.utts, args.min_seconds, args.max_seconds)
    calib = speech_like(rng, args.calib_utts, args.calib_seconds, args.calib_seconds + 2.0)
    lengths = ", ".join(f"{len(w) / SAMPLE_RATE:.1f}" for w in tests)

    out = ["### Machine", "", *[f"* {line}" for line in machine_description()]]
    out += [f"* command: `{' '.join(['python bench/accuracy.py', *sys.argv[1:]])}`", ""]
    out += [
        f"### Per-row differences ({args.utts} synthetic utterances of {lengths} s, BatchNorm statistics: "
        f"{' / '.join(args.bn)}; {args.calib_utts} calibration utterances)",
        "",
        "Relative difference per embedding row: max|got - ref| / max|ref|; worst and median over all rows "
        "(6 per utterance). `vs reference`: against the float32 reference strategy; `vs float64`: against "
        "the same strategy in float64; `vs float64 network`: in float64 after the float32 log-mel front-end.",
        "",
        "| model | BN stats | path | worst vs reference | median vs reference | min cosine vs reference "
        "| worst vs float64 | worst vs float64 network |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    print("\n".join(out), flush=True)
    for name in args.models:
        for bn in args.bn:
            print("\n".join(measure(name, bn, tests, calib, args)), flush=True)
    print(f"\nwall time {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
