import numpy as np
import pytest

from sasv.reports.tables import (
    attack_table,
    format_cost,
    format_eer,
    results_table,
    summary_table,
    systems_table,
)

NOTE = "RANDOMLY INITIALISED weights: these numbers mean nothing"
DEV = {
    "sasv_eer": 0.010754,
    "sv_eer": 0.0182,
    "spf_eer": None,
    "counts": {"target": 1484, "nontarget": 5768, "spoof": 0, "total": 7252},
}
EVAL = {"sasv_eer": 0.014, "sv_eer": 0.0153, "spf_eer": 0.0122}


def test_format_eer():
    assert format_eer(0.010754) == "1.08"
    assert format_eer(0.0) == "0.00"
    assert format_eer(1.0) == "100.00"
    assert format_eer(None) == "n/a"
    assert format_eer(float("nan")) == "n/a"


def test_results_table():
    text = results_table("ecapa_tdnn/l2norm", {"eval": EVAL, "dev": DEV}, note=NOTE)
    lines = text.splitlines()
    assert lines[0] == "### ecapa_tdnn/l2norm"
    note_at = next(i for i, line in enumerate(lines) if NOTE in line)
    header_at = lines.index("| set | SASV-EER | SV-EER | SPF-EER | target | nontarget | spoof | total |")
    assert note_at < header_at
    assert lines[header_at + 2] == "| dev | 1.08 | 1.82 | n/a | 1484 | 5768 | 0 | 7252 |"
    assert lines[header_at + 3] == "| eval | 1.40 | 1.53 | 1.22 | n/a | n/a | n/a | n/a |"
    assert NOTE not in results_table("x", {"dev": DEV})


def test_summary_table_layout_and_parsing():
    rows = [("ECAPA-TDNN", "nonorm", {"dev": DEV, "eval": EVAL}), ("SE-ResNet-34", "l2norm", {"dev": DEV})]
    text = summary_table(rows, note=NOTE)
    lines = text.splitlines()
    assert lines[0] == f"> **{NOTE}**"
    header = (
        "| ASV model | norm | DEV SASV-EER | DEV SV-EER | DEV SPF-EER "
        "| EVAL SASV-EER | EVAL SV-EER | EVAL SPF-EER |"
    )
    at = lines.index(header)
    body = lines[at + 2 :]
    assert len(body) == 2
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in body]
    assert cells[0] == ["ECAPA-TDNN", "nonorm", "1.08", "1.82", "n/a", "1.40", "1.53", "1.22"]
    assert cells[1] == ["SE-ResNet-34", "l2norm", "1.08", "1.82", "n/a", "n/a", "n/a", "n/a"]
    assert not summary_table(rows).startswith(">")


def test_pipes_in_names_are_escaped():
    text = summary_table([("a|b", "nonorm", {})])
    assert "| a\\|b | nonorm |" in text


COSTS = {"min_a_dcf[paper]": 0.123456, "min_dcf_0.01": 0.5, "min_dcf_0.05": None, "cm_eer": 0.0083}


def test_results_table_adds_cost_columns_only_when_present():
    text = results_table("sys", {"dev": {**DEV, **COSTS}, "eval": EVAL})
    lines = text.splitlines()
    header = (
        "| set | SASV-EER | SV-EER | SPF-EER | CM-EER | a-DCF[paper] | minDCF(0.01) | minDCF(0.05) "
        "| target | nontarget | spoof | total |"
    )
    at = lines.index(header)
    assert (
        lines[at + 2] == "| dev | 1.08 | 1.82 | n/a | 0.83 | 0.1235 | 0.5000 | n/a | 1484 | 5768 | 0 | 7252 |"
    )
    assert lines[at + 3] == "| eval | 1.40 | 1.53 | 1.22 | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"
    assert "Cfa_cm 20" in text and "Cmiss = Cfa = 1" in text
    assert "Cfa_cm" not in results_table("sys", {"dev": DEV})


def test_summary_table_appends_cost_columns_after_the_eers():
    rows = [("ECAPA-TDNN", "nonorm", {"dev": {**DEV, **COSTS}, "eval": EVAL})]
    lines = summary_table(rows).splitlines()
    header = next(line for line in lines if line.startswith("| ASV model"))
    names = [c.strip() for c in header.strip("|").split("|")]
    assert names[2:8] == [f"{s} {e}" for s in ("DEV", "EVAL") for e in ("SASV-EER", "SV-EER", "SPF-EER")]
    assert names[8:] == [
        f"{s} {c}"
        for s in ("DEV", "EVAL")
        for c in ("CM-EER", "a-DCF[paper]", "minDCF(0.01)", "minDCF(0.05)")
    ]
    cells = [c.strip() for c in lines[-1].strip("|").split("|")]
    assert cells[2:8] == ["1.08", "1.82", "n/a", "1.40", "1.53", "1.22"]
    assert cells[8:] == ["0.83", "0.1235", "0.5000", "n/a", "n/a", "n/a", "n/a", "n/a"]


ASVSPOOF5 = {"min_a_dcf[sasv2024]": 0.2814, "min_t_dcf": 0.61, "t_eer": 0.0712, "min_dcf_0.01": 0.5}


