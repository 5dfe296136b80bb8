"""The ASVspoof 5 tandem metrics (:mod:`sasv.metrics.tandem`): min t-DCF and t-EER on small cases worked out
by hand (ties, a perfect system, a missing class), and the vectorised t-EER search against the package's
double loop on random scores with ties; ASVspoof 2021's per-condition cells by hand. The packages' own
outputs hold the metrics in tests/metrics/test_asvspoof5_package_parity.py and
tests/metrics/test_asvspoof2021_{package,tables}_parity.py."""

from __future__ import annotations

import numpy as np
import pytest

from sasv.metrics.breakdowns import POOLED
from sasv.metrics.cm import asvspoof_eer, det_curve
from sasv.metrics.tandem import (
    ASVSPOOF5_TANDEM_COST,
    ORGANISERS_ASV_PFA_NONTARGET,
    ORGANISERS_ASV_PFA_SPOOF,
    ORGANISERS_ASV_PMISS,
    ConditionedScores,
    asv_curves,
    asv_error_rates,
    asvspoof2021_breakdown,
    min_t_dcf,
    t_dcf_weights,
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


# ------------------------------------------------------------------------- ASVspoof 2021's tables


def _scores(rows: list[tuple[float, str, str, str]]) -> ConditionedScores:
    scores, keys, attacks, codecs = zip(*rows, strict=True)
    return ConditionedScores(np.array(scores), np.array(keys), np.array(attacks), np.array(codecs))


def test_asvspoof2021_cells_by_hand() -> None:
    """An attack row takes its spoofs and every bona fide trial of the column; an empty class is no number;
    the t-DCF of a cell takes the ASV trials of that cell (here: the ASV fails on c1's spoofs only)."""
    b, t, n = "bonafide", "target", "nontarget"
    cm = _scores([
        (2.0, b, b, "c1"), (1.0, b, b, "c1"), (3.0, b, "-", "c2"),
        (1.5, "spoof", "A07", "c1"), (0.0, "spoof", "A08", "c1"), (0.5, "spoof", "A07", "c2"),
    ])  # fmt: skip
    asv = _scores([
        (3.0, t, b, "c1"), (-3.0, n, b, "c1"), (3.5, "spoof", "A07", "c1"),
        (3.0, t, b, "c2"), (-3.0, n, b, "c2"), (-4.0, "spoof", "A07", "c2"),
    ])  # fmt: skip
    table = asvspoof2021_breakdown(cm, ["A07", "A08", "A09", POOLED], ["c1", "c2", "c3", POOLED], asv)
    assert table["rows"] == ["A07", "A08", "A09", POOLED] and table["columns"] == ["c1", "c2", "c3", POOLED]
    eer = table["eer"]
    # A07 in c1: bona fide 2.0, 1.0 vs 1.5; the first nearest DET point misses 1.0 and accepts 1.5
    assert eer[0][:3] == [0.75, 0.0, None]
    assert eer[1][:3] == [0.0, None, None]  # A08 has no spoof in c2
    assert eer[2] == [None] * 4  # A09: no spoof anywhere
    assert eer[3][3] == asvspoof_eer(np.array([2.0, 1.0, 3.0]), np.array([1.5, 0.0, 0.5]))
    tdcf = table["min_t_dcf"]
    # the ASV's EER threshold is here the nontarget's own score, which the packages accept (>=): Pfa 1,
    # Pmiss 0; c2's ASV rejects its spoof (C2 = 0): every CM threshold costs (C0 + C1 Pmiss_cm) / C0 >= 1
    assert tdcf[0][1] == 1.0
    # c1's ASV accepts its spoof (C2 = Pspoof Cfa_spoof): best where the CM misses 1.0 and rejects 1.5
    c0 = COST.p_nontarget * COST.c_fa
    c1, c2 = COST.p_target * COST.c_miss - c0, COST.p_spoof * COST.c_fa_spoof
    assert tdcf[0][0] == pytest.approx((c0 + c1 / 2) / (c0 + c2), abs=1e-15)
    # A08 in c1: no ASV spoof trial of A08 there, so no C2 (the package's NaN); A09: nothing
    assert tdcf[1][0] is None and tdcf[2] == [None] * 4
    assert asvspoof2021_breakdown(cm, [POOLED], [POOLED])["min_t_dcf"] == [[None]]  # no ASV (DF)


def test_asvspoof2021_degenerate_asv_cells_have_no_t_dcf() -> None:
    """Where the ASV's operating point misses nearly every target (an ASV scoring targets below nontargets:
    C1 < 0) the normalised cost means nothing: no number, where min_t_dcf would refuse the weights."""
    cm = _scores([(1.0, "bonafide", "-", "c"), (0.0, "spoof", "A07", "c"), (0.5, "spoof", "A07", "c")])
    target, nontarget = np.arange(10.0), np.arange(20.0, 30.0)
    asv = _scores(
        [(s, "target", "-", "c") for s in target]
        + [(s, "nontarget", "-", "c") for s in nontarget]
        + [(25.0, "spoof", "A07", "c")]
    )
    assert t_dcf_weights(*asv_error_rates(target, nontarget, np.array([25.0])))[1] < 0
    table = asvspoof2021_breakdown(cm, [POOLED], [POOLED], asv)
    assert table["eer"] == [[0.0]] and table["min_t_dcf"] == [[None]]
