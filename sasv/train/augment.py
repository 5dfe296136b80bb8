"""Training augmentation of the reference speaker recipes (wespeaker, clovaai/voxceleb_trainer): each example
is left clean, reverberated with a simulated room impulse response (RIRS_NOISES), or mixed with MUSAN noise,
music or babble (3-8 overlapping speech files) at a random SNR.

Everything random comes from the caller's ``rng`` (a :func:`sasv.train.data.example_rng`), so an augmented
example is a function of (seed, epoch, index) like its crop: runs stay reproducible and resumable, whatever
the worker or rank. Speed matters (one augmentation per training example): file lengths are read once, when
the lists are loaded, and only the frames a mix needs are decoded, never a whole minutes-long MUSAN file.

Integration: ``augment = Augmenter(AugmentationLists.from_dirs("data/musan", "data/rirs"), DEFAULT_WEIGHTS)``
then, in the dataset, ``crop = augment(random_crop(wav, n, rng), rng)`` with the same ``rng``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from sasv.audio import SAMPLE_RATE, AudioError
from sasv.datadir import DataDirError, read_wav_scp
from sasv.progress import progress_bar

KINDS = ("clean", "reverb", "noise", "music", "babble")
# voxceleb_trainer draws uniformly among no augmentation, reverb, music, babble and noise
DEFAULT_WEIGHTS: dict[str, float] = {kind: 1.0 for kind in KINDS}
# SNR ranges (dB) of voxceleb_trainer; a babble file gets its own SNR, so 3-8 of them sum to a lower one
SNR_RANGES: dict[str, tuple[float, float]] = {
    "noise": (0.0, 15.0),
    "music": (5.0, 15.0),
    "babble": (13.0, 20.0),
}
BABBLE_FILES = (3, 8)  # how many speech files a babble mix overlaps (inclusive)
NOISE_LISTS = ("noise", "music", "speech")  # the MUSAN lists, <musan_dir>/<name>/wav.scp
_LIST_OF_KIND = {"noise": "noise", "music": "music", "babble": "speech"}


@dataclass(frozen=True)
class AudioFile:
    """One augmentation file and its length in samples (read once: a crop needs it, decoding does not)."""

    path: str
    frames: int


def _info(path: str) -> AudioFile:
    """The file's length, after checking it is audio the training crops can be mixed with (16 kHz mono)."""
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as e:
        problem = "does not exist" if not Path(path).is_file() else f"cannot read audio ({e})"
        raise AudioError(f"{path}: augmentation file {problem}") from e
    if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.frames <= 0:
        raise AudioError(
            f"{path}: {info.samplerate} Hz, {info.channels} channel(s), {info.frames} samples; augmentation "
            f"files must be {SAMPLE_RATE} Hz mono audio"
        )
    return AudioFile(path, int(info.frames))


def _read_list(wav_scp: Path, what: str) -> list[str]:
    if not wav_scp.parent.is_dir():
        raise DataDirError(f"{wav_scp.parent}: {what} folder does not exist (run sasv prepare_augmentation)")
    if not wav_scp.is_file():
        raise DataDirError(f"{wav_scp}: {what} list does not exist (run sasv prepare_augmentation)")
    return list(read_wav_scp(wav_scp).values())  # an empty list is an error there


@dataclass(frozen=True)
class AugmentationLists:
    """The MUSAN noise, music and speech files and the RIRs, each with its length."""

    noise: tuple[AudioFile, ...]
    music: tuple[AudioFile, ...]
    speech: tuple[AudioFile, ...]
    rirs: tuple[AudioFile, ...]

    @classmethod
    def from_dirs(cls, musan_dir: str | Path, rirs_dir: str | Path) -> AugmentationLists:
        """Read ``<musan_dir>/{noise,music,speech}/wav.scp`` and ``<rirs_dir>/wav.scp`` (written by
        ``sasv prepare_augmentation``) and every file's header. A missing list is an error, never a run
        that quietly trains without that augmentation."""
        lists = {
            name: _read_list(Path(musan_dir) / name / "wav.scp", f"MUSAN {name}") for name in NOISE_LISTS
        }
        lists["rirs"] = _read_list(Path(rirs_dir) / "wav.scp", "RIR")
        total = sum(map(len, lists.values()))
        files: dict[str, tuple[AudioFile, ...]] = {}
        with progress_bar(total, desc="augmentation files", unit="file") as bar:
            for name, paths in lists.items():
                files[name] = tuple(_info(p) for p in paths)
                bar.update(len(paths))
        return cls(**files)


def _read(path: str, start: int = 0, frames: int = -1) -> np.ndarray:
    try:
        data, _ = sf.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(f"{path}: cannot decode augmentation audio: {e}") from e
    return data[:, 0]


