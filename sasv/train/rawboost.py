"""RawBoost: data boosting of raw waveforms for countermeasure (anti-spoofing) training.

RawBoost (Tak et al., "RawBoost: A Raw Data Boosting and Augmentation Method applied to Automatic Speaker
Verification Anti-Spoofing", ICASSP 2022) distorts the training waveform itself with three kinds of nuisance
that real telephony channels add and that neither a clean bona fide nor a clean spoofed training set shows:

1. LnL, linear and non-linear convolutive noise: the signal and its powers x, x^2, ..., x^N_f each go through
   a random multi-band FIR filter (a cascade of ``nBands`` band filters of random centre, width and length);
   the sum, with the non-linear terms ``minBiasLinNonLin``-``maxBiasLinNonLin`` dB below the linear one,
   models coding, compression and transmission channels with their harmonic distortion;
2. ISD, impulsive signal-dependent additive noise: a random fraction (up to ``P`` %) of the samples ``x``
   become ``x + g_sd * x * r`` with ``r`` the product of two uniforms in [-1, 1] (clipping, overflow);
3. SSI, stationary signal-independent additive noise: white noise coloured by a random multi-band FIR
   filter, added at a random SNR in [``SNRmin``, ``SNRmax``] dB (microphone, amplifier, line noise).

A countermeasure trained on ASVspoof 2019 LA learns the channel as much as the spoofing artefacts; boosting
the training data with these unseen nuisances makes it rely on the artefacts and generalise to the 2021
LA/DF channels. The paper's best LA system uses algo 5 (LnL then ISD in series), the best DF one algo 3.

``algo`` numbers follow the reference ``main.py``: 1 LnL, 2 ISD, 3 SSI, 4 series 1+2+3, 5 series 1+2,
6 series 1+3, 7 series 2+3, 8 parallel 1,2 (the LnL and ISD outputs of the same input summed). Its algo 0,
no augmentation, is expressed here by not constructing :class:`RawBoost`.

All randomness comes from the caller's numpy ``rng`` (the trainer's per-(seed, epoch, utterance) generator),
so an augmented example is reproducible whatever the worker. The reference implementation is ``RawBoost.py``
of TakHemlata/SSL_Anti-spoofing (the same file as in TakHemlata/RawBoost-antispoofing); this module draws
the same numbers in the same order and maps them the same way, so with a legacy ``np.random.RandomState(s)``
as ``rng`` it gives what the reference gives after ``np.random.seed(s)`` (held to the reference's recorded
outputs by ``tests/train/test_rawboost.py``, ``tests/fixtures/rawboost.npz``). Its filters are band-stop
("notch") filters, ``firwin``'s default ``pass_zero=True``: a cascade of five of them carves random notches
into the spectrum. Where the trainer applies it (to the random crop, by default, or to the whole utterance
before cropping, as SSL_Anti-spoofing does) is the training conf's ``rawboost_on``.
"""

# ruff: noqa: N815  (RawBoostParams keeps the reference's mixedCase parameter names, e.g. nBands, minBW)
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

ALGOS: dict[int, str] = {
    1: "LnL convolutive noise",
    2: "ISD impulsive additive noise",
    3: "SSI coloured additive noise",
    4: "series LnL + ISD + SSI",
    5: "series LnL + ISD",
    6: "series LnL + SSI",
    7: "series ISD + SSI",
    8: "parallel LnL || ISD",
}

_EDGE_HZ = 1e-3  # how far band edges stay from 0 Hz and Nyquist (firwin needs 0 < f1 < f2 < fs/2)


