"""The metrics record of one score list: the one JSON-ready dict every table and report is built from.

:func:`metrics_record` gives the three challenge EERs, the trial counts per key and the detection costs,
and with ``extended`` (the default) what the later SASV literature also reports: the CM-only EER and the
per-attack SPF-EERs. Every tool that reports on a score list (run_test's scoring, analysis and fusion,
compute_metrics) calls it. It works on a :class:`~sasv.scoring.score_files.TrialScores`;
:mod:`sasv.metrics.eer` below it works on plain arrays. How each key is labelled and printed in a table:
:mod:`sasv.reports.columns`.

Units: every EER of a system's records (results.json, analysis.json; ``None`` where a class is absent) is a
fraction, and the tables print it in percent. The records of the official ASVspoof 5 files that ``sasv
compute_metrics`` prints (:func:`track1_record`, :func:`track2_record`) give their EERs and the t-EER in
percent instead, as the organisers' evaluation package prints them; both convert with
:func:`sasv.reports.columns.percent`. Costs are plain normalised numbers everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sasv.corpora.protocols import BONAFIDE, NONTARGET, SPOOF, TARGET
from sasv.corpora.registry import CORPORA
from sasv.errors import SasvError
from sasv.metrics.bootstrap import BootstrapSpec, bootstrap_intervals
from sasv.metrics.breakdowns import tabulate
from sasv.metrics.cm import TRACK1_METRICS, track1_breakdown, track1_metrics
from sasv.metrics.detection_costs import (
    A_DCF_COST_MODELS,
    MIN_DCF_P_TARGETS,
    a_dcf_key,
    a_dcf_threshold_key,
    actual_a_dcf_key,
    actual_dcf_key,
    costs_at_thresholds,
    min_a_dcf,
    min_dcf_threshold_key,
    ranked_costs,
)
from sasv.metrics.eer import (
    RankedScores,
    as_scores,
    cm_eer,
    count_codes,
    count_keys,
    ranked_eers,
    sasv_eers,
    spf_eer_by_attack,
)
from sasv.metrics.tandem import min_t_dcf, t_eer
from sasv.reports.columns import percent
from sasv.scoring.score_files import ScoreFileError, TrialScores
from sasv.scoring.track1_files import Track1Trials
from sasv.scoring.track2_files import Track2Trials

ATTACK_BREAKDOWN_KEY = "spf_eer_by_attack"


def attack_breakdown(scores: TrialScores) -> dict[str, float | None]:
    """SPF-EER (fraction) of the fused SASV score per attack id: target trials vs that attack's spoofs."""
    return spf_eer_by_attack(scores.fused, scores.key, scores.attack)


class MixedMetricsError(SasvError, ValueError):
    """Score lists of two benchmarks, or scored with different metrics, would share one table."""


@dataclass(frozen=True)
class MetricChoice:
    """Which detection costs a record carries beyond the EERs: the a-DCF under each named cost model
    (``A_DCF_COST_MODELS``), with ``tandem`` ASVspoof 5's min t-DCF and t-EER of the CM and ASV scores, and
    with ``track1`` the CM's own ASVspoof 5 Track 1 metrics (:func:`cm_track1_metrics`).

    One per benchmark (:data:`BENCHMARK_METRICS`); a run may add cost models (``--a_dcf_cost``). It is
    stored in the system's results.json, so the later tools (analysis, fusion, summary) report the same.
    """

    a_dcf_models: tuple[str, ...] = ("paper",)
    tandem: bool = False
    track1: bool = False

    def __post_init__(self) -> None:
        unknown = [m for m in self.a_dcf_models if m not in A_DCF_COST_MODELS]
        if unknown or not self.a_dcf_models:
            name = unknown[0] if unknown else "(none)"
            raise ValueError(f"a-DCF cost model {name!r}: use {', '.join(A_DCF_COST_MODELS)}")

    def to_dict(self) -> dict:
        return {"a_dcf": list(self.a_dcf_models), "tandem": self.tandem, "track1": self.track1}

    @classmethod
    def from_record(cls, record: Mapping) -> MetricChoice:
        """The choice a results.json records; records written before there was one get the LA default."""
        metrics = record.get("metrics") or {}
        return cls(
            tuple(metrics.get("a_dcf", ("paper",))),
            bool(metrics.get("tandem", False)),
            bool(metrics.get("track1", False)),
        )


# What each benchmark reports (the data dir's prepared.json names its benchmark, sasv.markers), from its
# corpus's record (sasv.corpora.registry): LA the a-DCF paper's cost model, as the SASV literature on LA does;
# ASVspoof 5 Track 2 its official metrics. A countermeasure benchmark (ASVspoof 2021) has no SASV scoring:
# its metrics are sasv evaluate_asvspoof2021's (sasv.reports.asvspoof2021).
BENCHMARK_METRICS: dict[str, MetricChoice] = {
    name: MetricChoice(c.a_dcf_models, c.tandem, c.track1) for name, c in CORPORA.items() if not c.cm_only
}


