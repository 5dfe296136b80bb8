"""Diagnostics of one scored system: detection costs, CM-EER, per-attack SPF-EERs and figures.

Reads <system_dir>/scores_<set>.txt (``spk utt attack key asv cm fused``, as written by score_trials.py or
fuse_systems.py) and writes beside it:

  analysis.json        per set: the challenge EERs, counts and sasv.reports.records.metrics_record (a-DCF
                       under the cost models results.json names, ASVspoof 5's t-DCF and t-EER, minDCF at
                       p_target 0.01/0.05, CM-EER, SPF-EER per attack); on ASVspoof 5 also the CM's Track 1
                       metrics from the system's cm_scores_<set>.track1.tsv, overall and per attack (x codec)
                       and (--bootstrap) 95 % bootstrap intervals of the EERs and the primary cost
  analysis.md          the results table with the cost columns, the intervals as value [low, high], the
                       per-attack SPF-EER table and, on ASVspoof 5, the CM's Track 1 table(s) per attack
  det_<set>.png        DET curves (SASV, SV, SPF) of the fused score
  hist_<set>.png       score histograms per key and attack (fused, ASV, CM)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sasv.cli import ArgumentParser, run_cli
from sasv.errors import MissingInputError
from sasv.exp_layout import (
    ANALYSIS_RECORD,
    ANALYSIS_TABLE,
    FUSED_VARIANT,
    RESULTS_RECORD,
    score_file,
    system_file,
)
from sasv.fileio import atomic_write_text
from sasv.metrics.bootstrap import DEFAULT_RESAMPLES, BootstrapSpec, default_jobs
from sasv.metrics.detection_costs import MIN_DCF_P_TARGETS, a_dcf_key, min_dcf_name
from sasv.metrics.eer import RankedScores
from sasv.reports.columns import metric
from sasv.reports.records import (
    ATTACK_BREAKDOWN_KEY,
    BOOTSTRAP_KEY,
    CM_TRACK1_BREAKDOWN_KEY,
    TRACK2_BREAKDOWN_KEY,
    MetricChoice,
    add_actual_costs,
    bootstrap_record,
    cm_track1_metrics,
    fusion_metrics_record,
    metrics_record,
    rank_trials,
    track2_breakdown,
)
from sasv.reports.tables import (
    CM_BREAKDOWN_COLUMNS,
    TRACK2_BREAKDOWN_COLUMNS,
    attack_table,
    breakdown_tables,
    interval_table,
    results_table,
)
from sasv.scoring.score_files import read_score_file
from sasv.scoring.track1_files import read_track1

log = logging.getLogger("analyse_system")


def analyse_set(
    path: Path,
    set_name: str,
    title: str,
    plots: bool,
    choice: MetricChoice,
    note: str | None = None,
    bootstrap: BootstrapSpec | None = None,
    scored: dict | None = None,
    fused: bool = False,
) -> tuple[dict, RankedScores]:
    """Every metric of one score file (the costs ``choice`` names), and its figures unless ``plots`` is
    false (``note``, e.g. that the models are randomly initialised, is written on them). With
    ``bootstrap``, the intervals of the headline numbers: those the scoring tool recorded in results.json
    (``scored``, the set's record there) when made the same way, else computed here. ``fused``: the scores
    of a learned fusion, which has no tandem metrics (:func:`fusion_metrics_record`)."""
    scores = read_score_file(path)
    if fused:
        result = fusion_metrics_record(scores, choice, source=path)
    else:
        result = metrics_record(scores, source=path, choice=choice)
    if bootstrap is not None:
        recorded = (scored or {}).get(BOOTSTRAP_KEY)
        same = recorded is not None and all(
            recorded.get(k) == v for k, v in dataclasses.asdict(bootstrap).items()
        )
        result[BOOTSTRAP_KEY] = (
            recorded if same else bootstrap_record(scores, choice, bootstrap, default_jobs())
        )
    track1 = [system_file(path.parent, kind, set_name) for kind in ("track1_scores", "track1_keys")]
    codecs = None
    if choice.track1 and all(p.is_file() for p in track1):
        cm_trials = read_track1(*track1)
        result.update(cm_track1_metrics(cm_trials, breakdown=True))
        if cm_trials.codec is not None:
            codec_of = dict(zip(cm_trials.filename.tolist(), cm_trials.codec.tolist(), strict=True))
            codecs = np.array([codec_of[u] for u in scores.utt.tolist()])
    if choice.tandem and not fused and scores.asv is not None and scores.cm is not None:
        result[TRACK2_BREAKDOWN_KEY] = track2_breakdown(
            scores.asv, scores.cm, scores.fused, scores.key, scores.attack, codecs
        )
    if plots:
        from sasv.reports.figures import plot_det, plot_histograms  # matplotlib only when figures are wanted

        plot_det(scores, path.parent / f"det_{set_name}.png", f"{title}: {set_name}", note=note)
        plot_histograms(scores, path.parent / f"hist_{set_name}.png", f"{title}: {set_name}", note=note)
    costs = [a_dcf_key(m) for m in choice.a_dcf_models] + [min_dcf_name(p) for p in MIN_DCF_P_TARGETS]
    costs += ["min_t_dcf"] if choice.tandem and not fused else []
    log.info("%s %s: %s", title, set_name, ", ".join(metric(k).describe(result[k]) for k in costs))
    return result, rank_trials(scores)


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv analyse_system", description=__doc__)
    p.add_argument("--system_dir", required=True, help="e.g. exp/<asv>/<cm>/<variant> or exp/fusion/<name>")
    p.add_argument("--sets", nargs="+", default=["dev", "eval"])
    p.add_bool("--plots", True, "DET curves and score histograms (default: true)")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_RESAMPLES,
        help="bootstrap resamples (claimed speakers) for 95 %% intervals of the EERs and the primary cost; "
        "0: none (default: %(default)s; those of results.json are reused when made the same way)",
    )
    p.add_argument(
        "--title", default=None, help="figure/table title (default: the system name its results.json records)"
    )
    args = p.parse_args(argv)
    system_dir = Path(args.system_dir)
    record_path = system_dir / RESULTS_RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    title = args.title or record.get("system") or "/".join(system_dir.resolve().parts[-2:])

    results, ranked = {}, {}
    for set_name in dict.fromkeys(args.sets):
        path = score_file(system_dir, set_name)
        if not path.is_file():
            raise MissingInputError(f"{path} not found: score this system on {set_name} first")
        choice = MetricChoice.from_record(record)
        spec = BootstrapSpec(args.bootstrap) if args.bootstrap > 0 else None
        scored = (record.get("results") or {}).get(set_name)
        results[set_name], ranked[set_name] = analyse_set(
            path, set_name, title, args.plots, choice, record.get("note"), spec, scored,
            fused=record.get("variant") == FUSED_VARIANT,
        )  # fmt: skip
    # dev's thresholds: this run's dev, else the dev record results.json holds (eval analysed alone)
    add_actual_costs(
        results, ranked, choice, None if "dev" in results else (record.get("results") or {}).get("dev")
    )

    note = record.get("note")
    breakdown_keys = (ATTACK_BREAKDOWN_KEY, CM_TRACK1_BREAKDOWN_KEY, TRACK2_BREAKDOWN_KEY)
    tables = {s: {k: v for k, v in r.items() if k not in breakdown_keys} for s, r in results.items()}
    breakdown = {s: r[ATTACK_BREAKDOWN_KEY] for s, r in results.items()}
    text = results_table(title, tables, note) + "\n" + interval_table(tables, f"{title}: how sure")
    text += "\n" + attack_table(breakdown, f"{title}: SPF-EER per attack")
    track2_tables = {s: r[TRACK2_BREAKDOWN_KEY] for s, r in results.items() if TRACK2_BREAKDOWN_KEY in r}
    if track2_tables:
        text += "\n" + breakdown_tables(
            track2_tables, TRACK2_BREAKDOWN_COLUMNS, f"{title}: Track 2 per attack"
        )
    cm_tables = {s: r[CM_TRACK1_BREAKDOWN_KEY] for s, r in results.items() if CM_TRACK1_BREAKDOWN_KEY in r}
    if cm_tables:
        title_cm = f"{title}: the CM's Track 1 metrics per attack"
        text += "\n" + breakdown_tables(cm_tables, CM_BREAKDOWN_COLUMNS, title_cm)
    atomic_write_text(system_dir / ANALYSIS_TABLE, text)
    atomic_write_text(
        system_dir / ANALYSIS_RECORD, json.dumps({"system": title, "results": results}, indent=2) + "\n"
    )
    log.info("wrote %s", system_dir / ANALYSIS_TABLE)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
