#!/usr/bin/env python3
"""run_test stage 1: score the trials of one ASV model x CM model with one embedding norm.

Reads exp/<asv>/embeddings/<set>/xvector.scp and exp/<cm>/scores/<set>/cm_scores.txt, writes
exp/<asv>_<cm>/<norm>/scores_<set>.txt (``spk utt attack key asv cm fused``), scores_<set>.sasv.txt (the SASV
2022 submission format), results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sasv.asnorm import DEFAULT_TOP_K  # noqa: E402
from sasv.cli import run_cli  # noqa: E402
from sasv.conf import load_conf  # noqa: E402
from sasv.datadir import format_trial_counts, validate_datadir  # noqa: E402
from sasv.evaluate import evaluate, score_trials  # noqa: E402
from sasv.extract import read_cm_scores, read_embeddings  # noqa: E402
from sasv.fileio import atomic_write_text  # noqa: E402
from sasv.locking import exclusive_lock  # noqa: E402
from sasv.markers import check_prepared_marker  # noqa: E402
from sasv.provenance import RANDOM_INIT_NOTE, check_stage_inputs, read_model_record  # noqa: E402
from sasv.report import format_eer, results_table  # noqa: E402
from sasv.scoring import FUSION_RULES, NORMS, write_score_file, write_submission_file  # noqa: E402

log = logging.getLogger("score_trials")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asv_conf", required=True)
    p.add_argument("--cm_conf", required=True)
    p.add_argument("--norm", required=True, choices=NORMS)
    p.add_argument("--fusion", default="product", choices=FUSION_RULES)
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
    p.add_argument("--top_k", type=int, default=DEFAULT_TOP_K, help="AS-norm top-K cohort scores")
    args = p.parse_args()

    asv, cm = load_conf(args.asv_conf), load_conf(args.cm_conf)
    exp = Path(args.exp_dir)
    emb_root, cm_root = exp / asv.name / "embeddings", exp / cm.name / "scores"
    models = [read_model_record(emb_root / "model.json"), read_model_record(cm_root / "model.json")]
    random_models = [m["name"] for m in models if not m["pretrained"]]
    note = f"{', '.join(random_models)}: {RANDOM_INIT_NOTE}" if random_models else None
    system = f"{asv.name}_{cm.name}"
    variant = args.norm if args.score_norm == "none" else f"{args.norm}_{args.score_norm}"
    out_dir = exp / system / variant
    out_dir.mkdir(parents=True, exist_ok=True)

    cohort = None
    if args.score_norm == "asnorm":
        cohort_dir = Path(args.data_dir) / args.cohort_set
        cohort_scp = emb_root / args.cohort_set / "xvector.scp"
        if not cohort_scp.is_file():
            raise FileNotFoundError(
                f"{cohort_scp} not found: AS-norm needs cohort embeddings; run run_spk_ebd_extract.sh with "
                f"--cohort true (stages 1-2)"
            )
        check_stage_inputs(cohort_scp.with_name("xvector.done"), asv, {"wav.scp": cohort_dir / "wav.scp"})
        cohort = read_embeddings(cohort_scp)
        log.info("AS-norm against %d cohort utterances of %s, top %d", len(cohort), cohort_dir, args.top_k)
    with exclusive_lock(out_dir, "scores and tables"):
        results = score_sets(args, asv, cm, emb_root, cm_root, out_dir, system, cohort)
        write_results(args, asv, cm, models, note, system, out_dir, results, variant)
    if note:
        log.warning(note)
    return 0


def score_sets(
    args, asv, cm, emb_root: Path, cm_root: Path, out_dir: Path, system: str, cohort: dict | None
) -> dict:
    """Score every set, refusing stage outputs that are missing or were made from other inputs."""
    results = {}
    for set_name in args.sets:
        data_dir = Path(args.data_dir) / set_name
        check_prepared_marker(data_dir)
        data = validate_datadir(data_dir)
        emb_scp = emb_root / set_name / "xvector.scp"
        cm_file = cm_root / set_name / "cm_scores.txt"
        for path in (emb_scp, cm_file):
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found: run run_spk_ebd_extract.sh stages 2-3 first")
        wav_scp, trials = data_dir / "wav.scp", data_dir / "trials"
        check_stage_inputs(emb_scp.with_name("xvector.done"), asv, {"wav.scp": wav_scp})
        check_stage_inputs(
            cm_file.with_name("cm_scores.txt.done"), cm, {"wav.scp": wav_scp, "trials": trials}
        )
        scores = score_trials(
            data,
            read_embeddings(emb_scp),
            read_cm_scores(cm_file),
            args.norm,
            args.fusion,
            emb_source=str(emb_scp),
            cm_source=str(cm_file),
            cohort=cohort,
            top_k=args.top_k,
        )
        write_score_file(out_dir / f"scores_{set_name}.txt", scores)
        write_submission_file(out_dir / f"scores_{set_name}.sasv.txt", scores)
        results[set_name] = evaluate(scores)
        r = results[set_name]
        log.info(
            "%s %s %s: SASV-EER %s%%, SV-EER %s%%, SPF-EER %s%% (%s)",
            system,
            args.norm,
            set_name,
            *(format_eer(r[k]) for k in ("sasv_eer", "sv_eer", "spf_eer")),
            format_trial_counts(r["counts"]),
        )
    return results


def write_results(
    args, asv, cm, models: list, note: str | None, system: str, out_dir: Path, results: dict, variant: str
) -> None:
    record = {
        "system": system,
        "asv": asv.name,
        "cm": cm.name,
        "norm": variant,
        "fusion": args.fusion,
        "score_norm": args.score_norm,
        "top_k": args.top_k if args.score_norm == "asnorm" else None,
        "models": models,
        "note": note,
        "results": results,
    }
    atomic_write_text(out_dir / "results.json", json.dumps(record, indent=2) + "\n")
    title = f"{system} ({variant}, fusion: {args.fusion})"
    atomic_write_text(out_dir / "results.md", results_table(title, results, note))
    log.info("wrote %s", out_dir / "results.md")


if __name__ == "__main__":
    run_cli(main)
