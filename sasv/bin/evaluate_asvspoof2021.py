"""Stage 4 for ASVspoof 2021 LA and DF: a countermeasure's EER and (LA) min t-DCF on an evaluation set, pooled
and per condition, as the organisers' evaluation package (asvspoof-challenge/2021 eval-package, main.py)
computes them, beside the published SSL-AASIST numbers (LA eval 0.82 % EER, 0.2066 min t-DCF; DF eval
2.85 % EER).

  sasv evaluate_asvspoof2021 --cm_conf conf/cm/aasist.yaml --exp_dir exp --data data/la2021_eval
  sasv evaluate_asvspoof2021 --cm_scores SCORES --data data/la2021_eval --out DIR

With --cm_conf, the conf's stage-3 scores of the set (exp/<name>/scores/<set>/cm_scores.txt), refused when
made from other inputs than the conf, checkpoint and wav.scp now, and the results go to
exp/<name>/<benchmark>_<subset>/ (asvspoof2021_la_eval/). With --cm_scores, any score file: a cm_scores.txt
(its completion marker, when beside it, must record this data dir's wav.scp) or the package's own format,
'TRIAL SCORE' per line (SSL_Anti-spoofing's score files); --out is then needed.

The data dir is stage 1's (sasv prepare_asvspoof2021): its prepared.json names the track (or --track for a
data dir made by hand), its utt2subset the subsets, utt2codec/utt2attack/utt2vocoder the conditions, and
LA's asv_scores the organisers' ASV trials for the t-DCF. Every trial of --subset must be scored; a scored
trial the data dir lacks is an error (scores of another set).

Which score (--score): the raw bona fide logit by default, the score SSL-AASIST's published numbers rank
(its main_SSL_LA.py writes batch_out[:, 1], no softmax); logit_spoof and p_bonafide are the other columns
of a cm_scores.txt.

Writes results.json (pooled, per condition, the package's rows x columns tables, counts, the checkpoint that
produced the scores: name, conf, checkpoint path and sha256 from the model record and completion marker) and
results.md, atomically.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.asvspoof2021 import (
    ASV_SCORES,
    BENCHMARK_TRACKS,
    DEFAULT_SUBSET,
    TRACKS,
    read_asv_scores,
    track_info,
)
from sasv.corpora.datadir import validate_cm_datadir
from sasv.corpora.registry import CORPORA
from sasv.exp_layout import RESULTS_RECORD, RESULTS_TABLE, ExpLayout, cm_scores_output
from sasv.extraction.outputs import CM_FIELDS
from sasv.fileio import atomic_write_text
from sasv.locking import exclusive_lock
from sasv.markers import check_prepared_marker, check_stage_inputs, recorded_benchmark
from sasv.models.conf import ConfError, load_conf
from sasv.provenance import RANDOM_INIT_NOTE, data_record, stage_output_model
from sasv.reports.asvspoof2021 import PUBLISHED, EvaluationError, condition_results, results_table
from sasv.reports.columns import percent
from sasv.scoring.asvspoof2021_files import DEFAULT_FIELD, read_asvspoof2021_scores

log = logging.getLogger("evaluate_asvspoof2021")


def data_track(data_dir: Path, track: str | None) -> str:
    """The track of the data dir: its prepared.json's benchmark, which --track must agree with."""
    benchmark = recorded_benchmark(data_dir)
    recorded = BENCHMARK_TRACKS.get(benchmark or "")
    if recorded is None and benchmark is not None:
        raise EvaluationError(
            f"{data_dir}: prepared for {benchmark}, not an ASVspoof 2021 LA or DF set (prepared.json)"
        )
    if track and recorded and track != recorded:
        raise EvaluationError(
            f"{data_dir}: an ASVspoof 2021 {recorded} set (prepared.json), not --track {track}"
        )
    if not (track or recorded):
        raise EvaluationError(f"{data_dir}: no prepared.json names its track; pass --track LA or DF")
    return track or recorded


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv evaluate_asvspoof2021", description=__doc__)
    p.add_argument("--data", required=True, help="the set's data dir (data/la2021_eval, data/df2021_eval)")
    scores = p.add_mutually_exclusive_group(required=True)
    scores.add_argument("--cm_conf", help="the CM conf whose stage-3 scores of the set to evaluate")
    scores.add_argument("--cm_scores", help="a score file: cm_scores.txt, or 'TRIAL SCORE' lines")
    p.add_argument("--exp_dir", default="exp", help="experiment root, with --cm_conf (default: exp)")
    p.add_argument(
        "--out", default=None, help="output dir (default with --cm_conf: exp/<name>/<benchmark>_<subset>)"
    )
    p.add_argument("--track", default=None, choices=TRACKS, help="LA | DF (default: the data dir's)")
    p.add_argument(
        "--subset", default=DEFAULT_SUBSET, help="eval (the published numbers'), progress or hidden (eval)"
    )
    p.add_argument(
        "--score",
        default=DEFAULT_FIELD,
        choices=CM_FIELDS,
        help=f"the column of a cm_scores.txt ({DEFAULT_FIELD})",
    )
    args = p.parse_args(argv)
    if args.cm_scores and not args.out:
        p.error("--out is needed with --cm_scores")
    data_dir = Path(args.data)
    check_prepared_marker(data_dir)
    track = track_info(data_track(data_dir, args.track))
    data = validate_cm_datadir(data_dir, track.condition_files)
    asv = None
    if track.tandem:
        if not (data_dir / ASV_SCORES).is_file():
            raise EvaluationError(
                f"{data_dir}: missing {ASV_SCORES} (run stage 1, sasv prepare_asvspoof2021)"
            )
        asv = read_asv_scores(data_dir / ASV_SCORES)
    lists = {"wav.scp": data_dir / "wav.scp"}
    if args.cm_conf:
        conf = load_conf(args.cm_conf)
        if conf.kind != "cm":
            raise ConfError(f"{args.cm_conf}: a {conf.kind} conf, expected a CM model conf")
        layout = ExpLayout(args.exp_dir)
        output = layout.stage_output(conf.name, "cm", data_dir.name)
        check_stage_inputs(output.marker, conf, lists)
        out_dir = (
            Path(args.out) if args.out else layout.cm_benchmark_dir(conf.name, track.benchmark, args.subset)
        )
    else:
        output = cm_scores_output(args.cm_scores)
        if output.marker.is_file():
            check_stage_inputs(output.marker, None, lists)
        out_dir = Path(args.out)
    scores, score_name = read_asvspoof2021_scores(output.file, args.score)
    unknown = sorted(set(scores) - set(data.wav_scp))
    if unknown:
        raise EvaluationError(
            f"{output.file}: {len(unknown)} scored trial(s) are not in {data_dir} (scores of another set?): "
            f"{', '.join(unknown[:5])}"
        )
    results = condition_results(track.name, scores, data.utt2spf, data.conditions, asv, args.subset)
    system = stage_output_model(output)
    if system is None:
        log.warning(
            "%s: no model record or completion marker beside it: the checkpoint is unknown", output.file
        )
    note = RANDOM_INIT_NOTE if system and system.get("pretrained") is False else None
    published = PUBLISHED[track.name]
    record = {
        "benchmark": track.benchmark,
        "title": CORPORA[track.benchmark].title,
        "track": track.name,
        "cm_scores": str(output.file),
        "cm_score": score_name,
        "system": system,
        "data": data_record(data_dir),
        "published": {**vars(published)},
        "note": note,
        "results": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_dir, "ASVspoof 2021 results"):
        atomic_write_text(out_dir / RESULTS_RECORD, json.dumps(record, indent=2) + "\n")
        atomic_write_text(out_dir / RESULTS_TABLE, results_table(record))
    pooled = results["pooled"]
    tdcf = f", min t-DCF {pooled['min_t_dcf']:.4f}" if pooled.get("min_t_dcf") is not None else ""
    eer = "-" if pooled["eer"] is None else f"{percent(pooled['eer']):.2f} %"
    print(
        f"{record['title']} {args.subset}: EER {eer}{tdcf} ({published.system} published: "
        f"{percent(published.eer):.2f} %"
        + (f", {published.min_t_dcf:.4f}" if published.min_t_dcf is not None else "")
        + f") -> {out_dir / RESULTS_TABLE}"
    )
    if note:
        log.warning(note)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
