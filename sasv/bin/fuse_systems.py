"""Learned logistic-regression fusion of scored SASV systems (trained on dev, applied to every set).

Reads exp/<asv>/<cm>/<variant>/scores_<set>.txt of every ``--systems`` entry (all scored on the same trial
list in the same order: checked, an error otherwise), trains the fusion of sasv/scoring/learned_fusion.py on
``--train_set`` and writes to ``--out``:

  weights.json            the fusion (bias and one weight per system and feature), JSON
  scores_<set>.txt        spk utt attack key asv cm fused (asv/cm = the ASV/CM parts of the fused LLR)
  scores_<set>.sasv.txt   SASV 2022 submission format
  results.md              weights, and EERs/costs of each input (product and sum rules) and of the fusion,
                          with 95 % bootstrap intervals of the fusion's headline numbers (--bootstrap)
  results.json            the same numbers; read by `sasv make_summary` (fusion "logreg", variant "fused")

Numbers on the training set are optimistic (the weights were fitted on it); results.md says so.

The inputs' results.json records must agree on what they share (:func:`sasv.provenance.check_records_agree`):
each model name one checkpoint, conf and embedding storage, each set the same data (trial list, enrolment,
audio), one benchmark and choice of metrics; otherwise the fusion is refused before anything is written.
Equal trial lists in the score files are not enough: a CM re-run with another checkpoint under the same
name between the scoring of two inputs, or one input scored on another data dir with the same trials,
would give a fusion whose inputs were never one system's parts. Refused rather than noted (as
``sasv make_summary`` notes it): the fusion's weights and scores are one new number made of its inputs,
and the fix is to re-score the stale input. The fusion's record carries the models and data it agreed on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.registry import DEFAULT_CORPUS
from sasv.errors import MissingInputError
from sasv.exp_layout import (
    FUSED_VARIANT,
    FUSION_NAME,
    RESULTS_RECORD,
    RESULTS_TABLE,
    LayoutError,
    score_file,
    submission_file,
)
from sasv.fileio import atomic_write_text
from sasv.metrics.bootstrap import DEFAULT_RESAMPLES, BootstrapSpec, default_jobs
from sasv.metrics.eer import RankedScores
from sasv.provenance import check_records_agree
from sasv.reports.columns import always_shown, describe_metrics
from sasv.reports.records import (
    BOOTSTRAP_KEY,
    MetricChoice,
    MixedMetricsError,
    add_actual_costs,
    bootstrap_record,
    fusion_metrics_record,
    metrics_record,
    rank_trials,
)
from sasv.reports.tables import interval_table, systems_table
from sasv.scoring.cosine import SCORE_RULES, fuse_scores
from sasv.scoring.learned_fusion import DEFAULT_C, FusionModel, check_same_trials, train_fusion
from sasv.scoring.score_files import TrialScores, read_score_file, write_score_file, write_submission_file

log = logging.getLogger("fuse_systems")


def read_systems(exp: Path, systems: list[str], set_name: str) -> list[TrialScores]:
    """Every system's score list of one set, checked to describe the same trials in the same order."""
    lists = []
    for system in systems:
        path = score_file(exp / system, set_name)
        if not path.is_file():
            raise MissingInputError(
                f"{path} not found: score {system} on {set_name} first (run_test stage 1)"
            )
        lists.append(read_score_file(path))
    check_same_trials(lists, [score_file(s, set_name).as_posix() for s in systems])
    return lists


def input_records(exp: Path, systems: list[str]) -> list[dict]:
    """The inputs' results.json records ({} where a system has none, e.g. scored by hand)."""
    paths = [exp / system / RESULTS_RECORD for system in systems]
    return [json.loads(path.read_text()) if path.is_file() else {} for path in paths]


