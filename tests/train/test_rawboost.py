"""RawBoost augmentation: held to TakHemlata's RawBoost.py run on the same inputs and draws
(tests/fixtures/rawboost.npz, tests/fixtures/README.md), reproducible from the rng alone, each algo changes
the signal without breaking it, and each noise does what it claims (measured: SSI's SNR, ISD's fraction of
samples, LnL's harmonics)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from sasv.train.rawboost import ALGOS, RawBoost, RawBoostParams

SR = 16000
SEEDS = range(8)
FIXTURE = np.load(Path(__file__).resolve().parents[1] / "fixtures" / "rawboost.npz")
META = json.loads(str(FIXTURE["meta"]))


@pytest.mark.parametrize("name", sorted(META["cases"]))
def test_the_references_output_from_the_references_draws(name: str) -> None:
    """With a legacy RandomState seeded as the reference seeded numpy's global stream, every algorithm gives
    the reference's output (to float32 rounding) and draws exactly as many numbers: the same draws, in the
    same order, mapped the same way (filter lengths 11-99, band-stop filters, gains, 512-point peak, the
    filter's one-sample lead)."""
    case = META["cases"][name]
    x, expected = FIXTURE[f"{name}/input"], FIXTURE[f"{name}/output"].astype(np.float64)
    assert x.dtype == np.float32 and x.shape == (case["n_samples"],)
    rng = np.random.RandomState(case["draw_seed"])
    ours = RawBoost(case["algo"], RawBoostParams(**case["params"]), META["sample_rate"])(x, rng)
    assert ours.dtype == np.float32 and ours.shape == x.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=5e-7 * float(np.max(np.abs(expected))))
    assert rng.random() == case["next_uniform"], "another number of draws than the reference's"


def test_filter_lengths_are_the_references_11_to_99() -> None:
    """int(U(10, 100)) made odd: 11, 13, ..., 99 (never 101)."""
    boost = RawBoost(1, RawBoostParams(nBands=1))
    rng = np.random.default_rng(0)
    lengths = {len(boost.random_filter(rng, 0.0, 0.0)) for _ in range(1500)}
    assert lengths == set(range(11, 100, 2))


def test_filters_are_notches() -> None:
    """firwin's default pass_zero: each band is stopped, the rest of the spectrum passed (0 dB peak)."""
    params = RawBoostParams(nBands=1, minF=4000, maxF=4000, minBW=1000, maxBW=1000, minCoeff=60, maxCoeff=60)
    taps = RawBoost(1, params).random_filter(np.random.default_rng(0), 0.0, 0.0)
    _, response = signal.freqz(taps, worN=[0.0, 1000.0, 4000.0, 7000.0], fs=SR)
    gain = np.abs(response)
    assert gain[2] < 0.01 and min(gain[[0, 1, 3]]) > 0.9, gain


