#!/usr/bin/env python3
"""Does ``torch.compile`` pay off on CPU for extraction? Compile time against time saved, per model.

For each model (real-size conf, seeded random weights) the 3 s segment forward (batch 1, the CPU default
for 2-D models; the segments are 5 of an utterance's 6 rows and most of its FLOPs) is timed as the stages
run it (eager, oneDNN routing) and compiled (inductor, ``dynamic=False``: one graph for the one segment
shape; compiled from the model with torch's own kernels, since dynamo does not trace the routed oneDNN
calls; inductor picks its own). Reported: compile time (first call), eager and compiled seconds per
segment (median of 5), the largest relative difference of the compiled output, and the break-even in
utterances: compile time / (5 x time saved per segment). Full utterances have as many shapes as lengths
and would recompile per length (or run a slower dynamic-shape graph), so they stay eager in this estimate.

    OMP_NUM_THREADS=1 python bench/compile_breakeven.py --models se_resnet34 ecapa_tdnn
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import MODELS, random_conf  # noqa: E402

from sasv.audio import SEGMENT_SAMPLES  # noqa: E402
from sasv.conf import build_from_conf  # noqa: E402
from sasv.cpu_kernels import prepare_model  # noqa: E402


def seconds_per_call(fn, x: torch.Tensor, repeats: int = 5) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["ecapa_tdnn", "se_resnet34", "se_res2net50", "aasist"],
                   choices=list(MODELS))  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("| model | compile s | eager s/segment | compiled s/segment | speed-up | max rel. diff | "
          "break-even (utterances) |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models:
        conf = random_conf(name)
        torch.manual_seed(0)
        model = prepare_model(build_from_conf(conf), torch.device("cpu"))
        torch.manual_seed(0)  # the same weights, torch's own kernels: dynamo cannot trace the oneDNN calls
        plain = prepare_model(build_from_conf(conf), torch.device("cpu"), cpu_kernels="torch")
        x = torch.randn(1, 64_600 if name == "aasist" else SEGMENT_SAMPLES) * 0.1
        with torch.inference_mode():
            ref = model(x)
            eager = seconds_per_call(model, x)
            compiled = torch.compile(plain, dynamic=False)
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
