"""Toy voices for the synthetic mini corpus: a source-filter model, cheap enough to make minutes of audio in
about a second.

A voice is a glottal pulse train (speaker-specific F0, intonation, jitter, shimmer, spectral tilt,
breathiness) through a cascade of formant resonators (speaker-specific vocal-tract scaling and vowel
space), cut into syllables with fricative-like noise onsets and pauses. None of this is meant to sound
natural; it is meant to give a recipe run audio in which speakers differ from each other along the axes
real speaker embeddings use, and in which a "spoof" is a degraded imitation of its target speaker (the same
voice parameters, re-synthesised through a vocoder-like shortcut) rather than unrelated noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, lfilter

from sasv.audio import SAMPLE_RATE

# F1-F3 (Hz) of a few vowels for an adult male vocal tract; F4 is taken as 3500 Hz.
_VOWELS = np.array(
    [
        (730, 1090, 2440),  # a
        (270, 2290, 3010),  # i
        (300, 870, 2240),  # u
        (530, 1840, 2480),  # e
        (570, 840, 2410),  # o
        (660, 1720, 2410),  # ae
        (490, 1350, 1690),  # er
    ],
    dtype=np.float64,
)
_F4 = 3500.0
_BANDWIDTHS = np.array([80.0, 100.0, 140.0, 200.0])

# Spoofing "systems": how an attack re-synthesises its target's voice. Attack ids map onto these in turn.
SPOOF_STYLES = ("vocoder", "noise_excited", "monotone", "frame_glitch")
# The trace the spoofing systems' shared waveform generator leaves (_generator_trace): a partial at this
# frequency (Hz), at a level below the speech (dB) drawn per utterance
SPOOF_TRACE_HZ = 6000.0
SPOOF_TRACE_SNR = (-5.0, 20.0)


@dataclass(frozen=True)
class Voice:
    """The parameters that make one synthetic speaker sound like itself."""

    gender: str  # "female" | "male"
    f0: float  # mean F0 (Hz)
    f0_swing: float  # relative depth of the intonation contour
    formant_scale: float  # vocal-tract length factor (women and children > 1)
    formant_skew: tuple[float, float, float, float]  # per-formant offsets: a speaker's own vowel space
    tilt: float  # glottal low-pass pole: larger is a darker, more muffled voice
    breath: float  # aspiration noise relative to the pulses
    jitter: float  # relative cycle-to-cycle F0 perturbation
    shimmer: float  # relative cycle-to-cycle amplitude perturbation
    rate: float  # syllables per second
    fricative: float  # centre frequency (Hz) of the speaker's fricative noise
    vowel_weights: tuple[float, ...]  # how often each vowel is used: a speaker's long-term spectrum
    timbre: float  # an extra fixed resonance (Hz) that colours every sound the speaker makes


def draw_voice(rng: np.random.Generator, gender: str) -> Voice:
    """A random voice of the given gender; the ranges keep any two voices audibly and measurably apart."""
    if gender not in ("female", "male"):
        raise ValueError(f"gender must be 'female' or 'male', got {gender!r}")
    female = gender == "female"
    return Voice(
        gender=gender,
        f0=float(rng.uniform(175, 250) if female else rng.uniform(90, 145)),
        f0_swing=float(rng.uniform(0.06, 0.2)),
        formant_scale=float(rng.uniform(1.08, 1.22) if female else rng.uniform(0.86, 1.0)),
        formant_skew=tuple(float(x) for x in rng.uniform(0.88, 1.12, size=4)),
        tilt=float(rng.uniform(0.55, 0.9)),
        breath=float(rng.uniform(0.01, 0.08)),
        jitter=float(rng.uniform(0.005, 0.02)),
        shimmer=float(rng.uniform(0.03, 0.12)),
        rate=float(rng.uniform(3.5, 6.0)),
        fricative=float(rng.uniform(2500, 6500)),
        vowel_weights=tuple(float(x) for x in rng.dirichlet(np.full(len(_VOWELS), 0.6))),
        timbre=float(rng.uniform(2200, 4800)),
    )


def _resonators(formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """Denominator of a cascade of 2-pole resonators (one lfilter call for the whole vocal tract)."""
    den = np.array([1.0])
    for f, b in zip(formants, bandwidths, strict=True):
        f = min(f, 0.45 * SAMPLE_RATE)
        r = np.exp(-np.pi * b / SAMPLE_RATE)
        den = np.convolve(den, [1.0, -2.0 * r * np.cos(2 * np.pi * f / SAMPLE_RATE), r * r])
    return den


def _ramp(n: int, edge: int) -> np.ndarray:
    """A flat envelope with raised-cosine edges, so segments start and stop without clicks."""
    env = np.ones(n)
    edge = min(edge, n // 2)
    if edge > 0:
        rise = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, edge))
        env[:edge] = rise
        env[n - edge :] = rise[::-1]
    return env


def _syllable(
    voice: Voice, rng: np.random.Generator, n: int, f0_start: float, f0_end: float, style: str
) -> np.ndarray:
    vowel = _VOWELS[rng.choice(len(_VOWELS), p=voice.vowel_weights)]
    formants = np.append(vowel, _F4) * voice.formant_scale * np.asarray(voice.formant_skew)
    formants = np.append(formants, voice.timbre)
    bandwidths = np.append(_BANDWIDTHS, 250.0) * (1.8 if style == "vocoder" else 1.0)
    f0 = np.linspace(f0_start, f0_end, n)
    natural = style not in ("vocoder", "monotone")
    if natural:
        # jitter: a slowly wandering perturbation at about the cycle rate, not white per-sample noise
        wobble = lfilter([0.02], [1.0, -0.98], rng.standard_normal(n))
        f0 = f0 * (1.0 + voice.jitter * wobble / (np.std(wobble) + 1e-9))
    phase = np.cumsum(f0) / SAMPLE_RATE
    pulses = np.diff(np.floor(phase), prepend=0.0) > 0
    if style == "noise_excited":
        # a channel-vocoder shortcut: noise bursts timed by the pitch pulses instead of pulses
        period_env = lfilter([1.0], [1.0, -0.995], pulses.astype(np.float64))
        source = rng.standard_normal(n) * period_env * 0.3
    else:
        amps = pulses.astype(np.float64)
        if natural:
            amps[pulses] *= 1.0 + voice.shimmer * rng.standard_normal(int(pulses.sum()))
        source = lfilter([1.0 - voice.tilt], [1.0, -voice.tilt], amps)
        if natural:
            source = source + voice.breath * rng.standard_normal(n)
    out = lfilter([1.0], _resonators(formants, bandwidths), source)
    out = lfilter([1.0, -0.95], [1.0], out)  # lip radiation
    return out * _ramp(n, int(0.02 * SAMPLE_RATE))


def _fricative(voice: Voice, rng: np.random.Generator, n: int) -> np.ndarray:
    centre = min(voice.fricative, 0.45 * SAMPLE_RATE)
    noise = lfilter([1.0], _resonators(np.array([centre]), np.array([centre / 3])), rng.standard_normal(n))
    return noise * _ramp(n, n // 4)


def synthesize(
    voice: Voice, num_samples: int, rng: np.random.Generator, style: str = "bonafide"
) -> np.ndarray:
    """``num_samples`` of speech-like audio in ``voice``, float64, peak 1 (before the caller's gain).

    ``style`` is "bonafide" or one of :data:`SPOOF_STYLES`: the same voice re-synthesised the way a
    spoofing system would (over-smoothed spectrum, noise excitation, flat pitch, frame-rate artefacts).
    """
    if style != "bonafide" and style not in SPOOF_STYLES:
        raise ValueError(f"unknown style {style!r}; expected 'bonafide' or one of {SPOOF_STYLES}")
    if num_samples <= 0:
        raise ValueError("num_samples must be positive")
    sr = SAMPLE_RATE
    out = np.zeros(num_samples)
    pos = int(rng.uniform(0.03, 0.12) * sr)
    k = 0
    while pos < num_samples - int(0.08 * sr):
        n = int(rng.uniform(0.7, 1.3) / voice.rate * sr)
        n = min(n, num_samples - pos)
        if style == "monotone":
            f_start = f_end = voice.f0
        else:
            # declining phrase intonation with a per-syllable rise or fall
            level = 1.0 + voice.f0_swing * (np.sin(0.9 * k) - 0.02 * k)
            f_start = voice.f0 * max(level, 0.7)
            f_end = f_start * (1.0 + rng.uniform(-1, 1) * voice.f0_swing)
        if style != "noise_excited" and rng.random() < 0.35 and n > int(0.1 * sr):
            m = int(rng.uniform(0.03, 0.08) * sr)
            out[pos : pos + m] += 0.15 * _fricative(voice, rng, m)
            pos += m // 2
            n = min(n, num_samples - pos)
        out[pos : pos + n] += _syllable(voice, rng, n, f_start, f_end, style)
        pos += n + int((rng.uniform(0.25, 0.45) if rng.random() < 0.15 else rng.uniform(0.02, 0.08)) * sr)
        k += 1
    if style == "vocoder":
        # the band limit of a low-rate vocoder
        out = lfilter(*butter(4, rng.uniform(3800, 5500) / (SAMPLE_RATE / 2)), out)
    elif style == "frame_glitch":
        frame = int(0.01 * sr)
        gains = 1.0 + 0.35 * rng.standard_normal(num_samples // frame + 1)
        out = out * np.repeat(gains, frame)[:num_samples]
    peak = np.max(np.abs(out))
    out = out / peak if peak > 0 else out
    out = out + 1e-3 * rng.standard_normal(num_samples)  # a noise floor: no digital silence
    if style != "bonafide":
        out = out + _generator_trace(out, rng, SPOOF_TRACE_HZ)
    return out


def _generator_trace(speech: np.ndarray, rng: np.random.Generator, hz: float) -> np.ndarray:
    """The trace a waveform generator leaves: a "metallic" partial at its frequency ``hz``
    that follows the speech envelope, at a signal-to-trace ratio drawn from :data:`SPOOF_TRACE_SNR` dB.
    Loud traces give a spoof away; the quietest are below what a small countermeasure learns to hear, so
    a trained countermeasure's EER on the mini corpus is neither 0 nor chance."""
    envelope = lfilter([0.01], [1.0, -0.99], np.abs(speech))
    t = np.arange(speech.size) / SAMPLE_RATE
    partial = envelope * np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
    power = np.mean(partial**2)
    if power <= 0:
        return np.zeros_like(speech)
    snr_db = rng.uniform(*SPOOF_TRACE_SNR)
    return partial * np.sqrt(np.mean(speech**2) / power * 10 ** (-snr_db / 10))
