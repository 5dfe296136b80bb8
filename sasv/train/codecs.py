"""Codec augmentation: a training crop sent through a lossy speech codec and back, with PyAV (FFmpeg).

ASVspoof 5's evaluation data is coded (its protocol names the condition of every utterance: Opus, AMR, Speex,
Encodec, MP3, M4A, at wide- and narrow-band rates), and a countermeasure trained on clean audio loses much
of its accuracy there; training on coded copies is what the challenge's best systems did. The codecs here
are the ones FFmpeg (PyAV's wheels) can encode: :data:`CODECS` says which ASVspoof 5 condition each stands
for. Speex and Encodec have no FFmpeg encoder, and are not imitated.

A coded signal comes back delayed (the encoder's priming samples) and at its own length; it is realigned
to the input by the lag of its largest cross-correlation (within :data:`MAX_DELAY` samples) and cut to the
input's length, so the crop stays aligned with its label's audio. Each call draws from the example's own
generator (a codec, a bit rate), so the same seed gives the same coded crops.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sasv.audio import SAMPLE_RATE

__all__ = ["CODECS", "Codec", "CodecAugment", "code", "encoder_available"]

MAX_DELAY = 4096  # samples a codec may delay its output by (MP3: ~1,100 at 16 kHz; AAC: 1,024)


@dataclass(frozen=True)
class Codec:
    """One lossy codec: FFmpeg's encoder, the container it is written in, the sample rate it codes at (8 kHz:
    narrow band), its bit rates (bit/s; empty: fixed) and the ASVspoof 5 condition it stands for."""

    name: str
    encoder: str
    container: str
    sample_rate: int
    bit_rates: tuple[int, ...]
    asvspoof5: str


CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        Codec("opus", "libopus", "ogg", 16000, (8_000, 16_000, 32_000), "Opus, wide band"),
        Codec("opus_nb", "libopus", "ogg", 8000, (6_000, 12_000), "Opus, narrow band"),
        Codec("amr_nb", "libopencore_amrnb", "amr", 8000, (4_750, 7_950, 12_200), "AMR, narrow band"),
        Codec("mp3", "libmp3lame", "mp3", 16000, (24_000, 48_000, 64_000), "MP3"),
        Codec("m4a", "aac", "ipod", 16000, (16_000, 32_000, 64_000), "M4A (AAC)"),
        Codec("mulaw", "pcm_mulaw", "wav", 8000, (), "telephone band (G.711 mu-law)"),
    )
}


def _require_av():
    try:
        import av
    except ImportError:
        raise RuntimeError("codec augmentation needs PyAV: pip install av") from None
    return av


def encoder_available(codec: Codec) -> bool:
    """Whether this FFmpeg (PyAV's build) has ``codec``'s encoder: AMR's (libopencore) is in some wheels
    only."""
    av = _require_av()
    try:
        av.codec.Codec(codec.encoder, "w")
    except Exception:  # PyAV's UnknownCodecError, whose module moved between versions
        return False
    return True


def _frames(wav: np.ndarray, rate: int):
    av = _require_av()
    pcm = np.clip(np.round(wav * 32768.0), -32768, 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    return frame


def code(wav: np.ndarray, codec: Codec, bit_rate: int | None = None) -> np.ndarray:
    """``wav`` (16 kHz float32) encoded with ``codec`` at ``bit_rate`` and decoded back to 16 kHz float32, the
    same length, realigned to the input."""
    av = _require_av()
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=codec.container) as out:
        stream = out.add_stream(codec.encoder, rate=codec.sample_rate, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        resample = av.AudioResampler(format=stream.format.name, layout="mono", rate=codec.sample_rate)
        frame_size = stream.codec_context.frame_size or 1024
        pending = resample.resample(_frames(wav, SAMPLE_RATE)) + resample.resample(None)
        fifo = av.AudioFifo()
        for frame in pending:
            fifo.write(frame)
        while fifo.samples:
            chunk = fifo.read(min(frame_size, fifo.samples))
            if chunk.samples < frame_size and stream.codec_context.frame_size:
                chunk = _padded(chunk, frame_size, stream.format.name, codec.sample_rate)
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buffer.seek(0)
    decoded = []
    with av.open(buffer, "r") as coded:
        back = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in coded.decode(audio=0):
            decoded += [f.to_ndarray().reshape(-1) for f in back.resample(frame)]
        decoded += [f.to_ndarray().reshape(-1) for f in back.resample(None)]
    return _aligned(np.concatenate(decoded) if decoded else np.zeros(0, np.float32), wav)


def _padded(chunk, size: int, fmt: str, rate: int):
    """The last frame of a fixed-frame-size encoder, zero-padded to the frame size."""
    av = _require_av()
    data = chunk.to_ndarray()
    full = np.zeros((data.shape[0], size), dtype=data.dtype)
    full[:, : data.shape[1]] = data
    frame = av.AudioFrame.from_ndarray(full, format=fmt, layout="mono")
    frame.sample_rate = rate
    return frame


def _aligned(coded: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``coded`` shifted by the delay (0..MAX_DELAY samples) that best matches ``reference``, cut or
    zero-padded to its length."""
    n = len(reference)
    window = min(n, 16000)
    best, best_score = 0, -np.inf
    if len(coded) > 0 and np.any(reference[:window]):
        span = coded[: window + MAX_DELAY]
        corr = np.correlate(
            np.pad(span, (0, max(0, window + MAX_DELAY - len(span)))), reference[:window], "valid"
        )
        best = int(np.argmax(corr))
        best_score = float(corr[best])
    out = coded[best : best + n] if best_score > -np.inf else coded[:n]
    if len(out) < n:
        out = np.pad(out, (0, n - len(out)))
    return out.astype(np.float32, copy=False)


class CodecAugment:
    """With probability ``probability``, a crop coded by one of ``codecs`` (drawn uniformly) at one of its
    bit rates (drawn uniformly); otherwise the crop as it is. ``augment(crop, rng)``, as RawBoost."""

    def __init__(self, codecs: Sequence[str], probability: float) -> None:
        unknown = [c for c in codecs if c not in CODECS]
        if unknown or not codecs:
            raise ValueError(f"codecs: one or more of {', '.join(CODECS)}; got {list(codecs)}")
        if not 0 < probability <= 1:
            raise ValueError(f"probability must be in (0, 1], got {probability}")
        missing = [c for c in codecs if not encoder_available(CODECS[c])]
        if missing:
            raise ValueError(
                f"codecs {', '.join(missing)}: this FFmpeg (PyAV's build) has no encoder for "
                f"{', '.join(CODECS[c].encoder for c in missing)}; leave them out of codec_augmentation"
            )
        self.codecs = [CODECS[c] for c in codecs]
        self.probability = float(probability)

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.probability:
            return wav
        codec = self.codecs[int(rng.integers(len(self.codecs)))]
        bit_rate = int(rng.choice(codec.bit_rates)) if codec.bit_rates else None
        return code(wav, codec, bit_rate)
