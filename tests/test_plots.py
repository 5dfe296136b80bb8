import struct

import numpy as np
import pytest

from sasv.plots import det_points, plot_det, plot_histograms
from sasv.score_files import TrialScores
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
