"""The metrics record of one score list: the one JSON-ready dict every table and report is built from.

:func:`metrics_record` gives the three challenge EERs (fractions; None where a class is absent), the trial
counts per key and the detection costs, and with ``extended`` (the default) what the later SASV literature
also reports: the CM-only EER and the per-attack SPF-EERs (:func:`extended_metrics`). Every tool that
reports on a score list (run_test's scoring, analysis and fusion, compute_metrics) calls it. It works on a
:class:`~sasv.score_files.TrialScores`; :mod:`sasv.metrics` below it works on plain arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sasv.detection_costs import (
    A_DCF_COST_MODELS,
    DEFAULT_A_DCF_COST,
    MIN_DCF_P_TARGETS,
    ADCFCostModel,
    detection_costs,
    min_a_dcf,
)
from sasv.metrics import cm_eer, count_keys, sasv_eers, spf_eer_by_attack
from sasv.protocols import BONAFIDE, NONTARGET, SPOOF, TARGET
from sasv.score_files import ScoreFileError, TrialScores
from sasv.tandem_metrics import min_t_dcf, t_eer
from sasv.track2_files import Track2Trials

ATTACK_BREAKDOWN_KEY = "spf_eer_by_attack"


def attack_breakdown(scores: TrialScores) -> dict[str, float | None]:
    """SPF-EER (fraction) of the fused SASV score per attack id: target trials vs that attack's spoofs."""
    return spf_eer_by_attack(scores.fused, scores.key, scores.attack)


def extended_metrics(scores: TrialScores, cost: ADCFCostModel = DEFAULT_A_DCF_COST) -> dict:
    """Metrics beyond the challenge EERs, all on the fused SASV score except the CM-EER.

    Keys: ``min_a_dcf`` and ``min_a_dcf_threshold`` (a-DCF default cost model: Ptar 0.9, Pnon 0.05, Pspf
    0.05, Cmiss 1, Cfa_asv 10, Cfa_cm 20), ``min_dcf_0.01`` and ``min_dcf_0.05`` (normalised SV minDCF,
    target vs nontarget, Cmiss = Cfa = 1), ``cm_eer`` (fraction; CM score per unique test utterance, bona
    fide vs spoof; ``None`` for a submission file, which has no CM column) and ``spf_eer_by_attack``
    ({attack: fraction}). Costs are plain normalised numbers, EERs fractions, like :func:`sasv_eers`.
    """
    result: dict = dict(detection_costs(scores.fused, scores.key, cost, MIN_DCF_P_TARGETS))
    result["cm_eer"] = None if scores.cm is None else cm_eer(scores.utt, scores.key, scores.cm)
    result[ATTACK_BREAKDOWN_KEY] = attack_breakdown(scores)
    return result


def metrics_record(scores: TrialScores, extended: bool = True, source: str | Path | None = None) -> dict:
    """SASV-, SV-, SPF-EER of the fused score, ``counts`` per key, detection costs and, with ``extended``,
    the CM-EER and per-attack SPF-EERs (see :func:`extended_metrics`).

    ``source``: the score file ``scores`` were read from. Scores that are inconsistent (a test utterance
    with two different CM scores, ...) are then a :class:`~sasv.scoring.ScoreFileError` naming it.
    """
    try:
        record: dict = {**sasv_eers(scores.fused, scores.key), "counts": count_keys(scores.key)}
        record.update(extended_metrics(scores) if extended else detection_costs(scores.fused, scores.key))
    except ValueError as err:
        if source is None:
            raise
        raise ScoreFileError(f"{source}: {err}") from None
    return record


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
    record: dict = {"min_a_dcf": None, "min_t_dcf": None, "t_eer": None}
    if have["sasv"]:
        cost = min_a_dcf(trials.sasv, keys, A_DCF_COST_MODELS["sasv2024"])
        record["min_a_dcf"] = None if cost is None else cost.value
    if have["cm"]:
        bonafide, spoof = trials.cm[trials.cm_label == BONAFIDE], trials.cm[trials.cm_label == SPOOF]
        record["min_t_dcf"] = min_t_dcf(bonafide, spoof)
    if have["cm"] and have["asv"]:
        by_key = [(trials.asv[keys == k], trials.cm[keys == k]) for k in (TARGET, NONTARGET, SPOOF)]
        value = t_eer(*(asv for asv, _ in by_key), *(cm for _, cm in by_key))
        record["t_eer"] = None if value is None else 100.0 * value
    eers = sasv_eers(trials.sasv, keys) if have["sasv"] else dict.fromkeys(("sasv_eer", "sv_eer", "spf_eer"))
    record.update({name: None if v is None else 100.0 * v for name, v in eers.items()})
    record["counts"] = count_keys(keys)
    return record
