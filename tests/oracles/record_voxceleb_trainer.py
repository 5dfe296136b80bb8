"""Record clovaai/voxceleb_trainer's own training augmentation (``DatasetLoader.py``), the fixture's oracle.

Run once, beside a checkout of voxceleb_trainer, in an environment with numpy, scipy, soundfile and torch
(``DatasetLoader.py`` imports torch; the project's own environment has all four):

    git clone https://github.com/clovaai/voxceleb_trainer
    python tests/oracles/record_voxceleb_trainer.py --voxceleb_trainer voxceleb_trainer \\
        --commit $(git -C voxceleb_trainer rev-parse HEAD) --out tests/fixtures/voxceleb_trainer_augment.npz

It writes small MUSAN-like and RIRS_NOISES-like trees (in the globs ``AugmentWAV`` reads, ``musan/<type>/
<source>/<name>/*.wav`` and ``rirs/<room>/<name>/*.wav``) and two training utterances, all 16-bit WAV made by
:func:`write_files` from fixed seeds, then calls ``train_dataset_loader(...)[[index]]``, the reference's
whole training example (crop, augmentation type, augmentation), once per case with its module's ``random``
replaced by a script: every ``random.random``, ``randint``, ``sample``, ``uniform`` and ``choice`` returns
the case's next scripted value (files named by their base names) and is logged with its arguments. It
stores each output (float32 as the loader returns it), the scripted draws, the logged calls, the files'
sha256 and the commit; the metadata is the JSON string ``meta`` of the ``.npz``. Only numbers are committed;
the reference's code stays outside the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
MAX_FRAMES = 10  # the loader's crop: MAX_FRAMES * 160 + 240 = 1840 samples
CROP = MAX_FRAMES * 160 + 240

# (relative path, kind of signal, samples, seed, peak): short noises wrap, long ones are cropped
FILES = (
    ("musan/noise/free-sound/noise-a/noise-a.wav", "noise", 1000, 11, 0.5),
    ("musan/noise/sound-bible/noise-b/noise-b.wav", "noise", 5000, 12, 0.3),
    ("musan/noise/sound-bible/noise-c/noise-c.wav", "noise", CROP, 13, 0.05),
    ("musan/music/fma/music-a/music-a.wav", "tones", 6000, 21, 0.4),
    ("musan/music/rfm/music-b/music-b.wav", "tones", 1500, 22, 0.6),
    *(
        (f"musan/speech/librivox/speech-{i}/speech-{i}.wav", "speech", 2500 + 700 * i, 30 + i, 0.5)
        for i in range(7)
    ),
    ("rirs/smallroom/Room001/Room001-00001.wav", "rir", 900, 41, 0.9),
    ("rirs/mediumroom/Room002/Room002-00003.wav", "rir", 1600, 42, 0.7),
    ("train/id00001/utt-loud.wav", "speech", 4000, 51, 0.6),
    ("train/id00002/utt-quiet.wav", "speech", 3000, 52, 0.004),  # mean power well under 1e-4
)
TRAIN_LIST = ("id00001 id00001/utt-loud.wav", "id00002 id00002/utt-quiet.wav")

# augtype (randint(0, 4)): 0 clean, 1 reverb, 2 music, 3 speech (babble), 4 noise. Scripted draws in the
# order the loader makes them: random() of the crop, randint(0, 4), then per type: choice (reverb); or
# randint(count), sample (files), then per file random() (its segment) and uniform (its SNR)
CASES = {
    "clean": dict(index=0, random=[0.25], randint=[0]),
    "reverb_small": dict(index=0, random=[0.5], randint=[1], choice=["Room001-00001.wav"]),
    "reverb_medium_quiet": dict(index=1, random=[0.9], randint=[1], choice=["Room002-00003.wav"]),
    "music_long": dict(index=0, random=[0.1], randint=[2, 1], sample=[["music-a.wav"]], uniform=[7.3],
                       extra_random=[0.37]),
    "music_short_wraps": dict(index=0, random=[0.7], randint=[2, 1], sample=[["music-b.wav"]], uniform=[15.0],
                              extra_random=[0.8]),
    "babble_5": dict(index=0, random=[0.3], randint=[3, 5],
                     sample=[[f"speech-{i}.wav" for i in (6, 0, 3, 1, 5)]],
                     uniform=[13.0, 20.0, 16.5, 14.25, 19.9], extra_random=[0.0, 0.999, 0.5, 0.25, 0.75]),
    "babble_3": dict(index=0, random=[0.6], randint=[3, 3],
                     sample=[["speech-2.wav", "speech-4.wav", "speech-0.wav"]],
                     uniform=[18.0, 13.5, 15.0], extra_random=[0.1, 0.2, 0.3]),
    "noise_short_wraps_0db": dict(index=0, random=[0.2], randint=[4, 1], sample=[["noise-a.wav"]],
                                  uniform=[0.0], extra_random=[0.6]),
    "noise_long_15db": dict(index=0, random=[0.95], randint=[4, 1], sample=[["noise-b.wav"]], uniform=[15.0],
                            extra_random=[0.999]),
    "noise_quiet_crop": dict(index=1, random=[0.4], randint=[4, 1], sample=[["noise-c.wav"]], uniform=[5.0],
                             extra_random=[0.3]),
}  # fmt: skip


def signal(kind: str, samples: int, seed: int, peak: float) -> np.ndarray:
    """A reproducible test signal (numpy only), scaled to ``peak`` and rounded to 16-bit PCM values."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / SAMPLE_RATE
    if kind == "noise":
        x = np.cumsum(rng.standard_normal(samples)) * 0.05 + rng.standard_normal(samples)
    elif kind == "tones":
        x = sum(
            np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / (k + 1) for k, f in enumerate((220, 330, 550))
        )
    elif kind == "speech":
        envelope = 0.1 + np.abs(np.sin(2 * np.pi * 3 * t + rng.uniform(0, 3)))
        x = envelope * (np.sin(2 * np.pi * rng.uniform(100, 200) * t) + 0.5 * rng.standard_normal(samples))
    else:  # rir: silence until the direct path, then an exponentially decaying tail
        onset = int(rng.integers(20, 60))
        x = np.zeros(samples)
        x[onset] = 1.0
        tail = rng.standard_normal(samples - onset - 1) * np.exp(-np.arange(samples - onset - 1) / 200)
        x[onset + 1 :] = 0.3 * tail
    x = peak * x / np.max(np.abs(x))
    return np.round(x * 32767) / 32768