def _sine(freq: float = 1000.0, amplitude: float = 0.3, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _speechlike(seed: int = 0, n: int = SR) -> np.ndarray:
    """Noise shaped by a slow envelope, peak 0.3: loud and quiet parts, no exact zeros."""
    rng = np.random.default_rng(1000 + seed)
    env = 0.2 + np.abs(np.sin(np.linspace(0, 6 * np.pi, n)))
    x = rng.standard_normal(n) * env
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def test_algos_are_the_reference_numbers():
    assert sorted(ALGOS) == list(range(1, 9))


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_same_seed_same_output_other_seed_other_output(algo):
    x = _speechlike()
    boost = RawBoost(algo)
    a = boost(x, np.random.default_rng(7))
    b = boost(x, np.random.default_rng(7))
    c = boost(x, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_global_numpy_state_is_not_used():
    x = _speechlike()
    np.random.seed(0)
    a = RawBoost(4)(x, np.random.default_rng(3))
    np.random.seed(12345)
    b = RawBoost(4)(x, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_every_algo_keeps_shape_dtype_finite_and_changes_the_signal(algo):
    x = _speechlike(n=SR + 123)  # odd length on purpose
    for seed in range(3):
        y = RawBoost(algo)(x, np.random.default_rng(seed))
        assert y.shape == x.shape
        assert y.dtype == np.float32
        assert np.all(np.isfinite(y))
        assert not np.array_equal(y, x)


def test_input_is_not_modified():
    x = _speechlike()
    copy = x.copy()
    for algo in ALGOS:
        RawBoost(algo)(x, np.random.default_rng(0))
    np.testing.assert_array_equal(x, copy)


def test_ssi_snr_lies_in_the_configured_range():
    params = RawBoostParams()
    x = _speechlike()
    snrs = []
    for seed in SEEDS:
        y = RawBoost(3)(x, np.random.default_rng(seed)).astype(np.float64)
        noise = y - x.astype(np.float64)
        snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(noise**2))
        assert params.SNRmin - 0.01 <= snr <= params.SNRmax + 0.01, (seed, snr)
        snrs.append(snr)
    assert np.ptp(snrs) > 1.0  # the SNR is drawn, not fixed


def test_ssi_respects_a_narrow_custom_range():
    x = _speechlike()
    y = RawBoost(3, RawBoostParams(SNRmin=20, SNRmax=20))(x, np.random.default_rng(0)).astype(np.float64)
    noise = y - x
    assert 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(noise**2)) == pytest.approx(20, abs=0.01)


def test_isd_changes_at_most_p_percent_of_the_samples():
    params = RawBoostParams()
    x = _speechlike()  # peak 0.3: |x (1 + g_sd r)| <= 0.9, no renormalisation of the whole signal
    fractions = []
    for seed in SEEDS:
        y = RawBoost(2)(x, np.random.default_rng(seed))
        fraction = np.mean(y != x)
        assert 0 < fraction <= params.P / 100, (seed, fraction)
        fractions.append(fraction)
    assert np.ptp(fractions) > 0.001  # the fraction is drawn too
    unchanged = RawBoost(2)(x, np.random.default_rng(0)) == x
    assert np.sum(unchanged) >= len(x) * (1 - params.P / 100)


def test_isd_with_p_zero_is_the_identity():
    x = _speechlike()
    np.testing.assert_array_equal(RawBoost(2, RawBoostParams(P=0))(x, np.random.default_rng(0)), x)


def _harmonic_energy(y: np.ndarray, x: np.ndarray) -> float:
    """Energy of ``y`` at 2..5 kHz relative to the energy of ``x`` (a 1 kHz sine), both measured on a
    steady-state stretch (away from the filters' edge transients) of 875 whole periods, so that the
    harmonics fall on FFT bins and a pure sine leaks nothing into them."""
    y, x = (v[1000:15000].astype(np.float64) for v in (y, x))
    power = np.abs(np.fft.rfft(y)) ** 2 / len(y)
    return float(power[[2 * 875, 3 * 875, 4 * 875, 5 * 875]].sum() / np.sum(x**2))


def test_lnl_adds_harmonics_to_a_pure_sine():
    # A linear filter, whose peak gain RawBoost sets to minG..maxG = 0 dB, cannot create energy at the
    # harmonics: only the non-linear terms x^2..x^5 can (unless the random filters happen to null them all).
    x = _sine()
    assert _harmonic_energy(x, x) < 1e-14  # float32 rounding only
    energies = [_harmonic_energy(RawBoost(1)(x, np.random.default_rng(seed)), x) for seed in SEEDS]
    assert sum(e > 1e-10 for e in energies) >= len(energies) // 2, energies
    linear = RawBoost(1, RawBoostParams(N_f=1))
    for seed in SEEDS:
        y = linear(x, np.random.default_rng(seed))
        assert not np.array_equal(y, x)
        assert _harmonic_energy(y, x) < 1e-14, seed


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_silent_input_gives_finite_output(algo):
    x = np.zeros(SR // 2, dtype=np.float32)
    y = RawBoost(algo)(x, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.all(np.isfinite(y))


def test_empty_input():
    y = RawBoost(4)(np.zeros(0, dtype=np.float32), np.random.default_rng(0))
    assert y.shape == (0,) and y.dtype == np.float32


def test_other_sample_rate_keeps_filters_below_nyquist():
    x = _speechlike(n=8000)
    y = RawBoost(4, sample_rate=8000)(x, np.random.default_rng(0))
    assert y.shape == x.shape and np.all(np.isfinite(y))


@pytest.mark.parametrize("algo", [0, 9, -1, True, 1.0, "1"])
def test_unknown_algo_is_rejected(algo):
    with pytest.raises(ValueError):
        RawBoost(algo)


def test_non_1d_input_is_rejected():
    with pytest.raises(ValueError):
        RawBoost(1)(np.zeros((2, 100), dtype=np.float32), np.random.default_rng(0))


def test_params_defaults_and_validation():
    p = RawBoostParams()
    assert (p.nBands, p.minF, p.maxF, p.minBW, p.maxBW, p.minCoeff, p.maxCoeff) == (
        5,
        20,
        8000,
        100,
        1000,
        10,
        100,
    )
    assert (p.minG, p.maxG, p.minBiasLinNonLin, p.maxBiasLinNonLin, p.N_f) == (0, 0, 5, 20, 5)
    assert (p.P, p.g_sd, p.SNRmin, p.SNRmax) == (10, 2, 10, 40)
    with pytest.raises(ValueError):
        RawBoostParams(SNRmin=50)
    with pytest.raises(ValueError):
        RawBoostParams(P=150)
