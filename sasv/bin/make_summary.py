"""run_test stage 3: one summary table over every system and norm scored under an exp dir, and RESULTS.md.

Collects exp/<asv>/<cm>/<variant>/results.json (and exp/fusion/*/results.json) into exp/summary.md (rows: ASV
model and norm; columns: DEV and EVAL SASV/SV/SPF-EER like the reference system's README, then the cost
columns), one table per CM model and fusion rule, and says which of the requested ASV models have no row
yet and why. exp/RESULTS.md (like ESPnet's) adds the environment, the models with their checkpoint sha256,
and links to every per-system table and figure.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sasv.cli import ArgumentParser, run_cli
from sasv.conf import load_conf
from sasv.errors import StaleOutputError
from sasv.exp_layout import ExpLayout
from sasv.fileio import atomic_write_text
from sasv.metrics_record import BENCHMARK_TITLES
from sasv.provenance import environment_info, weights_origin
from sasv.report import summary_table, systems_interval_table
from sasv.scoring import NORMS

log = logging.getLogger("make_summary")


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv make_summary", description=__doc__)
    p.add_argument("--exp_dir", default="exp")
    p.add_argument("--data_dir", default="data", help="data dirs root of the run (repeated in the hints)")
    p.add_argument("--asv_confs", nargs="*", default=[], help="ASV confs expected in the table")
    args = p.parse_args(argv)
    layout = ExpLayout(args.exp_dir)

    records = [read_record(f) for f in layout.results_records()]
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r.get("benchmark", "la"), r["cm"], r["fusion"])].append(r)

    parts = ["# SASV results", ""]
    if not records:
        parts.append("No scored systems yet: run run_test_nonorm.sh / run_test_l2norm.sh.")
    for (benchmark, cm, fusion), rs in sorted(groups.items()):
        rs.sort(key=lambda r: (r["asv"], NORMS.index(r["variant"]) if r["variant"] in NORMS else 99))
        notes = sorted({r["note"] for r in rs if r.get("note")})
        on = "" if benchmark == "la" else f" ({BENCHMARK_TITLES[benchmark]})"
        parts += [f"## CM: {cm}, fusion: {fusion}{on}", ""]
        rows = [(r["asv"], r["variant"], r["results"]) for r in rs]
        parts.append(summary_table(rows, "\n".join(notes) or None))
        intervals = systems_interval_table([((a, v), res) for a, v, res in rows], ("ASV model", "norm"))
        if intervals:
            parts += ["", intervals]

    origins = {m["name"]: weights_origin(m) for r in records for m in r.get("models", [])}
    if origins:
        parts += ["## Models", "", *(f"- {name}: {origins[name]}" for name in sorted(origins)), ""]
    missing = []
    scored = {(r["asv"], r["variant"]) for r in records}
    for conf_path in args.asv_confs:
        name = load_conf(conf_path).name
        for norm in NORMS:
            if (name, norm) in scored:
                continue
            dirs = f"--data_dir {args.data_dir} --exp_dir {args.exp_dir}"
            if not layout.model_record(name, "asv").is_file():
                why = f"no embeddings: run run_spk_ebd_extract.sh --asv_conf {conf_path} {dirs} --stage 2"
            else:
                why = f"not scored: run run_test_{norm}.sh --asv_conf {conf_path} {dirs}"
            missing.append(f"- {name} ({norm}): {why}")
    if missing:
        parts += ["## Missing rows", "", *missing, ""]
        for line in missing:
            log.warning("summary row missing: %s", line[2:])
    summary = "\n".join(parts).rstrip() + "\n"
    atomic_write_text(layout.summary, summary)
    atomic_write_text(layout.results_md, results_md(layout.root, records, summary))
    log.info("wrote %s and %s (%d systems)", layout.summary, layout.results_md, len(records))
    return 0


def read_record(path: Path) -> dict:
    """A system's results.json, remembering its folder (for the links of RESULTS.md)."""
    record = json.loads(path.read_text())
    if "variant" not in record:
        raise StaleOutputError(
            f"{path}: written by an older version of the recipe (no 'variant'); re-run run_test_nonorm.sh / "
            f"run_test_l2norm.sh, or move the old exp dir away"
        )
    return {**record, "dir": path.parent}


def results_md(exp: Path, records: list[dict], summary: str) -> str:
    """ESPnet-style RESULTS.md: environment, models and checkpoints, the summary, links to every system."""
    lines = ["# RESULTS", "", "## Environment", ""]
    lines += [f"- {k}: {v}" for k, v in environment_info().items()]
    lines += [
        "",
        "## Models",
        "",
        "| model | kind | weights | conf | checkpoint | sha256 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    seen = set()
    for r in records:
        for m in r.get("models", []):
            if m["name"] in seen:
                continue
            seen.add(m["name"])
            sha = m["checkpoint_sha256"] or "none: RANDOMLY INITIALISED"
            cells = [m["name"], m["kind"], weights_origin(m), m["conf"], m["checkpoint"], sha]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", summary.replace("# SASV results", "## Summary", 1).rstrip(), "", "## Systems", ""]
    for r in sorted(records, key=lambda r: (r["asv"], r["cm"], r["variant"])):
        folder = r["dir"]
        rel = folder.relative_to(exp)
        files = ["results.md", "analysis.md", *sorted(p.name for p in folder.glob("*.png"))]
        links = ", ".join(f"[{f}]({rel / f})" for f in files if (folder / f).is_file())
        lines.append(f"- {r['asv']} / {r['cm']} / {r['variant']} (fusion: {r['fusion']}): {links}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(run_cli(main))
