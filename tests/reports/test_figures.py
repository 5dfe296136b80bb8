import struct

import numpy as np
import pytest

from sasv.reports.figures import det_points, plot_det, plot_histograms
from sasv.scoring.score_files import TrialScores
from tests.synthetic_scores import EVAL_ATTACKS, make_trials

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_det_png(tmp_path):
    path = tmp_path / "det.png"
    plot_det(make_trials(seed=1, attacks=EVAL_ATTACKS), path, title="test system")
    assert png_size(path) == (600, 600)
    assert path.stat().st_size > 10_000  # axes, three curves, legend: far from an empty canvas
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, no leftovers


def test_histogram_png_has_one_panel_per_score_column(tmp_path):
    trials = make_trials(seed=2, attacks=EVAL_ATTACKS)
    plot_histograms(trials, tmp_path / "hist.png")
    assert png_size(tmp_path / "hist.png") == (800, 1050)
    fused_only = TrialScores(
        spk=trials.spk, utt=trials.utt, attack=trials.attack, key=trials.key, fused=trials.fused
    )
    plot_histograms(fused_only, tmp_path / "hist1.png")
    assert png_size(tmp_path / "hist1.png") == (800, 350)
    assert (tmp_path / "hist.png").stat().st_size > 20_000


def test_det_without_spoofs_still_plots(tmp_path):
    trials = make_trials(seed=3)
    bona = trials.key != "spoof"
    subset = TrialScores(
        spk=trials.spk[bona],
        utt=trials.utt[bona],
        attack=trials.attack[bona],
        key=trials.key[bona],
        fused=trials.fused[bona],
    )
    plot_det(subset, tmp_path / "det.png")
    assert png_size(tmp_path / "det.png") == (600, 600)
    with pytest.raises(ValueError, match="limits"):
        plot_det(subset, tmp_path / "x.png", limits=(0.5, 0.1))


def test_det_points_follow_the_reject_rule():
    p_fa, p_miss = det_points(np.array([1.0, 2.0]), np.array([0.0, 1.0]))
    # thresholds: accept all, <=0, <=1, <=2
    assert p_fa.tolist() == [1.0, 0.5, 0.0, 0.0]
    assert p_miss.tolist() == [0.0, 0.0, 0.5, 1.0]


def _good_system(n_target: int = 2000, n_spoof: int = 20000, seed: int = 0) -> TrialScores:
    """SPF-EER around 0.1 %: the reference systems' range on LA eval."""
    rng = np.random.default_rng(seed)
    fused = np.concatenate([rng.normal(3.1, 1.0, n_target), rng.normal(-3.1, 1.0, n_spoof)])
    key = ["target"] * n_target + ["spoof"] * n_spoof
    return TrialScores(spk=["s"] * len(key), utt=[f"u{i}" for i in range(len(key))],
                       attack=["bonafide"] * n_target + ["A17"] * n_spoof, key=key, fused=fused)  # fmt: skip


def test_det_axes_follow_the_data_down_to_the_trial_resolution():
    from scipy.stats import norm

    from sasv.reports.figures import det_figure

    good = det_figure(_good_system())
    lo, _ = good.axes[0].get_xlim()
    assert lo <= norm.ppf(1e-4) + 1e-9, "a 0.1 % EER system needs axes below 0.1 %"
    assert lo >= norm.ppf(1e-5) - 1e-9, "no finer than 1 / trial count allows (1/20000 -> 1e-5 tick)"
    random = det_figure(make_trials(seed=1, attacks=EVAL_ATTACKS))
    assert random.axes[0].get_xlim()[0] <= norm.ppf(0.01) + 1e-9


def test_equal_eers_stay_visible_and_colours_never_repeat_a_key():
    from sasv.reports.figures import EER_MARKERS, _colours, det_figure

    fig = det_figure(make_trials(seed=1, attacks=EVAL_ATTACKS))
    markers = [
        line.get_marker() for line in fig.axes[0].get_lines() if line.get_marker() not in ("None", None)
    ]
    assert sorted(markers) == sorted(EER_MARKERS.values()), "one distinct marker per task"
    colours = _colours(2 + 13)  # target, nontarget, the 13 eval attacks A07-A19
    assert colours[0] not in colours[2:] and colours[1] not in colours[2:]
    assert len({tuple(c) for c in colours}) == len(colours)


def test_figures_of_random_models_say_so(tmp_path):
    from sasv.reports.figures import det_figure

    note = "tiny_ecapa: RANDOMLY INITIALISED weights: these numbers mean nothing."
    fig = det_figure(make_trials(seed=1), note=note)
    assert [t.get_text() for t in fig.texts] == [note]
    plot_histograms(make_trials(seed=2), tmp_path / "h.png", note=note)
    assert png_size(tmp_path / "h.png") == (800, 1050)
