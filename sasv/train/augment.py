"""Training augmentation of clovaai/voxceleb_trainer (``DatasetLoader.py``'s ``AugmentWAV``): each example is
left clean, reverberated with a simulated room impulse response (RIRS_NOISES), or mixed with MUSAN noise,
music or babble (3-7 overlapping speech files) at a random SNR.

The mixing is voxceleb_trainer's, held to outputs its code produced (``tests/train/test_augment.py``,
``tests/fixtures/voxceleb_trainer_augment.npz``): a noise gets the gain that puts ``10 log10(P + 1e-4)`` of
the crop :data:`POWER_FLOOR` SNR dB above that of the noise (powers floored, as wespeaker floors them too);
the reverberant crop is the first samples of the full convolution with the unit-energy RIR (so it starts
with the RIR's onset delay); a noise segment starts at ``int(u * (frames - samples))`` and a file no longer
than the crop is wrapped from its start; nothing is rescaled afterwards. Where this module differs, on
purpose: the kinds are drawn with the conf's weights (voxceleb_trainer: uniform, the default here), a list
shorter than the babble count is drawn with repeats (voxceleb_trainer's ``random.sample`` fails), and the
draws come from a numpy ``Generator`` (the per-example stream) rather than Python's global ``random``.

Everything random comes from the caller's ``rng`` (a :func:`sasv.train.data.example_rng`), so an augmented
example is a function of (seed, epoch, index) like its crop: runs stay reproducible and resumable, whatever
the worker or rank. Speed matters (one augmentation per training example): file lengths are read once, when
the lists are loaded, and only the frames a mix needs are decoded, never a whole minutes-long MUSAN file.

Integration: ``augment = Augmenter(AugmentationLists.from_dirs("data/musan", "data/rirs"), DEFAULT_WEIGHTS)``
then, in the dataset, ``crop = augment(random_crop(wav, n, rng), rng)`` with the same ``rng``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from sasv.audio import SAMPLE_RATE, AudioError
from sasv.corpora.datadir import DataDirError, read_wav_scp
from sasv.progress import progress_bar

KINDS = ("clean", "reverb", "noise", "music", "babble")
# voxceleb_trainer draws uniformly among no augmentation, reverb, music, babble and noise
DEFAULT_WEIGHTS: dict[str, float] = {kind: 1.0 for kind in KINDS}
# SNR ranges (dB) of voxceleb_trainer; a babble file gets its own SNR, so 3-7 of them sum to a lower one
SNR_RANGES: dict[str, tuple[float, float]] = {
    "noise": (0.0, 15.0),
    "music": (5.0, 15.0),
    "babble": (13.0, 20.0),
}
BABBLE_FILES = (3, 7)  # how many speech files a babble mix overlaps (inclusive; voxceleb_trainer, Kaldi)
POWER_FLOOR = 1e-4
"""Added to the mean power of the crop and of each noise before the SNR gain (voxceleb_trainer's and
wespeaker's ``10 * log10(mean(x ** 2) + 1e-4)``): a crop quieter than -40 dBFS gets its noise as if it were
at -40 dBFS, and a silent one still gets noise, where exact powers would add none."""
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

    def fingerprint(self) -> str:
        """sha256 of every list's files and lengths: a resumed run must draw from the same files."""
        text = "".join(
            f"{name} {f.path} {f.frames}\n" for name in ("noise", "music", "speech", "rirs")
            for f in getattr(self, name)
        )  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()


def _read(path: str, start: int = 0, frames: int = -1) -> np.ndarray:
    try:
        data, _ = sf.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(f"{path}: cannot decode augmentation audio: {e}") from e
    return data[:, 0]


def noise_start(frames: int, samples: int, position: float) -> int:
    """Where a ``samples``-long segment of a ``frames``-long file starts for a uniform draw ``position`` in
    [0, 1): ``int(position * (frames - samples))``, voxceleb_trainer's ``loadWAV`` (which never draws the
    last possible offset); 0 for a file no longer than the segment, which is then wrapped from its start."""
    if not 0.0 <= position < 1.0:
        raise ValueError(f"position must be in [0, 1), got {position}")
    return int(position * (frames - samples)) if frames > samples else 0


def read_segment(file: AudioFile, samples: int, start: int) -> np.ndarray:
    """``samples`` consecutive samples from ``start``, decoding only those; a file no longer than that is
    repeated (periodic wrap) from ``start``, as the reference loaders extend short noises."""
    if file.frames >= samples:
        out = _read(file.path, start, samples)
    else:
        whole = _read(file.path)
        out = np.tile(whole, samples // max(whole.shape[0], 1) + 2)[start : start + samples]
    if out.shape[0] != samples:
        raise AudioError(
            f"{file.path}: {out.shape[0]} samples read where its header promised {samples} at {start}: "
            f"the file changed since the augmentation lists were read"
        )
    return out


def read_crop(file: AudioFile, samples: int, rng: np.random.Generator) -> np.ndarray:
    """A ``samples``-long segment of ``file`` at a random offset (:func:`noise_start` of one draw)."""
    return read_segment(file, samples, noise_start(file.frames, samples, float(rng.random())))


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def add_noises(wav: np.ndarray, noises: Sequence[np.ndarray], snrs_db: Sequence[float]) -> np.ndarray:
    """``wav`` plus each noise scaled to its SNR below it, powers floored by :data:`POWER_FLOOR`:
    gain ``sqrt((P_wav + floor) / ((P_noise + floor) * 10 ** (snr / 10)))`` (float32 out)."""
    signal_power = _power(wav) + POWER_FLOOR
    total = np.zeros(wav.shape[0])
    for noise, snr in zip(noises, snrs_db, strict=True):
        gain = math.sqrt(signal_power / ((_power(noise) + POWER_FLOOR) * 10.0 ** (snr / 10.0)))
        total += gain * noise.astype(np.float64)
    return (total + wav.astype(np.float64)).astype(np.float32)


def reverberate(wav: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``wav`` convolved with ``rir`` scaled to unit energy, the first ``len(wav)`` samples of the full
    convolution (voxceleb_trainer and wespeaker cut it there, so the speech is delayed by the RIR's onset:
    the source-microphone propagation time)."""
    rir = rir.astype(np.float64)
    energy = float(np.sum(np.square(rir)))
    if energy <= 0:
        raise ValueError("the room impulse response is all zeros")
    out = fftconvolve(wav.astype(np.float64), rir / math.sqrt(energy))[: wav.shape[0]]
    return out.astype(np.float32)


@dataclass(frozen=True)
class Mix:
    """One augmentation as drawn: the kind, its files (one RIR, or the noise / music / speech files) and,
    for additive kinds, where each noise segment lies (``positions``, uniform draws in [0, 1) that
    :func:`noise_start` maps) and its SNR in dB. :meth:`Augmenter.render` applies it."""

    kind: str
    files: tuple[AudioFile, ...] = ()
    positions: tuple[float, ...] = ()
    snrs_db: tuple[float, ...] = ()


class Augmenter:
    """``augment(wav, rng)``: one kind drawn by ``weights`` and applied; same length, float32.

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
        return self.render(self.draw(rng), wav)

    def draw_kind(self, rng: np.random.Generator) -> str:
        """The kind ``__call__`` applies: the first draw from ``rng``, even when only one kind has weight."""
        return self.kinds[int(rng.choice(len(self.kinds), p=self.probs))]

    def draw(self, rng: np.random.Generator) -> Mix:
        """Everything one augmentation draws, in voxceleb_trainer's order: the kind; an RIR; or the number
        of files (babble), the files (without repeats while the list allows), then per file its segment's
        position and its SNR."""
        kind = self.draw_kind(rng)
        if kind == "clean":
            return Mix(kind)
        if kind == "reverb":
            return Mix(kind, (self.lists.rirs[int(rng.integers(len(self.lists.rirs)))],))
        files: Sequence[AudioFile] = getattr(self.lists, _LIST_OF_KIND[kind])
        count = int(rng.integers(self.babble_files[0], self.babble_files[1] + 1)) if kind == "babble" else 1
        picks = rng.choice(len(files), size=count, replace=count > len(files))
        lo, hi = self.snr_ranges[kind]
        positions, snrs = [], []
        for _ in picks:
            positions.append(float(rng.random()))
            snrs.append(float(rng.uniform(lo, hi)))
        return Mix(kind, tuple(files[int(i)] for i in picks), tuple(positions), tuple(snrs))

    def render(self, mix: Mix, wav: np.ndarray) -> np.ndarray:
        """Apply a drawn :class:`Mix` to ``wav`` (float32 out, its length); decodes only what it needs."""
        wav = np.asarray(wav, dtype=np.float32)
        if mix.kind == "clean":
            return wav.copy()
        if mix.kind == "reverb":
            (rir_file,) = mix.files
            try:
                return reverberate(wav, _read(rir_file.path))
            except ValueError as e:
                raise AudioError(f"{rir_file.path}: {e}") from e
        n = wav.shape[0]
        placed = zip(mix.files, mix.positions, strict=True)
        noises = [read_segment(f, n, noise_start(f.frames, n, u)) for f, u in placed]
        return add_noises(wav, noises, mix.snrs_db)


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
