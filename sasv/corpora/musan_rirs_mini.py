"""Small MUSAN-like and RIRS_NOISES-like trees in the exact layouts of the real corpora (tests, benches).

The real corpora are 11 GB and 1.2 GB downloads; the preparation tool and the augmenter must still be tested
on the layouts they will meet, distractors included (the ANNOTATIONS and LICENSE files of MUSAN, the
rir_list and room_info files and the real RIRs and point-source noises of RIRS_NOISES, which the recipe
does not use). The audio only has to behave like the real thing where augmentation looks: coloured noise,
tonal "music", speech-like babble (:mod:`sasv.corpora.synthvoice`) and exponentially decaying RIRs with a
direct path, all 16 kHz 16-bit WAV like the originals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from sasv.audio import SAMPLE_RATE
from sasv.corpora.musan_rirs import ROOMS
from sasv.corpora.synthvoice import draw_voice, synthesize
from sasv.fileio import atomic_output, atomic_write_text

# the source sub-folders of MUSAN 0.1 (a subset of music's five) and the rooms of RIRS_NOISES/simulated_rirs
MUSAN_SOURCES = {
    "noise": ("free-sound", "sound-bible"),
    "music": ("fma", "rfm"),
    "speech": ("librivox", "us-gov"),
}


@dataclass(frozen=True)
class SyntheticAugmentationCorpora:
    """Where the trees are: ``musan_root`` is the ``musan/`` folder, ``rirs_root`` ``RIRS_NOISES/``."""

    musan_root: Path
    rirs_root: Path


def _write(path: Path, wav: np.ndarray, peak: float = 0.5) -> None:
    wav = wav * (peak / max(float(np.max(np.abs(wav))), 1e-9))
    with atomic_output(path) as tmp:
        sf.write(tmp, wav.astype(np.float32), SAMPLE_RATE, subtype="PCM_16", format="WAV")


def coloured_noise(rng: np.random.Generator, samples: int) -> np.ndarray:
    """White noise through a random one-pole filter: from hiss to rumble, like MUSAN's noise files."""
    pole = rng.uniform(-0.5, 0.98)
    return lfilter([1.0], [1.0, -pole], rng.standard_normal(samples))


def tonal_music(rng: np.random.Generator, samples: int) -> np.ndarray:
    """Notes of a few harmonics each, on a steady beat: a tonal, non-speech signal with stable pitches."""
    t = np.arange(samples) / SAMPLE_RATE
    beat = int(rng.uniform(0.2, 0.5) * SAMPLE_RATE)
    out = np.zeros(samples)
    for start in range(0, samples, beat):
        n = min(beat, samples - start)
        f0 = 110.0 * 2 ** (int(rng.integers(0, 36)) / 12)
        note = sum(np.sin(2 * np.pi * f0 * h * t[:n]) / h for h in range(1, 5))
        out[start : start + n] = note * np.exp(-3.0 * np.arange(n) / beat)
    return out + 0.01 * rng.standard_normal(samples)


def decaying_rir(rng: np.random.Generator) -> np.ndarray:
    """0.2-0.5 s: a direct-path impulse after a short propagation delay, then a noise tail decaying 60 dB
    over the response (its reverberation time)."""
    samples = int(rng.uniform(0.2, 0.5) * SAMPLE_RATE)
    delay = int(rng.integers(5, 60))
    rir = np.zeros(samples)
    rir[delay] = 1.0
    tail = np.arange(samples - delay - 1)
    decay = np.exp(-np.log(1000.0) * tail / tail.size)
    rir[delay + 1 :] = rng.uniform(0.1, 0.3) * rng.standard_normal(tail.size) * decay
    return rir


def make_musan_and_rirs(
    root: str | Path, seed: int = 0, files_per_source: int = 2, seconds: float = 4.0
) -> SyntheticAugmentationCorpora:
    """Write ``<root>/musan/{noise,music,speech}/<source>/*.wav`` and
    ``<root>/RIRS_NOISES/simulated_rirs/<room>/Room00N/*.wav`` (plus the real corpora's other files).

    Files last ``seconds``, except the first of each MUSAN source, 1 s: shorter than a training crop, so the
    wrap-around path is exercised too. ``files_per_source`` RIRs per room folder.
    """
    root = Path(root)
    rng = np.random.default_rng([seed, 71])
    musan = root / "musan"
    atomic_write_text(musan / "README", "synthetic MUSAN-like corpus (sasv.corpora.musan_rirs_mini)\n")
    long = int(seconds * SAMPLE_RATE)
    for kind, sources in MUSAN_SOURCES.items():
        for source in sources:
            folder = musan / kind / source
            atomic_write_text(folder / "ANNOTATIONS", "synthetic\n")
            atomic_write_text(folder / "LICENSE", "synthetic, public domain\n")
            for i in range(files_per_source):
                samples = SAMPLE_RATE if i == 0 else long
                if kind == "noise":
                    wav = coloured_noise(rng, samples)
                elif kind == "music":
                    wav = tonal_music(rng, samples)
                else:
                    voice = draw_voice(rng, "female" if rng.random() < 0.5 else "male")
                    wav = synthesize(voice, samples, rng)
                _write(folder / f"{kind}-{source}-{i:04d}.wav", wav)
    rirs = root / "RIRS_NOISES"
    atomic_write_text(rirs / "README", "synthetic RIRS_NOISES-like corpus (sasv.corpora.musan_rirs_mini)\n")
    for r, room in enumerate(ROOMS):
        lines = []
        for k in range(1, 3):
            for i in range(1, files_per_source + 1):
                name = f"Room{k:03d}-{i:05d}"
                _write(
                    rirs / "simulated_rirs" / room / f"Room{k:03d}" / f"{name}.wav", decaying_rir(rng), 0.9
                )
                lines.append(
                    f"--rir-id {room}-{name} --room-id {room}-Room{k:03d} {room}/Room{k:03d}/{name}.wav"
                )
        atomic_write_text(rirs / "simulated_rirs" / room / "rir_list", "".join(x + "\n" for x in lines))
        atomic_write_text(rirs / "simulated_rirs" / room / "room_info", f"{room}-Room001 synthetic {r}\n")
    # the parts of RIRS_NOISES the recipe does not use: never scanned into the lists
    _write(
        rirs / "real_rirs_isotropic_noises" / "air_type1_air_binaural_aula_carolina_1_1.wav",
        decaying_rir(rng),
    )
    _write(rirs / "pointsource_noises" / "noise-free-sound-0001.wav", coloured_noise(rng, SAMPLE_RATE))
    return SyntheticAugmentationCorpora(musan, rirs)
