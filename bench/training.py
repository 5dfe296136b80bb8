#!/usr/bin/env python3
"""Training throughput: training-step samples/s per architecture beside data-loader samples/s per worker.

Two rates decide how fast a speaker model trains, and how many DataLoader workers it needs:

* **training step** (per architecture): ``ModelWithLoss(model, AAMSoftmax(embedding_dim, --classes))``
  in train mode, forward + backward + SGD step (Nesterov momentum, weight decay: the trainer's optimizer) on a
  batch of ``--batch`` augmented ``--crop_seconds`` crops; the real-size model of ``conf/asv/<model>.yaml``
  with random weights (speed does not depend on them). ``--warmup`` steps are left out (the first steps of
  a fresh model allocate its activations and gradients and are up to 2x slower), then the median of
  ``--steps`` steps, at each of ``--threads`` (``torch.set_num_threads``). fp32 on CPU.
* **data loader** (the same for every architecture): :class:`sasv.train.data.CropDataset` with the
  default augmentation mix (:data:`sasv.train.augment.DEFAULT_WEIGHTS`: clean, reverb, noise, music, babble
  drawn uniformly), i.e. decode a FLAC utterance of 2-6 s, take a random crop, augment it, and collate
  batches, exactly as the trainer's ``DataLoader`` does. Measured in this process (``num_workers=0``: what
  one worker does, one thread) and with ``DataLoader(num_workers=2)`` to show how it scales; the time to
  the first batch (worker start-up) is left out. Also decode + crop alone, the floor.

Each model's row puts its step rate beside the per-worker loader rate and their ratio: the DataLoader
workers one training process needs so that it never waits for data. The MUSAN-like and RIR files are
synthetic (:mod:`sasv.corpora.musan_rirs_mini`, ``--noise_seconds`` long, like real MUSAN files of
minutes only the needed frames are decoded), the training files synthetic speech
(:mod:`sasv.corpora.synthvoice`), read from the page cache. Markdown to stdout.

    python bench/training.py                        # 4 architectures, 1 and 2 threads, ~3 min on 2 cores
    python bench/training.py --models ecapa_tdnn --threads 1 --steps 3
    python bench/training.py --models wavlm_ecapa --steps 2 --warmup 1   # WavLM-Large: slow on CPU
    python bench/training.py --device cuda          # a GPU: bf16 autocast, batch 128 (written blind)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# before tqdm is imported (through sasv.train.augment): the augmentation lists' progress bar would
# interleave with the tables
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from sasv.audio import SAMPLE_RATE
from sasv.bin.prepare_augmentation import main as prepare_augmentation
from sasv.corpora.musan_rirs_mini import make_musan_and_rirs
from sasv.corpora.synthvoice import draw_voice, synthesize
from sasv.models.conf import build_from_conf, load_conf
from sasv.train.augment import DEFAULT_WEIGHTS, AugmentationLists, Augmenter
from sasv.train.confs import AsvTrainConf
from sasv.train.data import CropDataset, TrainList, epoch_order
from sasv.train.loop import AMP_DTYPES, ModelWithLoss
from sasv.train.losses import AAMSoftmax

REPO = Path(__file__).resolve().parents[1]
MODELS = ("ecapa_tdnn", "se_resnet34", "se_res2net50", "res2next50", "wavlm_ecapa")
DEFAULT_MODELS = MODELS[:4]  # WavLM-Large (315 M parameters) only when asked for
VOXCELEB2_SPEAKERS = 5994  # the AAM-softmax classes of a VoxCeleb2-dev model


def machine_line(device: torch.device) -> str:
    """CPU model and logical CPUs, load, torch: what the numbers below depend on."""
    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")),
            model,
        )
    except (OSError, subprocess.CalledProcessError):
        pass
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none used"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{model}, {os.cpu_count()} logical CPUs, load average at start {load}; torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), numpy {np.__version__}, Python "
        f"{platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
        f"GPU: {gpu}"
    )


# ------------------------------------------------------------------------------------------------- data


def training_dir(folder: Path, utts: int, speakers: int, seed: int = 0) -> Path:
    """A Kaldi data dir (wav.scp, utt2spk) of ``utts`` speech-like 16-bit FLACs of 2-6 s by ``speakers``
    synthetic voices."""
    rng = np.random.default_rng(seed)
    voices = [draw_voice(rng, "female" if s % 2 else "male") for s in range(speakers)]
    (folder / "flac").mkdir(parents=True)
    wav_scp, utt2spk = [], []
    for i in range(utts):
        spk = i % speakers
        utt = f"spk{spk:03d}-utt{i:04d}"
        wav = 0.5 * synthesize(voices[spk], int(rng.uniform(2, 6) * SAMPLE_RATE), rng)
        path = folder / "flac" / f"{utt}.flac"
        sf.write(path, wav, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
        wav_scp.append(f"{utt} {path}\n")
        utt2spk.append(f"{utt} spk{spk:03d}\n")
    (folder / "wav.scp").write_text("".join(sorted(wav_scp)))
    (folder / "utt2spk").write_text("".join(sorted(utt2spk)))
    return folder


def augmentation_lists(work: Path, noise_seconds: float) -> AugmentationLists:
    """Synthetic MUSAN and RIRS_NOISES trees, listed by ``sasv prepare_augmentation`` (its report muted)."""
    corpora = make_musan_and_rirs(work / "corpora", seed=0, files_per_source=4, seconds=noise_seconds)
    argv = ["--musan_root", str(corpora.musan_root), "--rirs_root", str(corpora.rirs_root)]
    with contextlib.redirect_stdout(io.StringIO()):
        prepare_augmentation([*argv, "--out", str(work / "lists")])
    return AugmentationLists.from_dirs(work / "lists" / "musan", work / "lists" / "rirs")


def loader_rate(dataset: CropDataset, batch: int, examples: int, num_workers: int, epoch: int) -> float:
    """Samples/s out of ``DataLoader(dataset, num_workers=...)`` with the trainer's batches (the epoch's
    order, cut into batches), after the first batch: worker start-up is paid once per epoch, not per
    sample. With workers, the others have had a head start of at most one batch each by then, which
    ``examples`` of many batches make small."""
    dataset.set_epoch(epoch)
    order = np.concatenate(
        [epoch_order(len(dataset), epoch * 1000 + k, seed=0) for k in range(-(-examples // len(dataset)))]
    )[:examples]
    batches = [order[i : i + batch].tolist() for i in range(0, len(order), batch)]
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=num_workers)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    samples = sum(len(y) for _, y in iterator)
    return samples / (time.perf_counter() - start)


# ------------------------------------------------------------------------------------------------ steps


def step_times(
    net: ModelWithLoss,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    precision: str,
    steps: int,
) -> list[float]:
    """Seconds of each of ``steps`` training steps (the trainer's: autocast forward, backward, optimizer
    step, the loss read back as the trainer logs it)."""
    device = x.device
    amp = AMP_DTYPES.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
            loss, _ = net(x, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        float(loss.detach())  # waits for the device, as the trainer's running loss does
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def build_classifier(
    name: str, classes: int, device: torch.device
) -> tuple[ModelWithLoss, torch.optim.Optimizer, float]:
    """The conf's real-size model (random weights) with an AAM-softmax head and the trainer's SGD; the
    model's parameter count in millions."""
    conf = dataclasses.replace(load_conf(REPO / "conf" / "asv" / f"{name}.yaml"), checkpoint=None)
    torch.manual_seed(0)
    model = build_from_conf(conf)
    train = AsvTrainConf()
    head = AAMSoftmax(model.embedding_dim, classes, train.aam_scale, train.aam_margin)
    net = ModelWithLoss(model, head).to(device).train()
    optimizer = torch.optim.SGD(
        net.parameters(),
        lr=train.initial_lr,
        momentum=train.momentum,
        weight_decay=train.weight_decay,
        nesterov=True,
    )
    return net, optimizer, sum(p.numel() for p in model.parameters()) / 1e6


