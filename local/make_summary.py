#!/usr/bin/env python3
"""run_test stage 3: one summary table over every system and norm scored under an exp dir, and RESULTS.md.

Collects exp/<asv>_<cm>/<norm>/results.json (and exp/fusion/*/results.json) into exp/summary.md (rows: ASV
model and norm; columns: DEV and EVAL SASV/SV/SPF-EER like the reference system's README, then the cost
columns), one table per CM model and fusion rule, and says which of the requested ASV models have no row
yet and why. exp/RESULTS.md (like ESPnet's) adds the environment, the models with their checkpoint sha256,
and links to every per-system table and figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sasv.cli import run_cli  # noqa: E402
from sasv.conf import load_conf  # noqa: E402
from sasv.fileio import atomic_write_text  # noqa: E402
from sasv.provenance import environment_info  # noqa: E402
from sasv.report import summary_table  # noqa: E402
from sasv.scoring import NORMS  # noqa: E402

log = logging.getLogger("make_summary")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", default="exp")
    p.add_argument("--asv_confs", nargs="*", default=[], help="ASV confs expected in the table")
    args = p.parse_args()
    exp = Path(args.exp_dir)

    # each record remembers its folder, for the links of RESULTS.md
    records = [{**json.loads(f.read_text()), "dir": f.parent} for f in sorted(exp.glob("*/*/results.json"))]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["cm"], r["fusion"])].append(r)

    parts = ["# SASV results", ""]
    if not records:
        parts.append("No scored systems yet: run run_test_nonorm.sh / run_test_l2norm.sh.")
    for (cm, fusion), rs in sorted(groups.items()):
        rs.sort(key=lambda r: (r["asv"], NORMS.index(r["norm"]) if r["norm"] in NORMS else 99))
        notes = sorted({r["note"] for r in rs if r.get("note")})
        parts += [f"## CM: {cm}, fusion: {fusion}", ""]
        parts.append(
            summary_table([(r["asv"], r["norm"], r["results"]) for r in rs], "\n".join(notes) or None)
        )

    missing = []
    scored = {(r["asv"], r["norm"]) for r in records}
    for conf_path in args.asv_confs:
        name = load_conf(conf_path).name
        for norm in NORMS:
            if (name, norm) in scored:
                continue
            if not (exp / name / "embeddings" / "model.json").is_file():
                why = f"no embeddings: run run_spk_ebd_extract.sh --asv_conf {conf_path} --stage 2"
            else:
                why = f"not scored: run run_test_{norm}.sh --asv_conf {conf_path}"
            missing.append(f"- {name} ({norm}): {why}")
    if missing:
        parts += ["## Missing rows", "", *missing, ""]
        for line in missing:
            log.warning("summary row missing: %s", line[2:])
    summary = "\n".join(parts).rstrip() + "\n"
    atomic_write_text(exp / "summary.md", summary)
    atomic_write_text(exp / "RESULTS.md", results_md(exp, records, summary))
    log.info("wrote %s and %s (%d systems)", exp / "summary.md", exp / "RESULTS.md", len(records))
    return 0


def results_md(exp: Path, records: list[dict], summary: str) -> str:
    """ESPnet-style RESULTS.md: environment, models and checkpoints, the summary, links to every system."""
    lines = ["# RESULTS", "", "## Environment", ""]
    lines += [f"- {k}: {v}" for k, v in environment_info().items()]
    lines += [
        "",
        "## Models",
        "",
        "| model | kind | conf | checkpoint | sha256 |",
        "| --- | --- | --- | --- | --- |",
    ]
    seen = set()
    for r in records:
        for m in r.get("models", []):
            if m["name"] in seen:
                continue
            seen.add(m["name"])
            sha = m["checkpoint_sha256"] or "none: RANDOMLY INITIALISED"
            lines.append(f"| {m['name']} | {m['kind']} | {m['conf']} | {m['checkpoint']} | {sha} |")
    lines += ["", summary.replace("# SASV results", "## Summary", 1).rstrip(), "", "## Systems", ""]
    for r in sorted(records, key=lambda r: (r["asv"], r["cm"], r["norm"])):
        folder = r["dir"]
        rel = folder.relative_to(exp)
        files = ["results.md", "analysis.md", *sorted(p.name for p in folder.glob("*.png"))]
        links = ", ".join(f"[{f}]({rel / f})" for f in files if (folder / f).is_file())
        lines.append(f"- {r['asv']} / {r['cm']} / {r['norm']} (fusion: {r['fusion']}): {links}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    run_cli(main)
