from sasv.report import format_eer, results_table, summary_table

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
