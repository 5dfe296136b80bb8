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
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from sasv.cli import ArgumentParser, run_cli
from sasv.detection_costs import A_DCF_COST_MODELS
from sasv.metrics import RankedScores
from sasv.metrics_record import MetricChoice, fused_record, track1_record, track2_record
from sasv.score_files import read_submission_keys
from sasv.track1_files import read_track1
from sasv.track2_files import read_track2


def metrics_of_file(path: str, a_dcf_models: Sequence[str] = ("paper",)) -> dict:
    """The metrics record of the file with the EERs in percent (the numbers a results table shows)."""
    choice = MetricChoice(tuple(dict.fromkeys(a_dcf_models)))
    record = fused_record(RankedScores.of_codes(*read_submission_keys(path)), choice)
    for name in ("sasv_eer", "sv_eer", "spf_eer"):
        record[name] = None if record[name] is None else 100.0 * record[name]
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
        print(json.dumps(track1_record(read_track1(args.score_file, args.keys))))
    elif args.keys:
        print(json.dumps(track2_record(read_track2(args.score_file, args.keys))))
    else:
        print(json.dumps(metrics_of_file(args.score_file, args.a_dcf_cost)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
