#!/usr/bin/env python3
"""Training augmentation speed: augmented crops per second in one process, per kind and for the default mix.

What one DataLoader worker does per training example (:func:`sasv.train.augment.bench_augmentation`):
decode an ASVspoof-like FLAC utterance (3-6 s), take a random crop, augment it. ``clean`` is decode + crop
alone, the floor the augmentation adds to. By default the MUSAN-like noise, music and speech files are
``--noise_seconds`` long (60 s: real MUSAN files last minutes, so decoding a whole file per example would
dominate), written with :mod:`sasv.corpora.musan_rirs_mini`; ``--musan_dir/--rirs_dir`` measure the
real lists written by ``sasv prepare_augmentation`` instead. Markdown to stdout.

    OMP_NUM_THREADS=1 python bench/augmentation.py
    OMP_NUM_THREADS=1 python bench/augmentation.py --musan_dir data/musan --rirs_dir data/rirs
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from sasv.audio import SAMPLE_RATE
from sasv.bin.prepare_augmentation import main as prepare_augmentation
from sasv.corpora.musan_rirs_mini import make_musan_and_rirs
from sasv.corpora.synthvoice import draw_voice, synthesize
from sasv.train.augment import DEFAULT_WEIGHTS, KINDS, AugmentationLists, Augmenter, bench_augmentation


def training_files(folder: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` speech-like 16-bit FLAC utterances of 3-6 s, like the ASVspoof 2019 LA training files."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        voice = draw_voice(rng, "female" if i % 2 else "male")
        wav = 0.5 * synthesize(voice, int(rng.uniform(3, 6) * SAMPLE_RATE), rng)
        path = folder / f"utt{i:03d}.flac"
        sf.write(path, wav, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
        paths.append(str(path))
    return paths


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--musan_dir", type=Path, help="real lists: <dir>/{noise,music,speech}/wav.scp")
    p.add_argument("--rirs_dir", type=Path, help="real lists: <dir>/wav.scp")
    p.add_argument("--noise_seconds", type=float, default=60.0, help="synthetic MUSAN file length (60)")
    p.add_argument("--crop_seconds", type=float, default=2.0, help="training crop (2.0)")
    p.add_argument("--examples", type=int, default=600, help="crops per measurement (600)")
    p.add_argument("--repeats", type=int, default=3, help="measurements per row; the median is shown (3)")
    args = p.parse_args()
    if (args.musan_dir is None) != (args.rirs_dir is None):
        p.error("--musan_dir and --rirs_dir go together")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.musan_dir is None:
            corpora = make_musan_and_rirs(
                work / "corpora", seed=0, files_per_source=4, seconds=args.noise_seconds
            )
            lists_dir = work / "data"
            argv = ["--musan_root", str(corpora.musan_root), "--rirs_root", str(corpora.rirs_root)]
            prepare_augmentation([*argv, "--out", str(lists_dir)])
            args.musan_dir, args.rirs_dir = lists_dir / "musan", lists_dir / "rirs"
        lists = AugmentationLists.from_dirs(args.musan_dir, args.rirs_dir)
        (work / "train").mkdir()
        paths = training_files(work / "train", 40)
        crop = int(args.crop_seconds * SAMPLE_RATE)
        rows = [(kind, {kind: 1.0}) for kind in KINDS] + [("default mix", DEFAULT_WEIGHTS)]
        threads = os.environ.get("OMP_NUM_THREADS")
        print(f"\n{platform.processor() or platform.machine()}, OMP_NUM_THREADS={threads}")
        print(f"{args.crop_seconds:g} s crops, {args.examples} per measurement, median of {args.repeats}\n")
        print("| augmentation | crops/s per process |\n|---|---|")
        for name, weights in rows:
            augmenter = Augmenter(lists, weights)
            rates = [bench_augmentation(augmenter, paths, crop, args.examples) for _ in range(args.repeats)]
            print(f"| {name} | {float(np.median(rates)):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