def read_crop(file: AudioFile, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` consecutive samples from a random offset, decoding only those; a shorter file is
    repeated (periodic wrap) from a random offset, as the reference loaders extend short noises."""
    if file.frames >= samples:
        start = int(rng.integers(0, file.frames - samples + 1))
        out = _read(file.path, start, samples)
    else:
        start = int(rng.integers(0, file.frames))
        whole = _read(file.path)
        out = np.tile(whole, samples // max(whole.shape[0], 1) + 2)[start : start + samples]
    if out.shape[0] != samples:
        raise AudioError(
            f"{file.path}: {out.shape[0]} samples read where its header promised {samples} at {start}: "
            f"the file changed since the augmentation lists were read"
        )
    return out


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


class Augmenter:
    """``augment(wav, rng)``: one kind drawn by ``weights`` and applied; same length, float32, in [-1, 1].

    ``snr_ranges`` overrides :data:`SNR_RANGES` per kind (``{"noise": (10, 10)}`` fixes the SNR) and
    ``babble_files`` the (min, max) number of overlapping speech files.
    """

    def __init__(
        self,
        lists: AugmentationLists,
        weights: Mapping[str, float],
        snr_ranges: Mapping[str, tuple[float, float]] | None = None,
        babble_files: tuple[int, int] = BABBLE_FILES,
    ) -> None:
        for kind, weight in weights.items():
            if kind not in KINDS:
                raise ValueError(f"augmentation weights: unknown kind {kind!r}; expected some of {KINDS}")
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"augmentation weights: {kind} is {weight}; weights must be finite and >= 0")
        total = float(sum(weights.values()))
        if total <= 0:
            raise ValueError(
                f"augmentation weights: all zero ({dict(weights)}); give some kind (clean) weight"
            )
        self.lists = lists
        self.kinds = [k for k in KINDS if weights.get(k, 0) > 0]
        self.probs = np.array([weights[k] for k in self.kinds]) / total
        for kind in self.kinds:
            source = "rirs" if kind == "reverb" else _LIST_OF_KIND.get(kind)
            if source and not getattr(lists, source):
                raise ValueError(f"augmentation weights: {kind} has weight but the {source} list is empty")
        self.snr_ranges = {**SNR_RANGES, **(snr_ranges or {})}
        for kind, (lo, hi) in self.snr_ranges.items():
            if kind not in SNR_RANGES or not lo <= hi:
                raise ValueError(f"snr_ranges: {kind} ({lo}, {hi}) is not an additive kind with min <= max")
        if not 1 <= babble_files[0] <= babble_files[1]:
            raise ValueError(f"babble_files {babble_files}: expected 1 <= min <= max")
        self.babble_files = babble_files

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The augmented waveform; the draws come from ``rng`` only, so equal streams give equal output."""
        if wav.ndim != 1 or wav.shape[0] == 0:
            raise ValueError(f"expected a non-empty 1-D waveform, got shape {wav.shape}")
        return self.apply(self.draw_kind(rng), wav, rng)

    def draw_kind(self, rng: np.random.Generator) -> str:
        """The kind ``__call__`` applies: the first draw from ``rng``, even when only one kind has weight."""
        return self.kinds[int(rng.choice(len(self.kinds), p=self.probs))]

    def apply(self, kind: str, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Apply one given kind (what ``__call__`` does after drawing it)."""
        wav = np.asarray(wav, dtype=np.float32)
        if kind == "clean":
            out = wav.copy()
        elif kind == "reverb":
            out = self.reverberate(wav, rng)
        else:
            out = self.add_noise(kind, wav, rng)
        peak = float(np.max(np.abs(out)))
        return out / peak if peak > 1.0 else out

    def reverberate(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Convolve with a random RIR scaled to unit energy (the reference recipes' normalisation) and keep
        the input's length, starting at the RIR's direct path (its peak). wespeaker cuts the full convolution
        from sample 0, which also delays the speech by the source-microphone propagation time."""
        rir_file = self.lists.rirs[int(rng.integers(len(self.lists.rirs)))]
        rir = _read(rir_file.path)
        energy = float(np.sum(np.square(rir, dtype=np.float64)))
        if energy <= 0:
            raise AudioError(f"{rir_file.path}: the room impulse response is all zeros")
        rir = rir / np.float32(math.sqrt(energy))
        direct = int(np.argmax(np.abs(rir)))
        n = wav.shape[0]
        return fftconvolve(wav, rir)[direct : direct + n].astype(np.float32, copy=False)

    def add_noise(self, kind: str, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add one noise or music file, or 3-8 speech files (babble), each scaled so that the power ratio
        of the input to it is the SNR drawn for it."""
        files: Sequence[AudioFile] = getattr(self.lists, _LIST_OF_KIND[kind])
        count = int(rng.integers(self.babble_files[0], self.babble_files[1] + 1)) if kind == "babble" else 1
        picks = rng.choice(len(files), size=count, replace=count > len(files))
        lo, hi = self.snr_ranges[kind]
        signal_power = _power(wav)
        out = wav.astype(np.float64)
        for i in picks:
            noise = read_crop(files[int(i)], wav.shape[0], rng)
            snr = float(rng.uniform(lo, hi))
            noise_power = _power(noise)
            if noise_power > 0:
                out += noise * math.sqrt(signal_power / (noise_power * 10.0 ** (snr / 10.0)))
        return out.astype(np.float32)


def bench_augmentation(
    augmenter: Augmenter, paths: Sequence[str], crop_samples: int = 2 * SAMPLE_RATE, examples: int = 300
) -> float:
    """Augmented crops per second in this process, the way a training worker makes them: decode a training
    file, crop it, augment the crop (a measurement to print, never to assert in a test)."""
    from sasv.audio import read_audio
    from sasv.train.data import example_rng, random_crop  # torch, only when benchmarking

    start = time.perf_counter()
    for index in range(examples):
        rng = example_rng(0, 0, index)
        crop = random_crop(read_audio(paths[index % len(paths)]), crop_samples, rng)
        augmenter(crop, rng)
    return examples / (time.perf_counter() - start)
