"""SASV 2022 EERs of a submission-format score file (``SPK UTT ATTACK KEY SCORE`` per line).

Prints one JSON object: ``sasv_eer``, ``sv_eer``, ``spf_eer`` in percent (``null`` when the file lacks a
class the EER needs), ``counts`` (trials per key), and the detection costs as plain normalised numbers (not
percent): ``min_a_dcf[<model>]`` with its ``min_a_dcf_threshold[<model>]`` (a score) for each
``--a_dcf_cost`` model (default ``paper``: the a-DCF paper's Ptar 0.9, Pnon 0.05, Pspf 0.05, Cmiss 1,
Cfa_asv 10, Cfa_cm 20; ``sasv2024``: ASVspoof 5's) and ``min_dcf_0.01``, ``min_dcf_0.05`` (SV minDCF,
target vs nontarget, Cmiss = Cfa = 1); ``null`` where a needed class is missing. A malformed line is
reported as ``ERROR: file:line: problem`` and the exit status is 1, so a broken score file can never
produce a plausible-looking result.

With ``--keys KEYFILE`` the score file is an ASVspoof 5 Track 2 submission (``spk filename cm-score
asv-score sasv-score``, header first) and KEYFILE its key file (``spk filename cm-label asv-label``): the
JSON then holds what the organisers' evaluation package reports, ``min_a_dcf`` (its cost model, named in
``a_dcf_cost_model``: sasv2024), ``min_t_dcf`` and ``t_eer`` (percent), followed by the SASV 2022 EERs of
the SASV score (percent).

With ``--track 1 --keys KEYFILE`` the score file is an ASVspoof 5 Track 1 CM score file (``filename
cm-score``, header first) and KEYFILE its keys (``filename cm-label``, or a full key table naming also
``attack_anon`` and ``codec``): the JSON holds the package's Track 1 metrics, ``min_dcf``, ``eer``
(percent), ``cllr`` (bits) and ``act_dcf`` (the last two read the scores as log-likelihood ratios: give
logit differences, not probabilities), ``counts``, and with a full key table ``breakdown`` per attack x
codec.

Every JSON object ends with ``notes``: for each metric that is ``null``, why (the classes the file lacks,
the ``-`` scores of a Track 2 submission that leave a metric undefined, no operating point of the t-EER),
so that a ``null`` is never mistaken for a crash or a skipped computation.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.protocols import BONAFIDE, KEYS, NONTARGET, SPOOF, TARGET
from sasv.metrics.detection_costs import A_DCF_COST_MODELS
from sasv.metrics.eer import EER_DEFINITIONS, RankedScores
from sasv.reports.columns import percent
from sasv.reports.records import MetricChoice, fused_record, track1_record, track2_record
from sasv.scoring.score_files import read_submission_keys
from sasv.scoring.track1_files import Track1Trials, read_track1
from sasv.scoring.track2_files import Track2Trials, read_track2

# The trial classes each metric is defined on (a null metric lacks one of them).
_EER_CLASSES = {name: (positive, *negatives) for name, (positive, negatives) in EER_DEFINITIONS.items()}
# The Track 2 submission columns each metric of its record reads (a '-' in one of them nulls the metric).
_TRACK2_COLUMNS = {
    "min_a_dcf": ("sasv",),
    "min_t_dcf": ("cm",),
    "t_eer": ("cm", "asv"),
    **dict.fromkeys(EER_DEFINITIONS, ("sasv",)),
}
_TRACK2_COLUMN_NAMES = {"cm": "cm-score", "asv": "asv-score", "sasv": "sasv-score"}


def metrics_of_file(path: str, a_dcf_models: Sequence[str] = ("paper",)) -> dict:
    """The metrics record of the file with the EERs in percent (the numbers a results table shows)."""
    choice = MetricChoice(tuple(dict.fromkeys(a_dcf_models)))
    record = fused_record(RankedScores.of_codes(*read_submission_keys(path)), choice)
    for name in EER_DEFINITIONS:
        record[name] = percent(record[name])
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="sasv compute_metrics", description=__doc__)
    parser.add_argument("score_file", metavar="SCORE_FILE", help="SPK UTT ATTACK KEY SCORE lines")
    parser.add_argument(
        "--keys",
        default=None,
        metavar="KEYFILE",
        help="ASVspoof 5 key file: SCORE_FILE is a Track 2 submission (or, with --track 1, a CM score file)",
    )
    parser.add_argument(
        "--track",
        type=int,
        choices=(1, 2),
        default=2,
        help="with --keys: 1 = CM scores (minDCF, EER, CLLR, actDCF), 2 = SASV submission (default)",
    )
    parser.add_argument(
        "--a_dcf_cost",
        nargs="+",
        default=["paper"],
        choices=list(A_DCF_COST_MODELS),
        help="a-DCF cost model(s) of a SASV 2022 score file (default: paper; with --keys always sasv2024)",
    )
    args = parser.parse_args(argv)
    if args.track == 1 and not args.keys:
        parser.error("--track 1 needs --keys (the CM key file)")
    if args.keys and args.track == 1:
        track1 = read_track1(args.score_file, args.keys)
        record = track1_record(track1)
        record["notes"] = track1_notes(track1, record)
    elif args.keys:
        track2 = read_track2(args.score_file, args.keys)
        record = track2_record(track2)
        record["notes"] = track2_notes(track2, record)
    else:
        record = metrics_of_file(args.score_file, args.a_dcf_cost)
        record["notes"] = sasv2022_notes(record)
    print(json.dumps(record))
    return 0


def _lacking(counts: Mapping[str, int], needed: Sequence[str], what: str = "trials") -> str | None:
    """Why a metric on ``needed`` classes is undefined for these ``counts``, or None if none is absent."""
    absent = [name for name in needed if not counts.get(name)]
    if not absent:
        return None
    return f"no {' or '.join(absent)} {what}; it needs {', '.join(needed)} {what}"


def _classes_of(key: str) -> tuple[str, ...]:
    """The classes a record key of a SASV score list is defined on (its threshold key too)."""
    if key in _EER_CLASSES:
        return _EER_CLASSES[key]
    if key.startswith("min_dcf"):  # the SV task's minDCF and its threshold: target vs nontarget
        return (TARGET, NONTARGET)
    return KEYS  # the a-DCFs and their thresholds, the tandem metrics: all three


def sasv2022_notes(record: Mapping) -> dict[str, str]:
    """Why each ``null`` of a SASV 2022 score file's record is null: the classes the file lacks."""
    notes = {}
    for key, value in record.items():
        if value is None:
            notes[key] = _lacking(record["counts"], _classes_of(key)) or "undefined for these scores"
    return notes


