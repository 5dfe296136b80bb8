"""Markdown result tables for the recipe's RESULTS files and README.

Tables follow the reference system's README layout (one row per ASV model and embedding norm, DEV then EVAL
SASV/SV/SPF-EER) so numbers can be compared side by side. Every table row is one line with ``|``-separated
cells and EERs are plain numbers in percent with two decimals, so the tables are also easy to parse back.
An EER that could not be computed (``None``, see :mod:`sasv.metrics`) is printed as ``n/a``, never as 0.

Detection costs (a-DCF, minDCF) and the CM-EER get columns only when some result carries them, so records
written before they existed render exactly as before; the new columns come after the EER columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sasv.metrics import KEYS

EER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("sasv_eer", "SASV-EER"),
    ("sv_eer", "SV-EER"),
    ("spf_eer", "SPF-EER"),
)
SETS: tuple[str, ...] = ("dev", "eval")
NOT_AVAILABLE = "n/a"
# Optional columns: (result key, label, is a percentage). Costs are normalised costs, not percentages.
EXTRA_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("cm_eer", "CM-EER", True),
    ("min_a_dcf", "a-DCF", False),
    ("min_dcf_0.01", "minDCF(0.01)", False),
    ("min_dcf_0.05", "minDCF(0.05)", False),
)
COST_NOTE = (
    "a-DCF: minimum normalised a-DCF, default cost model (Ptar 0.9, Pnon 0.05, Pspf 0.05, Cmiss 1, "
    "Cfa_asv 10, Cfa_cm 20). minDCF(p): minimum normalised DCF of the SV task (target vs nontarget), "
    "Ptar p, Cmiss = Cfa = 1. CM-EER: CM score alone, bona fide vs spoofed test utterances."
)


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


def _format_extra(value: float | None, percent: bool) -> str:
    return format_eer(value) if percent else format_cost(value)


def _extra_columns(results: Sequence[Mapping]) -> list[tuple[str, str, bool]]:
    """The optional columns that at least one result carries, in ``EXTRA_COLUMNS`` order."""
    return [column for column in EXTRA_COLUMNS if any(column[0] in r for r in results)]


def _caption(extra: Sequence[tuple[str, str, bool]]) -> list[str]:
    lines = ["EERs in %."]
    if extra:
        lines.append(COST_NOTE)
    return [*lines, ""]


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

    ``results`` maps a set name ('dev', 'eval', ...) to a :func:`~sasv.metrics_record.metrics_record` (the
    CM-EER, a-DCF and minDCF columns appear when it has them); 'counts' is optional. Sets are listed dev,
    eval first, then any others in the given order.
    """
    ordered = [s for s in SETS if s in results] + [s for s in results if s not in SETS]
    extra = _extra_columns([results[name] for name in ordered])
    lines = [f"### {system}", ""]
    lines += _note_block(note)
    lines += _caption(extra)
    header = ["set", *(label for _, label in EER_COLUMNS), *(label for _, label, _ in extra), *KEYS, "total"]
    lines.append(_row(header))
    lines.append(_rule(1, len(header) - 1))
    for name in ordered:
        result = results[name]
        counts = result.get("counts") or {}
        cells = [name, *(format_eer(result.get(key)) for key, _ in EER_COLUMNS)]
        cells += [_format_extra(result.get(key), percent) for key, _, percent in extra]
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
    The EER columns always come first (DEV SASV/SV/SPF, EVAL SASV/SV/SPF), so parsers of the original
    layout keep working; CM-EER/a-DCF/minDCF columns follow, per set, when any result carries them.
    """
    results = [r.get(set_name) or {} for _, r in rows for set_name in SETS]
    extra = _extra_columns(results)
    header = [*headers]
    header += [f"{s.upper()} {label}" for s in SETS for _, label in EER_COLUMNS]
    header += [f"{s.upper()} {label}" for s in SETS for _, label, _ in extra]
    lines = _note_block(note)
    lines += _caption(extra)
    lines.append(_row(header))
    lines.append(_rule(len(headers), len(header) - len(headers)))
    for names, by_set in rows:
        if len(names) != len(headers):
            raise ValueError(f"row {list(names)} has {len(names)} name cells for headers {list(headers)}")
        cells = list(names)
        for set_name in SETS:
            result = by_set.get(set_name) or {}
            cells += [format_eer(result.get(key)) for key, _ in EER_COLUMNS]
        for set_name in SETS:
            result = by_set.get(set_name) or {}
            cells += [_format_extra(result.get(key), percent) for key, _, percent in extra]
        lines.append(_row(cells))
    return "\n".join(lines) + "\n"


def summary_table(rows: Sequence[tuple[str, str, Mapping[str, Mapping]]], note: str | None = None) -> str:
    """The reference README's comparison table: one line per (ASV model, norm), DEV and EVAL EERs in percent.

    Each row is ``(asv_model, norm, {'dev': results, 'eval': results})``; a missing set or value prints
    ``n/a``. CM-EER/a-DCF/minDCF columns are appended after the six EER columns when present.
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

    ``breakdowns`` maps a set name to :func:`~sasv.metrics_record.attack_breakdown` output. ASVspoof 2019
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
