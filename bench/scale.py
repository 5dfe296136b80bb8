#!/usr/bin/env python3
"""Scoring and metrics at ASVspoof 5 scale: peak memory and time, measured in child processes.

* ``scoring``: a synthetic stage-2 output of ASVspoof 5 eval's size (681,872 utterances of six rows,
  834,536 trials, 367 enrolled speakers with 1,098 enrolment utterances; rows with speaker structure, so
  the EERs are those of a plausible system) is written as the stage writes it (arks + ``xvector.scp``),
  then scored as ``sasv score_trials`` scores it (``compute_trial_scores`` streaming the archive, then the
  ASVspoof 5 metrics record) in a fresh process whose peak resident memory is read with ``wait4``. Also
  with every row loaded first (the recipe before streaming: ``read_embeddings``), and from float16 arks
  (``--embedding_dtype float16``), whose scores and EERs are compared with float32's.
* ``metrics``: ``sasv compute_metrics`` on an n-line submission file against a plain sklearn reader (one
  ``split`` per line, ``sklearn.metrics.roc_curve`` EERs), alternating, peak memory and wall time each.

    python bench/scale.py scoring --dim 512            # ~8.4 GB of arks in a temporary folder (--work)
    python bench/scale.py metrics --lines 1e6
    python bench/benchmark.py --models --trials --official_metrics_trials --metrics_lines 1e6 --scale 512

The embeddings are generated (never kept in the repository); the folder is removed afterwards unless
``--work`` names one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# ASVspoof 5 eval (Track 2): utterances, trials, enrolled speakers, enrolment utterances
ASVSPOOF5_EVAL = {"utts": 681_872, "trials": 834_536, "speakers": 367, "enrol_utts": 1_098}
ROWS = 6
# per-row noise norm / voice norm: at 512-d this gives an SV-EER of a few percent
NOISE = 2.0
_ARK_UTTS = 10_000  # utterances per synthetic ark (the stage writes 200; the format is the same)


# ------------------------------------------------------------------------------------------ child runs


# Runs the module or script of its arguments and reports its own peak resident memory (VmHWM) at exit. A
# child's rusage maxrss would include the parent's: Linux carries the high-water mark across fork and exec.
_PEAK_LAUNCHER = """
import atexit, runpy, sys
def report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write(f"\\nsasv-bench-peak-kib {peak}\\n")
atexit.register(report)
args = sys.argv[1:]
if args[0] == "-m":
    sys.argv = args[1:]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")
