"""run_test stage 1: score the trials of one ASV model x CM model with one embedding norm.

Reads exp/<asv>/embeddings/<set>/xvector.scp and exp/<cm>/scores/<set>/cm_scores.txt (refusing outputs that
are missing or were made from other inputs), writes into the system's folder exp/<asv>/<cm>/<variant>:
scores_<set>.txt (``spk utt attack key asv cm fused``), scores_<set>.sasv.txt (the SASV 2022 submission
format), results.json and results.md. On ASVspoof 5 (the benchmark stage 1 recorded in the data dir's
prepared.json; a corpus whose sasv.corpora.registry record has official_files) also the official Track 2
submission scores_<set>.track2.tsv (cm-score P_CM, asv-score the cosine, sasv-score the fused score) and its
key file keys_<set>.track2.tsv, and the CM's Track 1 files cm_scores_<set>.track1.tsv (the AASIST log-odds
logit_bonafide - logit_spoof per test utterance) and cm_keys_<set>.track1.tsv: what the organisers' scorer
reads.

The metrics are the benchmark's (sasv.reports.records.BENCHMARK_METRICS): LA the a-DCF with the a-DCF paper's
cost model, ASVspoof 5 the a-DCF with the official sasv2024 cost model, min t-DCF and t-EER, and the CM's
Track 1 metrics (CM-EER, minDCF, CLLR, actDCF of its log-odds). --a_dcf_cost
picks other cost models (both: --a_dcf_cost paper sasv2024).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.datadir import validate_datadir
from sasv.corpora.protocols import format_trial_counts
from sasv.corpora.registry import CORPORA, DEFAULT_CORPUS, prepared_benchmark
from sasv.errors import MissingInputError
from sasv.exp_layout import (
    DEFAULT_SCORE_RULE,
    RESULTS_RECORD,
    RESULTS_TABLE,
    ExpLayout,
    score_file,
    submission_file,
    system_file,
    variant,
)
from sasv.extraction.outputs import EmbeddingArchive, read_cm_log_odds, read_cm_scores, read_embeddings
from sasv.fileio import atomic_write_text
from sasv.locking import exclusive_lock
from sasv.markers import check_prepared_marker, check_stage_inputs
from sasv.metrics.bootstrap import DEFAULT_RESAMPLES, BootstrapSpec, default_jobs
from sasv.metrics.detection_costs import A_DCF_COST_MODELS
from sasv.metrics.eer import RankedScores, cm_utterance_scores
from sasv.models.conf import ModelConf, load_conf
from sasv.provenance import (
    EMBEDDING_DTYPE_KEY,
    RANDOM_INIT_NOTE,
    data_record,
    joined_by_set,
    read_model_record,
    stored_embedding_dtype,
)
from sasv.reports.columns import always_shown, describe_metrics
from sasv.reports.records import (
    BOOTSTRAP_KEY,
    MetricChoice,
    MixedMetricsError,
    add_actual_costs,
    bootstrap_record,
    cm_track1_metrics,
    metric_choice,
    metrics_record,
    rank_trials,
)
from sasv.reports.tables import interval_table, results_table
from sasv.scoring.asnorm import DEFAULT_TOP_K, check_top_k, effective_top_k
from sasv.scoring.cosine import NORMS, SCORE_RULES
from sasv.scoring.evaluate import compute_trial_scores
from sasv.scoring.score_files import TrialScores, write_score_file, write_submission_file
from sasv.scoring.track1_files import Track1Trials, read_track1, write_track1
from sasv.scoring.track2_files import write_keys, write_submission

log = logging.getLogger("score_trials")


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv score_trials", description=__doc__)
    p.add_argument("--asv_conf", required=True)
    p.add_argument("--cm_conf", required=True)
    p.add_argument("--norm", required=True, choices=NORMS)
    p.add_argument("--fusion", default=DEFAULT_SCORE_RULE, choices=SCORE_RULES)
    p.add_argument("--data_dir", default="data")
    p.add_argument("--exp_dir", default="exp")
    p.add_argument("--sets", nargs="+", default=["dev", "eval"])
    p.add_argument(
        "--score_norm",
        default="none",
        choices=["none", "asnorm"],
        help="asnorm: adaptive symmetric normalisation of the ASV score against --cohort_set (default: none)",
    )
    p.add_argument("--cohort_set", default="train_cohort", help="data dir of the AS-norm cohort")
    p.add_argument(
        "--top_k",
        type=int,
        default=DEFAULT_TOP_K,
        help="AS-norm top-K cohort scores (>= 2; capped at the cohort size) (default: %(default)s)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_RESAMPLES,
        help="bootstrap resamples (claimed speakers) for 95 %% intervals of the EERs and the primary cost; "
        "0: none (default: %(default)s)",
    )
    p.add_argument(
        "--a_dcf_cost",
        nargs="*",
        default=[],
        choices=list(A_DCF_COST_MODELS),
        help="a-DCF cost model(s) to report (default: the benchmark's: la paper, asvspoof5 sasv2024)",
    )
    args = p.parse_args(argv)

    check_top_k(args.top_k)  # before any work, whatever --score_norm: a bad value is a mistake either way
    benchmark = set_benchmark(Path(args.data_dir), args.sets)
    asv, cm = load_conf(args.asv_conf), load_conf(args.cm_conf)
    layout = ExpLayout(args.exp_dir)
    models = [
        read_model_record(layout.model_record(asv.name, "asv")),
        read_model_record(layout.model_record(cm.name, "cm")),
    ]
    random_models = [m["name"] for m in models if not m["pretrained"]]
    note = f"{', '.join(random_models)}: {RANDOM_INIT_NOTE}" if random_models else None
    variant_name = variant(args.norm, args.score_norm, args.fusion)
    out_dir = layout.system_dir(asv.name, cm.name, variant_name)
    out_dir.mkdir(parents=True, exist_ok=True)

    cohort, top_k = None, None
    if args.score_norm == "asnorm":
        cohort_dir = Path(args.data_dir) / args.cohort_set
        cohort = read_cohort(layout, asv, cohort_dir)
        top_k = effective_top_k(args.top_k, len(cohort), str(cohort_dir))
        if top_k < args.top_k:
            log.info(
                "AS-norm: --top_k %d is more than the %d utterances of the cohort %s: using all %d",
                args.top_k, len(cohort), cohort_dir, top_k,
            )  # fmt: skip
        log.info("AS-norm against %d cohort utterances of %s, top %d", len(cohort), args.cohort_set, top_k)
    choice = metric_choice(benchmark, args.a_dcf_cost)
    with exclusive_lock(out_dir, "scores and tables"):
        results, ranked = {}, {}
        for set_name in args.sets:
            results[set_name], ranked[set_name] = score_set(
                layout,
                asv,
                cm,
                Path(args.data_dir) / set_name,
                out_dir,
                args.norm,
                args.fusion,
                cohort,
                top_k or args.top_k,
                choice,
                track2=CORPORA[benchmark].official_files,
                bootstrap=BootstrapSpec(args.bootstrap) if args.bootstrap > 0 else None,
            )
        add_actual_costs(results, ranked, choice)
        # how the ASV model's embeddings were stored (float16 rounds them) and what each set was scored on:
        # the summary and the fusion compare them across the systems they gather
        stored = {s: stored_embedding_dtype(layout.stage_output(asv.name, "asv", s).file) for s in args.sets}
        models[0] = {**models[0], EMBEDDING_DTYPE_KEY: joined_by_set(stored)}
        record = {
            "system": layout.system_name(asv.name, cm.name, variant_name),
            "asv": asv.name,
            "cm": cm.name,
            "norm": args.norm,
            "variant": variant_name,
            "fusion": args.fusion,
            "score_norm": args.score_norm,
            "top_k": top_k,
            **({"top_k_requested": args.top_k} if top_k is not None and top_k != args.top_k else {}),
            "benchmark": benchmark,
            "metrics": choice.to_dict(),
            "models": models,
            "data": {
                s: data_record(Path(args.data_dir) / s)
                for s in [*args.sets, *([args.cohort_set] if cohort is not None else [])]
            },
            "note": note,
            "results": results,
        }
        atomic_write_text(out_dir / RESULTS_RECORD, json.dumps(record, indent=2) + "\n")
        title = f"{record['system']} (fusion: {args.fusion})"
        tables = results_table(title, results, note) + "\n" + interval_table(results, "How sure")
        atomic_write_text(out_dir / RESULTS_TABLE, tables)
        log.info("wrote %s", out_dir / RESULTS_TABLE)
    if note:
        log.warning(note)
    return 0


def set_benchmark(data_root: Path, sets: Sequence[str]) -> str:
    """The one benchmark the sets' data dirs were prepared for; sets of two benchmarks are an error (their
    metrics differ, so one table cannot hold both)."""
    found = {name: prepared_benchmark(data_root / name) for name in sets}
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{name}: {bench}" for name, bench in found.items())
        raise MixedMetricsError(f"{data_root}: the sets belong to different benchmarks ({listed})")
    benchmark = next(iter(found.values()), DEFAULT_CORPUS)
    corpus = CORPORA[benchmark]
    if corpus.cm_only:
        raise MixedMetricsError(
            f"{data_root / next(iter(found))}: a set of {corpus.title}, which judges countermeasures alone "
            f"(no enrolment, no SASV trials): its metrics are stage 4's, sasv {corpus.cm_evaluation} "
            f"(run_spk_ebd_extract.sh --corpus {benchmark} --stage 4)"
        )
    return benchmark


def read_cohort(layout: ExpLayout, asv: ModelConf, cohort_dir: Path) -> dict[str, np.ndarray]:
    """The AS-norm cohort's embeddings, refused when missing or made from other inputs."""
    out = layout.stage_output(asv.name, "asv", cohort_dir.name)
    if not out.file.is_file():
        raise MissingInputError(
            f"{out.file} not found: AS-norm needs cohort embeddings; run run_spk_ebd_extract.sh with "
            f"--cohort true (stages 1-2)"
        )
    check_stage_inputs(out.marker, asv, {"wav.scp": cohort_dir / "wav.scp"})
    return read_embeddings(out.file)


