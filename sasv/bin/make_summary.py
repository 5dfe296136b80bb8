"""run_test stage 3: one summary table over every system and norm scored under an exp dir, and RESULTS.md.

Collects exp/<asv>/<cm>/<variant>/results.json (and exp/fusion/*/results.json) into exp/summary.md (rows: ASV
model and norm; columns: DEV and EVAL SASV/SV/SPF-EER like the reference system's README, then the cost
columns), one table per CM model and fusion rule, and says which of the requested ASV x CM models have no
row yet and why (with the command that makes it). exp/RESULTS.md (like ESPnet's) adds the environment, the
models with their checkpoint sha256 and how their embeddings were stored, the data each set was scored on,
and links to every per-system table and figure.

Rows of one table are read side by side, so a table whose systems' records say different things about
the same model (another checkpoint or conf under one name, another embedding storage), the same set
(another trial list, enrolment or audio) or the metrics says so above itself
(:func:`sasv.provenance.record_disagreements`). The summary says so rather than refusing: it gathers
everything under an exp dir, and one stale system must not hide every other result; the note names the
systems to re-score. (``sasv fuse_systems`` refuses instead: a fusion turns its inputs into one new score,
and there is nothing to show beside a number of no single definition.)
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.registry import DEFAULT_CORPUS
from sasv.errors import StaleOutputError
from sasv.exp_layout import ANALYSIS_TABLE, RESULTS_TABLE, ExpLayout
from sasv.fileio import atomic_write_text
from sasv.models.conf import load_conf
from sasv.provenance import EMBEDDING_DTYPE_KEY, environment_info, record_disagreements, weights_origin
from sasv.reports.records import BENCHMARK_TITLES
from sasv.reports.tables import summary_table, systems_interval_table
from sasv.scoring.cosine import NORMS

log = logging.getLogger("make_summary")

DIFFERENT_INPUTS = "Not made from the same inputs, compare with care (re-score the stale systems):"


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv make_summary", description=__doc__)
    p.add_argument("--exp_dir", default="exp")
    p.add_argument("--data_dir", default="data", help="data dirs root of the run (repeated in the hints)")
    p.add_argument("--asv_confs", nargs="*", default=[], help="ASV confs expected in the table")
    p.add_argument(
        "--cm_confs", nargs="*", default=[], help="CM confs expected with each ASV conf (and in the hints)"
    )
    args = p.parse_args(argv)
    layout = ExpLayout(args.exp_dir)

    records = [read_record(f) for f in layout.results_records()]
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in records:
        groups[(r.get("benchmark", DEFAULT_CORPUS), r["cm"], r["fusion"])].append(r)

    parts = ["# SASV results", ""]
    if not records:
        parts.append("No scored systems yet: run run_test_nonorm.sh / run_test_l2norm.sh.")
    for (benchmark, cm, fusion), rs in sorted(groups.items()):
        rs.sort(key=lambda r: (r["asv"], NORMS.index(r["variant"]) if r["variant"] in NORMS else 99))
        notes = sorted({r["note"] for r in rs if r.get("note")})
        differ = record_disagreements([(r.get("system", str(r["dir"])), r) for r in rs])
        if differ:
            notes += [DIFFERENT_INPUTS, *(f"- {line}" for line in differ)]
        on = "" if benchmark == DEFAULT_CORPUS else f" ({BENCHMARK_TITLES[benchmark]})"
        parts += [f"## CM: {cm}, fusion: {fusion}{on}", ""]
        rows = [(r["asv"], r["variant"], r["results"]) for r in rs]
        parts.append(summary_table(rows, "\n".join(notes) or None))
        intervals = systems_interval_table([((a, v), res) for a, v, res in rows], ("ASV model", "norm"))
        if intervals:
            parts += ["", intervals]

    origins: dict[str, list[str]] = defaultdict(list)
    for r in records:
        for m in r.get("models", []):
            stored = m.get(EMBEDDING_DTYPE_KEY)
            origin = weights_origin(m) + (
                f"; embeddings stored as {stored}" if stored not in (None, "float32") else ""
            )
            if origin not in origins[m["name"]]:
                origins[m["name"]].append(origin)
    if origins:
        parts += [
            "## Models",
            "",
            *(f"- {name}: {' | '.join(origins[name])}" for name in sorted(origins)),
            "",
        ]
    missing = missing_rows(layout, records, args.asv_confs, args.cm_confs, args.data_dir)
    if missing:
        parts += ["## Missing rows", "", *missing, ""]
        for line in missing:
            log.warning("summary row missing: %s", line[2:])
    summary = "\n".join(parts).rstrip() + "\n"
    atomic_write_text(layout.summary, summary)
    atomic_write_text(layout.results_md, results_md(layout.root, records, summary))
    log.info("wrote %s and %s (%d systems)", layout.summary, layout.results_md, len(records))
    return 0


def missing_rows(
    layout: ExpLayout, records: list[dict], asv_confs: Sequence[str], cm_confs: Sequence[str], data_dir: str
) -> list[str]:
    """``- <asv> + <cm> (<norm>): why, and the command that makes the row`` for every requested ASV x CM
    conf and norm without a (default product-rule) row. The command repeats the run's confs and dirs, each
    shell-quoted, so it can be pasted as it is. Without ``cm_confs`` a row of any CM counts."""
    cms = [(path, load_conf(path).name) for path in cm_confs] or [(None, None)]
    scored = {(r["asv"], r["cm"], r["variant"]) for r in records} | {
        (r["asv"], None, r["variant"]) for r in records
    }
    missing = []
    for conf_path in asv_confs:
        name = load_conf(conf_path).name
        for cm_path, cm_name in cms:
            for norm in NORMS:
                if (name, cm_name, norm) in scored:
                    continue
                confs = ["--asv_conf", conf_path, *(["--cm_conf", cm_path] if cm_path else [])]
                options = shlex.join([*confs, "--data_dir", data_dir, "--exp_dir", str(layout.root)])
                if not layout.model_record(name, "asv").is_file():
                    why = f"no embeddings: run run_spk_ebd_extract.sh {options} --stage 2"
                elif cm_name is not None and not layout.model_record(cm_name, "cm").is_file():
                    why = f"no CM scores: run run_spk_ebd_extract.sh {options} --stage 3"
                else:
                    why = f"not scored: run run_test_{norm}.sh {options}"
                system = name if cm_name is None else f"{name} + {cm_name}"
                missing.append(f"- {system} ({norm}): {why}")
    return missing


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
        "Every version of a model that a system was scored with (two rows of one name: re-run between two "
        "scorings; the tables that mix them say so). embeddings: how the rows were stored (float16 rounds "
        "them).",
        "",
        "| model | kind | weights | conf | checkpoint | sha256 | embeddings |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    seen = set()
    for r in records:
        for m in r.get("models", []):
            sha = m["checkpoint_sha256"] or "none: RANDOMLY INITIALISED"
            stored = m.get(EMBEDDING_DTYPE_KEY) or ("-" if m["kind"] != "asv" else "not recorded")
            cells = [m["name"], m["kind"], weights_origin(m), m["conf"], m["checkpoint"], sha, stored]
            version = (*map(str, cells), m.get("conf_sha256"))
            if version in seen:
                continue
            seen.add(version)
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += data_lines(records)
    lines += ["", summary.replace("# SASV results", "## Summary", 1).rstrip(), "", "## Systems", ""]
    for r in sorted(records, key=lambda r: (r["asv"], r["cm"], r["variant"])):
        folder = r["dir"]
        rel = folder.relative_to(exp)
        files = [RESULTS_TABLE, ANALYSIS_TABLE, *sorted(p.name for p in folder.glob("*.png"))]
        links = ", ".join(f"[{f}]({rel / f})" for f in files if (folder / f).is_file())
        lines.append(f"- {r['asv']} / {r['cm']} / {r['variant']} (fusion: {r['fusion']}): {links}")
    return "\n".join(lines) + "\n"


def data_lines(records: list[dict]) -> list[str]:
    """RESULTS.md's ``## Data``: what each benchmark's sets were scored on (data dir and the sha256 of its
    lists), with the systems of each; a set with two lines was scored on different data."""
    used: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for r in records:
        for set_name, data in (r.get("data") or {}).items():
            hashes = ", ".join(f"{n} {h[:12]}" for n, h in sorted((data.get("sha256") or {}).items()))
            used[(r.get("benchmark", DEFAULT_CORPUS), set_name, data.get("dir", "?"), hashes)].append(
                r.get("system", "?")
            )
    if not used:
        return []
    lines = ["", "## Data", ""]
    for (benchmark, set_name, folder, hashes), systems in sorted(used.items()):
        lines.append(f"- {benchmark} {set_name}: {folder} ({hashes}): {len(systems)} system(s)")
    return lines


if __name__ == "__main__":
    sys.exit(run_cli(main))