@dataclass(frozen=True)
class RawBoostParams:
    """RawBoost parameters; the defaults are the argparse defaults of the reference ``main.py``
    (github.com/TakHemlata/RawBoost-antispoofing), i.e. the paper's settings for 16 kHz audio.

    Filters (LnL and SSI): ``nBands`` band-stop filters with centres in [minF, maxF] Hz, widths in [minBW,
    maxBW] Hz and ``int(U(minCoeff, maxCoeff))`` taps made odd (11-99 for the defaults 10, 100), the cascade
    scaled to a peak gain drawn in [minG, maxG] dB. LnL: terms up to x^N_f, the non-linear ones with their
    gain drawn between minG - minBiasLinNonLin and maxG - maxBiasLinNonLin dB (-5 to -20 dB for the
    defaults). ISD: up to P % of the samples, gain g_sd. SSI: SNR in [SNRmin, SNRmax] dB.
    """

    nBands: int = 5
    minF: float = 20.0
    maxF: float = 8000.0
    minBW: float = 100.0
    maxBW: float = 1000.0
    minCoeff: int = 10
    maxCoeff: int = 100
    minG: float = 0.0
    maxG: float = 0.0
    minBiasLinNonLin: float = 5.0
    maxBiasLinNonLin: float = 20.0
    N_f: int = 5
    P: float = 10.0
    g_sd: float = 2.0
    SNRmin: float = 10.0
    SNRmax: float = 40.0

    def __post_init__(self) -> None:
        checks = {
            "nBands >= 1": self.nBands >= 1,
            "N_f >= 1": self.N_f >= 1,
            "0 < minF <= maxF": 0 < self.minF <= self.maxF,
            "0 < minBW <= maxBW": 0 < self.minBW <= self.maxBW,
            "1 <= minCoeff <= maxCoeff": 1 <= self.minCoeff <= self.maxCoeff,
            "minG <= maxG": self.minG <= self.maxG,
            "minBiasLinNonLin <= maxBiasLinNonLin": self.minBiasLinNonLin <= self.maxBiasLinNonLin,
            "0 <= P <= 100": 0 <= self.P <= 100,
            "SNRmin <= SNRmax": self.SNRmin <= self.SNRmax,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"RawBoostParams: need {', '.join(bad)}")


def _peak_normalise(x: np.ndarray, always: bool = False) -> np.ndarray:
    """Scale to a peak of 1 when ``always`` or when the peak exceeds 1; silence is returned as is."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0 and (always or peak > 1):
        return x / peak
    return x


Rng = np.random.Generator | np.random.RandomState
"""Where the draws come from: the trainer's ``Generator``, or a legacy ``RandomState`` that reproduces the
reference's global ``np.random`` stream (both are drawn from with the same calls)."""

FREQZ_POINTS = 512
"""Frequencies at which a filter's peak gain is measured (``signal.freqz``'s default, as the reference)."""


def _uniform(rng: Rng, low: float, high: float) -> float:
    """``low + (high - low) * u``, u uniform in [0, 1): ``np.random.uniform``'s mapping, also when
    ``low > high`` (the reference's non-linear LnL gains are drawn from -5 "to" -20 dB)."""
    return low + (high - low) * float(rng.random())