def metric_choice_of(exp: Path, systems: list[str]) -> tuple[str, MetricChoice]:
    """The benchmark and the metrics the inputs were scored with; inputs scored with different metrics are
    an error, since the fusion's table compares them side by side."""
    records = input_records(exp, systems)
    benchmark = next((r["benchmark"] for r in records if r.get("benchmark")), DEFAULT_CORPUS)
    choices = {MetricChoice.from_record(r) for r in records}
    if len(choices) > 1:
        raise MixedMetricsError(
            f"{exp}: the systems were scored with different metrics "
            f"({'; '.join(json.dumps(c.to_dict()) for c in choices)}); "
            f"score them on the same benchmark with the same --a_dcf_cost"
        )
    return benchmark, choices.pop()


def shared_inputs(records: list[dict]) -> dict:
    """``models`` (each model entry of the inputs once) and ``data`` (per set, from the first input that
    records it: the inputs agree, :func:`sasv.provenance.check_records_agree`) for the fusion's record."""
    models = []
    for record in records:
        models += [m for m in record.get("models") or [] if m not in models]
    data = next((r["data"] for r in records if r.get("data")), None)
    return {**({"models": models} if models else {}), **({"data": data} if data else {})}


def input_notes(exp: Path, systems: list[str]) -> list[str]:
    """Caveats (e.g. random weights) recorded by the inputs' scoring stage: the fusion's tables keep them."""
    notes = []
    for record in input_records(exp, systems):
        note = record.get("note")
        if note and note not in notes:
            notes.append(note)
    return notes


def cm_names(exp: Path, systems: list[str]) -> str:
    names = []
    for system in systems:
        record = exp / system / RESULTS_RECORD
        name = json.loads(record.read_text()).get("cm") if record.is_file() else None
        names.append(name or system.split("/")[1])  # a system is <asv>/<cm>/<variant> (sasv.exp_layout)
    return "+".join(dict.fromkeys(names))


def weights_table(model: FusionModel) -> str:
    lines = ["| system | feature | weight |", "| --- | --- | ---: |"]
    record = model.to_dict()
    lines += [f"| {f['system']} | {f['kind']} | {f['weight']:.6g} |" for f in record["features"]]
    lines.append(f"| (bias) | | {record['bias']:.6g} |")
    return "\n".join(lines) + "\n"


def describe(model: FusionModel) -> str:
    parts = [f"{n}={w:.4g}" for n, w in zip(model.feature_names(), model.weights, strict=True)]
    return ", ".join([*parts, f"bias={model.bias:.4g}"])


