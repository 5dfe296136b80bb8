"""Reading and validating audio, and cutting it the way the reference SASV 2022 system does.

Embedding protocol: the full utterance plus five equally spaced 3 s segments (300 frames x 160 + 240 =
48,240 samples); an utterance no longer than one segment is first extended by periodic wrap. CM input: the
first 64,600 samples, the waveform tiled when shorter (clovaai/aasist ``pad``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from sasv.errors import SasvError

SAMPLE_RATE = 16000
SEGMENT_SAMPLES = 300 * 160 + 240  # 48,240
NUM_SEGMENTS = 5
CM_SAMPLES = 64600
# Shortest audio the models can take: WavLM's convolutional front-end spans 400 samples (25 ms), the log-mel
# front-ends' centred 512-point STFT reflect-pads 256 samples and needs more than that.
MIN_SAMPLES = 400
# A file whose peak is below this (-80 dBFS) is digital silence or close to it: no speech for any model.
NEAR_SILENT_PEAK = 1e-4
# A file with at least this fraction of its samples at full scale is heavily clipped.
CLIPPED_LEVEL = 0.999
CLIPPED_FRACTION = 0.01


class AudioError(SasvError, RuntimeError):
    """An audio file is missing, unreadable, or not 16 kHz mono finite audio."""


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a mono file as float32 in [-1, 1], refusing anything the models were not trained on (another
    rate, several channels, no samples or fewer than :data:`MIN_SAMPLES`, NaN/Inf, float samples beyond 1).

    A wrong sample rate is an error rather than a silent resample: a resampled ASVspoof file would no longer
    be the file the official protocol scores, and the fix (convert the corpus) belongs to the user.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file does not exist")
    try:
        # float64 then float32, as the reference pipeline reads it (identical for PCM input)
        data, sr = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(f"{path}: cannot decode audio (corrupt, truncated or not audio): {e}") from e
    if sr != sample_rate:
        raise AudioError(
            f"{path}: sample rate is {sr} Hz, the models expect {sample_rate} Hz; resample the corpus "
            f"(e.g. `sox in.flac -r {sample_rate} out.flac`) instead of letting the recipe guess"
        )
    if data.shape[1] != 1:
        raise AudioError(f"{path}: {data.shape[1]} channels, expected mono")
    wav = data[:, 0].astype(np.float32)
    if wav.size == 0:
        raise AudioError(f"{path}: audio is empty (0 samples)")
    if not np.isfinite(wav).all():
        raise AudioError(f"{path}: audio contains NaN or Inf samples")
    peak = float(np.abs(wav).max())
    if peak > 1.0:
        raise AudioError(
            f"{path}: samples outside [-1, 1] (peak {peak:.4g}): normalise float audio to full scale 1"
        )
    if wav.size < MIN_SAMPLES:
        ms = MIN_SAMPLES * 1000 // SAMPLE_RATE
        raise AudioError(
            f"{path}: {wav.size} samples, fewer than the {MIN_SAMPLES} ({ms} ms) the models' front-ends need"
        )
    return wav


def audio_problem(wav: np.ndarray) -> str | None:
    """What makes a readable waveform suspicious as speech, or None: digital silence, near-silence,
    heavy clipping. Such files get scores like any other (AASIST called an all-zero file bona fide with
    P 0.99), so data preparation lists them (:mod:`sasv.bin.prepare_la`)."""
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak == 0.0:
        return "digital silence (every sample is 0)"
    if peak < NEAR_SILENT_PEAK:
        return f"near-silent (peak {20 * np.log10(peak):.0f} dBFS)"
    clipped = float(np.mean(np.abs(wav) >= CLIPPED_LEVEL))
    if clipped >= CLIPPED_FRACTION:
        return f"heavily clipped ({100 * clipped:.1f} % of the samples at full scale)"
    return None


def segment_starts(num_samples: int, segment: int = SEGMENT_SAMPLES, count: int = NUM_SEGMENTS) -> np.ndarray:
    """Start indices of ``count`` equally spaced segments over a waveform of ``num_samples`` samples.

    ``num_samples`` is the length after wrap-extension (at least ``segment``).
    """
    return np.linspace(0, num_samples - segment, num=count).astype(np.int64)


def embedding_segments(
    wav: np.ndarray, segment: int = SEGMENT_SAMPLES, count: int = NUM_SEGMENTS
) -> np.ndarray:
    """The (count, segment) array of fixed-length segments for the 6-row embedding protocol."""
    if wav.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {wav.shape}")
    if wav.shape[0] <= segment:
        wav = np.pad(wav, (0, segment - wav.shape[0]), mode="wrap")
    starts = segment_starts(wav.shape[0], segment, count)
    return np.stack([wav[s : s + segment] for s in starts])


def cm_input(wav: np.ndarray, num_samples: int = CM_SAMPLES) -> np.ndarray:
    """The first ``num_samples`` samples; a shorter waveform is repeated and cut (AASIST's ``pad``)."""
    if wav.ndim != 1 or wav.shape[0] == 0:
        raise ValueError(f"expected a non-empty 1-D waveform, got shape {wav.shape}")
    if wav.shape[0] >= num_samples:
        return wav[:num_samples]
    repeats = num_samples // wav.shape[0] + 1
    return np.tile(wav, repeats)[:num_samples]


def find_suspect_audio(wav_scp: Mapping[str, str], desc: str = "checking audio") -> dict[str, str]:
    """Read every file of ``wav_scp`` (utt -> path): errors as :func:`read_audio` raises them, and utt ->
    :func:`audio_problem` for the readable files that are not speech-like."""
    from sasv.progress import progress_bar

    suspects = {}
    with progress_bar(len(wav_scp), desc=desc, unit="file") as bar:
        for utt, path in sorted(wav_scp.items()):
            problem = audio_problem(read_audio(path))
            if problem is not None:
                suspects[utt] = problem
            bar.update(1)
    return suspects