BENCHMARK_TITLES: dict[str, str] = {name: c.title for name, c in CORPORA.items()}


def metric_choice(benchmark: str, a_dcf_models: Sequence[str] | None = None) -> MetricChoice:
    """The benchmark's metrics, with ``a_dcf_models`` (when given) instead of its a-DCF cost models."""
    default = BENCHMARK_METRICS[benchmark]
    if not a_dcf_models:
        return default
    return MetricChoice(tuple(dict.fromkeys(a_dcf_models)), default.tandem, default.track1)


def tandem_metrics(asv: np.ndarray, cm: np.ndarray, keys: np.ndarray) -> dict[str, float | None]:
    """``min_t_dcf`` (CM scores, bona fide = target and nontarget trials, with the organisers' ASV error
    rates) and ``t_eer`` (fraction) of per-trial ASV and CM scores, as the evaluation package computes them
    on a Track 2 submission: per trial, so an utterance counts once per trial it appears in."""
    bonafide, spoof = cm[keys != SPOOF], cm[keys == SPOOF]
    by_key = [(asv[keys == k], cm[keys == k]) for k in (TARGET, NONTARGET, SPOOF)]
    return {
        "min_t_dcf": min_t_dcf(bonafide, spoof),
        "t_eer": t_eer(*(a for a, _ in by_key), *(c for _, c in by_key)),
    }


def _cm_and_attack_eers(scores: TrialScores) -> dict:
    """``cm_eer`` (fraction; CM score per unique test utterance, bona fide vs spoof; ``None`` for a
    submission file, which has no CM column) and ``spf_eer_by_attack`` ({attack: fraction})."""
    return {
        "cm_eer": None if scores.cm is None else cm_eer(scores.utt, scores.key, scores.cm),
        ATTACK_BREAKDOWN_KEY: attack_breakdown(scores),
    }


def rank_trials(scores: TrialScores) -> RankedScores:
    """The fused scores of a score list sorted once (finite, else an error), for all its metrics."""
    return RankedScores.of_codes(as_scores(scores.fused, "scores"), scores.codes)


def record_costs(scores: TrialScores, choice: MetricChoice) -> dict:
    """``min_a_dcf[<model>]`` and ``min_a_dcf_threshold[<model>]`` per chosen cost model, ``min_dcf_0.01``
    and ``min_dcf_0.05`` (normalised SV minDCF, target vs nontarget, Cmiss = Cfa = 1), and with
    ``choice.tandem`` ``min_t_dcf`` and ``t_eer`` (:func:`tandem_metrics`; ``None`` without ASV and CM
    scores)."""
    costs = ranked_costs(rank_trials(scores), choice.a_dcf_models, MIN_DCF_P_TARGETS)
    return {**costs, **_tandem(scores, choice)}


def _tandem(scores: TrialScores, choice: MetricChoice) -> dict:
    if not choice.tandem:
        return {}
    if scores.asv is None or scores.cm is None:
        return {"min_t_dcf": None, "t_eer": None}
    return tandem_metrics(scores.asv, scores.cm, scores.key)


def fused_record(ranked: RankedScores, choice: MetricChoice = MetricChoice()) -> dict:
    """SASV-, SV-, SPF-EER, ``counts`` per key and the detection costs ``choice`` names of one ranked list
    of fused scores: every metric that needs nothing but the fused scores and keys (all that a submission
    file's record holds), read off one sort."""
    record: dict = {**ranked_eers(ranked), "counts": count_codes(ranked.codes)}
    record.update(ranked_costs(ranked, choice.a_dcf_models, MIN_DCF_P_TARGETS))
    return record


def metrics_record(
    scores: TrialScores,
    extended: bool = True,
    source: str | Path | None = None,
    choice: MetricChoice = MetricChoice(),
) -> dict:
    """SASV-, SV-, SPF-EER of the fused score, ``counts`` per key, the detection costs ``choice`` names and,
    with ``extended``, ``cm_eer`` (of the CM score per unique test utterance, bona fide vs spoof; ``None``
    for a submission file, which has no CM column) and ``spf_eer_by_attack`` (:func:`attack_breakdown`).
    EERs are fractions, costs plain normalised numbers.

    ``source``: the score file ``scores`` were read from. Scores that are inconsistent (a test utterance
    with two different CM scores, ...) are then a :class:`~sasv.scoring.cosine.ScoreFileError` naming it.
    """
    try:
        record = fused_record(rank_trials(scores), choice)
        record.update(_tandem(scores, choice))
        if extended:
            record.update(_cm_and_attack_eers(scores))
    except ValueError as err:
        if source is None:
            raise
        raise ScoreFileError(f"{source}: {err}") from None
    return record


