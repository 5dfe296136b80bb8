#!/usr/bin/env python3
"""Extraction and scoring speed: the reference strategy against this recipe's path, on this machine.

For every model (real-size conf, random weights) and every thread setting, on generated FLAC utterances:

* reference: per utterance, soundfile decode, ``model(full[None])`` then ``model(five segments)`` as a
  batch of 5 (the CM: ``model(first 64,600 samples[None])``), under ``torch.no_grad`` and
  :func:`sasv.extraction.engines.exact_fp32` (TF32 off on a GPU), in this process;
* recipe: :func:`sasv.stages.driver.run_chunked` with the engine the stages build (every default from
  :class:`sasv.extraction.engines.EngineOptions`, through :meth:`sasv.extraction.engines.EngineSpec.build`),
  writing its chunks like the recipe does;
* with 2 threads also the recipe as 2 jobs x 1 thread (``--nj 2``: an
:class:`sasv.extraction.engines.EngineSpec`).

Reported: utterances/s, real-time factor (processing seconds per second of audio), achieved GFLOP/s (FLOPs
counted once per input size with FlopCounterMode on fake tensors) as a fraction of this machine's fp32
sgemm rate, and the largest difference between the two paths' embeddings; bf16 autocast drift; scoring
time (speaker models + cosine + fusion + 3 EERs) for 10^4..10^6 trials; ASVspoof 5's official metrics
(a-DCF[sasv2024], min t-DCF, t-EER) at its eval list's size; ``sasv compute_metrics`` against a plain sklearn
reader (peak memory, time) and, with ``--scale 512``, scoring at ASVspoof 5 eval's size in bounded memory
with float16 storage's drift (both from bench/scale.py). Times are medians over
``--repeats`` interleaved runs: on a shared machine single runs are noise. Markdown to stdout (and --out).

    python bench/benchmark.py                      # everything, ~15 min on 2 cores
    python bench/benchmark.py --models ecapa_tdnn aasist --utts 8 --threads 1
    python bench/benchmark.py --device cuda --threads 4   # a GPU (written blind: no GPU where it was made)
    python bench/benchmark.py --models --trials --threads 1 --metrics_lines   # only the ASVspoof 5 metrics
    python bench/benchmark.py --models --trials --official_metrics_trials --scale 512   # scoring at scale
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

# before tqdm is imported (through sasv.extraction.chunks): tqdm reads its TQDM_* settings at import time, and
# the stages' progress bars would interleave with the tables
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import soundfile as sf
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sasv.audio import SAMPLE_RATE, cm_input, embedding_segments, read_audio
from sasv.exp_layout import cm_scores_output, embeddings_output
from sasv.extraction.engines import Engine, EngineOptions, EngineSpec, exact_fp32
from sasv.extraction.outputs import read_embeddings
from sasv.jobs.local import JobOptions, default_num_workers, job_devices
from sasv.models.conf import LoadedModel, ModelConf, load_conf, load_model
from sasv.runtime.devices import resolve_device
from sasv.stages.driver import run_chunked

sys.path.insert(0, str(Path(__file__).parent))
import scale  # noqa: E402  (bench/scale.py, beside this script)

from sasv.corpora.synthvoice import draw_voice, synthesize

REPO = Path(__file__).resolve().parents[1]
MODELS: dict[str, str] = {
    "ecapa_tdnn": "conf/asv/ecapa_tdnn.yaml",
    "se_resnet34": "conf/asv/se_resnet34.yaml",
    "se_res2net50": "conf/asv/se_res2net50.yaml",
    "res2next50": "conf/asv/res2next50.yaml",
    "wavlm_ecapa": "conf/asv/wavlm_ecapa.yaml",
    "aasist": "conf/cm/aasist.yaml",
    "ssl_aasist": "conf/cm/ssl_aasist.yaml",
}
# ~100 GFLOP per 3 s segment (WavLM), 146 GFLOP per 64,600-sample CM input (XLS-R): --heavy_utts utterances
HEAVY = {"wavlm_ecapa", "ssl_aasist"}
CHUNK = 3  # utterances per chunk in the recipe runs

Rows = dict[str, np.ndarray]
Utterance = tuple[str, str, float]  # utt, FLAC path, seconds


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


def peak_rates(threads: int, device: torch.device, repeats: int = 7) -> tuple[float, float]:
    """(fp32 sgemm, oneDNN 1x1 conv) GFLOP/s for a 2048^3 product: torch.matmul uses MKL, the conv oneDNN.

    On a GPU: (fp32 matmul without TF32, NaN)."""
    torch.set_num_threads(threads)
    n = 2048
    if device.type == "cuda":
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)

        def product() -> None:
            a @ b
            torch.cuda.synchronize()

        with exact_fp32(device):
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


def make_corpus(folder: Path, n: int, seed: int) -> list[Utterance]:
    """``n`` 16-bit FLAC utterances of 2-12 s in the mini corpus's synthetic voices
    (:mod:`sasv.corpora.synthvoice`).

    The models' speed does not depend on the content; lengths are drawn uniformly (some repeat exactly, as
    they do in a real corpus rarely), so full utterances are batched only when the recipe may batch them.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        samples = int(rng.uniform(2.0, 12.0) * SAMPLE_RATE)
        voice = draw_voice(rng, ("female", "male")[i % 2])
        wav = 0.5 * synthesize(voice, samples, rng)
        path = folder / f"utt{i:04d}.flac"
        sf.write(str(path), wav.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        items.append((f"utt{i:04d}", str(path), samples / SAMPLE_RATE))
    return items


# ------------------------------------------------------------------------------------------------- models


def random_conf(name: str) -> ModelConf:
    """The real-size conf without its checkpoint: seeded random weights, identical in every job process."""
    return dataclasses.replace(load_conf(REPO / MODELS[name]), checkpoint=None)


def forward_flops(model: nn.Module, samples: int) -> int:
    """FLOPs of one forward of a (1, samples) waveform, counted on fake tensors (nothing is computed)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True) as mode:
        x = mode.from_tensor(torch.zeros(1, samples))
        with counter:
            model(x)
    return counter.get_total_flops()


def workload_flops(model: nn.Module, lengths: Sequence[int], cm: bool) -> float:
    """FLOPs of the whole workload: one forward per distinct input size, counted on fake tensors."""
    cache: dict[int, int] = {}

    def count(samples: int) -> int:
        if samples not in cache:
            cache[samples] = forward_flops(model, samples)
        return cache[samples]

    if cm:
        return float(sum(count(len(cm_input(np.zeros(n, np.float32)))) for n in lengths))
    segment = len(embedding_segments(np.zeros(16000, np.float32))[0])
    return float(sum(count(n) + 5 * count(segment) for n in lengths))


def reference_run(model: nn.Module, items: Sequence[Utterance], device: torch.device, cm: bool) -> Rows:
    """The reference strategy, one utterance at a time in fp32 (TF32 off on a GPU): see the module doc."""
    out = {}
    with torch.no_grad(), exact_fp32(device):
        for utt, path, _ in items:
            wav = read_audio(path)
            if cm:
                out[utt] = model(torch.from_numpy(cm_input(wav))[None].to(device)).cpu().numpy()[0]
                continue
            full = model(torch.from_numpy(wav)[None].to(device))
            segments = model(torch.from_numpy(embedding_segments(wav)).to(device))
            out[utt] = torch.cat([full, segments]).cpu().numpy()
    return out


def read_cm_logits(path: Path) -> Rows:
    """utt -> [logit_spoof, logit_bonafide] from a CM output file (the differences are taken on logits;
    :func:`sasv.extraction.outputs.read_cm_scores` reads only P(bona fide))."""
    rows = {}
    for line in path.read_text().splitlines():
        utt, spoof, bona, _ = line.split()
        rows[utt] = np.array([float(spoof), float(bona)], dtype=np.float32)
    return rows


def recipe_run(
    engine: Engine | EngineSpec,
    items: Sequence[Utterance],
    work: Path,
    device: torch.device,
    jobs: JobOptions | None = None,
) -> Rows:
    """One run of the recipe's chunked driver into a fresh folder (chunk writes included).

    Chunks of :data:`CHUNK` utterances, so that a dozen utterances make several chunks for the jobs to
    share, as the ~10^5 utterances of LA make hundreds of the default 200.
    """
    folder = Path(tempfile.mkdtemp(dir=work))
    pairs = [(u, p) for u, p, _ in items]
    cm = engine.kind == "cm"
    out = cm_scores_output(folder / "cm_scores.txt") if cm else embeddings_output(folder)
    num_workers = default_num_workers(device, jobs.num_jobs if jobs else 1)
    file = run_chunked(engine, pairs, out, "bench", num_workers=num_workers, chunk_size=CHUNK, jobs=jobs)
    return read_cm_logits(file) if cm else read_embeddings(file)


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


@dataclass(frozen=True)
class Subject:
    """One model under benchmark: the reference's copy, the recipe's copy and the workload."""

    name: str
    reference: nn.Module  # on the device, as built
    recipe: LoadedModel  # a copy of the same weights, prepared in place by its first engine, then reused
    items: Sequence[Utterance]
    flops: float
    device: torch.device
    work: Path

    @property
    def conf(self) -> ModelConf:
        return self.recipe.conf

    @property
    def cm(self) -> bool:
        return self.conf.kind == "cm"

    @property
    def audio_seconds(self) -> float:
        return sum(s for _, _, s in self.items)


def load_subject(name: str, items: Sequence[Utterance], work: Path, device: torch.device) -> Subject:
    conf = random_conf(name)
    loaded = load_model(conf, allow_random_init=True)
    reference = loaded.model
    lengths = [len(read_audio(p)) for _, p, _ in items]
    flops = workload_flops(reference, lengths, conf.kind == "cm")
    reference.to(device)
    recipe = dataclasses.replace(loaded, model=copy.deepcopy(reference))
    return Subject(name, reference, recipe, items, flops, device, work)


def recipe_engine(subject: Subject, threads: int, autocast: str = "none") -> Engine:
    """The engine a stage builds (``--nj 1 --threads N``): every default from :class:`EngineOptions`."""
    options = EngineOptions(device=str(subject.device), threads=threads, autocast=autocast)
    spec = EngineSpec(subject.recipe.conf, True, options)
    return spec.build(subject.device, loaded=subject.recipe)


def jobs_setup(subject: Subject, num_jobs: int) -> tuple[EngineSpec, JobOptions]:
    """What a stage runs with ``--nj num_jobs --threads 1``: each job builds its engine from the spec."""
    options = EngineOptions(device=str(subject.device), threads=1)
    jobs = JobOptions(num_jobs, job_devices(subject.device, num_jobs), threads=1)
    return EngineSpec(subject.conf, True, options), jobs


def interleaved(
    paths: dict[str, Callable[[], Rows]], repeats: int, threads: int
) -> tuple[dict[str, list[float]], dict[str, Rows]]:
    """Each path's times over ``repeats`` rounds, and its last output.

    Interleaved, so that load bursts from other processes hit every path, and rotated, so that every path
    runs in every position: what ran just before shifts a run's time by ~10 % here (measured with the same
    path order in every repeat, the reference was 10 % faster right after the jobs' run).
    """
    times: dict[str, list[float]] = {p: [] for p in paths}
    outputs: dict[str, Rows] = {}
    order = list(paths)
    for repeat in range(repeats):
        for path in order[repeat % len(order) :] + order[: repeat % len(order)]:
            fn = paths[path]
            torch.set_num_threads(threads)
            start = time.perf_counter()
            outputs[path] = fn()
            times[path].append(time.perf_counter() - start)
    return times, outputs


def bench_threads(subject: Subject, threads: int, repeats: int) -> list[Run]:
    """The reference, the recipe and (CPU, several threads) the recipe as jobs under one thread setting."""
    items, work, device = subject.items, subject.work, subject.device
    recipe = recipe_engine(subject, threads)
    reference_run(subject.reference, items[:1], device, subject.cm)  # warm-up: oneDNN builds its kernels
    recipe_run(recipe, items[:1], work, device)
    paths: dict[str, Callable[[], Rows]] = {
        "reference": lambda: reference_run(subject.reference, items, device, subject.cm),
        "recipe": lambda: recipe_run(recipe, items, work, device),
    }
    # jobs: CPU only here; building WavLM-Large in each job would dwarf its 2 utterances
    if threads > 1 and subject.name not in HEAVY and device.type == "cpu":
        spec, jobs = jobs_setup(subject, threads)
        paths[f"recipe, {threads} jobs x 1 thread"] = lambda: recipe_run(spec, items, work, device, jobs)
    times, outputs = interleaved(paths, repeats, threads)
    runs = []
    for path in paths:
        run = Run(subject.name, threads, path, len(items), subject.audio_seconds, subject.flops, times[path])
        if path != "reference":
            run.max_rel, run.min_cosine = differences(outputs[path], outputs["reference"])
        runs.append(run)
    print(
        f"  {subject.name}, {threads} thread(s): " + ", ".join(f"{r.path} {r.seconds:.1f} s" for r in runs),
        file=sys.stderr,
        flush=True,
    )
    return runs


def bf16_drift(subject: Subject, utts: int, threads: int) -> str:
    """A table row: the recipe's bf16 autocast output against its fp32 output on ``utts`` utterances, and
    the speed ratio (the fp32 engine runs once before, as the warm-up)."""
    few = subject.items[:utts]
    wavs = [read_audio(p) for _, p, _ in few]
    fp32_engine = recipe_engine(subject, threads)
    fp32 = fp32_engine.compute(wavs)
    bf16_engine = recipe_engine(subject, threads, autocast="bf16")
    start = time.perf_counter()
    bf16 = bf16_engine.compute(wavs)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    fp32_engine.compute(wavs)
    fp32_seconds = time.perf_counter() - start
    rel, cos = differences(dict(enumerate(bf16)), dict(enumerate(fp32)))
    return f"| {subject.name} | {len(few)} | {rel:.1e} | {cos:.6f} | {fp32_seconds / seconds:.2f}x |"


def bench_model(
    name: str,
    items: Sequence[Utterance],
    thread_settings: Sequence[int],
    repeats: int,
    work: Path,
    autocast_utts: int,
    device: torch.device,
) -> tuple[list[Run], list[str]]:
    """Every thread setting's runs of one model, and its bf16 drift row (ASV models, when asked for)."""
    subject = load_subject(name, items, work, device)
    runs = [run for threads in thread_settings for run in bench_threads(subject, threads, repeats)]
    notes = []
    if autocast_utts and not subject.cm:
        notes.append(bf16_drift(subject, autocast_utts, thread_settings[0]))
    return runs, notes


# ------------------------------------------------------------------------------------------------ scoring


def bench_scoring(n_trials: int, repeats: int, seed: int = 0) -> tuple[float, int, int]:
    """Median seconds of :func:`sasv.scoring.evaluate.compute_trial_scores` (speaker models, cosine, fusion) +
    the three EERs on synthetic lists.

    Shaped like LA eval scaled up: 67 speakers with 10 enrolment utterances, 6 x 192 rows per utterance,
    about 14 trials per test utterance, 60 % of test utterances spoofed.
    """
    from sasv.corpora.datadir import DataDir
    from sasv.corpora.protocols import Trial
    from sasv.metrics.eer import sasv_eers
    from sasv.scoring.evaluate import compute_trial_scores

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
        scores = compute_trial_scores(data, embeddings, cm, "l2norm", "product")
        sasv_eers(scores.fused, scores.key)

    return _median_time(run, repeats), n_test, n_spk


# ------------------------------------------------------------------------------------------------- tables


def bench_official_metrics(n_trials: int, repeats: int, seed: int = 0) -> float:
    """Median seconds of ASVspoof 5's official metrics (min a-DCF[sasv2024], min t-DCF, t-EER, with the
    minDCFs of the record) on ``n_trials`` synthetic trials with separate ASV and CM scores.

    Key shares roughly those of the Track 2 lists (a tenth target, a quarter nontarget, the rest spoofed);
    the sorts and searches cost the same whatever the scores are.
    """
    from sasv.reports.records import BENCHMARK_METRICS, record_costs
    from sasv.scoring.score_files import TrialScores

    rng = np.random.default_rng(seed)
    keys = np.array(["target", "nontarget", "spoof"])[rng.choice(3, n_trials, p=[0.1, 0.25, 0.65])]
    asv = rng.normal(size=n_trials) + 2.0 * (keys == "target") + 1.0 * (keys == "spoof")
    cm = rng.normal(size=n_trials) + 2.5 * (keys != "spoof")
    blank = np.full(n_trials, "-")
    scores = TrialScores(spk=blank, utt=blank, attack=blank, key=keys, fused=cm + asv, asv=asv, cm=cm)
    return _median_time(lambda: record_costs(scores, BENCHMARK_METRICS["asvspoof5"]), repeats)


def bench_bootstrap(n_trials: int, resamples: int, jobs: int, seed: int = 0) -> float:
    """Seconds for ``resamples`` bootstrap resamples of claimed speakers (the three EERs and the
    a-DCF[sasv2024] each time) on ``n_trials`` synthetic trials of 367 speakers (ASVspoof 5 eval's), with
    ``jobs`` threads: what each system's intervals cost (:mod:`sasv.metrics.bootstrap`)."""
    from sasv.metrics.bootstrap import BootstrapSpec, bootstrap_intervals
    from sasv.metrics.eer import key_codes

    rng = np.random.default_rng(seed)
    keys = np.array(["target", "nontarget", "spoof"])[rng.choice(3, n_trials, p=[0.1, 0.25, 0.65])]
    speakers = rng.integers(0, 367, n_trials)
    scores = rng.normal(size=n_trials) + 2.0 * (keys == "target") + 0.1 * speakers / 367
    started = time.perf_counter()
    bootstrap_intervals(scores, key_codes(keys), speakers, "sasv2024", BootstrapSpec(resamples), jobs)
    return time.perf_counter() - started


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
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--utts", type=int, default=12, help="utterances per model (default 12)")
    p.add_argument("--heavy_utts", type=int, default=2, help="utterances for WavLM, SSL-AASIST (default 2)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread settings")
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per path; medians reported")
    p.add_argument("--trials", type=float, nargs="*", default=[1e4, 1e5, 1e6], help="scoring sizes")
    p.add_argument(
        "--official_metrics_trials",
        type=float,
        nargs="*",
        default=[834_536],
        help="sizes for ASVspoof 5's metrics (default: its eval list, 834,536 trials)",
    )
    p.add_argument(
        "--bootstrap_trials",
        type=float,
        nargs="*",
        default=[834_536],
        help="sizes for 1,000 bootstrap resamples of the EERs and a-DCF (default: ASVspoof 5 eval's)",
    )
    p.add_argument(
        "--metrics_lines",
        type=float,
        nargs="*",
        default=[1e6],
        help="sasv compute_metrics against a plain sklearn reader on files of these sizes (bench/scale.py)",
    )
    p.add_argument(
        "--scale",
        type=int,
        nargs="*",
        default=[],
        metavar="DIM",
        help="scoring at ASVspoof 5 eval's size with DIM-d embeddings, peak memory, float16 drift "
        "(bench/scale.py; 8.4 GB of temporary arks at 512)",
    )
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
    device = resolve_device(args.device)
    started = time.perf_counter()
    command = "python bench/benchmark.py " + " ".join(sys.argv[1:])

    out = ["## Machine", "", *[f"* {line}" for line in machine_description()], f"* command: `{command}`", ""]
    peaks = {t: peak_rates(t, device) for t in args.threads}
    out += ["## Peak rates (2048 x 2048 x 2048, fp32, median of 7)", ""]
    out += [
        "| threads | torch.matmul fp32 (CPU: MKL sgemm) GFLOP/s | oneDNN 1x1 conv GFLOP/s |",
        "| ---: | ---: | ---: |",
    ]
    out += [f"| {t} | {g:.0f} | {'-' if c != c else f'{c:.0f}'} |" for t, (g, c) in peaks.items()]
    print("\n".join(out), flush=True)

    if args.models:
        with tempfile.TemporaryDirectory(prefix="sasv-bench-") as tmp:
            work = Path(tmp)
            corpus = make_corpus(work / "wav", max(args.utts, args.heavy_utts), args.seed)
            runs: list[Run] = []
            notes: list[str] = []
            for name in args.models:
                items = corpus[: args.heavy_utts if name in HEAVY else args.utts]
                print(f"benchmarking {name} on {len(items)} utterances ...", file=sys.stderr, flush=True)
                model_runs, model_notes = bench_model(
                    name, items, args.threads, args.repeats, work, args.autocast_utts, device
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
    if args.official_metrics_trials:
        official = [
            "",
            "## ASVspoof 5 official metrics (a-DCF[sasv2024], min t-DCF, t-EER and the minDCFs; median of 3)",
            "",
            "| trials | seconds |",
            "| ---: | ---: |",
        ]
        for n in args.official_metrics_trials:
            official.append(f"| {int(n):,} | {bench_official_metrics(int(n), repeats=3):.3f} |")
        print("\n".join(official), flush=True)
        out += official
    if args.bootstrap_trials:
        section = [
            "",
            "## Bootstrap intervals (1,000 resamples of claimed speakers: SASV/SV/SPF-EER and a-DCF each)",
            "",
            "| trials | threads | seconds |",
            "| ---: | ---: | ---: |",
        ]
        for n in args.bootstrap_trials:
            for jobs in args.threads:
                section.append(f"| {int(n):,} | {jobs} | {bench_bootstrap(int(n), 1000, jobs):.1f} |")
        print("\n".join(section), flush=True)
        out += section
    for n in args.metrics_lines:
        section = ["", f"## compute_metrics on {int(n):,} lines (median of 3, alternating; peak memory)", ""]
        section += [*scale.METRICS_HEADER, *scale.metrics_rows(int(n))]
        print("\n".join(section), flush=True)
        out += section
    for dim in args.scale:
        section = ["", f"## Scoring at ASVspoof 5 eval's size ({dim}-d rows; peak resident memory)", ""]
        with tempfile.TemporaryDirectory(prefix="sasv-scale-") as tmp:
            section += [*scale.SCORING_HEADER, *scale.scoring_rows(Path(tmp), dim, True, True, args.seed)]
        print("\n".join(section), flush=True)
        out += section
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
