"""Diagnostic figures of one scored system: DET curves and score histograms, written as PNG files.

DET curves use the NIST convention: both error rates on normal-deviate (probit) axes, where two Gaussian
score distributions give a straight line, with ticks labelled in percent. Histograms show where each trial
population lies, split into target, nontarget and every spoofing attack, which is what explains an EER.
Matplotlib runs with the non-interactive Agg backend (no display on recipe machines), through its
object-oriented API so that no global pyplot state leaks between figures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.special import logit
from scipy.stats import norm

from sasv.fileio import atomic_output
from sasv.metrics.eer import EER_DEFINITIONS, KEYS, NONTARGET, SPOOF, TARGET, sasv_eers
from sasv.scoring.score_files import TrialScores

# Probit-axis ticks (fractions). The axes follow the data (:func:`det_limits`): they reach down to the
# finest error rate the trial counts can resolve, so a system with SPF-EERs of 0.1 % (the reference
# systems on LA eval) is drawn, not squeezed into the frame, and never start above 1 %.
DET_TICKS: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 0.0005, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6,
                                0.8, 0.9, 0.95, 0.99)  # fmt: skip
# when the axes reach below 0.1 %, fewer ticks: probit spacing crowds 0.01 %, 0.05 % and 0.1 % otherwise
DET_TICKS_WIDE: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99)
DET_LOWEST_START = 0.01
DET_UPPER = 0.99
# one marker per task, so that equal EERs (often SASV and SPF) stay visible on top of each other
EER_MARKERS = {"sasv_eer": "o", "sv_eer": "s", "spf_eer": "D"}
# a figure of randomly initialised models says so on the figure itself, not only in a table beside it
NOTE_COLOUR = "tab:red"
DET_SIZE_INCHES: tuple[float, float] = (6.0, 6.0)
HIST_PANEL_INCHES: tuple[float, float] = (8.0, 3.5)
DPI = 100
# P(bona fide) of a confident CM is 0 or 1 to float32 precision; its histogram is drawn on logit(P)
# clipped to this distance from 0 and 1 so that the two populations are visible as shapes, not two spikes.
CM_LOGIT_EPS = 1e-7
LABELS = {"sasv_eer": "SASV (target vs nontarget+spoof)", "sv_eer": "SV (target vs nontarget)",
          "spf_eer": "SPF (target vs spoof)"}  # fmt: skip


def det_points(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P_fa, P_miss) at every distinct threshold, rejecting scores <= threshold, from one sort.

    Starts at the accept-all point (P_fa 1, P_miss 0) and ends at reject-all (0, 1), so the curve spans
    the full range whatever the axis limits are.
    """
    positives = np.asarray(positives, dtype=np.float64)
    negatives = np.asarray(negatives, dtype=np.float64)
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("a DET curve needs positive and negative scores")
    scores = np.concatenate((positives, negatives))
    is_pos = np.concatenate((np.ones(positives.size, bool), np.zeros(negatives.size, bool)))
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_pos = scores[order], is_pos[order]
    run_ends = np.append(np.flatnonzero(np.diff(sorted_scores)), scores.size - 1)
    misses = np.concatenate(([0], np.cumsum(sorted_pos)[run_ends]))
    rejected_neg = np.concatenate(([0], np.cumsum(~sorted_pos)[run_ends]))
    return 1.0 - rejected_neg / negatives.size, misses / positives.size


def _probit_axes(ax, limits: tuple[float, float]) -> None:
    lo, hi = limits
    ticks = [t for t in (DET_TICKS_WIDE if lo < 0.001 else DET_TICKS) if lo <= t <= hi]
    labels = [f"{100 * t:g}" for t in ticks]
    for set_lim, set_ticks, set_labels in (
        (ax.set_xlim, ax.set_xticks, ax.set_xticklabels),
        (ax.set_ylim, ax.set_yticks, ax.set_yticklabels),
    ):
        set_lim(norm.ppf(lo), norm.ppf(hi))
        set_ticks(norm.ppf(ticks))
        set_labels(labels)
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.set_aspect("equal")