TRACK2_BREAKDOWN_KEY = "track2_by_attack_codec"
# Each metric of a Track 2 breakdown cell, and the key of the same metric in a system's record (the tables
# label both alike, sasv.reports.tables.TRACK2_BREAKDOWN_COLUMNS).
TRACK2_BREAKDOWN_KEYS = {"min_a_dcf": a_dcf_key("sasv2024"), "min_t_dcf": "min_t_dcf", "t_eer": "t_eer"}
TRACK2_BREAKDOWN_METRICS = tuple(TRACK2_BREAKDOWN_KEYS)


def fusion_metrics_record(
    scores: TrialScores, choice: MetricChoice, extended: bool = True, source: str | Path | None = None
) -> dict:
    """:func:`metrics_record` of a learned fusion's scores. A fusion has no tandem metrics: its asv and cm
    columns are parts of one LLR, not two systems, so with ``choice.tandem`` min t-DCF and t-EER are
    ``None`` (its tables keep the benchmark's columns). The one definition ``sasv fuse_systems`` and
    ``sasv analyse_system`` both use, so a fusion's results.json and analysis.json agree."""
    record = metrics_record(scores, extended, source, dataclasses.replace(choice, tandem=False))
    if choice.tandem:
        record.update(min_t_dcf=None, t_eer=None)
    return record


def track2_breakdown(
    asv: np.ndarray,
    cm: np.ndarray,
    sasv: np.ndarray,
    keys: np.ndarray,
    attacks: np.ndarray,
    codecs: np.ndarray | None = None,
) -> dict:
    """ASVspoof 5 Track 2's metrics per attack x codec cell (:mod:`sasv.metrics.breakdowns`), as the package's
    ``evaluation_full.py --m t2_tandem`` tabulates them: ``min_a_dcf`` (sasv2024) of the SASV score,
    ``min_t_dcf`` of the CM score and ``t_eer`` (a fraction) of the two, each cell ``None`` unless it has
    target, nontarget and spoof trials. Scores in the submission's order (ties break as the package's)."""
    keys = np.asarray(keys, str)

    def cell(mask: np.ndarray) -> dict[str, float | None]:
        cell_keys = keys[mask]
        if not all((cell_keys == k).any() for k in (TARGET, NONTARGET, SPOOF)):
            return dict.fromkeys(TRACK2_BREAKDOWN_METRICS)
        cost = min_a_dcf(sasv[mask], cell_keys, A_DCF_COST_MODELS["sasv2024"])
        return {
            "min_a_dcf": None if cost is None else cost.value,
            **tandem_metrics(asv[mask], cm[mask], cell_keys),
        }

    return tabulate(keys == SPOOF, attacks, codecs, cell, TRACK2_BREAKDOWN_METRICS)


def track2_record(trials: Track2Trials) -> dict:
    """ASVspoof 5 Track 2's metrics of a submission, as the organisers' evaluation package computes them.

    ``min_a_dcf`` of the SASV score with the ``sasv2024`` cost model (the primary metric), ``min_t_dcf`` of
    the CM score with the organisers' ASV error rates, ``t_eer`` (percent, as the package prints it) of the
    CM and ASV scores together, then the SASV 2022 EERs of the SASV score (percent) and ``counts``. A
    metric whose scores the submission leaves out (``-``) is ``None``.
    """
    keys = trials.asv_label
    have = {name: not np.isnan(values).any() for name, values in (("cm", trials.cm), ("asv", trials.asv),
                                                                   ("sasv", trials.sasv))}  # fmt: skip
    record: dict = {"min_a_dcf": None, "min_t_dcf": None, "t_eer": None, "a_dcf_cost_model": "sasv2024"}
    if have["sasv"]:
        cost = min_a_dcf(trials.sasv, keys, A_DCF_COST_MODELS["sasv2024"])
        record["min_a_dcf"] = None if cost is None else cost.value
    if have["cm"]:
        bonafide, spoof = trials.cm[trials.cm_label == BONAFIDE], trials.cm[trials.cm_label == SPOOF]
        record["min_t_dcf"] = min_t_dcf(bonafide, spoof)
    if have["cm"] and have["asv"]:
        record["t_eer"] = percent(tandem_metrics(trials.asv, trials.cm, keys)["t_eer"])
    eers = sasv_eers(trials.sasv, keys) if have["sasv"] else dict.fromkeys(("sasv_eer", "sv_eer", "spf_eer"))
    record.update({name: percent(v) for name, v in eers.items()})
    record["counts"] = count_keys(keys)
    return record


