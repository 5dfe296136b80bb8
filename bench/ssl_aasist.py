#!/usr/bin/env python3
"""SSL-AASIST at full size on the CPU: this recipe against the original implementation, same weights.

The original (TakHemlata/SSL_Anti-spoofing ``model.py`` on its fairseq) runs outside the repository:
``tests/oracles/record_ssl_aasist.py --full`` builds XLS-R 300M's architecture in fairseq with random weights,
saves the original Model's state dict (the released checkpoints' format), its logits on the golden
waveforms, and times its forward (median of repeats after a warm-up, batch 1 and 4, 1 and 2 threads, its
peak RSS) into a JSON file. This script loads that state dict through ``conf/cm/ssl_aasist.yaml``'s format,
checks the logits against the original's (the full-size parity), and times this recipe's model the same
way, as the CM stage prepares it (:func:`sasv.runtime.cpu_kernels.prepare_model`: glibc's allocator set to
keep freed activations, and oneDNN routing or torch's own kernels). The original's rows are as it runs
(glibc's defaults); run the recorder with ``MALLOC_MMAP_THRESHOLD_=33554432``
``MALLOC_TRIM_THRESHOLD_=2147483647`` for the original under the recipe's allocator setting. Achieved
GFLOP/s are counted once with FlopCounterMode, as a fraction of this machine's fp32 sgemm rate
(bench/benchmark.py's ``peak_rates``).

    python bench/ssl_aasist.py --checkpoint /tmp/ssl_oracle/full/full_ssl_aasist.pth \\
        --original /tmp/ssl_oracle/full/full.json --out ssl_aasist.md

Markdown to stdout (and --out). On a shared machine read the 2-thread rows as lower bounds.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import forward_flops, machine_description, peak_rates  # noqa: E402

from sasv.models.checkpoints import load_checkpoint_into  # noqa: E402
from sasv.models.conf import build_from_conf, load_conf  # noqa: E402
from sasv.runtime.cpu_kernels import prepare_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO.parent / "shared" / "golden" / "aasist" / "io.npz"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _times(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> list[float]:
    with torch.inference_mode():
        model(x)  # warm-up: first-call kernel selection
        out = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            out.append(time.perf_counter() - start)
    return out


def _row(name: str, threads: int, batch: int, rate: float, flops: float, sgemm: float, rss: float) -> str:
    gflops = rate * flops / 1e9
    share = 100 * gflops / sgemm
    return f"| {name} | {threads} | {batch} | {rate:.2f} | {gflops:.0f} | {share:.0f} % | {rss:.0f} |"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="the original Model's full-size state dict")
    p.add_argument(
        "--original", default=None, help="the original's timing JSON (record_ssl_aasist.py --full)"
    )
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    conf = load_conf(REPO / "conf" / "cm" / "ssl_aasist.yaml")
    model = build_from_conf(conf).eval()
    load_checkpoint_into(model, args.checkpoint, conf.checkpoint.format)
    x_all = torch.from_numpy(np.load(GOLDEN)["x_padded"])
    original = json.loads(Path(args.original).read_text()) if args.original else None
    lines = ["## SSL-AASIST, full size, CPU: the recipe against the original (same weights)", ""]
    lines += [f"* {line}" for line in machine_description()]
    with torch.inference_mode():
        logits = model(x_all).numpy()
    if original is not None and "logits" in original:
        ref = np.asarray(original["logits"], dtype=np.float32)
        rel = float(np.abs(logits - ref).max() / np.abs(ref).max())
        lines.append(
            f"* logits on the 4 golden waveforms against the original's: max relative difference {rel:.1e}"
        )
    flops = forward_flops(model, x_all.shape[1])
    lines += [
        f"* {flops / 1e9:.1f} GFLOP per 64,600-sample input (FlopCounterMode); {args.repeats} repeats "
        "after a warm-up, median",
        "",
        "| implementation | threads | batch | utt/s | GFLOP/s | % of sgemm | peak RSS (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    # as the CM stage prepares it (in place: on copies); either way freed activations stay in the process
    subjects = [
        ("recipe, stage (--cpu_kernels onednn)", prepare_model(copy.deepcopy(model), torch.device("cpu"))),
        ("recipe, --cpu_kernels torch", prepare_model(model, torch.device("cpu"), "torch")),
    ]
    for threads in args.threads:
        torch.set_num_threads(threads)
        sgemm, _ = peak_rates(threads, torch.device("cpu"))
        for batch in args.batches:
            x = x_all[:batch] if batch <= len(x_all) else x_all.repeat(batch // len(x_all) + 1, 1)[:batch]
            if original is not None:
                row = original.get("timing", {}).get(f"threads{threads}_batch{batch}")
                if row:
                    rate = row["utterances_per_s"]
                    lines.append(
                        _row("original (fairseq)", threads, batch, rate, flops, sgemm, row["peak_rss_mb"])
                    )
            for name, subject in subjects:
                rate = batch / statistics.median(_times(subject, x, args.repeats))
                lines.append(_row(name, threads, batch, rate, flops, sgemm, _peak_rss_mb()))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