def track2_notes(trials: Track2Trials, record: Mapping) -> dict[str, str]:
    """Why each ``null`` of a Track 2 record is null: a ``-`` in a score column the metric reads (one is
    enough: the metric is defined on every trial's score, and the evaluation package gives none either),
    a class the keys lack, or no t-EER operating point."""
    dashes = {column: int(np.isnan(getattr(trials, column)).sum()) for column in _TRACK2_COLUMN_NAMES}
    cm_counts = {
        BONAFIDE: int((trials.cm_label == BONAFIDE).sum()),
        SPOOF: int((trials.cm_label == SPOOF).sum()),
    }
    notes = {}
    for key, value in record.items():
        if value is not None or key not in _TRACK2_COLUMNS:
            continue
        missing = [c for c in _TRACK2_COLUMNS[key] if dashes[c]]
        if missing:
            said = "; ".join(
                f"{_TRACK2_COLUMN_NAMES[c]} is '-' on {dashes[c]} of {len(trials.sasv)} trials"
                for c in missing
            )
            notes[key] = f"{said}: the metric needs the score of every trial"
        elif key == "min_t_dcf":
            notes[key] = _lacking(cm_counts, (BONAFIDE, SPOOF), "files (cm-label)") or "undefined"
        else:
            notes[key] = _lacking(record["counts"], _classes_of(key)) or (
                "the evaluation package's t-EER search finds no operating point on these scores"
                if key == "t_eer"
                else "undefined for these scores"
            )
    return notes


def track1_notes(trials: Track1Trials, record: Mapping) -> dict[str, str]:
    """Why each ``null`` of a Track 1 record is null: no bona fide or no spoofed files (in the file, or in
    a cell of the attack x codec breakdown)."""
    counts = {BONAFIDE: int(trials.is_bonafide.sum()), SPOOF: int((~trials.is_bonafide).sum())}
    notes = {}
    for key, value in record.items():
        if value is None:
            notes[key] = _lacking(counts, (BONAFIDE, SPOOF), "files") or "undefined for these scores"
    breakdown = record.get("breakdown") or {}
    if any(cell is None for key, rows in breakdown.items() if key not in ("attacks", "codecs") for row in rows
           for cell in row):  # fmt: skip
        notes["breakdown"] = (
            "a null cell has no spoofed files of that attack (and codec) or no bona fide files of that codec"
        )
    return notes


if __name__ == "__main__":
    sys.exit(run_cli(main))