def test_asvspoof5_tables_lead_with_the_costs():
    """Records with the tandem metrics (ASVspoof 5) put a-DCF, t-DCF, t-EER first, then the EERs; the
    caption names the cost model with its parameters."""
    text = results_table("sys", {"dev": {**DEV, **ASVSPOOF5}})
    lines = text.splitlines()
    header = (
        "| set | a-DCF[sasv2024] | t-DCF | t-EER | SASV-EER | SV-EER | SPF-EER | minDCF(0.01) "
        "| target | nontarget | spoof | total |"
    )
    at = lines.index(header)
    assert (
        lines[at + 2]
        == "| dev | 0.2814 | 0.6100 | 7.12 | 1.08 | 1.82 | n/a | 0.5000 | 1484 | 5768 | 0 | 7252 |"
    )
    assert "Ptar 0.9405, Pnon 0.0095, Pspf 0.05, Cmiss 1, Cfa_asv 10, Cfa_cm 10" in text
    rows = [("ECAPA-TDNN", "l2norm", {"dev": {**DEV, **ASVSPOOF5}, "eval": EVAL})]
    header = next(line for line in summary_table(rows).splitlines() if line.startswith("| ASV model"))
    names = [c.strip() for c in header.strip("|").split("|")]
    assert names[2:8] == [f"{s} {c}" for s in ("DEV", "EVAL") for c in ("a-DCF[sasv2024]", "t-DCF", "t-EER")]
    assert names[8:14] == [f"{s} {e}" for s in ("DEV", "EVAL") for e in ("SASV-EER", "SV-EER", "SPF-EER")]


def test_both_cost_models_get_their_own_columns():
    both = {**DEV, "min_a_dcf[paper]": 0.1, "min_a_dcf[sasv2024]": 0.2}
    text = results_table("sys", {"dev": both})
    assert "| CM-EER |" not in text and "| a-DCF[paper] | a-DCF[sasv2024] |" in text
    assert "Cfa_cm 20" in text and "Cfa_cm 10" in text


def test_systems_table_checks_name_cells():
    text = systems_table([(("a/l2norm", "product"), {"dev": DEV})], ("system", "fusion"))
    assert "| system | fusion | DEV SASV-EER |" in text and "| a/l2norm | product | 1.08 |" in text
    with pytest.raises(ValueError, match="name cells"):
        systems_table([(("a",), {})], ("system", "fusion"))


def test_attack_table():
    text = attack_table({"eval": {"A17": 0.2, "A07": 0.001}, "dev": {"A01": None, "A02": 0.0123}}, title="t")
    lines = text.splitlines()
    assert lines[0] == "### t"
    at = lines.index("| attack | DEV SPF-EER | EVAL SPF-EER |")
    assert lines[at + 2 :] == [
        "| A01 | n/a | n/a |",
        "| A02 | 1.23 | n/a |",
        "| A07 | n/a | 0.10 |",
        "| A17 | n/a | 20.00 |",
    ]


def test_format_cost():
    assert format_cost(0.53967) == "0.5397"
    assert format_cost(None) == "n/a" and format_cost(float("nan")) == "n/a"


def test_cm_breakdown_tables_per_set_and_with_codecs() -> None:
    """Without codecs one compact table per set (attack rows, the four metrics); with codecs one table per
    metric, a column per codec, pooled first, and an empty cell as n/a."""
    from sasv.metrics.cm import track1_breakdown
    from sasv.reports.tables import CM_BREAKDOWN_COLUMNS, breakdown_tables

    def cm_breakdown_tables(tables: dict) -> str:
        return breakdown_tables(tables, CM_BREAKDOWN_COLUMNS)

    scores = np.array([2.0, 1.5, 0.5, -1.0, 0.8, -2.0])
    bonafide = np.array([True, True, True, False, False, False])
    attacks = np.array(["bonafide", "bonafide", "bonafide", "A01", "A02", "A02"])
    codecs = np.array(["C1", "C2", "C1", "C1", "C1", "C2"])
    compact = cm_breakdown_tables({"eval": track1_breakdown(scores, bonafide, attacks)})
    rows = [line for line in compact.splitlines() if line.startswith("| ")]
    assert rows[0] == "| attack | CM minDCF | CM-EER | CM CLLR | CM actDCF |"  # as the records' columns
    assert [r.split(" | ")[0] for r in rows[2:]] == ["| pooled", "| A01", "| A02"]
    full = cm_breakdown_tables({"eval": track1_breakdown(scores, bonafide, attacks, codecs)})
    assert full.count("| attack | pooled | C1 | C2 |") == 4
    a01 = [line for line in full.splitlines() if line.startswith("| A01 |")]
    assert len(a01) == 4 and all(line.endswith("| n/a |") for line in a01)  # no A01 spoof in C2


def test_actual_cost_columns_say_why_they_are_empty_without_dev() -> None:
    scored = {"sasv_eer": 0.1, "sv_eer": 0.1, "spf_eer": 0.1, "min_a_dcf[paper]": 0.3}
    with_dev = {**scored, "act_a_dcf[paper]": 0.35, "actual_costs_threshold_from": "dev"}
    without = {**scored, "act_a_dcf[paper]": None, "actual_costs_threshold_from": None}
    table = results_table("s", {"eval": with_dev})
    assert "| act. a-DCF[paper] |" in table and "| 0.3500 |" in table and "no dev set" not in table
    table = results_table("s", {"eval": without})
    assert "n/a: no dev set was scored in this run" in table and "| n/a |" in table
