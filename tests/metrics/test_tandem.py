"""The ASVspoof 5 tandem metrics (:mod:`sasv.metrics.tandem`): min t-DCF and t-EER on small cases worked out
by hand (ties, a perfect system, a missing class), and the vectorised t-EER search against the package's
double loop on random scores with ties. The package's own outputs hold both metrics in
tests/metrics/test_asvspoof5_package_parity.py."""

from __future__ import annotations

import numpy as np
import pytest

from sasv.metrics.cm import det_curve
from sasv.metrics.tandem import (
    ASVSPOOF5_TANDEM_COST,
    ORGANISERS_ASV_PFA_NONTARGET,
    ORGANISERS_ASV_PFA_SPOOF,
    ORGANISERS_ASV_PMISS,
    asv_curves,
    min_t_dcf,
    t_eer,
)

COST = ASVSPOOF5_TANDEM_COST
C0 = (
    COST.p_target * COST.c_miss * ORGANISERS_ASV_PMISS
    + COST.p_nontarget * COST.c_fa * ORGANISERS_ASV_PFA_NONTARGET
)
C1 = COST.p_target * COST.c_miss - C0
C2 = COST.p_spoof * COST.c_fa_spoof * ORGANISERS_ASV_PFA_SPOOF


def test_cost_model_is_the_organisers() -> None:
    assert (COST.p_target, COST.p_nontarget, COST.p_spoof) == pytest.approx((0.9405, 0.0095, 0.05), abs=1e-15)
    assert COST.p_target + COST.p_nontarget + COST.p_spoof == pytest.approx(1.0, abs=1e-12)


def test_min_t_dcf_of_a_perfect_cm_is_the_asv_floor() -> None:
    """Bona fide above every spoof: reject the spoofs only, Pmiss_cm 0 and Pfa_cm 0, t-DCF = C0 / norm."""
    assert min_t_dcf(np.array([1.0, 2.0]), np.array([0.0])) == pytest.approx(
        C0 / (C0 + min(C1, C2)), abs=1e-15
    )


def test_min_t_dcf_of_a_cm_that_cannot_separate_is_one() -> None:
    """All scores tied: only accept-all (C0 + C2) and reject-all (C0 + C1) are reachable; their minimum is
    the normaliser, so 1.0 (a CM no better than none)."""
    assert min_t_dcf(np.array([1.0, 1.0]), np.array([1.0])) == pytest.approx(1.0, abs=1e-15)


def test_min_t_dcf_worked_example() -> None:
    """bona fide [0.2, 0.9], spoof [0.1, 0.5]: thresholds give (Pmiss, Pfa) = (0, 1), (0, 0.5), (0.5, 0.5),
    (0.5, 0), (1, 0); the minimum by hand."""
    points = [(0, 1), (0, 0.5), (0.5, 0.5), (0.5, 0), (1, 0)]
    expected = min((C0 + C1 * m + C2 * f) / (C0 + min(C1, C2)) for m, f in points)
    assert min_t_dcf(np.array([0.2, 0.9]), np.array([0.1, 0.5])) == pytest.approx(expected, abs=1e-15)
    assert min_t_dcf(np.array([]), np.array([0.5])) is None


def test_curves_follow_the_package_conventions() -> None:
    miss, fa, thresholds = det_curve(np.array([1.0, 3.0]), np.array([1.0, 2.0]))
    # sorted: 1 (positive first within the tie), 1, 2, 3
    assert miss.tolist() == [0, 0.5, 0.5, 0.5, 1]
    assert fa.tolist() == [1, 1, 0.5, 0, 0]
    assert thresholds[0] == pytest.approx(0.999) and thresholds[1:].tolist() == [1, 1, 2, 3]
    miss, fa_non, fa_spf = asv_curves(np.array([5.0]), np.array([1.0]), np.array([5.0]))
    assert (
        miss.tolist() == [0, 0, 1, 1] and fa_non.tolist() == [1, 0, 0, 0] and fa_spf.tolist() == [1, 1, 1, 0]
    )


def test_t_eer_of_perfect_systems_is_zero() -> None:
    asv = (np.array([10.0, 11.0]), np.array([0.0, 1.0]), np.array([5.0, 6.0]))
    cm = (np.array([1.0, 1.0]), np.array([1.0, 1.0]), np.array([0.0, 0.0]))
    assert t_eer(*asv, *cm) == 0.0


def test_t_eer_needs_every_class() -> None:
    assert (
        t_eer(np.array([1.0]), np.array([]), np.array([0.0]), np.array([1.0]), np.array([]), np.array([0.0]))
        is None
    )


def _t_eer_double_loop(asv_tar, asv_non, asv_spf, cm_tar, cm_non, cm_spf) -> float | None:
    """Every allowed ASV point, every CM point, as the package's ``compute_teer`` loops (rho = 0.5): checks
    the binary-search shortcut on many small random cases; what the t-EER *is* is held by the package's own
    outputs (tests/metrics/test_asvspoof5_package_parity.py), not by this loop."""
    a_miss, a_fa, a_fa_spf = asv_curves(asv_tar, asv_non, asv_spf)
    c_miss, c_fa, _ = det_curve(np.concatenate((cm_tar, cm_non)), cm_spf)
    best, result = np.inf, None
    for i in range(a_miss.size):
        if not a_miss[i] < 0.5 * a_fa[i] + 0.5 * a_fa_spf[i]:
            continue
        h = (c_miss + (1 - c_miss) * a_miss[i]) - (0.5 * (1 - c_miss) * a_fa[i] + 0.5 * c_fa * a_fa_spf[i])
        j = int(np.argmin(np.abs(h)))
        with np.errstate(divide="ignore", invalid="ignore"):
            crit = abs(a_fa[i] / a_fa_spf[i] - c_fa[j] / (1 - c_miss[j]))
        if crit < best:
            best, result = crit, a_fa_spf[i] * c_fa[j]
    return result


@pytest.mark.parametrize("seed", range(24))
def test_t_eer_search_equals_the_double_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_tar, n_non, n_spf = rng.integers(1, 40, size=3)
    rounding = 1 if seed % 3 == 0 else 3  # coarse scores: many ties within and across classes
    asv = [
        np.round(rng.normal(mu, 1.0, n), rounding) for mu, n in ((2.0, n_tar), (-1.0, n_non), (1.0, n_spf))
    ]
    cm = [np.round(rng.normal(mu, 1.0, n), rounding) for mu, n in ((1.0, n_tar), (1.0, n_non), (-1.0, n_spf))]
    expected = _t_eer_double_loop(*asv, *cm)
    got = t_eer(*asv, *cm)
    assert (got is None) == (expected is None)
    if expected is not None:
        assert got == expected
