#!/usr/bin/env python3
"""Where each model's forward spends its time, and what that bounds: the profile behind the "% of peak"
figures of docs/PERFORMANCE.md.

For every model (real-size conf, seeded random weights, prepared as the stages prepare it: oneDNN routing,
channels-last) one 3 s segment (the CM: its 64,600 samples) is profiled with ``torch.profiler``, and each
op's self time is put in a class:

* **compute**: convolutions, linear layers, matrix products: the FLOPs (counted as bench/benchmark.py does);
* **elementwise**: BatchNorm, activations, adds and products, pooling, softmax, reductions: a pass over
  memory each, ~no FLOPs;
* **data movement**: copies, layout reorders, concatenations, splits;
* **other** (the STFT and everything else).

Reported per model: the achieved GFLOP/s and its share of the machine's peak (oneDNN's 1x1-convolution
rate, as in bench/benchmark.py), the compute ops' own rate (FLOPs / compute time), the time shares, and the
bound: the share of the peak the model would reach if its compute ops ran at the peak rate and everything
else took no time at all is 100 %; with the other classes as they are, the best it can reach is
``compute share x 100 %`` of the peak (run at peak) -- the "% of peak" the model's shapes allow.

    OMP_NUM_THREADS=1 python bench/profile_ops.py                 # all models but WavLM, ~1 min
    python bench/profile_ops.py --models se_res2net50 --threads 2
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import MODELS, forward_flops, peak_rates, random_conf  # noqa: E402

from sasv.models.conf import build_from_conf  # noqa: E402
from sasv.runtime.cpu_kernels import prepare_model  # noqa: E402

COMPUTE = ("convolution", "linear", "addmm", "matmul", "mm", "bmm", "baddbmm", "conv", "_pointwise", "einsum")
MOVEMENT = ("copy_", "cat", "to_dense", "reorder", "contiguous", "clone", "split", "narrow", "slice", "index")
ELEMENTWISE = ("batch_norm", "clamp", "relu", "add", "mul", "div", "sub", "sigmoid", "elu", "gelu", "tanh",
               "pool", "softmax", "sum", "mean", "std", "var", "max", "abs", "exp", "log", "pow", "sqrt",
               "layer_norm", "instance_norm", "where", "masked_fill", "rsqrt")  # fmt: skip


def op_class(name: str) -> str:
    op = name.removeprefix("aten::").removeprefix("mkldnn::")
    if any(key in op for key in COMPUTE):
        return "compute"
    if any(key in op for key in MOVEMENT):
        return "data movement"
    if any(key in op for key in ELEMENTWISE):
        return "elementwise"
    return "other"


def profile_model(name: str, repeats: int = 3) -> dict:
    """Self-time per class (seconds per forward), FLOPs per forward and the top ops of one model."""
    torch.manual_seed(0)
    samples = 64_600 if name == "aasist" else 48_240
    conf = random_conf(name)
    flops = forward_flops(build_from_conf(conf).eval(), samples)  # before the routing: torch's ops count
    model = prepare_model(build_from_conf(conf), torch.device("cpu"))
    x = torch.randn(1, samples) * 0.1
    with torch.inference_mode():
        model(x)
        model(x)
        with torch.profiler.profile() as prof:
            for _ in range(repeats):
                model(x)
    leaves = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    by_class: Counter[str] = Counter()
    by_op: Counter[str] = Counter()
    for event in leaves:
        seconds = event.self_cpu_time_total / 1e6 / repeats
        by_class[op_class(event.key)] += seconds
        by_op[event.key] += seconds
    return {"flops": flops, "classes": by_class, "ops": by_op}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = [m for m in MODELS if m != "wavlm_ecapa"]
    p.add_argument("--models", nargs="+", default=default, choices=list(MODELS))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    _, peak = peak_rates(args.threads, torch.device("cpu"))
    classes = ("compute", "elementwise", "data movement", "other")
    print(f"oneDNN 1x1-conv peak, {args.threads} thread(s): {peak:.0f} GFLOP/s\n")
    print("| model | GFLOP/forward | ms/forward | GFLOP/s | % of peak | compute ops' GFLOP/s | "
          + " | ".join(f"{c} %" for c in classes) + " | top non-compute ops |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in classes) + " | --- |")
    for name in args.models:
        result = profile_model(name)
        total = sum(result["classes"].values())
        gflop = result["flops"] / 1e9
        rate = gflop / total
        compute_rate = gflop / result["classes"]["compute"] if result["classes"]["compute"] else float("nan")
        shares = " | ".join(f"{100 * result['classes'][c] / total:.0f}" for c in classes)
        top = [(op, s) for op, s in result["ops"].most_common() if op_class(op) != "compute"][:3]
        tops = ", ".join(f"{op.removeprefix('aten::')} {100 * s / total:.0f} %" for op, s in top)
        print(f"| {name} | {gflop:.2f} | {1e3 * total:.0f} | {rate:.0f} | {100 * rate / peak:.0f} % | "
              f"{compute_rate:.0f} | {shares} | {tops} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
