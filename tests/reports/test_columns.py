"""The metrics' declarations (:mod:`sasv.reports.columns`) drive every table: each declared metric appears
under its one label in every kind of table, and a new declaration appears in all of them by itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sasv.bin.make_summary import main as make_summary
from sasv.reports import columns
from sasv.reports.columns import METRICS, PERCENT, Metric, metric, percent
from sasv.reports.tables import (
    CM_BREAKDOWN_COLUMNS,
    TRACK2_BREAKDOWN_COLUMNS,
    breakdown_tables,
    comparison_table,
    interval_table,
    results_table,
    summary_table,
    systems_interval_table,
    systems_table,
)

HOW = {"unit": "claimed speaker", "resamples": 10, "confidence": 0.95, "seed": 0}


def _record(keys: list[str], value: float = 0.1234) -> dict:
    return {key: value for key in keys} | {"actual_costs_threshold_from": "dev"}


def _bootstrapped(record: dict, keys: list[str]) -> dict:
    intervals = {key: [0.1, 0.2] for key in keys}
    return {**record, "bootstrap": {"primary_cost": keys[-1], "intervals": intervals, "missing": {}, **HOW}}


def _comparison(keys: list[str], difference: float = -0.05) -> dict:
    entry = {"a": 0.1, "b": 0.15, "difference": difference, "interval": [-0.08, -0.02], "p_value": 0.01}
    return {"metrics": {key: {**entry, "differ": True} for key in keys}, **HOW}


def _header(table: str, first_cell: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_labels_and_keys_are_unique() -> None:
    """One name per thing: no two declarations share a key or a label."""
    assert len({m.key for m in METRICS}) == len(METRICS)
    assert len({m.label for m in METRICS}) == len(METRICS)


@pytest.mark.parametrize("declared", METRICS, ids=lambda m: m.key)
def test_every_declared_metric_appears_with_its_label_in_every_table(declared: Metric) -> None:
    """A record carrying the metric shows it, labelled and formatted as declared, in the results table
    (results.md, analysis.md), the systems table (summary.md, RESULTS.md, the fusion's results.md) and,
    when it has an interval or is compared, in the interval and comparison tables."""
    record = _record(["sasv_eer", "sv_eer", "spf_eer", declared.key])
    cell = declared.format(0.1234)
    table = results_table("s", {"dev": record})
    header = _header(table, "set")
    assert declared.label in header
    assert table.splitlines()[-1].split(" | ")[header.index(declared.label)] == cell
    if declared.note:
        assert declared.note in table
    for text in (summary_table([("m", "n", {"dev": record, "eval": record})]),
                 systems_table([(("a",), {"dev": record})], ("system",))):  # fmt: skip
        assert f"DEV {declared.label}" in text and f"EVAL {declared.label}" in text
    boot = _bootstrapped(record, ["sasv_eer", declared.key])
    assert declared.label in _header(interval_table({"dev": boot}), "set")
    assert f"EVAL {declared.label}" in systems_interval_table([(("a",), {"eval": boot})], ("system",))
    compared = comparison_table(_comparison([declared.key]))
    assert f"| {declared.label} | {declared.format(0.1)} | {declared.format(0.15)} |" in compared


def test_breakdown_tables_label_their_metrics_as_the_records_do() -> None:
    """The per-attack tables show metrics the records also hold (under other keys): the same labels."""
    assert [m.key for _, m in CM_BREAKDOWN_COLUMNS] == ["cm_min_dcf", "cm_eer", "cm_cllr", "cm_act_dcf"]
    assert [m.key for _, m in TRACK2_BREAKDOWN_COLUMNS] == ["min_a_dcf[sasv2024]", "min_t_dcf", "t_eer"]
    table = {"attacks": ["pooled"], "codecs": ["pooled"], "min_dcf": [[0.5]], "eer": [[0.25]],
             "cllr": [[0.9]], "act_dcf": [[0.6]]}  # fmt: skip
    text = breakdown_tables({"eval": table}, CM_BREAKDOWN_COLUMNS)
    assert "| attack | CM minDCF | CM-EER | CM CLLR | CM actDCF |" in text
    assert "| pooled | 0.5000 | 25.00 | 0.9000 | 0.6000 |" in text


NEW = Metric("cm_auc", "CM AUC", PERCENT, "CM AUC: area under the CM's ROC", lower_is_better=False)


def test_a_new_declaration_appears_in_every_table(monkeypatch) -> None:
    """Adding one declaration is all a new metric needs to reach every table: column, caption note, cell
    format, interval and comparison rows (with its own direction of better)."""
    monkeypatch.setattr(columns, "METRICS", (*METRICS, NEW))
    assert metric("cm_auc") is NEW
    record = _record(["sasv_eer", "sv_eer", "spf_eer", "cm_auc"], 0.975)
    table = results_table("s", {"dev": record})
    assert _header(table, "set")[-5] == "CM AUC" and "| 97.50 |" in table and NEW.note in table
    summary = summary_table([("m", "n", {"dev": record})])
    assert _header(summary, "ASV model")[-2:] == ["DEV CM AUC", "EVAL CM AUC"]
    boot = _bootstrapped(record, ["sasv_eer", "cm_auc"])
    assert "| dev | 97.50 [10.00, 20.00] | 97.50 [10.00, 20.00] |" in interval_table({"dev": boot})
    compared = comparison_table(_comparison(["sasv_eer", "cm_auc"], difference=0.05))
    assert "higher is better for CM AUC" in compared
    assert "| CM AUC | 10.00 | 15.00 | 5.00 [-8.00, -2.00] | 0.010 | A higher (better) |" in compared
    assert "| SASV-EER | 10.00 | 15.00 | 5.00 [-8.00, -2.00] | 0.010 | A higher (worse) |" in compared
    monkeypatch.setattr(columns, "METRICS", METRICS)
    assert "CM AUC" not in results_table("s", {"dev": record})  # undeclared: no column


def test_a_new_declaration_reaches_the_summary(tmp_path: Path, monkeypatch) -> None:
    """End to end through a tool: ``sasv make_summary`` shows a declared metric its records carry."""
    monkeypatch.setattr(columns, "METRICS", (*METRICS, NEW))
    folder = tmp_path / "exp" / "asv" / "cm" / "l2norm"
    folder.mkdir(parents=True)
    results = {s: {"sasv_eer": 0.1, "sv_eer": 0.05, "spf_eer": 0.02, "cm_auc": 0.9} for s in ("dev", "eval")}
    record = {"system": "asv/cm/l2norm", "asv": "asv", "cm": "cm", "variant": "l2norm", "fusion": "product",
              "results": results}  # fmt: skip
    (folder / "results.json").write_text(json.dumps(record))
    assert make_summary(["--exp_dir", str(tmp_path / "exp")]) == 0
    summary = (tmp_path / "exp" / "summary.md").read_text()
    assert "| DEV CM AUC | EVAL CM AUC |" in summary and "| 90.00 | 90.00 |" in summary


def test_percent_is_the_one_conversion() -> None:
    assert percent(None) is None and percent(0.0123) == 100.0 * 0.0123
    assert PERCENT.format(0.010754) == "1.08" and PERCENT.format(float("nan")) == "n/a"
