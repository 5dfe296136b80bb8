"""Record Kaldi's ``sid/compute_min_dcf.py`` on the generated minDCF cases (the fixture's oracle).

Run once, outside the project's environment (the script needs nothing but Python 3), on a copy of the script:

    git clone https://github.com/kaldi-asr/kaldi   # or any copy of egs/sre08/v1/sid/compute_min_dcf.py
    python -m venv /tmp/oracle && /tmp/oracle/bin/pip install numpy      # numpy for the generator only
    /tmp/oracle/bin/python tests/oracles/record_kaldi.py \\
        --script kaldi/egs/sre08/v1/sid/compute_min_dcf.py --commit $(git -C kaldi rev-parse HEAD) \\
        --out tests/fixtures/kaldi_min_dcf.json

It writes every case of :mod:`min_dcf_cases` to a temporary directory and runs the script's own ``main()``
on its ``scores`` and ``trials`` files, as ``compute_min_dcf.py --p-target P scores trials`` would, for each
p_target of ``P_TARGETS`` (Cmiss = Cfa = 1, its defaults). ``main()`` prints the minDCF with 4 decimals;
the full-precision value and threshold are those ``main()`` got back from the script's ``ComputeMinDcf``,
seen through a wrapper that returns them unchanged (the printed line is kept too, and must agree). The
fixture holds these numbers, the files' sha256 and the script's commit. Only numbers are committed; the
script stays outside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import min_dcf_cases as cases  # noqa: E402


def _load(script: Path):
    spec = importlib.util.spec_from_file_location("kaldi_compute_min_dcf", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(kaldi, files: dict[str, Path], p_target: float) -> dict:
    returned = []
    compute = kaldi.ComputeMinDcf

    def seen(*args, **kwargs):
        result = compute(*args, **kwargs)
        returned.append(result)
        return result

    kaldi.ComputeMinDcf = seen
    argv = sys.argv
    sys.argv = [
        "compute_min_dcf.py",
        "--p-target",
        repr(p_target),
        str(files["scores"]),
        str(files["trials"]),
    ]
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
            kaldi.main()
    finally:
        kaldi.ComputeMinDcf, sys.argv = compute, argv
    ((value, threshold),) = returned
    assert printed.getvalue() == f"{value:.4f}\n", (printed.getvalue(), value)
    return {"min_dcf": float(value), "threshold": float(threshold), "printed": printed.getvalue().strip()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--script", required=True, type=Path, help="egs/sre08/v1/sid/compute_min_dcf.py")
    parser.add_argument("--commit", required=True, help="the kaldi git commit (recorded)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    kaldi = _load(args.script)
    import numpy

    out = {
        "oracle": "kaldi-asr/kaldi egs/sre08/v1/sid/compute_min_dcf.py",
        "commit": args.commit,
        "environment": {"python": platform.python_version(), "numpy (generator only)": numpy.__version__},
        "generator": "tests/oracles/min_dcf_cases.py",
        "p_targets": list(cases.P_TARGETS),
        "cases": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in cases.MIN_DCF_CASES.items():
            print(name, file=sys.stderr, flush=True)
            files = cases.write_min_dcf_case(case, Path(tmp) / name)
            record: dict = {"files": {files[k].name: cases.sha256(files[k]) for k in ("scores", "trials")}}
            record["min_dcf"] = {repr(p): _run(kaldi, files, p) for p in cases.P_TARGETS}
            out["cases"][name] = record
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