def _save(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Render with Agg and write the PNG atomically (a half-written image must not look finished)."""
    FigureCanvasAgg(fig)
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        fig.savefig(handle, format="png", dpi=DPI)


def _det_curves(scores: TrialScores) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """task -> (P_fa, P_miss, EER) for the SASV, SV and SPF tasks whose classes are present."""
    codes = scores.codes
    eers = sasv_eers(scores.fused, scores.key)
    curves = {}
    for name, (positive, negatives) in EER_DEFINITIONS.items():
        if eers[name] is not None:
            pos = scores.fused[codes == KEYS.index(positive)]
            neg = scores.fused[np.isin(codes, [KEYS.index(k) for k in negatives])]
            curves[name] = (*det_points(pos, neg), eers[name])
    return curves


def det_limits(curves: dict[str, tuple[np.ndarray, np.ndarray, float]]) -> tuple[float, float]:
    """Axis range (fractions) that shows every curve: from the tick at or below the finest non-zero error
    rate of any curve (1 / its trial count: nothing finer can be measured), never starting above
    :data:`DET_LOWEST_START`, up to :data:`DET_UPPER`."""
    rates = [r[r > 0] for p_fa, p_miss, _ in curves.values() for r in (p_fa, p_miss)]
    finest = min((float(r.min()) for r in rates if r.size), default=DET_LOWEST_START)
    lo = min(DET_LOWEST_START, finest)
    return max(t for t in DET_TICKS if t <= lo) if lo >= DET_TICKS[0] else DET_TICKS[0], DET_UPPER


def det_figure(
    scores: TrialScores,
    title: str | None = None,
    limits: tuple[float, float] | None = None,
    note: str | None = None,
) -> Figure:
    """The DET figure of :func:`plot_det` (returned, not saved: tests and notebooks can look at it)."""
    curves = _det_curves(scores)
    limits = limits or det_limits(curves)
    if not 0.0 < limits[0] < limits[1] < 1.0:
        raise ValueError(f"DET limits must satisfy 0 < lo < hi < 1, got {limits}")
    fig = Figure(figsize=DET_SIZE_INCHES)
    ax = fig.add_subplot(1, 1, 1)
    lo, hi = norm.ppf(limits[0]), norm.ppf(limits[1])
    ax.plot([lo, hi], [lo, hi], color="0.6", linestyle=":", linewidth=0.8, label="P_miss = P_fa")
    for name, (p_fa, p_miss, eer) in curves.items():
        x = np.clip(norm.ppf(np.clip(p_fa, 1e-300, 1.0)), lo, hi)
        y = np.clip(norm.ppf(np.clip(p_miss, 1e-300, 1.0)), lo, hi)
        (line,) = ax.plot(x, y, linewidth=1.5, label=f"{LABELS[name]}, EER {100 * eer:.3g} %")
        eer_at = np.clip(norm.ppf(min(max(eer, limits[0]), limits[1])), lo, hi)
        ax.plot([eer_at], [eer_at], marker=EER_MARKERS[name], color=line.get_color(), markersize=7,
                markeredgecolor="white", markeredgewidth=1.0, zorder=5, linestyle="none")  # fmt: skip
    _probit_axes(ax, limits)
    ax.set_xlabel("False acceptance rate (%)")
    ax.set_ylabel("Miss rate (%)")
    ax.set_title(title or "DET curves of the SASV score")
    ax.legend(loc="upper right", fontsize=8)
    _add_note(fig, note)
    fig.tight_layout()
    return fig


def plot_det(
    scores: TrialScores,
    path: str | os.PathLike[str],
    title: str | None = None,
    limits: tuple[float, float] | None = None,
    note: str | None = None,
) -> None:
    """DET curves of the fused SASV score for the SASV, SV and SPF tasks, EER points marked, as a PNG.

    Curves whose classes are absent (e.g. no spoof trials) are left out. The axes follow the data
    (:func:`det_limits`) unless ``limits`` are given; points beyond them are clipped to the frame edge, so
    the curve still shows which way it leaves the plot. ``note`` (e.g. that the models are randomly
    initialised) is written on the figure. The image is ``DET_SIZE_INCHES * DPI`` pixels (600 x 600).
    """
    _save(det_figure(scores, title, limits, note), path)


def _add_note(fig: Figure, note: str | None) -> None:
    if note:
        fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=7, color=NOTE_COLOUR, wrap=True)


def _populations(scores: TrialScores) -> list[tuple[str, np.ndarray]]:
    """(label, trial mask) for target, nontarget and each attack id of the spoof trials, in that order."""
    masks = [(TARGET, scores.key == TARGET), (NONTARGET, scores.key == NONTARGET)]
    spoof = scores.key == SPOOF
    for attack in sorted(np.unique(scores.attack[spoof]).tolist()):
        masks.append((f"spoof {attack}", spoof & (scores.attack == attack)))
    return [(label, mask) for label, mask in masks if mask.any()]


def _hist_panel(ax, values: np.ndarray, populations: Sequence[tuple[str, np.ndarray]], xlabel: str) -> None:
    finite_lo, finite_hi = float(values.min()), float(values.max())
    if finite_lo == finite_hi:
        finite_lo, finite_hi = finite_lo - 0.5, finite_hi + 0.5
    bins = np.linspace(finite_lo, finite_hi, 61)
    colours = _colours(len(populations))
    for (label, mask), colour in zip(populations, colours, strict=True):
        # Target and nontarget share the CM score distribution (both bona fide): dash one so both show.
        bold = label in (TARGET, NONTARGET)
        ax.hist(values[mask], bins=bins, density=True, histtype="step", color=colour,
                linewidth=2.0 if bold else 1.0, linestyle="--" if label == NONTARGET else "-",
                label=f"{label} ({int(mask.sum())})")  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.grid(True, color="0.9", linewidth=0.5)


def _colours(n: int) -> list:
    """Target and nontarget in fixed strong colours; attacks in the other hues of a qualitative map, none
    of them a green or a blue (tab20 pairs 0-1 are blues, 4-5 greens), so no attack looks like a key."""
    from matplotlib import colormaps

    fixed = [colormaps["tab20"](4), colormaps["tab20"](0)]  # tab:green, tab:blue
    cmap = colormaps["tab20"]
    others = [cmap(i) for i in (2, 6, 8, 10, 12, 14, 16, 18, 3, 7, 9, 11, 13, 15, 17, 19)]
    return (fixed + others * (1 + n // len(others)))[:n]


def _cm_panel(cm: np.ndarray) -> tuple[np.ndarray, str]:
    """CM probabilities are shown as clipped logits; other CM scores (e.g. a fusion's CM term) as they are."""
    if cm.min() >= 0.0 and cm.max() <= 1.0:
        return logit(np.clip(cm, CM_LOGIT_EPS, 1.0 - CM_LOGIT_EPS)), "CM score: logit P(bona fide)"
    return cm, "CM score"


def plot_histograms(
    scores: TrialScores, path: str | os.PathLike[str], title: str | None = None, note: str | None = None
) -> None:
    """Score histograms (density) per population: target, nontarget and each attack, as a PNG.

    One panel per score column present: the fused SASV score, the ASV cosine and the CM score, the latter
    as logit(P bona fide) clipped at ``CM_LOGIT_EPS``. ``note`` is written on the figure. Panels are
    stacked; the image is
    ``HIST_PANEL_INCHES`` per panel at ``DPI`` (800 x 350 pixels per panel).
    """
    populations = _populations(scores)
    panels: list[tuple[np.ndarray, str]] = [(scores.fused, "SASV (fused) score")]
    if scores.asv is not None:
        panels.append((scores.asv, "ASV score (cosine)"))
    if scores.cm is not None:
        panels.append(_cm_panel(scores.cm))
    width, height = HIST_PANEL_INCHES
    fig = Figure(figsize=(width, height * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (values, xlabel) in zip(axes, panels, strict=True):
        _hist_panel(ax, np.asarray(values, dtype=np.float64), populations, xlabel)
    # Outside the axes, right of the top panel: inside it would hide the spoof spikes near the edges.
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, title="trials")
    fig.suptitle(title or "Score distributions per trial population")
    _add_note(fig, note)
    _save(fig, path)


def plot_training_log(
    columns: dict[str, list[float]], panels: dict[str, str], path: str | os.PathLike[str]
) -> None:
    """Training curves as a PNG: one panel per entry of ``panels`` (column -> axis label) against the
    epoch, two panels a row, the learning rate on a log axis."""
    epochs = columns["epoch"]
    rows = max(1, math.ceil(len(panels) / 2))
    fig = Figure(figsize=(8.0, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    for ax, (key, label) in zip(axes.flat, panels.items(), strict=False):
        ax.plot(epochs, columns[key], marker="o", markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, color="0.9", linewidth=0.5)
        if key == "lr" and min(columns[key]) > 0:
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    _save(fig, path)
