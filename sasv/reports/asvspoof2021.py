"""ASVspoof 2021 LA and DF: a countermeasure's EER and (LA) min t-DCF as the organisers' evaluation package
tabulates them, pooled and per condition, and the record and tables ``sasv evaluate_asvspoof2021`` writes
(``results.json``, ``results.md``), beside the published SSL-AASIST numbers.

The metrics are :func:`sasv.metrics.tandem.asvspoof2021_breakdown`'s on the trials of one subset (``eval``:
the published numbers' subset; ``progress``, ``hidden``), the ASV's rates for LA's min t-DCF measured on the
keys' ASV scores of the same subset and cell (the package's ``--recompute-c012`` with the organisers' ASV
scores). Held to the package's output (``main.py``'s tables) by ``tests/fixtures/asvspoof2021_tables.json``.

Which CM score: SSL-AASIST's published numbers rank the raw bona fide logit (its ``main_SSL_LA.py`` writes
``batch_out[:, 1]``, no softmax); the recipe's ``cm_scores.txt`` holds both logits, and the evaluation takes
``logit_bonafide`` unless told otherwise. (Softmax is monotone in the logit difference, not in one logit, so
P(bona fide) ranks trials differently; in float32 it also ties confident trials at 1.0.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sasv.corpora.asvspoof2021 import AsvTrial, track_info
from sasv.corpora.protocols import SPOOF
from sasv.errors import SasvError
from sasv.metrics.breakdowns import POOLED
from sasv.metrics.tandem import ConditionedScores, asvspoof2021_breakdown
from sasv.reports.columns import percent

POOLED_TAG = "Pooled"  # the package's


class EvaluationError(SasvError, ValueError):
    """CM scores and a data dir that cannot be evaluated together (a subset without trials, trials without
    scores, scores of another set)."""


@dataclass(frozen=True)
class Published:
    """A published result on one track's eval subset."""

    system: str
    checkpoint: str
    eer: float  # fraction
    min_t_dcf: float | None
    source: str


SSL_AASIST_SOURCE = (
    'Tak et al., "Automatic speaker verification spoofing and deepfake detection using wav2vec 2.0 and data '
    'augmentation", Odyssey 2022; TakHemlata/SSL_Anti-spoofing README (pre-trained models, scored with its '
    "evaluate_2021_LA.py / evaluate_2021_DF.py)"
)
# the checkpoints are the files of the README's Google Drive folder (conf/cm/ssl_aasist.yaml,
# conf/cm/ssl_aasist_df.yaml); the README's example commands call them best_SSL_model_{LA,DF}.pth
PUBLISHED = {
    "LA": Published("SSL-AASIST (wav2vec 2.0 XLS-R + AASIST)", "LA_model.pth", 0.0082, 0.2066,
                    SSL_AASIST_SOURCE),
    "DF": Published("SSL-AASIST (wav2vec 2.0 XLS-R + AASIST)", "Best_LA_model_for_DF.pth", 0.0285, None,
                    SSL_AASIST_SOURCE),
}  # fmt: skip


def _conditioned(
    scores: Sequence[float], keys: Sequence[str], rows: Sequence[str], columns: Sequence[str]
) -> ConditionedScores:
    return ConditionedScores(
        np.asarray(scores, np.float64), np.asarray(keys, str), np.asarray(rows, str), np.asarray(columns, str)
    )


def condition_results(
    track: str,
    scores: Mapping[str, float],
    utt2spf: Mapping[str, str],
    conditions: Mapping[str, Mapping[str, str]],
    asv: Sequence[AsvTrial] | None,
    subset: str,
) -> dict:
    """The metrics of one subset: ``counts`` (bona fide and spoofed trials per condition), ``pooled`` (EER,
    and min t-DCF for LA), ``table`` (the package's rows x columns of EER and min t-DCF, with its tags) and
    ``unlisted`` (conditions of the data outside the package's lists: counted in the pooled cells only).

    ``scores`` must hold every trial of the subset; ``conditions`` are the data dir's ``utt2<x>`` files,
    ``asv`` its ASV trials (LA)."""
    info = track_info(track)
    in_subset = conditions["utt2subset"]
    utts = sorted(u for u, s in in_subset.items() if s == subset)
    if not utts:
        found = ", ".join(sorted(set(in_subset.values())))
        raise EvaluationError(f"no trial of the {subset!r} subset (the data has: {found})")
    missing = [u for u in utts if u not in scores]
    if missing:
        raise EvaluationError(
            f"no score for {len(missing)} of the {len(utts)} {subset} trials: {missing[:5]}"
        )
    row_of, column_of = conditions[info.rows.file], conditions[info.columns.file]
    cm = _conditioned(
        [scores[u] for u in utts], [utt2spf[u] for u in utts], [row_of[u] for u in utts],
        [column_of[u] for u in utts],
    )  # fmt: skip
    asv_scores = None
    if info.tandem:
        trials = [t for t in asv or () if t.subset == subset]
        asv_scores = _conditioned(
            [t.score for t in trials], [t.key for t in trials], [t.attack for t in trials],
            [t.codec for t in trials],
        )  # fmt: skip
    rows, columns = [*info.rows.values, POOLED], [*info.columns.values, POOLED]
    table = asvspoof2021_breakdown(cm, rows, columns, asv_scores)
    if not info.tandem:
        del table["min_t_dcf"]
    table["row_tags"] = [*info.rows.tags, POOLED_TAG]
    table["column_tags"] = [*info.columns.tags, POOLED_TAG]
    is_spoof = cm.key == SPOOF
    counts = {
        label: {POOLED: int(mask.sum()), **Counter(cm.columns[mask].tolist())}
        for label, mask in (("bonafide", ~is_spoof), ("spoof", is_spoof))
    }
    return {
        "subset": subset,
        "counts": counts,
        "pooled": {metric: table[metric][-1][-1] for metric in ("eer", "min_t_dcf") if metric in table},
        "table": table,
        "unlisted": {
            "rows": sorted(set(cm.rows[is_spoof].tolist()) - set(info.rows.values)),
            "columns": sorted(set(cm.columns.tolist()) - set(info.columns.values)),
        },
    }


