"""Record wespeaker's minDCF and AS-norm on the generated cases (the fixture's oracle).

Run once, outside the project's environment, beside a checkout of wespeaker (no torch needed: the package's
``__init__.py``, which loads the model CLI, is not executed; the scripts' own modules are imported from the
checkout as they are):

    git clone https://github.com/wenet-e2e/wespeaker
    python -m venv /tmp/oracle
    /tmp/oracle/bin/pip install numpy scipy matplotlib fire kaldiio tqdm scikit-learn
    /tmp/oracle/bin/python tests/oracles/record_wespeaker_scoring.py --wespeaker wespeaker \\
        --commit $(git -C wespeaker rev-parse HEAD) --out tests/fixtures/wespeaker_scoring.json

minDCF: every case of :mod:`min_dcf_cases` is written to a temporary directory and its ``scores_labelled``
file scored by ``bin/compute_metrics.py``'s ``compute_metrics(file, p_target, 1, 1)`` (which reads the file,
calls ``utils/score_metrics.py``'s ``compute_pmiss_pfa_rbst`` and ``compute_c_norm`` and prints the minDCF
with 3 decimals) for each p_target of ``P_TARGETS``; the full-precision value is the one ``compute_c_norm``
returned to it, seen through a wrapper that returns it unchanged.

AS-norm: every case of :mod:`asnorm_cases` is written to a temporary directory and ``bin/score_norm.py``'s
``main(method, top_n, trials.score, out, cohort.scp, eval.scp, mean_vec)`` run inside it. ``main()`` writes
each normalised score with 5 decimals; to record the value it computed, it is run a second time with the
number it parses each trial's score into (its module's name ``float``) replaced by a proxy that applies
every operation to the parsed float unchanged, with numpy's own rules (so a float32 case stays float32), and
formats the result with ``repr``; the two runs must print the same 5 decimals. The cohort statistics are
those ``get_mean_std`` returned to ``main()``, seen through a wrapper. The raw cosines of ``bin/score.py``
(``trials_cosine_score``, 5 decimals) on the same embeddings are recorded too.

The fixture holds these numbers (full precision, as ``repr`` floats), the files' sha256, the package commit
and the versions used. Only numbers are committed; wespeaker's code stays outside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import operator
import os
import platform
import sys
import tempfile
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import asnorm_cases  # noqa: E402
import min_dcf_cases  # noqa: E402


def _import_scripts(checkout: Path) -> dict[str, types.ModuleType]:
    """The scripts' modules from the checkout, without running ``wespeaker/__init__.py`` (torch)."""
    package = types.ModuleType("wespeaker")
    package.__path__ = [str(checkout / "wespeaker")]
    sys.modules["wespeaker"] = package
    names = ("bin.compute_metrics", "bin.score_norm", "bin.score", "utils.score_metrics")
    return {name: importlib.import_module(f"wespeaker.{name}") for name in names}


def _min_dcf(compute_metrics: types.ModuleType, path: Path, p_target: float) -> dict:
    returned = []
    c_norm = compute_metrics.compute_c_norm

    def seen(*args, **kwargs):
        result = c_norm(*args, **kwargs)
        returned.append(result)
        return result

    compute_metrics.compute_c_norm = seen
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            compute_metrics.compute_metrics(str(path), p_target, 1, 1)
    finally:
        compute_metrics.compute_c_norm = c_norm
    (value,) = returned
    line = printed.getvalue().splitlines()[-1]
    assert line.endswith(f" = {value:.3f}"), (line, value)
    return {"min_dcf": float(value), "printed": line}


class _Traced:
    """A parsed trial score whose arithmetic is the wrapped number's own (Python float or numpy scalar
    rules, whichever the script's expression would have used) and which formats as ``repr``."""

    def __init__(self, value) -> None:
        self.value = float(value) if isinstance(value, str) else value

    def __format__(self, spec: str) -> str:
        return repr(float(self.value))


def _traced_op(op, reflected: bool):
    def method(self, other):
        other = other.value if isinstance(other, _Traced) else other
        return _Traced(op(other, self.value) if reflected else op(self.value, other))

    return method


for _name in ("add", "sub", "mul", "truediv"):
    setattr(_Traced, f"__{_name}__", _traced_op(getattr(operator, _name), False))
    setattr(_Traced, f"__r{_name}__", _traced_op(getattr(operator, _name), True))