def score_set(
    layout: ExpLayout,
    asv: ModelConf,
    cm: ModelConf,
    data_dir: Path,
    out_dir: Path,
    norm: str,
    fusion: str,
    cohort: Mapping[str, np.ndarray] | None,
    top_k: int,
    choice: MetricChoice,
    track2: bool = False,
    bootstrap: BootstrapSpec | None = None,
) -> tuple[dict, RankedScores]:
    """Score one set into ``out_dir`` and return its metrics record (the metrics ``choice`` names) and its
    ranked fused scores (for the actual costs at dev's thresholds, :func:`add_actual_costs`),
    refusing stage outputs that are missing or were made from other inputs; with ``track2`` also the
    ASVspoof 5 Track 2 submission and key files; with ``bootstrap`` the intervals of its headline numbers."""
    set_name = data_dir.name
    check_prepared_marker(data_dir)
    data = validate_datadir(data_dir)
    emb, cm_out = layout.stage_output(asv.name, "asv", set_name), layout.stage_output(cm.name, "cm", set_name)
    for path in (emb.file, cm_out.file):
        if not path.is_file():
            raise MissingInputError(f"{path} not found: run run_spk_ebd_extract.sh stages 2-3 first")
    wav_scp, trials = data_dir / "wav.scp", data_dir / "trials"
    check_stage_inputs(emb.marker, asv, {"wav.scp": wav_scp})
    check_stage_inputs(cm_out.marker, cm, {"wav.scp": wav_scp, "trials": trials})
    scores = compute_trial_scores(
        data,
        EmbeddingArchive(emb.file),
        read_cm_scores(cm_out.file),
        norm,
        fusion,
        emb_source=str(emb.file),
        cm_source=str(cm_out.file),
        cohort=cohort,
        top_k=top_k,
    )
    write_score_file(score_file(out_dir, set_name), scores)
    write_submission_file(submission_file(out_dir, set_name), scores)
    if track2:
        columns = (scores.spk, scores.utt, scores.cm, scores.asv, scores.fused)
        write_submission(system_file(out_dir, "track2_scores", set_name), zip(*columns, strict=True))
        write_keys(
            system_file(out_dir, "track2_keys", set_name),
            zip(scores.spk, scores.utt, scores.key, strict=True),
        )
    result = metrics_record(scores, choice=choice)
    if choice.track1:
        track1 = write_cm_track1(out_dir, set_name, scores, cm_out.file, data.utt2codec)
        result.update(cm_track1_metrics(track1))
    if bootstrap is not None:
        result[BOOTSTRAP_KEY] = bootstrap_record(scores, choice, bootstrap, default_jobs())
    log.info(
        "%s %s %s: %s (%s)",
        out_dir.relative_to(layout.root) if out_dir.is_relative_to(layout.root) else out_dir,
        norm,
        set_name,
        describe_metrics(result, always_shown()),
        format_trial_counts(result["counts"]),
    )
    return result, rank_trials(scores)


def write_cm_track1(
    out_dir: Path, set_name: str, scores: TrialScores, cm_scores: Path, utt2codec: Mapping[str, str] | None
) -> Track1Trials:
    """The CM's Track 1 files of a scored set (its log-odds per unique test utterance, and the keys with
    each utterance's attack and, where the data dir has ``utt2codec``, codec), read back as ``sasv
    compute_metrics --track 1`` reads them."""
    utts, _, is_spoof = cm_utterance_scores(scores.utt, scores.key, scores.cm)
    log_odds = read_cm_log_odds(cm_scores)
    attack_of = dict(zip(scores.utt.tolist(), scores.attack.tolist(), strict=True))
    paths = system_file(out_dir, "track1_scores", set_name), system_file(out_dir, "track1_keys", set_name)
    codecs = None if utt2codec is None else [utt2codec[u] for u in utts]
    write_track1(*paths, utts, [log_odds[u] for u in utts], is_spoof, [attack_of[u] for u in utts], codecs)
    return read_track1(*paths)


if __name__ == "__main__":
    sys.exit(run_cli(main))
