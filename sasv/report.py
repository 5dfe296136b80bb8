"""Markdown result tables for the recipe's RESULTS files and README.

Tables follow the reference system's README layout (one row per ASV model and embedding norm, DEV then EVAL
SASV/SV/SPF-EER) so numbers can be compared side by side. Every table row is one line with ``|``-separated
cells and EERs are plain numbers in percent with two decimals, so the tables are also easy to parse back.
An EER that could not be computed (``None``, see :mod:`sasv.metrics`) is printed as ``n/a``, never as 0.
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


def format_eer(value: float | None) -> str:
    """A fractional EER as percent with two decimals; ``None``/NaN become ``n/a`` so gaps stay visible."""
    if value is None or math.isnan(float(value)):
        return NOT_AVAILABLE
    return f"{100.0 * float(value):.2f}"


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
    """One system's EERs (percent) and trial counts per evaluation set.

    ``results`` maps a set name ('dev', 'eval', ...) to ``{**sasv_eers(...), 'counts': count_keys(...)}``;
    'counts' is optional. Sets are listed dev, eval first, then any others in the given order.
    """
    ordered = [s for s in SETS if s in results] + [s for s in results if s not in SETS]
    lines = [f"### {system}", ""]
    lines += _note_block(note)
    lines.append("EERs in %.")
    lines.append("")
    header = ["set", *(label for _, label in EER_COLUMNS), *KEYS, "total"]
    lines.append(_row(header))
    lines.append(_rule(1, len(header) - 1))
    for name in ordered:
        result = results[name]
        counts = result.get("counts") or {}
        cells = [name, *(format_eer(result.get(key)) for key, _ in EER_COLUMNS)]
        cells += [str(counts[k]) if k in counts else NOT_AVAILABLE for k in (*KEYS, "total")]
        lines.append(_row(cells))
    return "\n".join(lines) + "\n"


def summary_table(rows: Sequence[tuple[str, str, Mapping[str, Mapping]]], note: str | None = None) -> str:
    """The reference README's comparison table: one line per (ASV model, norm), DEV and EVAL EERs in percent.

    Each row is ``(asv_model, norm, {'dev': sasv_eers(...), 'eval': sasv_eers(...)})``; a missing set or
    EER prints ``n/a``.
    """
    header = ["ASV model", "norm"]
    header += [f"{s.upper()} {label}" for s in SETS for _, label in EER_COLUMNS]
    lines = _note_block(note)
    lines.append("EERs in %.")
    lines.append("")
    lines.append(_row(header))
    lines.append(_rule(2, len(header) - 2))
    for model, norm, results in rows:
        cells = [model, norm]
        for set_name in SETS:
            result = results.get(set_name) or {}
            cells += [format_eer(result.get(key)) for key, _ in EER_COLUMNS]
        lines.append(_row(cells))
    return "\n".join(lines) + "\n"
