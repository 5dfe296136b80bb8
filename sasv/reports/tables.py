"""Markdown result tables for the recipe's RESULTS files and README.

Tables follow the reference system's README layout (one row per ASV model and embedding norm, DEV then EVAL
SASV/SV/SPF-EER) so numbers can be compared side by side. Every table row is one line with ``|``-separated
cells and EERs are plain numbers in percent with two decimals, so the tables are also easy to parse back.
An EER that could not be computed (``None``, see :mod:`sasv.metrics.eer`) is printed as ``n/a``, never as 0.

Detection costs (a-DCF, t-DCF, minDCF), the t-EER and the CM's metrics (CM-EER; on ASVspoof 5 also Track 1's
minDCF, CLLR, actDCF) get columns only when some result carries
them, so records written before they existed render exactly as before. Each a-DCF column names its cost model
(``a-DCF[paper]``, ``a-DCF[sasv2024]``) and the caption gives its priors and costs. LA tables keep the
reference layout (the EERs first, the costs after them); ASVspoof 5 records (they carry the tandem metrics)
lead with the costs, a-DCF first, as the challenge ranks systems by it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sasv.metrics.detection_costs import (
    A_DCF_COST_MODELS,
    a_dcf_key,
    actual_a_dcf_key,
    actual_dcf_key,
    describe_cost_model,
)
from sasv.metrics.eer import KEYS

# A column: (result key, label, is a percentage). Costs are normalised costs, not percentages.
Column = tuple[str, str, bool]
EER_COLUMNS: tuple[Column, ...] = (
    ("sasv_eer", "SASV-EER", True),
    ("sv_eer", "SV-EER", True),
    ("spf_eer", "SPF-EER", True),
)
SETS: tuple[str, ...] = ("dev", "eval")
NOT_AVAILABLE = "n/a"
A_DCF_MODELS: tuple[str, ...] = tuple(A_DCF_COST_MODELS)
# the minima of every cost model, then their actual values (tables compare the minima side by side)
A_DCF_COLUMNS: tuple[Column, ...] = (
    *((a_dcf_key(m), f"a-DCF[{m}]", False) for m in A_DCF_MODELS),
    *((actual_a_dcf_key(m), f"act. a-DCF[{m}]", False) for m in A_DCF_MODELS),
)
TANDEM_COLUMNS: tuple[Column, ...] = (("min_t_dcf", "t-DCF", False), ("t_eer", "t-EER", True))
# Optional columns in table order, and what each means (the caption lists those a table has).
CM_TRACK1_COLUMNS: tuple[Column, ...] = (
    ("cm_min_dcf", "CM minDCF", False),
    ("cm_cllr", "CM CLLR", False),
    ("cm_act_dcf", "CM actDCF", False),
)
EXTRA_COLUMNS: tuple[Column, ...] = (
    ("cm_eer", "CM-EER", True),
    *CM_TRACK1_COLUMNS,
    *A_DCF_COLUMNS,
    *TANDEM_COLUMNS,
    ("min_dcf_0.01", "minDCF(0.01)", False),
    (actual_dcf_key(0.01), "act. DCF(0.01)", False),
    ("min_dcf_0.05", "minDCF(0.05)", False),
    (actual_dcf_key(0.05), "act. DCF(0.05)", False),
)
ACTUAL_COST_NOTE = (
    "act. a-DCF, act. DCF(p): actual costs, the same costs at the thresholds that minimised them on dev "
    "(what a system whose threshold was fixed beforehand pays; a minimum picks its threshold on the scores "
    "it judges), equal to the minimum on dev itself"
)
COLUMN_NOTES: dict[str, str] = {
    **{a_dcf_key(m): f"a-DCF[{m}]: minimum normalised a-DCF, {describe_cost_model(m)}" for m in A_DCF_MODELS},
    "min_t_dcf": "t-DCF: minimum normalised t-DCF of the CM score, ASVspoof 5 organisers' ASV error rates",
    "t_eer": "t-EER: tandem EER of the CM and ASV scores",
    "min_dcf_0.01": "minDCF(p): minimum normalised DCF of the SV task (target vs nontarget), Ptar p, "
    "Cmiss = Cfa = 1",
    "cm_eer": "CM-EER: CM score alone, bona fide vs spoofed test utterances (the ASVspoof scorers' EER)",
    "cm_min_dcf": "CM minDCF, CM CLLR (bits), CM actDCF: ASVspoof 5 Track 1 metrics of the CM alone on the "
    "same utterances (Pspoof 0.05, Cmiss 1, Cfa 10); CLLR and actDCF read the AASIST log-odds "
    "(logit_bonafide - logit_spoof) as LLRs, not P_CM, and so does the CM-EER beside them",
}


def format_eer(value: float | None) -> str:
    """A fractional EER as percent with two decimals; ``None``/NaN become ``n/a`` so gaps stay visible."""
    if value is None or math.isnan(float(value)):
        return NOT_AVAILABLE
    return f"{100.0 * float(value):.2f}"


def format_cost(value: float | None) -> str:
    """A normalised detection cost with four decimals (costs near 0.01 need them); ``None`` -> ``n/a``."""
    if value is None or math.isnan(float(value)):
        return NOT_AVAILABLE
    return f"{float(value):.4f}"


def format_value(value: float | None, percent: bool) -> str:
    """A table cell: a percentage (:func:`format_eer`) or a normalised cost (:func:`format_cost`)."""
    return format_eer(value) if percent else format_cost(value)


def _column_blocks(results: Sequence[Mapping]) -> list[list[Column]]:
    """The columns after the name cells, in blocks (a comparison table repeats each block per set): the
    EERs, then the optional columns that at least one result carries, in ``EXTRA_COLUMNS`` order; with
    tandem metrics (ASVspoof 5) the a-DCF and tandem columns lead instead (the official a-DCF, t-DCF and
    t-EER first, then the actual a-DCF)."""
    extra = [column for column in EXTRA_COLUMNS if any(column[0] in r for r in results)]
    if not any(column in extra for column in TANDEM_COLUMNS):
        return [list(EER_COLUMNS), extra]
    minima = [c for c in extra if c in A_DCF_COLUMNS and not c[0].startswith("act_")]
    actual = [c for c in extra if c in A_DCF_COLUMNS and c[0].startswith("act_")]
    costs = minima + [c for c in extra if c in TANDEM_COLUMNS] + actual  # the official three first
    return [costs, list(EER_COLUMNS), [column for column in extra if column not in costs]]


def _caption(columns: Sequence[Column], results: Sequence[Mapping] = ()) -> list[str]:
    keys = {key for key, _, _ in columns}
    notes = [note for key, note in COLUMN_NOTES.items() if key in keys]
    if any(key.startswith("act_") for key in keys):
        without_dev = any(r and r.get("actual_costs_threshold_from", "dev") is None for r in results)
        reason = "; n/a: no dev set was scored in this run, so no threshold was chosen" if without_dev else ""
        notes.append(ACTUAL_COST_NOTE + reason)
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
    columns = [c for block in _column_blocks([results[name] for name in ordered]) for c in block]
    lines = [f"### {system}", ""]
    lines += _note_block(note)
    lines += _caption(columns, [results[name] for name in ordered])
    header = ["set", *(label for _, label, _ in columns), *KEYS, "total"]
    lines.append(_row(header))
    lines.append(_rule(1, len(header) - 1))
    for name in ordered:
        result = results[name]
        counts = result.get("counts") or {}
        cells = [name, *(format_value(result.get(key), percent) for key, _, percent in columns)]
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
    blocks = _column_blocks([r.get(set_name) or {} for _, r in rows for set_name in SETS])
    header = [*headers]
    header += [f"{s.upper()} {label}" for block in blocks for s in SETS for _, label, _ in block]
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
                cells += [format_value(result.get(key), percent) for key, _, percent in block]
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
    sets = [s for s in SETS if s in breakdowns] + [s for s in breakdowns if s not in SETS]
    attacks = sorted({a for s in sets for a in breakdowns[s]}, key=_attack_sort_key)
    lines = [f"### {title}", ""] if title else []
    lines += ["SPF-EER in % per attack: target trials vs the spoof trials of that attack.", ""]
    header = ["attack", *(f"{s.upper()} SPF-EER" for s in sets)]
    lines.append(_row(header))
    lines.append(_rule(1, len(sets)))
    for attack in attacks:
        cells = [attack]
        cells += [
            format_eer(breakdowns[s][attack]) if attack in breakdowns[s] else NOT_AVAILABLE for s in sets
        ]
        lines.append(_row(cells))
    return "\n".join(lines) + "\n"


CM_BREAKDOWN_COLUMNS: tuple[Column, ...] = (
    ("min_dcf", "minDCF", False),
    ("eer", "EER", True),
    ("cllr", "CLLR", False),
    ("act_dcf", "actDCF", False),
)
TRACK2_BREAKDOWN_COLUMNS: tuple[Column, ...] = (
    ("min_a_dcf", "a-DCF[sasv2024]", False),
    ("min_t_dcf", "t-DCF", False),
    ("t_eer", "t-EER", True),
)
_BREAKDOWN_CAPTIONS = {
    CM_BREAKDOWN_COLUMNS: "ASVspoof 5 Track 1 metrics of the CM's log-odds: bona fide utterances against the "
    "spoofs of one attack (pooled: all). EER in %; CLLR in bits; minDCF and actDCF normalised. Codec -: "
    "uncoded.",
    TRACK2_BREAKDOWN_COLUMNS: "ASVspoof 5 Track 2 metrics as the organisers' evaluation_full.py tabulates "
    "them: target and nontarget trials against the spoof trials of one attack (pooled: all). t-EER in %. "
    "Codec -: uncoded.",
}


def breakdown_tables(
    tables: Mapping[str, Mapping], columns: Sequence[Column], title: str | None = None
) -> str:
    """Metrics per attack (rows; ``pooled`` first), per set, as the ASVspoof 5 package's
    ``evaluation_full.py`` tabulates them: one table per set when there are no codecs, else one table per
    set and metric with a column per codec (``pooled`` first). ``tables`` maps a set name to a
    :func:`sasv.metrics.breakdowns.tabulate` table (EERs as fractions); ``columns`` names its metrics."""
    lines = [f"### {title}", ""] if title else []
    caption = _BREAKDOWN_CAPTIONS.get(tuple(columns))
    lines += [caption, ""] if caption else []
    for set_name, table in tables.items():
        attacks, codecs = table["attacks"], table["codecs"]
        if len(codecs) == 1:
            lines += [f"{set_name.upper()}:", ""]
            lines.append(_row(["attack", *(label for _, label, _ in columns)]))
            lines.append(_rule(1, len(columns)))
            for i, attack in enumerate(attacks):
                cells = [format_value(table[key][i][0], percent) for key, _, percent in columns]
                lines.append(_row([attack, *cells]))
            lines.append("")
            continue
        for key, label, percent in columns:
            lines += [f"{set_name.upper()} {label} per attack (rows) and codec (columns):", ""]
            lines.append(_row(["attack", *codecs]))
            lines.append(_rule(1, len(codecs)))
            for i, attack in enumerate(attacks):
                lines.append(_row([attack, *(format_value(v, percent) for v in table[key][i])]))
            lines.append("")
    return "\n".join(lines)


def _interval_cell(record: Mapping, key: str, percent: bool) -> str:
    """``value [low, high]`` of one metric of a record with a ``bootstrap`` entry."""
    interval = ((record.get("bootstrap") or {}).get("intervals") or {}).get(key)
    bounds = (
        NOT_AVAILABLE
        if interval is None
        else f"{format_value(interval[0], percent)}, {format_value(interval[1], percent)}"
    )
    return f"{format_value(record.get(key), percent)} [{bounds}]"


def _interval_columns_and_caption(boots: Sequence[Mapping]) -> tuple[list[Column], str]:
    first = boots[0]
    primary = first["primary_cost"]
    label = next((lbl for key, lbl, _ in A_DCF_COLUMNS if key == primary), primary)
    caption = (
        f"Value [low, high]: {100 * first['confidence']:g} % bootstrap interval over {first['resamples']} "
        f"resamples of {first['unit']}s (all trials of a drawn {first['unit']}), seed {first['seed']}. "
        "EERs in %."
    )
    return [*EER_COLUMNS, (primary, label, False)], caption


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
    lines += [caption, "", _row(["set", *(lbl for _, lbl, _ in columns)]), _rule(1, len(columns))]
    for set_name in sets:
        cells = [_interval_cell(results[set_name], key, percent) for key, _, percent in columns]
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
    header = [*headers, *(f"{s.upper()} {lbl}" for s in SETS for _, lbl, _ in columns)]
    caption = "How sure: " + caption[0].lower() + caption[1:]
    lines = [caption, "", _row(header), _rule(len(headers), len(header) - len(headers))]
    for names, by_set in rows:
        cells = [
            _interval_cell(by_set.get(s) or {}, key, percent)
            if (by_set.get(s) or {}).get("bootstrap")
            else NOT_AVAILABLE
            for s in SETS
            for key, _, percent in columns
        ]
        lines.append(_row([*names, *cells]))
    return "\n".join(lines) + "\n"


def comparison_table(comparison: Mapping, title: str | None = None) -> str:
    """A paired comparison (:func:`sasv.metrics.bootstrap.paired_differences`): per metric A, B, A - B with
    its interval, the bootstrap p-value and whether the difference is beyond the set's noise."""
    metrics = comparison["metrics"]
    labels = {key: label for key, label, _ in (*EER_COLUMNS, *A_DCF_COLUMNS)}
    lines = [f"### {title}", ""] if title else []
    share, resamples = 100 * comparison["confidence"], comparison["resamples"]
    lines += [
        f"A - B with its {share:g} % paired bootstrap interval ({resamples} resamples of "
        f"{comparison['unit']}s, seed {comparison['seed']}; both systems on the same draws). EERs in %; "
        "lower is better for every metric.",
        "",
        _row(["metric", "A", "B", "A - B [low, high]", "p", "verdict"]),
        _rule(1, 5),
    ]
    for key, entry in metrics.items():
        percent = key in dict.fromkeys(k for k, _, _ in EER_COLUMNS)
        interval = entry["interval"]
        bounds = (
            NOT_AVAILABLE
            if interval is None
            else f"{format_value(interval[0], percent)}, {format_value(interval[1], percent)}"
        )
        difference = f"{format_value(entry['difference'], percent)} [{bounds}]"
        p_value = NOT_AVAILABLE if entry["p_value"] is None else f"{entry['p_value']:.3f}"
        if entry["differ"]:
            verdict = "A lower (better)" if entry["difference"] < 0 else "A higher (worse)"
        else:
            verdict = "no difference beyond the noise"
        cells = [labels.get(key, key), format_value(entry["a"], percent), format_value(entry["b"], percent)]
        lines.append(_row([*cells, difference, p_value, verdict]))
    return "\n".join(lines) + "\n"