def training_batch(dataset: CropDataset, batch: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` augmented crops from the dataset and random labels among ``classes``."""
    dataset.set_epoch(0)
    x = torch.from_numpy(np.stack([dataset[i % len(dataset)][0] for i in range(batch)]))
    y = torch.from_numpy(np.random.default_rng(0).integers(0, classes, batch))
    return x, y


# ------------------------------------------------------------------------------------------------- main


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(DEFAULT_MODELS),
                   help=f"architectures (default: {' '.join(DEFAULT_MODELS)})")  # fmt: skip
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the steps run (cpu)")
    p.add_argument("--batch", type=int, help="crops per step and per loader batch (8 on CPU, 128 on cuda)")
    p.add_argument("--precision", choices=("fp32", *AMP_DTYPES),
                   help="autocast of the forward pass (fp32 on CPU, bf16 on cuda)")  # fmt: skip
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="torch threads of the training step, one row each (1 2; cuda: 1)")  # fmt: skip
    p.add_argument("--warmup", type=int, default=3, help="steps left out of the timing (3)")
    p.add_argument("--steps", type=int, default=5, help="timed steps; the median is shown (5)")
    p.add_argument("--classes", type=int, default=VOXCELEB2_SPEAKERS,
                   help=f"speakers of the AAM-softmax head ({VOXCELEB2_SPEAKERS}: VoxCeleb2)")  # fmt: skip
    p.add_argument("--crop_seconds", type=float, default=2.0, help="training crop (2.0)")
    p.add_argument("--utts", type=int, default=120, help="synthetic training utterances of 2-6 s (120)")
    p.add_argument("--loader_examples", type=int, default=800, help="crops per loader measurement (800)")
    p.add_argument("--loader_workers", type=int, default=2, help="workers of the scaling row (2)")
    p.add_argument("--repeats", type=int, default=3, help="loader measurements per row; median shown (3)")
    p.add_argument("--noise_seconds", type=float, default=60.0, help="synthetic MUSAN file length (60)")
    p.add_argument("--gpu_rate", type=float, default=2000.0,
                   help="a GPU training rate (samples/s) to size the loader for (2000)")  # fmt: skip
    args = p.parse_args()
    for key in ("batch", "warmup", "steps", "classes", "utts", "loader_examples", "repeats"):
        value = getattr(args, key)
        if value is not None and value < (0 if key == "warmup" else 2 if key == "classes" else 1):
            p.error(f"--{key} {value}: too small")

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA: torch sees no GPU here, nothing measured (run without --device cuda for the CPU)")
        return 0
    batch = args.batch or (128 if device.type == "cuda" else 8)
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    threads = args.threads if device.type == "cpu" else args.threads[:1]  # the GPU does the work
    crop = round(args.crop_seconds * SAMPLE_RATE)

    print(f"\n{machine_line(device)}\n")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lists = augmentation_lists(work, args.noise_seconds)
        train = TrainList.from_data_dir(training_dir(work / "train", args.utts, speakers=8))
        augmented = CropDataset(train, crop, seed=0, augment=Augmenter(lists, DEFAULT_WEIGHTS))
        clean = CropDataset(train, crop, seed=0)

        # ---- the loader (architecture-independent), in one thread as in a DataLoader worker
        torch.set_num_threads(1)
        rows = [
            ("decode + crop (no augmentation)", clean, 0),
            ("decode + crop + default mix", augmented, 0),
            (f"decode + crop + default mix, DataLoader(num_workers={args.loader_workers})",
             augmented, args.loader_workers),
        ]  # fmt: skip
        loader: dict[tuple[str, int], float] = {}
        print(
            f"### Data loader ({args.crop_seconds:g} s crops of {len(train)} FLAC utterances of 2-6 s, "
            f"batches of {batch}, {args.loader_examples} crops a run, median of {args.repeats})\n"
        )
        print("| pipeline | processes | samples/s | samples/s per worker |\n| --- | ---: | ---: | ---: |")
        for name, dataset, workers in rows:
            rates = [
                loader_rate(dataset, batch, args.loader_examples, workers, epoch)
                for epoch in range(args.repeats)
            ]
            rate = statistics.median(rates)
            loader[name, workers] = rate
            procs = f"{workers} workers" if workers else "1 (in process)"
            print(f"| {name} | {procs} | {rate:.0f} | {rate / max(workers, 1):.0f} |", flush=True)
        per_worker = loader["decode + crop + default mix", 0]

        # ---- the training step, per architecture and thread setting
        x, y = training_batch(augmented, batch, args.classes)
        x, y = x.to(device), y.to(device)
        print(f"\n### Training step ({device.type}, {precision}, batch {batch} x {args.crop_seconds:g} s, "
              f"AAM-softmax over {args.classes} speakers, SGD; {args.warmup} warm-up steps, median of "
              f"{args.steps})\n")  # fmt: skip
        print("Loader: the default-mix rate of one worker above. Workers needed: step rate / loader rate "
              "per worker, for one training process.\n")  # fmt: skip
        print("| model | params (M) | threads | step s | step samples/s | loader samples/s per worker "
              "| workers needed |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |")  # fmt: skip
        peaks = []
        for name in args.models:
            net, optimizer, params = build_classifier(name, args.classes, device)
            for t in threads:
                torch.set_num_threads(t)
                try:
                    step_times(net, optimizer, x, y, precision, args.warmup)
                    seconds = statistics.median(step_times(net, optimizer, x, y, precision, args.steps))
                except torch.cuda.OutOfMemoryError:
                    print(f"| {name} | {params:.1f} | {t} | out of GPU memory (smaller --batch?) | | | |")
                    optimizer.zero_grad(set_to_none=True)
                    break
                rate = batch / seconds
                print(f"| {name} | {params:.1f} | {t} | {seconds:.2f} | {rate:.1f} | {per_worker:.0f} "
                      f"| {rate / per_worker:.3f} |", flush=True)  # fmt: skip
            if device.type == "cuda":
                peaks.append(f"{name} {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
                torch.cuda.reset_peak_memory_stats(device)
            del net, optimizer
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if peaks:
            print(f"\nPeak GPU memory: {', '.join(peaks)}.")
        print(f"\nA training process at {args.gpu_rate:g} samples/s (a GPU) needs "
              f"{args.gpu_rate / per_worker:.1f} loader workers at {per_worker:.0f} samples/s each "
              f"(one CPU core per worker).")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