# ------------------------------------------------------------------------------------------------ tables


def _eer(value: float | None) -> str:
    return "-" if value is None else f"{percent(value):.2f}"


def _cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def system_cell(system: Mapping | None) -> str:
    """The checkpoint that produced the scores, as a table cell."""
    if not system:
        return "unknown (no model record or completion marker beside the scores)"
    if system.get("pretrained") is False:
        return f"{system.get('name', '?')}: RANDOMLY INITIALISED (no checkpoint)"
    sha = system.get("checkpoint_sha256")
    where = system.get("checkpoint") or "?"
    return f"{where} (sha256 {sha[:12]})" if sha else where


def _grid(title: str, table: Mapping, metric: str, fmt, columns: Sequence[str]) -> list[str]:
    header = [title, *columns]
    lines = [
        "| " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for tag, row in zip(table["row_tags"], table[metric], strict=True):
        lines.append(f"| {tag} | " + " | ".join(fmt(v) for v in row) + " |")
    return lines


def results_table(record: Mapping) -> str:
    """``results.md``: the pooled row beside the published one, the metrics per condition, and the
    package's full tables (attack or vocoder type x condition)."""
    info = track_info(record["track"])
    results, published = record["results"], record["published"]
    tandem = "min_t_dcf" in results["pooled"]
    table = results["table"]
    system = record.get("system") or {}
    name = system.get("name") or record["cm_scores"]
    lines = [
        f"### {record['title']}, {results['subset']} subset: {name}",
        "",
        f"CM score: `{record['cm_score']}` of {record['cm_scores']}. SSL-AASIST's published numbers rank "
        "the raw bona fide logit (its main_SSL_LA.py writes `batch_out[:, 1]`, no softmax): the recipe's "
        "cm_scores.txt holds both logits, and `logit_bonafide` scores as they did. EER: the ASVspoof "
        "scorers' (the DET point where miss and false alarm are nearest)"
        + (
            "; min t-DCF: ASVspoof 2021's (Pspoof 0.05, Ptar 0.9405, Pnon 0.0095, Cmiss 1, Cfa 10, Cfa_spoof "
            "10), the organisers' ASV scores (keys/LA/ASV) fixed at their EER threshold in each cell, as the "
            "2021 evaluation package computes them (main.py --recompute-c012)."
            if tandem
            else "; DF has no t-DCF."
        ),
        "",
        "| system | checkpoint | EER (%) |" + (" min t-DCF |" if tandem else ""),
        "| --- | --- | ---: |" + (" ---: |" if tandem else ""),
        f"| {name} (this run) | {system_cell(system)} | {_eer(results['pooled']['eer'])} |"
        + (f" {_cost(results['pooled']['min_t_dcf'])} |" if tandem else ""),
        f"| {published['system']}, published | {published['checkpoint']} | {_eer(published['eer'])} |"
        + (f" {_cost(published['min_t_dcf'])} |" if tandem else ""),
        "",
        f"Published: {published['source']}.",
    ]
    if record.get("note"):
        lines += ["", f"**{record['note']}**"]
    counts = results["counts"]
    columns = [f"{tag} ({value})" if value != POOLED else tag
               for tag, value in zip(table["column_tags"], table["columns"], strict=True)]  # fmt: skip
    pooled_row = len(table["rows"]) - 1
    lines += [
        "",
        f"#### Per condition ({info.columns.file.removeprefix('utt2')}; spoofs of every "
        f"{info.rows.file.removeprefix('utt2')})",
        "",
        "| | " + " | ".join(columns) + " |",
        "| --- |" + " ---: |" * len(columns),
        "| EER (%) | " + " | ".join(_eer(v) for v in table["eer"][pooled_row]) + " |",
    ]
    if tandem:
        lines.append("| min t-DCF | " + " | ".join(_cost(v) for v in table["min_t_dcf"][pooled_row]) + " |")
    for label, what in (("bonafide", "bona fide trials"), ("spoof", "spoofed trials")):
        lines.append(
            f"| {what} | " + " | ".join(str(counts[label].get(v, 0)) for v in table["columns"]) + " |"
        )
    unlisted = results["unlisted"]
    if unlisted["rows"] or unlisted["columns"]:
        lines += [
            "",
            "Conditions the package's tables do not list (counted in the pooled cells only): "
            + ", ".join(unlisted["columns"] + unlisted["rows"]),
        ]
    what = "attack" if info.rows.file == "utt2attack" else "vocoder type"
    lines += ["", f"#### EER (%) per {what} x condition", ""]
    lines += _grid(what, table, "eer", _eer, table["column_tags"])
    if tandem:
        lines += ["", f"#### min t-DCF per {what} x condition", ""]
        lines += _grid(what, table, "min_t_dcf", _cost, table["column_tags"])
    return "\n".join(lines) + "\n"
