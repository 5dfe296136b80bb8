"""Record the ASVspoof 2021 evaluation package's per-condition tables on generated keys (the fixture's
oracle), and what SSL_Anti-spoofing's scoring scripts (the ones behind SSL-AASIST's published 2021 numbers)
give on the same files.

Run once, outside the project's environment, beside copies of the two repositories (the package needs numpy,
pandas and matplotlib; the SSL scripts numpy and pandas):

    git clone https://github.com/asvspoof-challenge/2021 && git clone https://github.com/TakHemlata/SSL_Anti-spoofing
    python -m venv /tmp/oracle && /tmp/oracle/bin/pip install numpy "pandas<3" "matplotlib<3.9"
    /tmp/oracle/bin/python tests/oracles/record_asvspoof2021_tables.py \\
        --package 2021/eval-package --commit $(git -C 2021 rev-parse HEAD) \\
        --ssl SSL_Anti-spoofing --ssl_commit $(git -C SSL_Anti-spoofing rev-parse HEAD) \\
        --out tests/fixtures/asvspoof2021_tables.json

For every case of :data:`asvspoof2021_cases.KEY_CASES` it writes the keys and a CM score file to a
temporary folder and, per subset (eval, progress):

* calls the package's ``main.evaluation_API`` (what ``python main.py --cm-score-file score.txt --track LA
  --subset eval --recompute-c012 --c012-path ...`` runs: the keys and scores read with its pandas code, C012
  recomputed per condition from the keys' ASV scores, ``compute_decomposed_mintdcf_eer``) and stores its min
  t-DCF and EER arrays (rows: ``config.py``'s first factor, then Pooled; columns: its second, then Pooled;
  NaN as null);
* runs SSL_Anti-spoofing's ``evaluate_2021_LA.py`` / ``evaluate_2021_DF.py`` on the same files (as a module,
  ``sys.argv`` as its usage says, its ``performance`` wrapped to keep the full-precision values it prints
  rounded) and stores its pooled min t-DCF and EER, and whether they equal the package's Pooled cell.

It also stores each file's sha256, the package's factor lists and tags (``config.py``) and cost model, the
commits and versions. A run that stops (``sys.exit``) or raises is recorded as ``{"error": ...}``. Only
numbers are committed; neither repository's code enters this one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import asvspoof2021_cases as cases  # noqa: E402
from record_asvspoof2021 import guarded  # noqa: E402


def _grid(array) -> list[list[float | None]]:
    return [[None if math.isnan(float(v)) else float(v) for v in row] for row in np.asarray(array)]


def _ssl(script: Path, work: Path, track: str, subset: str) -> dict:
    """One run of an SSL_Anti-spoofing scoring script as a module, its full-precision pooled numbers."""
    argv, sys.argv = sys.argv, [str(script), str(work / "score.txt"), str(work / "keys" / track), subset]
    try:
        spec = importlib.util.spec_from_file_location(f"ssl_{track}_{subset}", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if track == "DF":
            return {"eer": float(module.eval_to_score_file(sys.argv[1], module.cm_key_file))}
        seen = []
        performance = module.performance

        def kept(*args, **kwargs):
            seen.append(performance(*args, **kwargs))
            return seen[-1]

        module.performance = kept
        min_tdcf = module.eval_to_score_file(sys.argv[1], module.cm_key_file)
        first = seen[0]  # the scores as given (the second call negates them)
        return {
            "min_tdcf": float(min_tdcf), "eer": float(first[1]), "min_tdcf_of_performance": float(first[0])
        }  # fmt: skip
    finally:
        sys.argv = argv


def _package(main, work: Path, track: str, subset: str) -> dict:
    """``main.py --cm-score-file score.txt --track T --subset S --recompute-c012 --c012-path ...``."""
    tdcf, eer = main.evaluation_API(
        str(work / "score.txt"),
        track,
        subset,
        str(work / "keys"),
        flag_recompute_c012=track == "LA",
        external_c012_path=str(work / f"c012_{subset}.npy"),
    )
    return {"min_tdcf": _grid(tdcf), "eer": _grid(eer)}


def record_case(case: cases.KeyCase, main, ssl_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out: dict = {"files": cases.write_key_case(case, work)}
        script = ssl_dir / f"evaluate_2021_{case.track}.py"
        for subset in cases.TABLE_SUBSETS:
            package = guarded(lambda s=subset: _package(main, work, case.track, s))
            ssl = guarded(lambda s=subset: _ssl(script, work, case.track, s))
            result = {"package": package, "ssl": ssl}
            if "error" not in package and "error" not in ssl:
                pooled = {"eer": package["eer"][-1][-1], "min_tdcf": package["min_tdcf"][-1][-1]}
                result["ssl_equals_package"] = all(ssl[k] == pooled[k] for k in ssl if k in pooled)
            out[subset] = result
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--package", required=True, help="the package's eval-package/ folder")
    p.add_argument("--commit", required=True, help="the package's git commit")
    p.add_argument("--ssl", required=True, help="a copy of TakHemlata/SSL_Anti-spoofing")
    p.add_argument("--ssl_commit", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    sys.path.insert(0, str(Path(args.package).resolve()))
    sys.path.insert(0, str(Path(args.ssl).resolve()))
    import config  # noqa: PLC0415 (the package's modules, from --package)
    import main as package_main  # noqa: PLC0415
    import matplotlib  # noqa: PLC0415 (table_API's; matplotlib < 3.9 has its cm.get_cmap)
    import pandas  # noqa: PLC0415

    factors = {}
    for track, conf in (("LA", config.ConfigLA()), ("DF", config.ConfigDF())):
        factors[track] = {
            "rows": {"column": conf.factor_name_1, "values": conf.factor_1_list,
                     "tags": conf.factor_1_tag_list},
            "columns": {"column": conf.factor_name_2, "values": conf.factor_2_list,
                        "tags": conf.factor_2_tag_list},
            "pooled": conf.pooled_tag,
        }  # fmt: skip
    record = {
        "package": "asvspoof-challenge/2021 eval-package (main.evaluation_API)",
        "commit": args.commit,
        "ssl": "TakHemlata/SSL_Anti-spoofing evaluate_2021_LA.py, evaluate_2021_DF.py",
        "ssl_commit": args.ssl_commit,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "matplotlib": matplotlib.__version__,
        "cost_model": config.cost_model,
        "factors": factors,
        "cases": {case.name: record_case(case, package_main, Path(args.ssl)) for case in cases.KEY_CASES},
    }
    Path(args.out).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
