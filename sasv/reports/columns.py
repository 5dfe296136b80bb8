"""Every metric a table shows, declared once: its key in a metrics record, its column label, its unit (and
so how a cell prints it), the caption sentence explaining it, and where a table puts it.

Every table of the recipe reads these declarations (:mod:`sasv.reports.tables`: results.md, analysis.md,
exp/summary.md and RESULTS.md, the fusion's table, the bootstrap intervals, ``sasv compare_systems``, the
per-attack breakdowns) and so do the tools' log lines, so one metric has one label everywhere, and a new
metric is one :class:`Metric` in :data:`METRICS` (with its computation in :mod:`sasv.reports.records`): every
table whose records carry its key shows it.

Which benchmark shows a metric is not declared here: a table shows a column when one of its records carries
the key, and which keys a record carries is the benchmark's choice of metrics
(:class:`sasv.reports.records.MetricChoice`, recorded in results.json). So records written before a metric
existed render exactly as before, and a record of one benchmark never shows another's columns as ``n/a``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sasv.metrics.detection_costs import (
    A_DCF_COST_MODELS,
    MIN_DCF_P_TARGETS,
    a_dcf_key,
    actual_a_dcf_key,
    actual_dcf_key,
    describe_cost_model,
    min_dcf_name,
)

NOT_AVAILABLE = "n/a"


def percent(value: float | None) -> float | None:
    """A fraction (an EER as every metrics record holds it) in percent, as tables and the ASVspoof 5
    evaluation package print it; ``None`` (a metric that could not be computed) stays ``None``. The one
    place the recipe converts an EER to percent."""
    return None if value is None else 100.0 * value


@dataclass(frozen=True)
class Unit:
    """How a metric's value prints: ``decimals`` digits, in percent when the record holds a fraction."""

    name: str
    decimals: int
    in_percent: bool = False
    suffix: str = ""  # after the number in a log line ("%")

    def format(self, value: float | None) -> str:
        """A table cell: ``None`` or NaN is ``n/a``, never 0, so a gap stays visible."""
        if value is None or math.isnan(float(value)):
            return NOT_AVAILABLE
        shown = percent(float(value)) if self.in_percent else float(value)
        return f"{shown:.{self.decimals}f}"


PERCENT = Unit("percent", 2, in_percent=True, suffix="%")  # EERs: fractions in the records
COST = Unit("normalised cost", 4)  # costs near 0.01 need four decimals
BITS = Unit("bits", 4)  # CLLR


@dataclass(frozen=True)
class Metric:
    """One metric as every table shows it.

    ``key``: its key in a metrics record (results.json, analysis.json). ``label``: its column label in every
    table, log line and comparison. ``note``: the caption sentence explaining it (metrics of one family share
    one: it is said once per table). ``always``: a column of every metrics table, ``n/a`` where a record lacks
    it (the challenge EERs); otherwise a column only when some record of the table carries it. ``tandem``:
    one of ASVspoof 5 Track 2's tandem metrics, which only its records carry: a table with one is laid out as
    an ASVspoof 5 table. ``lead``: on such a table it comes before the EERs, in this rank (the challenge
    ranks systems by the a-DCF, then t-DCF and t-EER). ``lower_is_better``: the direction of a comparison's
    verdict and caption.
    """

    key: str
    label: str
    unit: Unit
    note: str | None = None
    always: bool = False
    lead: int | None = None
    tandem: bool = False
    lower_is_better: bool = True

    def format(self, value: float | None) -> str:
        """The table cell of ``value``."""
        return self.unit.format(value)

    def describe(self, value: float | None) -> str:
        """``<label> <value><suffix>`` for a log line, e.g. ``SASV-EER 1.08%`` or ``a-DCF[paper] 0.0123``."""
        return f"{self.label} {self.format(value)}{self.unit.suffix}"


A_DCF_MODELS: tuple[str, ...] = tuple(A_DCF_COST_MODELS)

MIN_DCF_NOTE = (
    "minDCF(p): minimum normalised DCF of the SV task (target vs nontarget), Ptar p, Cmiss = Cfa = 1"
)
T_DCF_NOTE = "t-DCF: minimum normalised t-DCF of the CM score, ASVspoof 5 organisers' ASV error rates"
T_EER_NOTE = "t-EER: tandem EER of the CM and ASV scores"
CM_EER_NOTE = "CM-EER: CM score alone, bona fide vs spoofed test utterances (the ASVspoof scorers' EER)"
CM_TRACK1_NOTE = (
    "CM minDCF, CM CLLR (bits), CM actDCF: ASVspoof 5 Track 1 metrics of the CM alone on the same utterances "
    "(Pspoof 0.05, Cmiss 1, Cfa 10); CLLR and actDCF read the AASIST log-odds (logit_bonafide - "
    "logit_spoof) as LLRs, not P_CM, and so does the CM-EER beside them"
)
ACTUAL_COST_NOTE = (
    "act. a-DCF, act. DCF(p): actual costs, the same costs at the thresholds that minimised them on dev "
    "(what a system whose threshold was fixed beforehand pays; a minimum picks its threshold on the scores "
    "it judges), equal to the minimum on dev itself"
)
# what the actual-cost note adds when a record of the table had no dev thresholds
NO_DEV_REASON = "; n/a: no dev set was scored in this run, so no threshold was chosen"