def write_files(root: Path) -> dict[str, str]:
    """Write every file of :data:`FILES` under ``root`` (16-bit WAV) and the train list; their sha256."""
    digests = {}
    for relative, kind, samples, seed, peak in FILES:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, signal(kind, samples, seed, peak), SAMPLE_RATE, subtype="PCM_16", format="WAV")
        digests[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    (root / "train_list.txt").write_text("".join(f"{line}\n" for line in TRAIN_LIST))
    return digests


class ScriptedRandom:
    """Stands in for the ``random`` module inside ``DatasetLoader``: each call returns the case's next
    value for that function and is logged (the population of ``sample`` and ``choice`` by its size)."""

    def __init__(self, case: dict) -> None:
        self.queues = {
            "random": list(case.get("random", [])) + list(case.get("extra_random", [])),
            "randint": list(case.get("randint", [])),
            "sample": list(case.get("sample", [])),
            "uniform": list(case.get("uniform", [])),
            "choice": list(case.get("choice", [])),
        }
        self.calls: list[list] = []

    def _next(self, name: str, args: list):
        if not self.queues[name]:
            raise RuntimeError(f"the reference asked for one more {name}{tuple(args)} than scripted")
        value = self.queues[name].pop(0)
        self.calls.append([name, args, value])
        return value

    def random(self) -> float:
        return self._next("random", [])

    def randint(self, a: int, b: int) -> int:
        value = self._next("randint", [a, b])
        assert a <= value <= b, (a, b, value)
        return value

    def uniform(self, a: float, b: float) -> float:
        value = self._next("uniform", [a, b])
        assert a <= value <= b, (a, b, value)
        return value

    def sample(self, population: list[str], k: int) -> list[str]:
        names = self._next("sample", [len(population), k])
        assert len(names) == k
        by_name = {Path(p).name: p for p in population}
        return [by_name[n] for n in names]

    def choice(self, population: list[str]) -> str:
        name = self._next("choice", [len(population)])
        return {Path(p).name: p for p in population}[name]

    def left_over(self) -> dict[str, list]:
        return {name: queue for name, queue in self.queues.items() if queue}


def _load(folder: Path):
    spec = importlib.util.spec_from_file_location(
        "voxceleb_trainer_DatasetLoader", folder / "DatasetLoader.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voxceleb_trainer", required=True, type=Path, help="its checkout (root)")
    parser.add_argument("--commit", required=True, help="the checkout's git commit (recorded)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    loader_module = _load(args.voxceleb_trainer)
    arrays: dict[str, np.ndarray] = {}
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        digests = write_files(root)
        dataset = loader_module.train_dataset_loader(
            train_list=str(root / "train_list.txt"),
            augment=True,
            musan_path=str(root / "musan"),
            rir_path=str(root / "rirs"),
            max_frames=MAX_FRAMES,
            train_path=str(root / "train"),
        )
        for name, case in CASES.items():
            scripted = ScriptedRandom(case)
            loader_module.random = scripted
            feat, label = dataset[[case["index"]]]
            if scripted.left_over():
                raise SystemExit(f"{name}: scripted draws left unused: {scripted.left_over()}")
            out = feat.numpy()
            assert out.shape == (1, CROP), out.shape
            arrays[name] = out[0]
            cases[name] = {"script": case, "calls": scripted.calls, "label": int(label)}
    import scipy
    import torch

    meta = {
        "oracle": "clovaai/voxceleb_trainer DatasetLoader.py: train_dataset_loader with AugmentWAV",
        "commit": args.commit,
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "soundfile": sf.__version__,
            "torch": torch.__version__,
        },
        "recorder": "tests/oracles/record_voxceleb_trainer.py",
        "max_frames": MAX_FRAMES,
        "crop_samples": CROP,
        "files": digests,
        "augtypes": {"0": "clean", "1": "reverb", "2": "music", "3": "speech", "4": "noise"},
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta, indent=1)), **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