def _as_norm(modules: dict, case: asnorm_cases.AsNormCase, work: Path) -> dict:
    files = asnorm_cases.write_as_norm_case(case, work)
    record: dict = {"files": {path.name: asnorm_cases.sha256(path) for path in files.values()}}
    score_norm, score = modules["bin.score_norm"], modules["bin.score"]
    stats = []
    get_mean_std = score_norm.get_mean_std

    def seen(emb, cohort, top_n):
        result = get_mean_std(emb, cohort, top_n)
        stats.append(result)
        return result

    mean_vec = files["mean_vec"].name if "mean_vec" in files else None

    def run_main(out: str) -> list[list[str]]:
        trials, cohort_scp, eval_scp = (files[k].name for k in ("trial_scores", "cohort_scp", "eval_scp"))
        score_norm.main(case.method, case.top_n, trials, out, cohort_scp, eval_scp, mean_vec)
        return [line.split() for line in Path(out).read_text(encoding="utf-8").splitlines()]

    (work / "raw").mkdir()  # score.py writes into an existing directory
    here = Path.cwd()
    os.chdir(work)  # the scp files name their archives relative to the case's directory
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            printed = run_main("printed.score")  # as it runs: 5 decimals
            score_norm.get_mean_std, score_norm.float = seen, _Traced
            try:
                normed = run_main("normed.score")
            finally:
                del score_norm.float
                score_norm.get_mean_std = get_mean_std
            score.trials_cosine_score(files["eval_scp"].name, "raw", mean_vec, [files["trials"].name])
        raw = [line.split() for line in Path("raw/trials.score").read_text(encoding="utf-8").splitlines()]
    finally:
        os.chdir(here)
    # the traced run computed what the plain run printed
    assert [r[2] for r in printed] == [f"{float(r[2]):.5f}" for r in normed], "the proxy changed a number"
    assert [r[:2] + r[3:] for r in printed] == [r[:2] + r[3:] for r in normed]
    scored = [line.split() for line in files["trial_scores"].read_text(encoding="utf-8").splitlines()]
    assert [r[:2] for r in normed] == [r[:2] for r in scored] == [r[:2] for r in raw]
    (enrol_mean, enrol_std), (test_mean, test_std) = stats
    enrol_names = sorted({r[0] for r in scored})  # main()'s order of the enrolment and test embeddings
    test_names = sorted({r[1] for r in scored})
    record["normed"] = [float(r[2]) for r in normed]
    record["enrol_stats"] = {
        n: [float(m), float(s)] for n, m, s in zip(enrol_names, enrol_mean, enrol_std, strict=True)
    }
    record["test_stats"] = {
        n: [float(m), float(s)] for n, m, s in zip(test_names, test_mean, test_std, strict=True)
    }
    record["stats_dtype"] = str(enrol_mean.dtype)
    record["score_py_raw"] = [float(r[2]) for r in raw]
    return record


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wespeaker", required=True, type=Path, help="a checkout of wenet-e2e/wespeaker")
    parser.add_argument("--commit", required=True, help="the wespeaker git commit (recorded)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    modules = _import_scripts(args.wespeaker.resolve())
    import numpy
    import sklearn

    out = {
        "oracle": "wenet-e2e/wespeaker bin/compute_metrics.py (utils/score_metrics.py), bin/score_norm.py",
        "commit": args.commit,
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "generators": ["tests/oracles/min_dcf_cases.py", "tests/oracles/asnorm_cases.py"],
        "p_targets": list(min_dcf_cases.P_TARGETS),
        "min_dcf": {},
        "as_norm": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in min_dcf_cases.MIN_DCF_CASES.items():
            print(f"min_dcf {name}", file=sys.stderr, flush=True)
            path = min_dcf_cases.write_min_dcf_case(case, Path(tmp) / f"dcf_{name}")["scores_labelled"]
            values = {
                repr(p): _min_dcf(modules["bin.compute_metrics"], path, p) for p in min_dcf_cases.P_TARGETS
            }
            out["min_dcf"][name] = {"files": {path.name: min_dcf_cases.sha256(path)}, "min_dcf": values}
        for name, case in asnorm_cases.AS_NORM_CASES.items():
            print(f"as_norm {name}", file=sys.stderr, flush=True)
            out["as_norm"][name] = _as_norm(modules, case, Path(tmp) / f"asnorm_{name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
