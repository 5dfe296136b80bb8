#!/usr/bin/env python3
"""Extraction and scoring speed: the reference strategy against this recipe's path, on this machine.

For every model (real-size conf, random weights) and every thread setting, on generated FLAC utterances:

* reference: per utterance, soundfile decode, ``model(full[None])`` then ``model(five segments)`` as a
  batch of 5 (the CM: ``model(first 64,600 samples[None])``), under ``torch.no_grad``, in this process;
* recipe: :func:`sasv.extract.extract_embeddings` / :func:`~sasv.extract.score_countermeasure` with the
  stage scripts' CPU defaults, writing its chunks like the recipe does;
* with 2 threads also the recipe as 2 jobs x 1 thread (``--nj 2``).

Reported: utterances/s, real-time factor (processing seconds per second of audio), achieved GFLOP/s (FLOPs
counted once per input size with FlopCounterMode on fake tensors) as a fraction of this machine's fp32
sgemm rate, and the largest difference between the two paths' embeddings; bf16 autocast drift; scoring
time (speaker models + cosine + fusion + 3 EERs) for 10^4..10^6 trials. Times are medians over
``--repeats`` interleaved runs: on a shared machine single runs are noise. Markdown to stdout (and --out).

    python bench/benchmark.py                      # everything, ~15 min on 2 cores
    python bench/benchmark.py --models ecapa_tdnn aasist --utts 8 --threads 1
    python bench/benchmark.py --device cuda --threads 4   # a GPU (written blind: no GPU where it was made)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the stages' progress bars would interleave with the tables
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from sasv.audio import SAMPLE_RATE, cm_input, embedding_segments, read_audio  # noqa: E402
from sasv.conf import ModelConf, load_conf, load_model  # noqa: E402
from sasv.extract import (  # noqa: E402
    AUTOCAST_DTYPES,
    CountermeasureEngine,
    EmbeddingEngine,
    EngineSpec,
    JobOptions,
    default_batch_size,
    default_num_workers,
    extract_embeddings,
    read_embeddings,
    score_countermeasure,
)

REPO = Path(__file__).resolve().parents[1]
MODELS: dict[str, str] = {
    "ecapa_tdnn": "conf/asv/ecapa_tdnn.yaml",
    "se_resnet34": "conf/asv/se_resnet34.yaml",
    "se_res2net50": "conf/asv/se_res2net50.yaml",
    "res2next50": "conf/asv/res2next50.yaml",
    "wavlm_ecapa": "conf/asv/wavlm_ecapa.yaml",
    "aasist": "conf/cm/aasist.yaml",
}
HEAVY = {"wavlm_ecapa"}  # ~100 GFLOP per 3 s segment: gets --heavy_utts utterances
CPU = torch.device("cpu")
DEVICE = CPU  # --device; the reference and the recipe run on it
CHUNK = 3  # utterances per chunk in the recipe runs

Rows = dict[str, np.ndarray]


@dataclass
class Run:
    """One path of one model under one thread setting (times: one per repeat)."""

    model: str
    threads: int
    path: str
    utts: int
    audio_seconds: float
    flops: float
    times: list[float]
    max_rel: float | None = None
    min_cosine: float | None = None

    @property
    def seconds(self) -> float:
        return statistics.median(self.times)


# ------------------------------------------------------------------------------------------------ machine


def machine_description() -> list[str]:
    """lscpu model and cores, load, torch and its BLAS/oneDNN: what the numbers below depend on."""
    lscpu = {}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            key, _, value = line.partition(":")
            lscpu[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    flags = set(lscpu.get("Flags", "").split())
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    config = torch.__config__.show()
    mkl = next((line.strip() for line in config.splitlines() if "Math Kernel Library" in line), "no MKL")
    dnn = next((line.strip() for line in config.splitlines() if "MKL-DNN" in line), "no oneDNN")
    return [
        f"CPU: {lscpu.get('Model name', platform.processor())}, {lscpu.get('CPU(s)', os.cpu_count())} "
        f"logical CPUs, {lscpu.get('Thread(s) per core', '?')} thread(s) per core, "
        f"L2 {lscpu.get('L2 cache', '?')}, L3 {lscpu.get('L3 cache', '?')}; SIMD: {', '.join(simd)}",
        f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (other processes share it)",
        f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()} kernels), {mkl}; {dnn}",
        f"numpy {np.__version__}, Python {platform.python_version()}, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, GPU: "
        f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}",
    ]


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rates(threads: int, repeats: int = 7) -> tuple[float, float]:
    """(fp32 sgemm, oneDNN 1x1 conv) GFLOP/s for a 2048^3 product: torch.matmul uses MKL, the conv oneDNN.

    On a GPU: (fp32 matmul without TF32, NaN)."""
    torch.set_num_threads(threads)
    n = 2048
    if DEVICE.type == "cuda":
        a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)

        def product() -> None:
            a @ b
            torch.cuda.synchronize()

        return 2 * n**3 / _median_time(product, repeats) / 1e9, float("nan")
    a, b = torch.randn(n, n), torch.randn(n, n)
    x, w = torch.randn(1, n, n), torch.randn(n, n, 1)
    flops = 2 * n**3
    with torch.inference_mode():
        gemm = flops / _median_time(lambda: a @ b, repeats) / 1e9
        conv = (
            flops
            / _median_time(lambda: torch.mkldnn_convolution(x, w, None, [0], [1], [1], 1), repeats)
            / 1e9
        )
    return gemm, conv


# ------------------------------------------------------------------------------------------------- corpus


def make_corpus(folder: Path, n: int, seed: int) -> list[tuple[str, str, float]]:
    """``n`` 16-bit FLAC utterances of 2-12 s: a few harmonic 'voices' with vibrato, plus noise.

    The models' speed does not depend on the content; lengths are drawn uniformly (some repeat exactly, as
    they do in a real corpus rarely), so full utterances are batched only when the recipe may batch them.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        samples = int(rng.uniform(2.0, 12.0) * SAMPLE_RATE)
        t = np.arange(samples) / SAMPLE_RATE
        f0 = rng.uniform(90, 250) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        wav = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 2)
        wav = 0.2 * wav / np.abs(wav).max() + 0.01 * rng.standard_normal(samples)
        path = folder / f"utt{i:04d}.flac"
        sf.write(str(path), wav.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        items.append((f"utt{i:04d}", str(path), samples / SAMPLE_RATE))
    return items


# ------------------------------------------------------------------------------------------------- models


def random_conf(name: str) -> ModelConf:
    """The real-size conf without its checkpoint: seeded random weights, identical in every job process."""
    return dataclasses.replace(load_conf(REPO / MODELS[name]), checkpoint=None)


def workload_flops(model: nn.Module, lengths: Sequence[int], cm: bool) -> float:
    """FLOPs of the whole workload: one forward per distinct input size, counted on fake tensors."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    cache: dict[int, int] = {}

    def count(samples: int) -> int:
        if samples not in cache:
            counter = FlopCounterMode(display=False)
            with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True) as mode:
                x = mode.from_tensor(torch.zeros(1, samples))
                with counter:
                    model(x)
            cache[samples] = counter.get_total_flops()
        return cache[samples]

    if cm:
        return float(sum(count(len(cm_input(np.zeros(n, np.float32)))) for n in lengths))
    segment = len(embedding_segments(np.zeros(16000, np.float32))[0])
    return float(sum(count(n) + 5 * count(segment) for n in lengths))


def reference_asv(model: nn.Module, items: Sequence[tuple[str, str, float]]) -> Rows:
    out = {}
    with torch.no_grad():
        for utt, path, _ in items:
            wav = read_audio(path)
            full = model(torch.from_numpy(wav)[None].to(DEVICE))
            segments = model(torch.from_numpy(embedding_segments(wav)).to(DEVICE))
            out[utt] = torch.cat([full, segments]).cpu().numpy()
    return out


def reference_cm(model: nn.Module, items: Sequence[tuple[str, str, float]]) -> Rows:
    out = {}
    with torch.no_grad():
        for utt, path, _ in items:
            out[utt] = model(torch.from_numpy(cm_input(read_audio(path)))[None].to(DEVICE)).cpu().numpy()[0]
    return out


def read_logits(path: Path) -> Rows:
    rows = {}
    for line in path.read_text().splitlines():
        utt, spoof, bona, _ = line.split()
        rows[utt] = np.array([float(spoof), float(bona)], dtype=np.float32)
    return rows


def recipe_run(
    engine: EmbeddingEngine | CountermeasureEngine | EngineSpec,
    items: Sequence[tuple[str, str, float]],
    work: Path,
    cm: bool,
    jobs: JobOptions | None = None,
) -> Rows:
    """One run of the recipe's stage function into a fresh folder (chunk writes included).

    Chunks of :data:`CHUNK` utterances, so that a dozen utterances make several chunks for the jobs to
    share, as the ~10^5 utterances of LA make hundreds of the default 200.
    """
    out = Path(tempfile.mkdtemp(dir=work))
    pairs = [(u, p) for u, p, _ in items]
    options = {"num_workers": default_num_workers(DEVICE, jobs.num_jobs if jobs else 1), "chunk_size": CHUNK}
    if cm:
        return read_logits(score_countermeasure(engine, pairs, out / "cm.txt", "bench", jobs=jobs, **options))
    return read_embeddings(extract_embeddings(engine, pairs, out, "bench", jobs=jobs, **options))


def differences(got: Rows, ref: Rows) -> tuple[float, float]:
    """Largest per-row max|diff|/max|ref| and smallest per-row cosine over all utterances."""
    worst_rel, worst_cos = 0.0, 1.0
    for utt, r in ref.items():
        g = np.atleast_2d(got[utt]).astype(np.float64)
        e = np.atleast_2d(r).astype(np.float64)
        rel = np.abs(g - e).max(axis=1) / np.abs(e).max(axis=1)
        cos = (g * e).sum(axis=1) / (np.linalg.norm(g, axis=1) * np.linalg.norm(e, axis=1))
        worst_rel, worst_cos = max(worst_rel, float(rel.max())), min(worst_cos, float(cos.min()))
    return worst_rel, worst_cos


def bench_model(
    name: str,
    items: Sequence[tuple[str, str, float]],
    thread_settings: Sequence[int],
    repeats: int,
    work: Path,
    autocast_utts: int,
) -> tuple[list[Run], list[str]]:
    conf = random_conf(name)
    cm = conf.kind == "cm"
    reference = load_model(conf, allow_random_init=True).model
    lengths = [len(read_audio(p)) for _, p, _ in items]
    flops = workload_flops(reference, lengths, cm)
    audio = sum(s for _, _, s in items)
    reference.to(DEVICE)
    fast_model = copy.deepcopy(reference)  # prepared (in place) by the first engine, reused by the others
    # the stage scripts' defaults: on CPU the CM batch by model, the ASV batch by model and threads (None);
    # on a GPU the conf's
    batch = default_batch_size(DEVICE, conf.batch_size, reference)
    if cm:
        options: dict = {"batch_size": batch}
    else:
        options = {"segment_batch": None if DEVICE.type == "cpu" else batch}
    spec = EngineSpec(conf, allow_random_init=True, options=options)
    run_reference = reference_cm if cm else reference_asv
    runs: list[Run] = []
    for threads in thread_settings:
        torch.set_num_threads(threads)
        recipe: EmbeddingEngine | CountermeasureEngine
        if cm:
            recipe = CountermeasureEngine(fast_model, DEVICE, **options)
        else:
            recipe = EmbeddingEngine(fast_model, DEVICE, **options)
        run_reference(reference, items[:1])  # warm-up: oneDNN builds its kernels on first use
        recipe_run(recipe, items[:1], work, cm)
        paths: dict[str, Callable[[], Rows]] = {
            "reference": lambda: run_reference(reference, items),
            "recipe": lambda recipe=recipe: recipe_run(recipe, items, work, cm),
        }
        # jobs: CPU only here; building WavLM-Large in each job would dwarf its 2 utterances
        if threads > 1 and name not in HEAVY and DEVICE.type == "cpu":
            jobs = JobOptions(num_jobs=threads, devices=("cpu",), threads=1)
            paths[f"recipe, {threads} jobs x 1 thread"] = lambda jobs=jobs: recipe_run(
                spec, items, work, cm, jobs
            )
        times: dict[str, list[float]] = {p: [] for p in paths}
        outputs: dict[str, Rows] = {}
        # Interleaved, so that load bursts from other processes hit every path, and rotated, so that every
        # path runs in every position: what ran just before shifts a run's time by ~10 % here (measured with
        # the same path order in every repeat, the reference was 10 % faster right after the jobs' run).
        order = list(paths)
        for repeat in range(repeats):
            for path in order[repeat % len(order) :] + order[: repeat % len(order)]:
                fn = paths[path]
                torch.set_num_threads(threads)
                start = time.perf_counter()
                outputs[path] = fn()
                times[path].append(time.perf_counter() - start)
        for path in paths:
            run = Run(name, threads, path, len(items), audio, flops, times[path])
            if path != "reference":
                run.max_rel, run.min_cosine = differences(outputs[path], outputs["reference"])
            runs.append(run)
        print(
            f"  {name}, {threads} thread(s): "
            + ", ".join(f"{r.path} {r.seconds:.1f} s" for r in runs[-len(paths) :]),
            file=sys.stderr,
            flush=True,
        )
    notes = []
    if autocast_utts and not cm:
        torch.set_num_threads(thread_settings[0])
        few = items[:autocast_utts]
        recipe = EmbeddingEngine(fast_model, DEVICE, **options)
        fp32 = recipe.embed([read_audio(p) for _, p, _ in few])
        bf16_engine = EmbeddingEngine(fast_model, DEVICE, **options, autocast_dtype=AUTOCAST_DTYPES["bf16"])
        wavs = [read_audio(p) for _, p, _ in few]
        start = time.perf_counter()
        bf16 = bf16_engine.embed(wavs)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        recipe.embed(wavs)
        fp32_seconds = time.perf_counter() - start
        rel, cos = differences(dict(enumerate(bf16)), dict(enumerate(fp32)))
        notes.append(f"| {name} | {len(few)} | {rel:.1e} | {cos:.6f} | {fp32_seconds / seconds:.2f}x |")
    return runs, notes


# ------------------------------------------------------------------------------------------------ scoring


def bench_scoring(n_trials: int, repeats: int, seed: int = 0) -> tuple[float, int, int]:
    """Median seconds of score_trials (speaker models, cosine, fusion) + the three EERs on synthetic lists.

    Shaped like LA eval scaled up: 67 speakers with 10 enrolment utterances, 6 x 192 rows per utterance,
    about 14 trials per test utterance, 60 % of test utterances spoofed.
    """
    from sasv.datadir import DataDir, Trial
    from sasv.evaluate import score_trials
    from sasv.metrics import sasv_eers

    rng = np.random.default_rng(seed)
    n_spk, n_enrol, dim = 67, 10, 192
    n_test = max(200, n_trials // 14)
    speakers = [f"LA_{i:04d}" for i in range(n_spk)]
    enroll = {s: [f"E_{s}_{j}" for j in range(n_enrol)] for s in speakers}
    tests = [f"T_{i:07d}" for i in range(n_test)]
    true_spk = rng.integers(0, n_spk, n_test)
    spoofed = rng.random(n_test) < 0.6
    embeddings = {u: rng.standard_normal((6, dim)).astype(np.float32) for s in speakers for u in enroll[s]}
    embeddings.update({u: rng.standard_normal((6, dim)).astype(np.float32) for u in tests})
    cm = {u: float(p) for u, p in zip(tests, rng.random(n_test), strict=True)}
    test_idx = rng.integers(0, n_test, n_trials)
    spk_idx = np.where(rng.random(n_trials) < 0.3, true_spk[test_idx], rng.integers(0, n_spk, n_trials))
    trials = []
    for s, t in zip(spk_idx.tolist(), test_idx.tolist(), strict=True):
        if spoofed[t]:
            trials.append(Trial(speakers[s], tests[t], "A07", "spoof"))
        else:
            trials.append(
                Trial(speakers[s], tests[t], "bonafide", "target" if s == true_spk[t] else "nontarget")
            )
    data = DataDir(wav_scp={}, utt2spk={}, enroll=enroll, trials=trials)

    def run() -> None:
        scores = score_trials(data, embeddings, cm, "l2norm", "product")
        sasv_eers(scores.fused, scores.key)

    return _median_time(run, repeats), n_test, n_spk


# ------------------------------------------------------------------------------------------------- tables


def fmt_rate(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def tables(runs: list[Run], peaks: dict[int, tuple[float, float]]) -> list[str]:
    lines = [
        "| model | threads | path | utt/s | RTF | speed-up | GFLOP/s | % of sgemm | max rel. diff "
        "| min cosine |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    refs = {(r.model, r.threads): r for r in runs if r.path == "reference"}
    for r in runs:
        ref = refs[(r.model, r.threads)]
        gflops = r.flops / r.seconds / 1e9
        diff = "-" if r.max_rel is None else f"{r.max_rel:.1e}"
        cos = "-" if r.min_cosine is None else f"{r.min_cosine:.7f}"
        lines.append(
            f"| {r.model} | {r.threads} | {r.path} | {fmt_rate(r.utts / r.seconds)} | "
            f"{r.seconds / r.audio_seconds:.3f} | {ref.seconds / r.seconds:.2f}x | {gflops:.0f} | "
            f"{100 * gflops / peaks[r.threads][0]:.0f} % | {diff} | {cos} |"
        )
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--utts", type=int, default=12, help="utterances per model (default 12)")
    p.add_argument("--heavy_utts", type=int, default=2, help="utterances for WavLM (default 2)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread settings")
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per path; medians reported")
    p.add_argument("--trials", type=float, nargs="*", default=[1e4, 1e5, 1e6], help="scoring sizes")
    p.add_argument(
        "--autocast_utts", type=int, default=2, help="utterances for the bf16 drift check (0: off)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device", default="cpu", help="cpu | cuda | cuda:N: where both paths run (GPU: untested here)"
    )
    p.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda":
        # the reference is the fp32 computation: cuDNN's default TF32 would be a precision change (~1e-3)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    started = time.perf_counter()
    command = "python bench/benchmark.py " + " ".join(sys.argv[1:])

    out = ["## Machine", "", *[f"* {line}" for line in machine_description()], f"* command: `{command}`", ""]
    peaks = {t: peak_rates(t) for t in args.threads}
    out += ["## Peak rates (2048 x 2048 x 2048, fp32, median of 7)", ""]
    out += [
        "| threads | torch.matmul fp32 (CPU: MKL sgemm) GFLOP/s | oneDNN 1x1 conv GFLOP/s |",
        "| ---: | ---: | ---: |",
    ]
    out += [f"| {t} | {g:.0f} | {'-' if c != c else f'{c:.0f}'} |" for t, (g, c) in peaks.items()]
    print("\n".join(out), flush=True)

    with tempfile.TemporaryDirectory(prefix="sasv-bench-") as tmp:
        work = Path(tmp)
        corpus = make_corpus(work / "wav", max(args.utts, args.heavy_utts), args.seed)
        runs: list[Run] = []
        notes: list[str] = []
        for name in args.models:
            items = corpus[: args.heavy_utts if name in HEAVY else args.utts]
            print(f"benchmarking {name} on {len(items)} utterances ...", file=sys.stderr, flush=True)
            model_runs, model_notes = bench_model(
                name, items, args.threads, args.repeats, work, args.autocast_utts
            )
            runs += model_runs
            notes += model_notes
    durations = sorted(s for _, _, s in corpus)
    section = [
        "",
        f"## Extraction ({len(corpus)} generated utterances of {durations[0]:.1f}-{durations[-1]:.1f} s; "
        f"median of {args.repeats} interleaved runs)",
        "",
        "RTF: processing seconds per second of audio. Speed-up: reference time / this path's time, same "
        "threads. Differences: per embedding row (the CM: per logit pair) against the reference path.",
        "",
        *tables(runs, peaks),
    ]
    if notes:
        section += [
            "",
            f"## bf16 autocast drift (recipe path, {args.threads[0]} thread(s), against its fp32 output)",
            "",
            "| model | utts | max rel. diff | min cosine | speed vs fp32 |",
            "| --- | ---: | ---: | ---: | ---: |",
            *notes,
        ]
    print("\n".join(section), flush=True)
    out += section

    if args.trials:
        scoring = [
            "",
            "## Scoring (speaker models + cosine + product fusion + SASV/SV/SPF-EER, median of 3)",
            "",
            "| trials | test utts | speakers | seconds |",
            "| ---: | ---: | ---: | ---: |",
        ]
        for n in args.trials:
            seconds, n_test, n_spk = bench_scoring(int(n), repeats=3)
            scoring.append(f"| {int(n):,} | {n_test:,} | {n_spk} | {seconds:.3f} |")
        print("\n".join(scoring), flush=True)
        out += scoring
    tail = [
        "",
        f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"benchmark wall time {time.perf_counter() - started:.0f} s",
    ]
    print("\n".join(tail), flush=True)
    out += tail
    if args.out:
        args.out.write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
