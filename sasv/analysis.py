"""Extended results of one scored system: detection costs, CM-only EER and the per-attack SPF-EERs.

:func:`sasv.evaluate.evaluate` gives the three challenge EERs; :func:`extended_metrics` adds what the later
SASV literature reports, computed from the same :class:`~sasv.scoring.TrialScores`, as a flat JSON-ready dict
that can be merged into a results record. It lives apart from :mod:`sasv.metrics` because it needs the
score-file type, and :mod:`sasv.scoring` already depends on :mod:`sasv.metrics`.
"""

from __future__ import annotations

from sasv.metrics import (
    DEFAULT_A_DCF_COST,
    MIN_DCF_P_TARGETS,
    ADCFCostModel,
    cm_eer,
    detection_costs,
    spf_eer_by_attack,
)
from sasv.scoring import TrialScores

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