def track1_record(trials: Track1Trials) -> dict:
    """ASVspoof 5 Track 1's metrics of a CM score file, as the organisers' evaluation package computes them:
    ``min_dcf`` (the primary metric), ``eer`` (percent, as the package prints it), ``cllr`` (bits) and
    ``act_dcf`` (:mod:`sasv.metrics.cm`; the last two read the scores as LLRs), ``counts``, and with a full
    key table ``breakdown``: the four per attack (x codec where the keys name codecs; ``evaluation_full.py``'s
    tables, EER in percent).
    """
    bonafide, spoof = trials.score[trials.is_bonafide], trials.score[~trials.is_bonafide]
    record: dict = track1_metrics(bonafide, spoof)
    record["eer"] = percent(record["eer"])
    record["scores_read_as"] = "LLR (bona fide vs spoof) for cllr and act_dcf"
    record["counts"] = {
        "bonafide": int(bonafide.size),
        "spoof": int(spoof.size),
        "total": int(trials.score.size),
    }
    if trials.attack is not None:
        table = track1_breakdown(trials.score, trials.is_bonafide, trials.attack, trials.codec)
        table["eer"] = [[percent(v) for v in row] for row in table["eer"]]
        record["breakdown"] = {k: table[k] for k in ("attacks", "codecs", *TRACK1_METRICS)}
    return record


# The CM's Track 1 metrics in a system's record: ``cm_eer`` (fraction, as every record's EERs) and the rest.
CM_TRACK1_KEYS = {"eer": "cm_eer", "min_dcf": "cm_min_dcf", "cllr": "cm_cllr", "act_dcf": "cm_act_dcf"}
CM_TRACK1_BREAKDOWN_KEY = "cm_track1_by_attack_codec"


def cm_track1_metrics(trials: Track1Trials, breakdown: bool = False) -> dict:
    """A system's ``cm_eer``, ``cm_min_dcf``, ``cm_cllr``, ``cm_act_dcf`` from its Track 1 files (the CM's
    log-odds per test utterance, :func:`sasv.scoring.track1_files.write_track1`): on ASVspoof 5 they replace
    the CM-EER of P_CM (the same ranking, except where P_CM saturates). With ``breakdown`` also
    ``cm_track1_by_attack_codec`` (:func:`sasv.metrics.cm.track1_breakdown`, EER a fraction)."""
    values = track1_metrics(trials.score[trials.is_bonafide], trials.score[~trials.is_bonafide])
    record: dict = {CM_TRACK1_KEYS[name]: value for name, value in values.items()}
    if breakdown and trials.attack is not None:
        record[CM_TRACK1_BREAKDOWN_KEY] = track1_breakdown(
            trials.score, trials.is_bonafide, trials.attack, trials.codec
        )
    return record


BOOTSTRAP_KEY = "bootstrap"


def bootstrap_record(scores: TrialScores, choice: MetricChoice, spec: BootstrapSpec, jobs: int = 1) -> dict:
    """95 % (``spec.confidence``) bootstrap intervals of the SASV-, SV-, SPF-EER and the primary cost (the
    min a-DCF of the choice's first cost model) of a score list, resampling its claimed speakers
    (:mod:`sasv.metrics.bootstrap`); the value of a record's ``bootstrap`` key, with the primary cost's
    name."""
    primary = choice.a_dcf_models[0]
    record = bootstrap_intervals(scores.fused, scores.codes, scores.spk, primary, spec, jobs)
    return {"primary_cost": a_dcf_key(primary), **record}


# The set whose minimising thresholds the actual costs of every set use, and the record key saying so.
CALIBRATION_SET = "dev"
ACTUAL_COSTS_FROM_KEY = "actual_costs_threshold_from"


def add_actual_costs(
    records: Mapping[str, dict],
    ranked: Mapping[str, RankedScores],
    choice: MetricChoice,
    calibration: Mapping | None = None,
) -> None:
    """Give every set's record its actual costs (``act_a_dcf[<model>]``, ``act_dcf_<p>``): the costs at
    the thresholds that minimised the same costs on dev (``calibration``: the dev record, by default
    ``records["dev"]``). On dev itself they equal the minima. Without a dev record they are ``None`` and
    ``actual_costs_threshold_from`` is ``None`` too, which the tables explain."""
    dev = calibration if calibration is not None else records.get(CALIBRATION_SET)
    a_dcf_thresholds = {m: (dev or {}).get(a_dcf_threshold_key(m)) for m in choice.a_dcf_models}
    dcf_thresholds = {p: (dev or {}).get(min_dcf_threshold_key(p)) for p in MIN_DCF_P_TARGETS}
    for set_name, record in records.items():
        if dev is None:
            record.update({actual_a_dcf_key(m): None for m in choice.a_dcf_models})
            record.update({actual_dcf_key(p): None for p in MIN_DCF_P_TARGETS})
        else:
            record.update(costs_at_thresholds(ranked[set_name], a_dcf_thresholds, dcf_thresholds))
        record[ACTUAL_COSTS_FROM_KEY] = None if dev is None else CALIBRATION_SET
