#!/usr/bin/env python3
"""SASV 2022 EERs of a submission-format score file (``SPK UTT ATTACK KEY SCORE`` per line).

Prints one JSON object: ``sasv_eer``, ``sv_eer``, ``spf_eer`` in percent (``null`` when the file lacks a
class the EER needs), ``counts`` (trials per key), and the detection costs as plain normalised numbers (not
percent): ``min_a_dcf`` with its ``min_a_dcf_threshold`` (a score; default a-DCF cost model Ptar 0.9,
Pnon 0.05, Pspf 0.05, Cmiss 1, Cfa_asv 10, Cfa_cm 20) and ``min_dcf_0.01``, ``min_dcf_0.05`` (SV minDCF,
target vs nontarget, Cmiss = Cfa = 1); ``null`` where a needed class is missing. A malformed line is
reported as ``file:line: problem`` and the exit status is 1, so a broken score file can never produce a
plausible-looking result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sasv.metrics import count_keys, detection_costs, sasv_eers  # noqa: E402
from sasv.scoring import read_submission_scores  # noqa: E402


def metrics_of_file(path: str) -> dict:
    """EERs in percent plus counts and detection costs, the numbers a results table is built from."""
    trials = read_submission_scores(path)
    eers = sasv_eers(trials.fused, trials.key)
    result: dict = {name: None if value is None else 100.0 * value for name, value in eers.items()}
    result["counts"] = count_keys(trials.key)
    result.update(detection_costs(trials.fused, trials.key))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("score_file", metavar="SCORE_FILE", help="SPK UTT ATTACK KEY SCORE lines")
    args = parser.parse_args(argv)
    try:
        result = metrics_of_file(args.score_file)
    except (OSError, ValueError) as err:
        message = " ".join(str(err).split())
        print(f"compute_metrics.py: error: {message}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
