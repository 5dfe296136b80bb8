"""SASV 2022 EERs of a submission-format score file (``SPK UTT ATTACK KEY SCORE`` per line).

Prints one JSON object: ``sasv_eer``, ``sv_eer``, ``spf_eer`` in percent (``null`` when the file lacks a
class the EER needs), ``counts`` (trials per key), and the detection costs as plain normalised numbers (not
percent): ``min_a_dcf`` with its ``min_a_dcf_threshold`` (a score; default a-DCF cost model Ptar 0.9,
Pnon 0.05, Pspf 0.05, Cmiss 1, Cfa_asv 10, Cfa_cm 20) and ``min_dcf_0.01``, ``min_dcf_0.05`` (SV minDCF,
target vs nontarget, Cmiss = Cfa = 1); ``null`` where a needed class is missing. A malformed line is
reported as ``ERROR: file:line: problem`` and the exit status is 1, so a broken score file can never
produce a plausible-looking result.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from sasv.cli import ArgumentParser, run_cli
from sasv.metrics_record import metrics_record
from sasv.score_files import read_submission_scores


def metrics_of_file(path: str) -> dict:
    """The metrics record of the file with the EERs in percent (the numbers a results table shows)."""
    record = metrics_record(read_submission_scores(path), extended=False, source=path)
    for name in ("sasv_eer", "sv_eer", "spf_eer"):
        record[name] = None if record[name] is None else 100.0 * record[name]
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="sasv compute_metrics", description=__doc__)
    parser.add_argument("score_file", metavar="SCORE_FILE", help="SPK UTT ATTACK KEY SCORE lines")
    args = parser.parse_args(argv)
    print(json.dumps(metrics_of_file(args.score_file)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
