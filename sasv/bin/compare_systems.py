"""Is system A really better than system B? A paired bootstrap over the trials both were scored on.

    sasv compare_systems exp/ecapa_tdnn/aasist/l2norm exp/se_resnet34/aasist/l2norm --sets eval

A and B are system dirs (their ``scores_<set>.txt`` per ``--sets``) or two score files (``spk utt attack
key asv cm fused``). Both must hold the same trials in the same order (systems scored on one data dir
do). Each resample draws claimed speakers with replacement (all trials of a drawn speaker; ``--unit
trial`` draws trials) and recomputes the SASV-, SV-, SPF-EER and the primary cost of *both* systems on
that same draw, so the spread of the difference A - B is the noise of this evaluation set alone, not of
two independent draws. A difference whose 95 % interval excludes 0 is reported as real.

Prints one table per set (A, B, A - B with its interval, the two-sided bootstrap p-value, the verdict);
``--json FILE`` also writes the numbers. The primary cost is the min a-DCF of the systems' benchmark
(results.json: LA ``paper``, ASVspoof 5 ``sasv2024``) unless ``--a_dcf_cost`` names another.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sasv.cli import ArgumentParser, run_cli
from sasv.errors import MissingInputError
from sasv.exp_layout import RESULTS_RECORD, score_file
from sasv.fileio import atomic_write_text
from sasv.metrics.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    BootstrapSpec,
    default_jobs,
    paired_differences,
)
from sasv.metrics.detection_costs import A_DCF_COST_MODELS
from sasv.reports.records import MetricChoice
from sasv.reports.tables import comparison_table
from sasv.scoring.learned_fusion import check_same_trials
from sasv.scoring.score_files import TrialScores, read_score_file


def _score_file(system: Path, set_name: str) -> Path:
    path = score_file(system, set_name) if system.is_dir() else system
    if not path.is_file():
        raise MissingInputError(f"{path} not found: score the system on {set_name} first (run_test stage 1)")
    return path


def _primary_model(systems: Sequence[Path], asked: str | None) -> str:
    if asked:
        return asked
    for system in systems:
        record = system / RESULTS_RECORD
        if system.is_dir() and record.is_file():
            return MetricChoice.from_record(json.loads(record.read_text())).a_dcf_models[0]
    return "paper"


def compare(
    a: TrialScores, b: TrialScores, names: tuple[str, str], model: str, spec: BootstrapSpec, unit: str
) -> dict:
    """The paired comparison of two score lists of the same trials (see the module doc)."""
    check_same_trials([a, b], list(names))
    clusters = a.spk if unit == "speaker" else None
    return paired_differences(a.fused, b.fused, a.codes, clusters, model, spec, default_jobs())


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv compare_systems", description=__doc__)
    p.add_argument("system_a", metavar="A", help="system dir (exp/<asv>/<cm>/<variant>) or score file")
    p.add_argument("system_b", metavar="B", help="system dir or score file, scored on the same trials")
    p.add_argument("--sets", nargs="+", default=["eval"], help="sets to compare, for system dirs (eval)")
    p.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES, help="resamples (%(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="resampling seed (%(default)s)")
    p.add_argument("--unit", choices=("speaker", "trial"), default="speaker", help="what a resample draws")
    p.add_argument("--a_dcf_cost", choices=list(A_DCF_COST_MODELS), default=None, help="primary cost model")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    if args.bootstrap < 1:
        p.error("--bootstrap must be at least 1")
    a, b = Path(args.system_a), Path(args.system_b)
    model = _primary_model((a, b), args.a_dcf_cost)
    spec = BootstrapSpec(args.bootstrap, seed=args.seed)
    for path in (a, b):
        if not path.exists():
            raise MissingInputError(f"{path}: no such system dir or score file")
    if a.is_dir() != b.is_dir():
        p.error("A and B must both be system dirs or both be score files")
    files = not a.is_dir()
    sets = ["(file)"] if files else list(dict.fromkeys(args.sets))
    out: dict = {"a": str(a), "b": str(b), "sets": {}}
    for set_name in sets:
        paths = (a, b) if files else (_score_file(a, set_name), _score_file(b, set_name))
        lists = [read_score_file(path) for path in paths]
        result = compare(lists[0], lists[1], (str(paths[0]), str(paths[1])), model, spec, args.unit)
        out["sets"][set_name] = result
        print(comparison_table(result, f"{set_name}: A = {a}, B = {b}"))
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