"""


def run_measured(args: Sequence[str]) -> tuple[float, float, str]:
    """Run ``python ARGS`` (``-m module ...`` or ``script ...``) in a fresh process: (wall seconds, its
    peak resident MiB, its stdout)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_LAUNCHER, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
        check=False,
    )
    seconds = time.perf_counter() - start
    peaks = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("sasv-bench-peak-kib ")]
    if proc.returncode != 0 or not peaks:
        raise RuntimeError(f"python {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, int(peaks[-1]) / 1024, proc.stdout


# --------------------------------------------------------------------------------------------- scoring


def make_scale_set(
    work: Path, dim: int, dtype: str, seed: int = 0, sizes: dict | None = None, noise_scale: float = NOISE
) -> Path:
    """Write the synthetic set into ``work``: ``xvector.scp`` and its arks (rows in ``dtype``), and
    ``lists.npz`` (trial speaker/utterance indexes and keys, CM probabilities). Returns the scp."""
    from sasv.extraction.outputs import write_embedding_chunk

    sizes = sizes or ASVSPOOF5_EVAL
    rng = np.random.default_rng(seed)
    n_spk, n_enrol, n_utts, n_trials = sizes["speakers"], sizes["enrol_utts"], sizes["utts"], sizes["trials"]
    n_test = n_utts - n_enrol
    n_voices = 3 * n_spk  # enrolled speakers are voices 0..n_spk-1; the others are only ever nontargets
    voices = rng.standard_normal((n_voices, dim)).astype(np.float32) / np.sqrt(dim)
    enrol_voice = np.arange(n_enrol) % n_spk  # 1,098 = 367 x 3 - 3: three speakers enrol twice
    test_voice = np.where(rng.random(n_test) < 0.5, rng.integers(0, n_spk, n_test),
                          rng.integers(n_spk, n_voices, n_test))  # fmt: skip
    spoofed = (test_voice < n_spk) & (rng.random(n_test) < 0.6)
    voice_of = np.concatenate([enrol_voice, test_voice])
    noise = noise_scale * np.concatenate([np.ones(n_enrol), np.where(spoofed, 1.3, 1.0)]).astype(np.float32)
    names = [f"E{i:07d}" for i in range(n_enrol)] + [f"T{i:07d}" for i in range(n_test)]
    scp = work / "xvector.scp"
    with open(scp, "w") as index:
        for start in range(0, n_utts, _ARK_UTTS):
            stop = min(start + _ARK_UTTS, n_utts)
            rows = rng.standard_normal((stop - start, ROWS, dim), dtype=np.float32)
            rows *= (noise[start:stop] / np.sqrt(dim))[:, None, None]
            rows += voices[voice_of[start:stop]][:, None, :]
            stored = rows.astype(dtype)
            index.write(write_embedding_chunk(list(zip(names[start:stop], stored, strict=True)),
                                              work / f"{start // _ARK_UTTS:05d}"))  # fmt: skip
    # trials: every test utterance at least once, the rest drawn again
    test_idx = np.concatenate([np.arange(n_test), rng.integers(0, n_test, n_trials - n_test)])
    own = test_voice[test_idx]
    target = ~spoofed[test_idx] & (own < n_spk) & (rng.random(n_trials) < 0.5)
    other = (own + rng.integers(1, n_spk, n_trials)) % n_spk  # an enrolled speaker that is not the voice
    spk_idx = np.where(spoofed[test_idx] | target, own, other)
    keys = np.where(spoofed[test_idx], 2, np.where(target, 0, 1))  # index into sasv.metrics.eer.KEYS
    cm = np.where(spoofed, rng.beta(1.5, 8, n_test), rng.beta(8, 1.5, n_test))
    np.savez(work / "lists.npz", spk_idx=spk_idx, test_idx=test_idx, keys=keys, cm=cm,
             enrol_voice=enrol_voice, n_enrol=n_enrol)  # fmt: skip
    return scp


def score_child(work: Path, scp: Path, in_memory: bool, norm: str = "l2norm") -> None:
    """What ``sasv score_trials`` does with one set (a child process): the trial list as Trials, the CM
    scores as a dict, the embeddings streamed (or all loaded), scores, then the ASVspoof 5 record. Prints
    JSON: the record's EERs and costs, the seconds, and writes the ASV scores to ``asv_<scp stem>.npy``."""
    from sasv.corpora.datadir import DataDir
    from sasv.corpora.protocols import Trial
    from sasv.extraction.outputs import EmbeddingArchive, read_embeddings
    from sasv.metrics.eer import KEYS
    from sasv.reports.records import BENCHMARK_METRICS, metrics_record
    from sasv.scoring.evaluate import compute_trial_scores

    start = time.perf_counter()
    lists = np.load(work / "lists.npz")
    n_enrol = int(lists["n_enrol"])
    speakers = [f"S{i:04d}" for i in range(int(lists["enrol_voice"].max()) + 1)]
    enroll: dict[str, list[str]] = {s: [] for s in speakers}
    for i, voice in enumerate(lists["enrol_voice"].tolist()):
        enroll[speakers[voice]].append(f"E{i:07d}")
    attack = ("bonafide", "bonafide", "A17")
    columns = (lists["spk_idx"].tolist(), lists["test_idx"].tolist(), lists["keys"].tolist())
    trials = [Trial(speakers[s], f"T{t:07d}", attack[k], KEYS[k]) for s, t, k in zip(*columns, strict=True)]
    cm = {f"T{t:07d}": p for t, p in enumerate(lists["cm"].tolist())}
    del lists
    data = DataDir(wav_scp={}, utt2spk={}, enroll=enroll, trials=trials)
    embeddings = read_embeddings(scp) if in_memory else EmbeddingArchive(scp)
    scores = compute_trial_scores(data, embeddings, cm, norm)
    record = metrics_record(scores, extended=False, choice=BENCHMARK_METRICS["asvspoof5"])
    np.save(work / f"asv_{scp.stem}.npy", scores.asv)
    record.update(seconds=time.perf_counter() - start, n_enrol=n_enrol)
    print(json.dumps(record))


def scoring_rows(work: Path, dim: int, in_memory: bool, float16: bool, seed: int = 0) -> list[str]:
    """Markdown rows: streamed float32 (and in memory, and float16), peak MiB, seconds, EERs."""
    work.mkdir(parents=True, exist_ok=True)
    runs: list[tuple[str, Path, bool]] = []
    dtypes = ["float32", "float16"] if float16 else ["float32"]
    for dtype in dtypes:
        folder = work / dtype
        folder.mkdir(exist_ok=True)
        started = time.perf_counter()
        params = {"dim": dim, "dtype": dtype, "seed": seed, "noise": NOISE, "sizes": ASVSPOOF5_EVAL}
        done = folder / "params.json"  # written last: a kept set is reused only when made with these
        if done.is_file() and json.loads(done.read_text()) == params:
            scp = folder / "xvector.scp"
        else:
            done.unlink(missing_ok=True)
            scp = make_scale_set(folder, dim, dtype, seed)
            done.write_text(json.dumps(params))
        print(f"{dtype} set ready in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        runs.append((f"{dtype} arks, streamed", scp, False))
        if in_memory and dtype == "float32":
            runs.append((f"{dtype} arks, every row loaded first (before)", scp, True))
    rows, records = [], {}
    for label, scp, load_all in runs:
        child = [__file__, "score_child", "--work", str(scp.parent)]
        seconds, peak, text = run_measured(child + (["--in_memory"] if load_all else []))
        record = json.loads(text.strip().splitlines()[-1])
        records[label] = (scp, record)
        size = sum(p.stat().st_size for p in scp.parent.glob("*.ark")) / 2**30
        eers = " | ".join(f"{100 * record[k]:.3f}" for k in ("sasv_eer", "sv_eer", "t_eer"))
        costs = f"{record['min_a_dcf[sasv2024]']:.4f} | {record['min_t_dcf']:.4f}"
        rows.append(f"| {label} | {size:.2f} | {peak:,.0f} | {seconds:.0f} | {eers} | {costs} |")
    if float16:
        asv32 = np.load(work / "float32" / "asv_xvector.npy")
        asv16 = np.load(work / "float16" / "asv_xvector.npy")
        r32 = records["float32 arks, streamed"][1]
        r16 = records["float16 arks, streamed"][1]
        rows.append("")
        rows.append(
            f"float16 against float32: max |cosine difference| {np.abs(asv16 - asv32).max():.2e}; EER "
            + ", ".join(
                f"{k} {100 * (r16[k] - r32[k]):+.4f}" for k in ("sasv_eer", "sv_eer", "spf_eer", "t_eer")
            )
            + f" points; a-DCF[sasv2024] {r16['min_a_dcf[sasv2024]'] - r32['min_a_dcf[sasv2024]']:+.5f}"
        )
    return rows


SCORING_HEADER = [
    "| embeddings | arks GiB | peak MiB | seconds | SASV-EER % | SV-EER % | t-EER % | a-DCF[sasv2024] "
    "| t-DCF |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]


# --------------------------------------------------------------------------------------------- metrics


def sklearn_reference(path: str) -> None:
    """The plain way (a child process): one split per line, the three EERs from sklearn's roc_curve."""
    from sklearn.metrics import roc_curve

    def eer(pos: np.ndarray, neg: np.ndarray) -> float:
        fpr, tpr, _ = roc_curve(np.r_[np.ones(pos.size), np.zeros(neg.size)], np.r_[pos, neg])
        i = np.nanargmin(np.abs(1 - tpr - fpr))
        return 100 * (fpr[i] + 1 - tpr[i]) / 2

    keys, scores = [], []
    with open(path) as handle:
        for line in handle:
            _, _, _, key, score = line.split()
            keys.append(key)
            scores.append(float(score))
    key_array, score_array = np.array(keys), np.array(scores)
    target, nontarget, spoof = (score_array[key_array == k] for k in ("target", "nontarget", "spoof"))
    print(json.dumps({"sasv_eer": eer(target, np.r_[nontarget, spoof]), "sv_eer": eer(target, nontarget),
                      "spf_eer": eer(target, spoof)}))  # fmt: skip


def write_submission(path: Path, n_lines: int, seed: int = 0) -> None:
    """LA-shaped ids (``LA_0037 LA_E_3215055 A13 spoof score``), a tenth target, 40 % spoofed; every trial
    (speaker, utterance) once, as the readers require."""
    rng = np.random.default_rng(seed)
    keys = np.array(["target", "nontarget", "spoof"])[rng.choice(3, n_lines, p=[0.1, 0.5, 0.4])]
    scores = rng.normal(size=n_lines) + 2.0 * (keys == "target")
    spk, utt, att = (
        rng.integers(0, 67, n_lines),
        1_000_000 + rng.permutation(max(n_lines, 9_000_000))[:n_lines],
        rng.integers(7, 20, n_lines),
    )
    with open(path, "w") as handle:
        for s, u, a, k, v in zip(
            spk.tolist(), utt.tolist(), att.tolist(), keys.tolist(), scores.tolist(), strict=True
        ):
            handle.write(f"LA_{s:04d} LA_E_{u} {'-' if k != 'spoof' else f'A{a:02d}'} {k} {v!r}\n")


def metrics_rows(n_lines: int, repeats: int = 3) -> list[str]:
    """Markdown rows: the recipe's compute_metrics and the sklearn reference, median wall s and peak MiB."""
    with tempfile.TemporaryDirectory(prefix="sasv-metrics-") as tmp:
        path = Path(tmp) / "submission.txt"
        write_submission(path, n_lines)
        commands = {
            "`sasv compute_metrics` (EERs, a-DCF, minDCFs; every line checked)":
                ["-m", "sasv", "compute_metrics", str(path)],
            "plain sklearn reference (one split per line, roc_curve EERs)":
                [__file__, "sklearn_reference", str(path)],
        }  # fmt: skip
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        outputs = {}
        for _ in range(repeats):
            for name, argv in commands.items():
                seconds, peak, text = run_measured(argv)
                results[name].append((seconds, peak))
                outputs[name] = json.loads(text)
    eers = [tuple(round(o[k], 4) for k in ("sasv_eer", "sv_eer", "spf_eer")) for o in outputs.values()]
    rows = []
    for name, measured in results.items():
        seconds = statistics.median(s for s, _ in measured)
        peak = max(p for _, p in measured)
        rows.append(f"| {name} | {n_lines:,} | {seconds:.2f} | {peak:,.0f} |")
    rows += ["", f"EERs (SASV, SV, SPF, %): recipe {eers[0]}, sklearn {eers[1]}"]
    return rows


METRICS_HEADER = ["| tool | lines | seconds (median) | peak MiB |", "| --- | ---: | ---: | ---: |"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("scoring", help="scoring at ASVspoof 5 eval's size")
    s.add_argument("--dim", type=int, default=512, help="embedding size (default 512: SE-Res2Net-50)")
    s.add_argument("--work", type=Path, help="keep the generated set here (default: a temporary folder)")
    s.add_argument("--no_in_memory", action="store_true", help="skip the every-row-loaded run")
    s.add_argument("--no_float16", action="store_true", help="skip the float16 arks")
    m = sub.add_parser("metrics", help="compute_metrics against a plain sklearn reader")
    m.add_argument("--lines", type=float, default=1e6)
    m.add_argument("--repeats", type=int, default=3)
    c = sub.add_parser("score_child")
    c.add_argument("--work", type=Path, required=True)
    c.add_argument("--in_memory", action="store_true")
    r = sub.add_parser("sklearn_reference")
    r.add_argument("path")
    args = p.parse_args(argv)
    if args.what == "score_child":
        score_child(args.work, args.work / "xvector.scp", args.in_memory)
    elif args.what == "sklearn_reference":
        sklearn_reference(args.path)
    elif args.what == "metrics":
        print("\n".join([*METRICS_HEADER, *metrics_rows(int(args.lines), args.repeats)]))
    else:
        work = args.work or Path(tempfile.mkdtemp(prefix="sasv-scale-"))
        try:
            rows = scoring_rows(work, args.dim, not args.no_in_memory, not args.no_float16)
        finally:
            if args.work is None:
                shutil.rmtree(work, ignore_errors=True)
        print("\n".join([*SCORING_HEADER, *rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
