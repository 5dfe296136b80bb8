"""Markdown result tables for the recipe's RESULTS files and README.

Tables follow the reference system's README layout (one row per ASV model and embedding norm, DEV then EVAL
SASV/SV/SPF-EER) so numbers can be compared side by side. Every table row is one line with ``|``-separated
cells and EERs are plain numbers in percent with two decimals, so the tables are also easy to parse back.
An EER that could not be computed (``None``, see :mod:`sasv.metrics.eer`) is printed as ``n/a``, never as 0.

Which metric columns a table has, their labels, formats, order and caption sentences are the metrics'
declarations (:mod:`sasv.reports.columns`): detection costs (a-DCF, t-DCF, minDCF), the t-EER and the CM's
metrics (CM-EER; on ASVspoof 5 also Track 1's minDCF, CLLR, actDCF) get columns only when some result
carries them, so records written before they existed render exactly as before. Each a-DCF column names its
cost model (``a-DCF[paper]``, ``a-DCF[sasv2024]``) and the caption gives its priors and costs. LA tables keep
the reference layout (the EERs first, the costs after them); ASVspoof 5 records (they carry the tandem
metrics) lead with the costs, a-DCF first, as the challenge ranks systems by it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sasv.metrics.cm import TRACK1_METRICS
from sasv.metrics.eer import KEYS
from sasv.reports.columns import (
    COST,
    NOT_AVAILABLE,
    PERCENT,
    Metric,
    caption_notes,
    column_blocks,
    metric,
)
from sasv.reports.records import CM_TRACK1_KEYS, TRACK2_BREAKDOWN_KEYS

SETS: tuple[str, ...] = ("dev", "eval")
# A column of a per-attack table: the cell's key in the breakdown (sasv.metrics.breakdowns.tabulate), and the
# metric it is (the same declaration, so the same label, as the records' column of that metric).
BreakdownColumn = tuple[str, Metric]
CM_BREAKDOWN_COLUMNS: tuple[BreakdownColumn, ...] = tuple(
    (name, metric(CM_TRACK1_KEYS[name])) for name in TRACK1_METRICS
)
TRACK2_BREAKDOWN_COLUMNS: tuple[BreakdownColumn, ...] = tuple(
    (name, metric(key)) for name, key in TRACK2_BREAKDOWN_KEYS.items()
)


def format_eer(value: float | None) -> str:
    """A fractional EER as percent with two decimals; ``None``/NaN become ``n/a`` so gaps stay visible."""
    return PERCENT.format(value)


def format_cost(value: float | None) -> str:
    """A normalised detection cost with four decimals (costs near 0.01 need them); ``None`` -> ``n/a``."""
    return COST.format(value)


def _caption(columns: Sequence[Metric], results: Sequence[Mapping] = ()) -> list[str]:
    notes = caption_notes(columns, results)
    return ["EERs in %.", "; ".join(notes) + ".", ""] if notes else ["EERs in %.", ""]


def _cell(text: str) -> str:
    # A literal pipe would split the cell; escape it so names like "a|b" cannot corrupt the table.
    return str(text).replace("|", "\\|")


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _rule(n_text: int, n_numbers: int) -> str:
    return "|" + " --- |" * n_text + " ---: |" * n_numbers


def _note_block(note: str | None) -> list[str]:
    """Render a caveat as a bold block quote above the table, where nobody can miss it."""
    if not note:
        return []
    return [f"> **{line.strip()}**" if line.strip() else ">" for line in note.strip().splitlines()] + [""]


def results_table(system: str, results: Mapping[str, Mapping], note: str | None = None) -> str:
    """One system's EERs (percent), detection costs where present, and trial counts per evaluation set.

    ``results`` maps a set name ('dev', 'eval', ...) to a :func:`~sasv.reports.records.metrics_record` (the
    optional columns appear when it has them, placed as :func:`systems_table` says); 'counts' is optional.
    Sets are listed dev, eval first, then any others in the given order.
    """
    ordered = [s for s in SETS if s in results] + [s for s in results if s not in SETS]
    columns = [c for block in column_blocks([results[name] for name in ordered]) for c in block]
    lines = [f"### {system}", ""]
    lines += _note_block(note)
    lines += _caption(columns, [results[name] for name in ordered])
    header = ["set", *(m.label for m in columns), *KEYS, "total"]
    lines.append(_row(header))
    lines.append(_rule(1, len(header) - 1))
    for name in ordered:
        result = results[name]
        counts = result.get("counts") or {}
        cells = [name, *(m.format(result.get(m.key)) for m in columns)]
        cells += [str(counts[k]) if k in counts else NOT_AVAILABLE for k in (*KEYS, "total")]
        lines.append(_row(cells))
    return "\n".join(lines) + "\n"


def systems_table(
    rows: Sequence[tuple[Sequence[str], Mapping[str, Mapping]]],
    headers: Sequence[str],
    note: str | None = None,
) -> str:
    """A comparison table: text cells naming each row, then DEV and EVAL EERs, then optional columns.

    Each row is ``(name_cells, {'dev': result, 'eval': result})`` with ``len(name_cells) == len(headers)``.
    The EER columns come first (DEV SASV/SV/SPF, EVAL SASV/SV/SPF), so parsers of the original layout keep
    working; CM-EER/a-DCF/minDCF columns follow, per set, when any result carries them. ASVspoof 5 results
    (with t-DCF and t-EER) lead with DEV and EVAL a-DCF, t-DCF, t-EER instead, then the EERs.
    """
    blocks = column_blocks([r.get(set_name) or {} for _, r in rows for set_name in SETS])
    header = [*headers]
    header += [f"{s.upper()} {m.label}" for block in blocks for s in SETS for m in block]
    lines = _note_block(note)
    lines += _caption([c for block in blocks for c in block], [r.get(s) or {} for _, r in rows for s in SETS])
    lines.append(_row(header))
    lines.append(_rule(len(headers), len(header) - len(headers)))
    for names, by_set in rows:
        if len(names) != len(headers):
            raise ValueError(f"row {list(names)} has {len(names)} name cells for headers {list(headers)}")
        cells = list(names)
        for block in blocks:
            for set_name in SETS:
                result = by_set.get(set_name) or {}
                cells += [m.format(result.get(m.key)) for m in block]
        lines.append(_row(cells))
    return "\n".join(lines) + "\n"


def summary_table(rows: Sequence[tuple[str, str, Mapping[str, Mapping]]], note: str | None = None) -> str:
    """The reference README's comparison table: one line per (ASV model, norm), DEV and EVAL EERs in percent.

    Each row is ``(asv_model, norm, {'dev': results, 'eval': results})``; a missing set or value prints
    ``n/a``. The optional columns are placed as :func:`systems_table` says.
    """
    return systems_table(
        [((model, norm), results) for model, norm, results in rows], ("ASV model", "norm"), note
    )


def _attack_sort_key(attack: str) -> tuple[str, int, str]:
    # A1 < A2 < A10 even without zero padding; ids without a number sort by name after the numbered ones.
    digits = "".join(ch for ch in attack if ch.isdigit())
    prefix = attack.rstrip("0123456789")
    return (prefix, int(digits) if digits and attack.endswith(digits) else 1 << 30, attack)


def attack_table(breakdowns: Mapping[str, Mapping[str, float | None]], title: str | None = None) -> str:
    """SPF-EER (percent) per spoofing attack, one row per attack id, one column per set.

    ``breakdowns`` maps a set name to :func:`~sasv.reports.records.attack_breakdown` output. ASVspoof 2019
    LA dev and eval use different attacks (A01-A06 vs A07-A19), so a cell is ``n/a`` where a set lacks the
    attack.
    """
    spf = metric("spf_eer")
    sets = [s for s in SETS if s in breakdowns] + [s for s in breakdowns if s not in SETS]
    attacks = sorted({a for s in sets for a in breakdowns[s]}, key=_attack_sort_key)
    lines = [f"### {title}", ""] if title else []
    lines += [f"{spf.label} in % per attack: target trials vs the spoof trials of that attack.", ""]
    header = ["attack", *(f"{s.upper()} {spf.label}" for s in sets)]
    lines.append(_row(header))
    lines.append(_rule(1, len(sets)))
    for attack in attacks:
        cells = [attack]
        cells += [
            spf.format(breakdowns[s][attack]) if attack in breakdowns[s] else NOT_AVAILABLE for s in sets
        ]
        lines.append(_row(cells))
    return "\n".join(lines) + "\n"


_BREAKDOWN_CAPTIONS = {
    CM_BREAKDOWN_COLUMNS: "ASVspoof 5 Track 1 metrics of the CM's log-odds: bona fide utterances against the "
    "spoofs of one attack (pooled: all). CM-EER in %; CM CLLR in bits; CM minDCF and CM actDCF normalised. "
    "Codec -: uncoded.",
    TRACK2_BREAKDOWN_COLUMNS: "ASVspoof 5 Track 2 metrics as the organisers' evaluation_full.py tabulates "
    "them: target and nontarget trials against the spoof trials of one attack (pooled: all). t-EER in %. "
    "Codec -: uncoded.",
}


def breakdown_tables(
    tables: Mapping[str, Mapping], columns: Sequence[BreakdownColumn], title: str | None = None
) -> str:
    """Metrics per attack (rows; ``pooled`` first), per set, as the ASVspoof 5 package's
    ``evaluation_full.py`` tabulates them: one table per set when there are no codecs, else one table per
    set and metric with a column per codec (``pooled`` first). ``tables`` maps a set name to a
    :func:`sasv.metrics.breakdowns.tabulate` table (EERs as fractions); ``columns`` names its metrics
    (:data:`CM_BREAKDOWN_COLUMNS`, :data:`TRACK2_BREAKDOWN_COLUMNS`), labelled as every other table labels
    them."""
    lines = [f"### {title}", ""] if title else []
    caption = _BREAKDOWN_CAPTIONS.get(tuple(columns))
    lines += [caption, ""] if caption else []
    for set_name, table in tables.items():
        attacks, codecs = table["attacks"], table["codecs"]
        if len(codecs) == 1:
            lines += [f"{set_name.upper()}:", ""]
            lines.append(_row(["attack", *(m.label for _, m in columns)]))
            lines.append(_rule(1, len(columns)))
            for i, attack in enumerate(attacks):
                cells = [m.format(table[key][i][0]) for key, m in columns]
                lines.append(_row([attack, *cells]))
            lines.append("")
            continue
        for key, m in columns:
            lines += [f"{set_name.upper()} {m.label} per attack (rows) and codec (columns):", ""]
            lines.append(_row(["attack", *codecs]))
            lines.append(_rule(1, len(codecs)))
            for i, attack in enumerate(attacks):
                lines.append(_row([attack, *(m.format(v) for v in table[key][i])]))
            lines.append("")
    return "\n".join(lines)


def _bounds(m: Metric, interval: Sequence[float] | None) -> str:
    return NOT_AVAILABLE if interval is None else f"{m.format(interval[0])}, {m.format(interval[1])}"


def _interval_cell(record: Mapping, m: Metric) -> str:
    """``value [low, high]`` of one metric of a record with a ``bootstrap`` entry."""
    interval = ((record.get("bootstrap") or {}).get("intervals") or {}).get(m.key)
    return f"{m.format(record.get(m.key))} [{_bounds(m, interval)}]"


def _interval_columns_and_caption(boots: Sequence[Mapping]) -> tuple[list[Metric], str]:
    """The metrics the first record has intervals of (:func:`sasv.metrics.bootstrap.bootstrap_intervals`: the
    EERs and the primary cost), and the caption saying how they were drawn."""
    first = boots[0]
    caption = (
        f"Value [low, high]: {100 * first['confidence']:g} % bootstrap interval over {first['resamples']} "
        f"resamples of {first['unit']}s (all trials of a drawn {first['unit']}), seed {first['seed']}. "
        "EERs in %."
    )
    return [metric(key) for key in first["intervals"]], caption


def interval_table(results: Mapping[str, Mapping], title: str | None = None) -> str:
    """How sure each headline number is: per set, ``value [low, high]`` of the SASV-, SV-, SPF-EER (%) and
    the primary cost, from the records' ``bootstrap`` entries (:func:`sasv.reports.records.bootstrap_record`);
    empty when no record has one. The caption says what was resampled, how often, and the seed."""
    sets = [s for s in SETS if s in results] + [s for s in results if s not in SETS]
    sets = [s for s in sets if results[s].get("bootstrap")]
    if not sets:
        return ""
    columns, caption = _interval_columns_and_caption([results[s]["bootstrap"] for s in sets])
    lines = [f"### {title}", ""] if title else []
    lines += [caption, "", _row(["set", *(m.label for m in columns)]), _rule(1, len(columns))]
    for set_name in sets:
        cells = [_interval_cell(results[set_name], m) for m in columns]
        lines.append(_row([set_name, *cells]))
    return "\n".join(lines) + "\n"


def systems_interval_table(
    rows: Sequence[tuple[Sequence[str], Mapping[str, Mapping]]], headers: Sequence[str]
) -> str:
    """:func:`interval_table` for a comparison table's systems: a row per system, DEV then EVAL
    ``value [low, high]`` of the EERs and the primary cost; empty when no record has intervals."""
    boots = [r[s]["bootstrap"] for _, r in rows for s in SETS if (r.get(s) or {}).get("bootstrap")]
    if not boots:
        return ""
    columns, caption = _interval_columns_and_caption(boots)
    header = [*headers, *(f"{s.upper()} {m.label}" for s in SETS for m in columns)]
    caption = "How sure: " + caption[0].lower() + caption[1:]
    lines = [caption, "", _row(header), _rule(len(headers), len(header) - len(headers))]
    for names, by_set in rows:
        cells = [
            _interval_cell(by_set.get(s) or {}, m)
            if (by_set.get(s) or {}).get("bootstrap")
            else NOT_AVAILABLE
            for s in SETS
            for m in columns
        ]
        lines.append(_row([*names, *cells]))
    return "\n".join(lines) + "\n"


def comparison_table(comparison: Mapping, title: str | None = None) -> str:
    """A paired comparison (:func:`sasv.metrics.bootstrap.paired_differences`): per metric A, B, A - B with
    its interval, the bootstrap p-value and whether the difference is beyond the set's noise."""
    metrics = [(metric(key), entry) for key, entry in comparison["metrics"].items()]
    lines = [f"### {title}", ""] if title else []
    share, resamples = 100 * comparison["confidence"], comparison["resamples"]
    higher = [m.label for m, _ in metrics if not m.lower_is_better]
    direction = (
        f"higher is better for {', '.join(higher)}, lower for the others"
        if higher
        else "lower is better for every metric"
    )
    lines += [
        f"A - B with its {share:g} % paired bootstrap interval ({resamples} resamples of "
        f"{comparison['unit']}s, seed {comparison['seed']}; both systems on the same draws). EERs in %; "
        f"{direction}.",
        "",
        _row(["metric", "A", "B", "A - B [low, high]", "p", "verdict"]),
        _rule(1, 5),
    ]
    for m, entry in metrics:
        difference = f"{m.format(entry['difference'])} [{_bounds(m, entry['interval'])}]"
        p_value = NOT_AVAILABLE if entry["p_value"] is None else f"{entry['p_value']:.3f}"
        if entry["differ"]:
            lower = entry["difference"] < 0
            better = lower == m.lower_is_better
            verdict = f"A {'lower' if lower else 'higher'} ({'better' if better else 'worse'})"
        else:
            verdict = "no difference beyond the noise"
        cells = [m.label, m.format(entry["a"]), m.format(entry["b"])]
        lines.append(_row([*cells, difference, p_value, verdict]))
    return "\n".join(lines) + "\n"