class RawBoost:
    """One RawBoost algorithm (see :data:`ALGOS`): ``RawBoost(5)(wav, rng)`` boosts a 1-D waveform."""

    def __init__(
        self, algo: int, params: RawBoostParams = RawBoostParams(), sample_rate: int = 16000
    ) -> None:
        if isinstance(algo, bool) or not isinstance(algo, (int, np.integer)) or algo not in ALGOS:
            choices = ", ".join(f"{k} ({v})" for k, v in ALGOS.items())
            raise ValueError(f"unknown RawBoost algo {algo!r}; choose one of {choices}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, not {sample_rate}")
        self.algo = int(algo)
        self.params = params
        self.sample_rate = sample_rate

    def __repr__(self) -> str:
        return f"RawBoost(algo={self.algo} [{ALGOS[self.algo]}], sample_rate={self.sample_rate})"

    def __call__(self, wav: np.ndarray, rng: Rng) -> np.ndarray:
        """The boosted waveform (float32, the input's length); every draw comes from ``rng``."""
        x = np.asarray(wav)
        if x.ndim != 1:
            raise ValueError(f"RawBoost wants a 1-D waveform, not shape {x.shape}")
        x = x.astype(np.float64)
        if x.size == 0:
            return x.astype(np.float32)
        if self.algo == 1:
            y = self.lnl(x, rng)
        elif self.algo == 2:
            y = self.isd(x, rng)
        elif self.algo == 3:
            y = self.ssi(x, rng)
        elif self.algo == 4:
            y = self.ssi(self.isd(self.lnl(x, rng), rng), rng)
        elif self.algo == 5:
            y = self.isd(self.lnl(x, rng), rng)
        elif self.algo == 6:
            y = self.ssi(self.lnl(x, rng), rng)
        elif self.algo == 7:
            y = self.ssi(self.isd(x, rng), rng)
        else:  # 8: both branches see the same input, their sum is normalised
            y = _peak_normalise(self.lnl(x, rng) + self.isd(x, rng))
        return np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    # -- filters -------------------------------------------------------------------------------------------

    def random_filter(self, rng: Rng, min_gain: float, max_gain: float) -> np.ndarray:
        """A random multi-band notch filter: a cascade of ``nBands`` windowed-sinc band-stop filters of
        random centre, width and (odd) length, scaled so that its peak magnitude response (over
        :data:`FREQZ_POINTS` frequencies) is a gain drawn in dB. Each band draws centre, width and length in
        that order, then the gain is drawn: the reference's order."""
        p = self.params
        nyquist = self.sample_rate / 2
        taps = np.ones(1)
        for _ in range(p.nBands):
            centre = _uniform(rng, p.minF, min(p.maxF, nyquist))
            width = _uniform(rng, p.minBW, p.maxBW)
            n_taps = int(_uniform(rng, p.minCoeff, p.maxCoeff))
            n_taps += 1 - n_taps % 2  # odd: a band-stop filter passes Nyquist
            # band edges inside (0, Nyquist), as firwin needs; the reference's 1e-3 Hz where it clips them
            low = centre - width / 2 if centre - width / 2 > 0 else _EDGE_HZ
            high = centre + width / 2 if centre + width / 2 < nyquist else nyquist - _EDGE_HZ
            low = min(low, high - _EDGE_HZ)  # only for a centre at Nyquist with a width below 2e-3 Hz
            band = signal.firwin(n_taps, [low, high], window="hamming", fs=self.sample_rate)
            taps = np.convolve(band, taps)
        gain_db = _uniform(rng, min_gain, max_gain)
        _, response = signal.freqz(taps, worN=FREQZ_POINTS)
        peak = float(np.max(np.abs(response)))
        return taps * (10 ** (gain_db / 20) / peak if peak > 0 else 0.0)

    @staticmethod
    def _filter(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
        """Filter ``x`` with the (odd-length, linear-phase) ``taps``, same length out. The output starts
        ``(len(taps) + 1) // 2`` samples into the full convolution, one sample past the filter's delay
        (the reference's ``filterFIR`` cut, so the output leads the aligned one by a sample)."""
        start = (len(taps) + 1) // 2
        full = signal.oaconvolve(x, taps, mode="full")
        out = np.zeros(len(x))
        kept = full[start : start + len(x)]
        out[: len(kept)] = kept  # a signal shorter than half the filter: zeros past the convolution's end
        return out

    # -- the three noises ----------------------------------------------------------------------------------

    def lnl(self, x: np.ndarray, rng: Rng) -> np.ndarray:
        """Linear and non-linear convolutive noise: sum over k of filter_k(x^k), k = 1..N_f, mean removed,
        scaled down to a peak of 1 if it exceeds it."""
        p = self.params
        y = np.zeros_like(x)
        for k in range(1, p.N_f + 1):
            # the non-linear terms (k > 1) get a gain between minG - minBias and maxG - maxBias dB
            nonlinear = (p.minG - p.minBiasLinNonLin, p.maxG - p.maxBiasLinNonLin)
            gains = (p.minG, p.maxG) if k == 1 else nonlinear
            y = y + self._filter(np.power(x, k), self.random_filter(rng, *gains))
        if y.size:
            y = y - np.mean(y)
        return _peak_normalise(y)

    def isd(self, x: np.ndarray, rng: Rng) -> np.ndarray:
        """Impulsive signal-dependent noise: ``int(len(x) * beta / 100)`` random samples, beta ~ U(0, P),
        get ``g_sd * x * r`` added, r the product of two U(-1, 1)."""
        p = self.params
        beta = _uniform(rng, 0, p.P)
        n = int(len(x) * (beta / 100))
        where = rng.permutation(len(x))[:n]
        r = (2 * rng.random(n) - 1) * (2 * rng.random(n) - 1)
        y = x.copy()
        y[where] = x[where] + p.g_sd * x[where] * r
        return _peak_normalise(y)

    def ssi(self, x: np.ndarray, rng: Rng) -> np.ndarray:
        """Stationary signal-independent noise: white noise through a random filter, added at a random SNR,
        U(SNRmin, SNRmax) dB with respect to ``x``."""
        p = self.params
        noise = rng.standard_normal(len(x))
        noise = _peak_normalise(self._filter(noise, self.random_filter(rng, p.minG, p.maxG)), always=True)
        snr_db = _uniform(rng, p.SNRmin, p.SNRmax)
        noise_norm = float(np.linalg.norm(noise))
        if noise_norm == 0:
            return x.copy()
        return x + noise / noise_norm * float(np.linalg.norm(x)) / 10.0 ** (0.05 * snr_db)
