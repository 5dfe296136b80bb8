#!/usr/bin/env python3
"""Does ``torch.compile`` pay off on CPU for extraction? Compile time against time saved, per model.

For each model (real-size conf, seeded random weights) the 3 s segment forward (batch 1, the CPU default
for 2-D models; the segments are 5 of an utterance's 6 rows and most of its FLOPs) is timed as the stages
run it (eager, oneDNN routing) and compiled as ``--compile true`` compiles it
(:func:`sasv.runtime.compiled.compiled_model`: inductor with freezing, ``dynamic=False``, one graph for the
one segment shape, built from a copy with torch's own kernels, since dynamo does not trace the routed oneDNN
calls; freezing lets inductor prepack the weights for oneDNN itself). Reported: compile time (first
call), eager and compiled seconds per segment (median of 5), the largest relative difference of the
compiled output, and the break-even in utterances: compile time / (5 x time saved per segment). Full
utterances have as many shapes as lengths and would recompile per length (or run a slower dynamic-shape
graph), so they stay eager in this estimate.

With ``--engine N`` it measures what ``--compile true`` does in a stage instead: the engine (the stages'
CPU model batch) on N utterances of 2-6 s, eager against compiled (ASV: compiled segments, eager full
utterances; CM: all compiled), compile time with inductor's caches off (a first run), the time per
utterance after it, the break-even in utterances, and the compiled rows against the eager rows (largest
relative difference and smallest cosine per row, as bench/benchmark.py compares its paths).

    OMP_NUM_THREADS=1 python bench/compile_breakeven.py --models se_resnet34 ecapa_tdnn
    OMP_NUM_THREADS=1 TORCHINDUCTOR_FORCE_DISABLE_CACHES=1 python bench/compile_breakeven.py --engine 8
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import MODELS, differences, random_conf  # noqa: E402

from sasv.audio import SEGMENT_SAMPLES  # noqa: E402
from sasv.extraction.engines import (  # noqa: E402
    CountermeasureEngine,
    EmbeddingEngine,
    default_model_batch,
)
from sasv.models.conf import build_from_conf  # noqa: E402
from sasv.runtime.compiled import compiled_model  # noqa: E402
from sasv.runtime.cpu_kernels import prepare_model  # noqa: E402

CPU = torch.device("cpu")


def seconds_per_call(fn, x: torch.Tensor, repeats: int = 5) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def engine_row(name: str, n_utts: int, threads: int, repeats: int = 3) -> str:
    """One markdown row: the stage engine eager and with ``--compile true`` on ``n_utts`` utterances
    (median of ``repeats`` interleaved passes)."""
    conf = random_conf(name)
    torch.manual_seed(0)
    model = build_from_conf(conf)
    rng = np.random.default_rng(0)
    wavs = [(0.1 * rng.standard_normal(int(rng.uniform(2, 6) * 16_000))).astype(np.float32)
            for _ in range(n_utts)]  # fmt: skip
    batch = default_model_batch(CPU, conf.batch_size, model, threads)

    def engine(compiled: bool) -> EmbeddingEngine | CountermeasureEngine:
        if conf.kind == "cm":
            return CountermeasureEngine(copy.deepcopy(model), CPU, batch, compile=compiled)
        return EmbeddingEngine(copy.deepcopy(model), CPU, batch, compile=compiled)

    def timed(e: EmbeddingEngine | CountermeasureEngine, items: list[np.ndarray]) -> tuple[float, list]:
        start = time.perf_counter()
        out = e.compute(items)
        return time.perf_counter() - start, list(out)

    eager = engine(False)
    timed(eager, wavs[:1])  # warm-up: oneDNN primitives, allocator
    compiled = engine(True)
    first_s, _ = timed(compiled, wavs[:1])  # compiles every fixed shape (segments or CM input)
    eager_runs, compiled_runs = [], []
    for _ in range(repeats):  # interleaved, so a load change on the shared machine hits both
        eager_runs.append(timed(eager, wavs))
        compiled_runs.append(timed(compiled, wavs))
    ref, got = eager_runs[0][1], compiled_runs[0][1]
    eager_s = statistics.median(t for t, _ in eager_runs)
    compiled_s = statistics.median(t for t, _ in compiled_runs)
    rel, cosine = differences(dict(enumerate(got)), dict(enumerate(ref)))
    per_utt_eager, per_utt_compiled = eager_s / n_utts, compiled_s / n_utts
    compile_s = first_s - per_utt_compiled
    saved = per_utt_eager - per_utt_compiled
    breakeven = f"{compile_s / saved:,.0f}" if saved > 0 else "never"
    return (
        f"| {name} | {batch} | {compile_s:.0f} | {per_utt_eager:.3f} | {per_utt_compiled:.3f} | "
        f"{per_utt_eager / per_utt_compiled:.2f}x | {rel:.1e} | {cosine:.7f} | {breakeven} |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=[m for m in MODELS if m != "wavlm_ecapa"],
                   choices=list(MODELS))  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--engine", type=int, metavar="N", help="measure the stage engine on N utterances instead")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.engine:
        print("| model | model batch | compile s | eager s/utt | compiled s/utt | speed-up | max rel. diff | "
              "min cosine | break-even (utterances) |")  # fmt: skip
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name in args.models:
            print(engine_row(name, args.engine, args.threads), flush=True)
            torch._dynamo.reset()
        return 0
    print("| model | compile s | eager s/segment | compiled s/segment | speed-up | max rel. diff | "
          "break-even (utterances) |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models:
        conf = random_conf(name)
        torch.manual_seed(0)
        built = build_from_conf(conf)
        compiled = compiled_model(built, CPU)  # what --compile true runs: a copy, torch's own kernels
        model = prepare_model(built, CPU)
        x = torch.randn(1, 64_600 if name == "aasist" else SEGMENT_SAMPLES) * 0.1
        with torch.inference_mode():
            ref = model(x)
            eager = seconds_per_call(model, x)
            start = time.perf_counter()
            out = compiled(x)
            compile_seconds = time.perf_counter() - start
            fast = seconds_per_call(compiled, x)
        diff = ((out - ref).abs().max() / ref.abs().max()).item()
        saved = 5 * (eager - fast)
        breakeven = f"{compile_seconds / saved:,.0f}" if saved > 0 else "never"
        times = f"{compile_seconds:.0f} | {eager:.3f} | {fast:.3f} | {eager / fast:.2f}x"
        print(f"| {name} | {times} | {diff:.1e} | {breakeven} |", flush=True)
        torch._dynamo.reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