def a_dcf_note(model: str) -> str:
    return f"a-DCF[{model}]: minimum normalised a-DCF, {describe_cost_model(model)}"


# The metrics in table order: the EERs, then the optional columns (an ASVspoof 5 table moves its ``lead``
# ones before the EERs).
METRICS: tuple[Metric, ...] = (
    Metric("sasv_eer", "SASV-EER", PERCENT, always=True),
    Metric("sv_eer", "SV-EER", PERCENT, always=True),
    Metric("spf_eer", "SPF-EER", PERCENT, always=True),
    Metric("cm_eer", "CM-EER", PERCENT, CM_EER_NOTE),
    Metric("cm_min_dcf", "CM minDCF", COST, CM_TRACK1_NOTE),
    Metric("cm_cllr", "CM CLLR", BITS, CM_TRACK1_NOTE),
    Metric("cm_act_dcf", "CM actDCF", COST, CM_TRACK1_NOTE),
    *(Metric(a_dcf_key(m), f"a-DCF[{m}]", COST, a_dcf_note(m), lead=0) for m in A_DCF_MODELS),
    *(Metric(actual_a_dcf_key(m), f"act. a-DCF[{m}]", COST, ACTUAL_COST_NOTE, lead=2) for m in A_DCF_MODELS),
    Metric("min_t_dcf", "t-DCF", COST, T_DCF_NOTE, lead=1, tandem=True),
    Metric("t_eer", "t-EER", PERCENT, T_EER_NOTE, lead=1, tandem=True),
    *(
        each
        for p in MIN_DCF_P_TARGETS
        for each in (
            Metric(min_dcf_name(p), f"minDCF({p:g})", COST, MIN_DCF_NOTE),
            Metric(actual_dcf_key(p), f"act. DCF({p:g})", COST, ACTUAL_COST_NOTE),
        )
    ),
)

# The order of the caption's sentences (a note not listed here follows them, in column order); the
# actual-cost note always comes last, with why its cells are n/a where they are.
CAPTION_NOTES: tuple[str, ...] = (
    *(a_dcf_note(m) for m in A_DCF_MODELS),
    T_DCF_NOTE,
    T_EER_NOTE,
    MIN_DCF_NOTE,
    CM_EER_NOTE,
    CM_TRACK1_NOTE,
)


def metric(key: str) -> Metric:
    """The declaration of a record key; a key nobody declared is its own label and prints as a cost."""
    return next((m for m in METRICS if m.key == key), None) or Metric(key, key, COST)


def always_shown() -> list[Metric]:
    """The metrics of every table (the challenge EERs), in table order; also what a tool logs per set."""
    return [m for m in METRICS if m.always]


def describe_metrics(record: Mapping, metrics: Sequence[Metric]) -> str:
    """``SASV-EER 1.08%, SV-EER ...``: ``metrics`` of a record for a log line, labelled as in the tables."""
    return ", ".join(m.describe(record.get(m.key)) for m in metrics)


def column_blocks(results: Sequence[Mapping]) -> list[list[Metric]]:
    """The metric columns of a table of ``results``, in blocks (a comparison table repeats each block per
    set): the ``always`` metrics, then the others that at least one result carries, in :data:`METRICS`
    order. With a ``tandem`` metric (an ASVspoof 5 table) the ``lead`` metrics come first instead (the
    official a-DCF, t-DCF and t-EER, then the actual a-DCF), then the EERs, then the rest."""
    always = always_shown()
    present = [m for m in METRICS if not m.always and any(m.key in r for r in results)]
    if not any(m.tandem for m in present):
        return [always, present]
    lead = sorted((m for m in present if m.lead is not None), key=lambda m: m.lead)
    return [lead, always, [m for m in present if m.lead is None]]


def caption_notes(columns: Sequence[Metric], results: Sequence[Mapping] = ()) -> list[str]:
    """The caption's sentences explaining ``columns``: each note once, in :data:`CAPTION_NOTES` order, the
    actual-cost note last (saying why it is n/a when a record of ``results`` had no dev set)."""
    notes = list(dict.fromkeys(m.note for m in columns if m.note))
    listed = [n for n in CAPTION_NOTES if n in notes]
    ordered = listed + [n for n in notes if n not in listed and n != ACTUAL_COST_NOTE]
    if ACTUAL_COST_NOTE in notes:
        without_dev = any(r and r.get("actual_costs_threshold_from", "dev") is None for r in results)
        ordered.append(ACTUAL_COST_NOTE + (NO_DEV_REASON if without_dev else ""))
    return ordered
