"""Record the ASVspoof 5 evaluation package's own numbers on the generated cases (the fixture's oracle).

Run once, outside the project's environment, beside a checkout of the package (it needs numpy and pandas):

    git clone https://github.com/asvspoof-challenge/asvspoof5   # or any copy of evaluation-package/
    python -m venv /tmp/oracle && /tmp/oracle/bin/pip install numpy pandas
    /tmp/oracle/bin/python tests/oracles/record_asvspoof5.py \\
        --package asvspoof5/evaluation-package --commit $(git -C asvspoof5 rev-parse HEAD) \\
        --out tests/fixtures/asvspoof5_package.json

It writes every case of :mod:`asvspoof5_cases` to a temporary directory, loads the files with the package's
own readers (``util.load_sasv_scores_keys``, ``util.load_cm_scores_keys``, ``..._as_pd``) and calls the
functions ``evaluation.py`` and ``evaluation_full.py`` call, then stores their results (full precision, as
``repr`` floats), the files' sha256 and the package commit as JSON. A function that raises is recorded as
``{"error": "<exception class>"}``: the package gives no number there. Only numbers are committed; the
package's code stays outside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import asvspoof5_cases as cases  # noqa: E402


def _number(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _guarded(fn):
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return fn()
    except Exception as err:  # the package's failure is a recorded fact, not ours to fix
        return {"error": type(err).__name__}
    except SystemExit as err:
        return {"error": f"SystemExit: {err}"}


def _track2(pkg, case: cases.Track2Case, work: Path) -> dict:
    util, metrics, modules = pkg["util"], pkg["calculate_metrics"], pkg["calculate_modules"]
    scores_path, keys_path = cases.write_track2_case(case, work)
    single_path = cases.write_track2_single(case, work)
    record: dict = {"files": {p.name: cases.sha256(p) for p in (scores_path, keys_path, single_path)}}
    cm, asv, sasv, cm_keys, asv_keys = util.load_sasv_scores_keys(str(scores_path), str(keys_path))

    def tandem():
        adcf, tdcf, teer = metrics.calculate_aDCF_tdcf_tEER(
            cm_scores=cm,
            asv_scores=asv,
            sasv_scores=sasv,
            cm_keys=cm_keys,
            asv_keys=asv_keys,
            output_file="",
            printout=False,
        )
        return {"min_a_dcf": float(adcf), "min_t_dcf": float(tdcf), "t_eer": float(teer)}

    def exhaustive_t_eer():
        by_key = {k: (asv[asv_keys == k], cm[asv_keys == k]) for k in ("target", "nontarget", "spoof")}
        curves_asv = modules.compute_Pmiss_Pfa_Pspoof_curves(*(by_key[k][0] for k in by_key))
        curves_cm = modules.compute_det_curve(
            modules.np.concatenate([by_key["target"][1], by_key["nontarget"][1]]), by_key["spoof"][1]
        )
        return float(modules.compute_teer(*curves_cm, *curves_asv))

    def single():
        _, _, sasv_only, _, keys_only = util.load_sasv_scores_keys(str(single_path), str(keys_path))
        return float(
            metrics.calculate_aDCF_tdcf_tEER(
                cm_scores=None,
                asv_scores=None,
                sasv_scores=sasv_only,
                cm_keys=None,
                asv_keys=keys_only,
                output_file="",
                printout=False,
            )
        )

    full_keys = cases.write_track2_full_keys(case, work)
    record["files"][full_keys.name] = cases.sha256(full_keys)

    def breakdown():
        table = util.load_sasv_scores_keys_as_pd(str(scores_path), str(full_keys))
        attacks, codecs, *mats = pkg["calculate_metrics_full"].calculate_aDCF_tdcf_tEER_full(table, None)
        names = ("min_a_dcf", "min_t_dcf", "t_eer")
        return {
            "attacks": list(attacks),
            "codecs": list(codecs),
            **{n: [[_number(v) for v in row] for row in m] for n, m in zip(names, mats, strict=True)},
        }

    record["t2_tandem"] = _guarded(tandem)
    record["t2_full"] = _guarded(breakdown)
    record["t_eer_exhaustive"] = _guarded(exhaustive_t_eer)
    record["t2_single_min_a_dcf"] = _guarded(single)
    return record


def _track1(pkg, case: cases.Track1Case, work: Path) -> dict:
    util, metrics, full = pkg["util"], pkg["calculate_metrics"], pkg["calculate_metrics_full"]
    scores_path, keys_path, full_keys_path = cases.write_track1_case(case, work)
    record: dict = {"files": {p.name: cases.sha256(p) for p in (scores_path, keys_path, full_keys_path)}}

    def pooled():
        scores, keys = util.load_cm_scores_keys(str(scores_path), str(keys_path))
        min_dcf, eer, cllr, act_dcf = metrics.calculate_minDCF_EER_CLLR_actDCF(
            cm_scores=scores, cm_keys=keys, output_file="", printout=False
        )
        return {"min_dcf": float(min_dcf), "eer": float(eer), "cllr": float(cllr), "act_dcf": float(act_dcf)}

    def breakdown():
        table = util.load_cm_scores_keys_as_pd(str(scores_path), str(full_keys_path))
        attacks, codecs, *mats = full.calculate_minDCF_EER_CLLR_actDCF_full(table)
        names = ("min_dcf", "eer", "cllr", "act_dcf")
        return {
            "attacks": list(attacks),
            "codecs": list(codecs),
            **{n: [[_number(v) for v in row] for row in m] for n, m in zip(names, mats, strict=True)},
        }

    record["t1"] = _guarded(pooled)
    record["t1_full"] = _guarded(breakdown)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--package", required=True, type=Path, help="the package's evaluation-package/ folder"
    )
    parser.add_argument("--commit", required=True, help="the package's git commit (recorded)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--only", nargs="*", default=None, help="case names (default: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.package.resolve()))
    import calculate_metrics
    import calculate_metrics_full
    import calculate_modules
    import numpy
    import pandas
    import util

    pkg = {
        "util": util,
        "calculate_metrics": calculate_metrics,
        "calculate_metrics_full": calculate_metrics_full,
        "calculate_modules": calculate_modules,
    }
    out = {
        "oracle": "asvspoof-challenge/asvspoof5 evaluation-package",
        "commit": args.commit,
        "environment": {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
        },
        "generator": "tests/oracles/asvspoof5_cases.py",
        "track2": {},
        "track1": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in cases.TRACK2_CASES.items():
            if args.only is None or name in args.only:
                print(f"track2 {name}", file=sys.stderr, flush=True)
                out["track2"][name] = _track2(pkg, case, Path(tmp) / f"t2_{name}")
        for name, case in cases.TRACK1_CASES.items():
            if args.only is None or name in args.only:
                print(f"track1 {name}", file=sys.stderr, flush=True)
                out["track1"][name] = _track1(pkg, case, Path(tmp) / f"t1_{name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
