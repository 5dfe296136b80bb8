"""Per attack x codec cells, as the ASVspoof 5 evaluation package's ``evaluation_full.py`` forms them, and
as the ASVspoof 2021 package's ``main.py`` forms its tables.

A cell (attack, codec) holds the bona fide trials of its codec and the spoof trials of its attack in its
codec; the attack ``pooled`` takes every spoof, the codec ``pooled`` every codec. Both ASVspoof 5 tracks'
tables are built on these cells (:func:`sasv.metrics.cm.track1_breakdown`,
:func:`sasv.reports.records.track2_breakdown`), rows of attacks and columns of codecs, ``pooled`` first in
both, the rest sorted. ASVspoof 2021's tables are the same cells (its first factor, the attack or DF's
vocoder type, selects spoofs only; its second, LA's codec or DF's compression, both classes) over the
package's own lists of values, in its order, ``pooled`` last
(:func:`sasv.metrics.tandem.asvspoof2021_breakdown`): a value the data lacks is an empty cell, a value the
list lacks counts in ``pooled`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

POOLED = "pooled"


def attack_codec_cells(
    is_spoof: np.ndarray,
    attacks: np.ndarray,
    codecs: np.ndarray | None,
    names: tuple[Sequence[str], Sequence[str]] | None = None,
) -> tuple[list[str], list[str], Iterator[tuple[int, int, np.ndarray]]]:
    """The attack and codec names and, lazily, ``(row, column, mask)`` of every cell (without codecs:
    the pooled column only). ``attacks`` of bona fide trials are ignored. ``names``: the rows' and
    columns' values as given (each holding :data:`POOLED` where it goes), instead of ``pooled`` and the
    values of the data, sorted."""
    is_spoof = np.asarray(is_spoof, bool)
    attacks = np.asarray(attacks, str)
    codec_of = None if codecs is None else np.asarray(codecs, str)
    if names is not None:
        attack_names, codec_names = list(names[0]), list(names[1])
    else:
        attack_names = [POOLED, *sorted(set(attacks[is_spoof].tolist()))]
        codec_names = [POOLED, *([] if codec_of is None else sorted(set(codec_of.tolist()) - {POOLED}))]

    def cells() -> Iterator[tuple[int, int, np.ndarray]]:
        for i, attack in enumerate(attack_names):
            spoofs = is_spoof if attack == POOLED else is_spoof & (attacks == attack)
            for j, codec in enumerate(codec_names):
                in_codec = True if codec == POOLED or codec_of is None else codec_of == codec
                yield i, j, (~is_spoof | spoofs) & in_codec

    return attack_names, codec_names, cells()


def tabulate(
    is_spoof: np.ndarray,
    attacks: np.ndarray,
    codecs: np.ndarray | None,
    metrics: Callable[[np.ndarray], dict[str, float | None]],
    names: tuple[str, ...],
) -> dict:
    """``{"attacks", "codecs", <name>: rows of cells}``: ``metrics(mask)`` of every cell."""
    attack_names, codec_names, cells = attack_codec_cells(is_spoof, attacks, codecs)
    table: dict = {"attacks": attack_names, "codecs": codec_names}
    table.update({name: [[None] * len(codec_names) for _ in attack_names] for name in names})
    for i, j, mask in cells:
        values = metrics(mask)
        for name in names:
            table[name][i][j] = values[name]
    return table
