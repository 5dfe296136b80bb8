#!/usr/bin/env python3
"""The score table and the survivor list of the last mutation run, from mutmut's result files.

Reads ``mutants/sasv/<module>.py.meta`` (what ``local/mutation_test.sh`` leaves behind) and prints, for
the modules given (default: every module with results), a markdown table ``module | mutants | killed |
survived | no tests | timeout | not yet run | score`` and then one line per surviving or unreached mutant
with its first changed line, before / after (from ``mutmut show``). Exit codes as mutmut records them:
0 survived, 33 no tests, 1 (and other non-zero) killed, None not yet run; 24/-24 timeouts count as killed
in the score (mutmut's own convention) but are listed.

    python local/mutation_report.py audio markers > /tmp/report.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SURVIVED, NO_TESTS, TIMEOUTS = 0, 33, {24, -24}


def results(module: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / "sasv" / f"{module}.py.meta"
    if not meta.is_file():
        raise SystemExit(f"ERROR: {meta}: no mutation results for {module} (run local/mutation_test.sh)")
    return json.loads(meta.read_text())["exit_code_by_key"]


def first_change(name: str) -> tuple[str, str]:
    shown = subprocess.run(["mutmut", "show", name], cwd=ROOT, capture_output=True, text=True).stdout
    lines = shown.splitlines()
    removed = next((line for line in lines if line.startswith("-") and not line.startswith("---")), "")
    added = next((line for line in lines if line.startswith("+") and not line.startswith("+++")), "")
    return removed, added


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", help="module names (audio, chunked, ...); default: all with results")
    args = p.parse_args(argv)
    modules = args.modules or sorted(
        m.name.removesuffix(".py.meta") for m in (ROOT / "mutants" / "sasv").glob("*.meta")
    )
    table = ["| module | mutants | killed | survived | no tests | timeout | not yet run | score |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    listed = []
    for module in modules:
        codes = results(module)
        counts = Counter(
            "pending" if c is None else "survived" if c == SURVIVED else "no tests" if c == NO_TESTS
            else "timeout" if c in TIMEOUTS else "killed"
            for c in codes.values()
        )  # fmt: skip
        killed = counts["killed"] + counts["timeout"]
        score = f"{100 * killed / len(codes):.1f} %"
        if counts["pending"]:
            score = f"({score} so far)"
        table.append(f"| {module} | {len(codes)} | {killed} | {counts['survived']} | {counts['no tests']} | "
                     f"{counts['timeout']} | {counts['pending']} | {score} |")  # fmt: skip
        for name, code in codes.items():
            if code in (SURVIVED, NO_TESTS) or code in TIMEOUTS:
                kind = {SURVIVED: "survived", NO_TESTS: "no tests"}.get(code, "timeout")
                before, after = first_change(name)
                listed.append(f"* `{name}` ({kind}): `{before}` / `{after}`")
    print("\n".join([*table, "", *listed]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
