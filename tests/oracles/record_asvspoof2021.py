"""Record the ASVspoof 2021 evaluation package's own numbers on the generated cases (the fixture's oracle).

Run once, beside a copy of the package's ``eval-package/`` (its metric modules need numpy only):

    git clone https://github.com/asvspoof-challenge/2021   # or any copy of eval-package/
    python tests/oracles/record_asvspoof2021.py --package 2021/eval-package \\
        --commit $(git -C 2021 rev-parse HEAD) --out tests/fixtures/asvspoof2021_package.json

For every case of :mod:`asvspoof2021_cases` it calls what the package's ``main.py`` calls for a pooled
result: ``eval_wrapper.load_asv_metrics`` (the ASV fixed at its EER threshold, ``eval_metrics.compute_eer``),
``eval_wrapper.get_tDCF_C012_from_asv_scores`` with ``config.cost_model``, ``eval_wrapper.get_mintDCF_eer``,
and ``eval_metrics.compute_eer`` on the CM scores, and stores the results (full precision), the arrays'
sha256 and the package commit as JSON. A function that stops (``sys.exit``) or raises is recorded as
``{"error": ...}``. Only numbers are committed; the package's code stays outside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import asvspoof2021_cases as cases  # noqa: E402


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def guarded(fn):
    """fn()'s result, or {"error": ...} where the oracle stops or raises (its output silenced)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return fn()
    except SystemExit as err:
        return {"error": f"SystemExit: {err}"}
    except Exception as err:  # the package's failure is a recorded fact, not ours to fix
        return {"error": type(err).__name__}


def record_case(case: cases.Case, em, ew, config) -> dict:
    a = cases.arrays(case)
    out: dict = {"sha256": cases.digest(a)}

    def asv_rates():
        pfa, pmiss, pmiss_spoof, pfa_spoof = ew.load_asv_metrics(
            a["asv_target"], a["asv_nontarget"], a["asv_spoof"]
        )
        return {"pfa": _number(pfa), "pmiss": _number(pmiss), "pfa_spoof": _number(pfa_spoof)}

    out["asv_rates"] = guarded(asv_rates)

    def tandem():
        c0, c1, c2 = ew.get_tDCF_C012_from_asv_scores(
            a["asv_target"], a["asv_nontarget"], a["asv_spoof"], config.cost_model
        )
        min_tdcf, eer = ew.get_mintDCF_eer(a["cm_bonafide"], a["cm_spoof"], c0, c1, c2)
        return {
            "c012": [_number(c) for c in (c0, c1, c2)],
            "min_tdcf": _number(min_tdcf),
            "eer": _number(eer),
        }

    out["tandem"] = guarded(tandem)
    out["cm_eer"] = guarded(lambda: _number(em.compute_eer(a["cm_bonafide"], a["cm_spoof"])[0]))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--package", required=True, help="the package's eval-package/ folder")
    p.add_argument("--commit", required=True, help="the package's git commit")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    sys.path.insert(0, str(Path(args.package).resolve()))
    import config  # noqa: PLC0415 (the package's modules, from --package)
    import eval_metrics as em  # noqa: PLC0415
    import eval_wrapper as ew  # noqa: PLC0415

    record = {
        "package": "asvspoof-challenge/2021 eval-package",
        "commit": args.commit,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cost_model": config.cost_model,
        "cases": {case.name: record_case(case, em, ew, config) for case in cases.CASES},
    }
    Path(args.out).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