def fuse_sets(
    sets: Sequence[str],
    train_set: str,
    exp: Path,
    out: Path,
    systems: list[str],
    train: list[TrialScores],
    model: FusionModel,
    choice: MetricChoice,
    bootstrap: BootstrapSpec | None = None,
) -> tuple[dict[str, dict], dict[tuple[str, str], dict]]:
    """Write the fused score files of every set; results of the fusion and of each input's fixed rules.

    The fusion has no tandem metrics (:func:`~sasv.reports.records.fusion_metrics_record`). With
    ``bootstrap``, the fusion's records carry the intervals of their headline numbers."""
    results: dict[str, dict] = {}
    rows: dict[tuple[str, str], dict] = {}
    ranked: dict[tuple[str, str], dict[str, RankedScores]] = {}
    for set_name in dict.fromkeys(sets):
        inputs = train if set_name == train_set else read_systems(exp, systems, set_name)
        fused = model.fused_trials(inputs)
        write_score_file(score_file(out, set_name), fused)
        write_submission_file(submission_file(out, set_name), fused)
        results[set_name] = fusion_metrics_record(fused, choice, extended=False)
        ranked.setdefault((out.name, FUSION_NAME), {})[set_name] = rank_trials(fused)
        if bootstrap is not None:
            results[set_name][BOOTSTRAP_KEY] = bootstrap_record(fused, choice, bootstrap, default_jobs())
        for system, trials in zip(systems, inputs, strict=True):
            for rule in SCORE_RULES:
                by_rule = dataclasses.replace(trials, fused=fuse_scores(trials.asv, trials.cm, rule))
                record = metrics_record(by_rule, extended=False, choice=choice)
                rows.setdefault((system, rule), {})[set_name] = record
                ranked.setdefault((system, rule), {})[set_name] = rank_trials(by_rule)
        rows.setdefault((out.name, FUSION_NAME), {})[set_name] = results[set_name]
        log.info("%s %s: %s", out.name, set_name, describe_metrics(results[set_name], always_shown()))
    for row, by_set in rows.items():  # the fusion's own row is ``results``: one record, one update
        add_actual_costs(by_set, ranked[row], choice)
    return results, rows


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv fuse_systems", description=__doc__)
    p.add_argument("--exp_dir", default="exp")
    p.add_argument(
        "--systems", nargs="+", required=True, help="system names <asv>/<cm>/<variant> (dirs under --exp_dir)"
    )
    p.add_argument("--out", required=True, help="output dir, e.g. exp/fusion/<name>")
    p.add_argument("--train_set", default="dev")
    p.add_argument("--sets", nargs="+", default=["dev", "eval"], help="sets to fuse (train set included)")
    p.add_argument("--C", type=float, default=DEFAULT_C, help="inverse L2 strength on standardised features")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_RESAMPLES,
        help="bootstrap resamples (claimed speakers) for 95 %% intervals of the fusion's EERs and primary "
        "cost; 0: none (default: %(default)s)",
    )
    args = p.parse_args(argv)
    exp, out = Path(args.exp_dir), Path(args.out)
    systems = [s.strip("/") for s in args.systems]
    if len(set(systems)) != len(systems):
        raise LayoutError(f"--systems lists a system twice: {' '.join(systems)}")

    train = read_systems(exp, systems, args.train_set)
    benchmark, choice = metric_choice_of(exp, systems)
    records = input_records(exp, systems)
    check_records_agree(list(zip(systems, records, strict=True)), exp, "the systems to fuse")
    model = train_fusion(train, systems, C=args.C, set_name=args.train_set)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "weights.json")
    log.info("fusion weights (trained on %s): %s", args.train_set, describe(model))
    spec = BootstrapSpec(args.bootstrap) if args.bootstrap > 0 else None
    results, rows = fuse_sets(args.sets, args.train_set, exp, out, systems, train, model, choice, spec)

    note = "\n".join(input_notes(exp, systems)) or None
    held_out = ", ".join(s for s in results if s != args.train_set) or "a held-out set"
    text = [f"### Fusion {out.name} (logistic regression, trained on {args.train_set})", ""]
    text += [
        f"Inputs: {', '.join(systems)}. The fusion's {args.train_set} numbers are on its training data "
        f"(optimistic); compare on {held_out}. Fused scores are log-likelihood ratios.",
        "",
        weights_table(model),
        systems_table([(names, by_set) for names, by_set in rows.items()], ("system", "fusion"), note),
        interval_table(results, f"Fusion {out.name}: how sure"),
    ]
    atomic_write_text(out / RESULTS_TABLE, "\n".join(text))
    record = {
        "system": f"{out.parent.name}/{out.name}",
        "asv": out.name,
        "cm": cm_names(exp, systems),
        "variant": FUSED_VARIANT,
        "fusion": FUSION_NAME,
        "inputs": systems,
        "benchmark": benchmark,
        "metrics": choice.to_dict(),
        **shared_inputs(records),
        "weights": model.to_dict(),
        "note": note,
        "results": results,
        "input_results": {
            f"{s} ({rule})": by_set for (s, rule), by_set in rows.items() if rule != FUSION_NAME
        },
    }
    atomic_write_text(out / RESULTS_RECORD, json.dumps(record, indent=2) + "\n")
    log.info("wrote %s", out / RESULTS_TABLE)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
