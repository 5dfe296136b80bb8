"""Learned score fusion: logistic regression over the ASV and CM scores of one or several SASV systems.

The fixed rules of the reference (``P_CM x (cos + 1) / 2``, ``cos + P_CM``, see
:func:`sasv.scoring.cosine.fuse_scores`) weight the two subsystems by construction. Here the weights are
learned on the dev trials and applied unchanged to eval, so the fused score is calibrated:
``fused = bias + sum_i w_i x_i`` is a log-likelihood ratio of "target" against "nontarget or spoof"
(see the class weighting below).

Features, per system: the ASV cosine as it is, and the CM score twice, as logit(P bona fide) and as
log(P bona fide), both from P clipped to [``CM_CLIP``, 1 - ``CM_CLIP``]. Why both: the logit is the CM's
own log-odds, which a linear model can weigh against the cosine, but it keeps growing for ever more
confident bona fide trials, so alone it lets a confidently bona fide nontarget outscore a target. log P is
~0 for every bona fide trial and strongly negative only for spoofs, which is the "AND" of the reference
product rule (log fused = log P_CM + log((cos + 1) / 2)); alone it cannot use the CM's confidence among
bona fide trials. With both, the regression picks the mix. The clip is needed because a confident AASIST
gives P = 0 or 1 in float32; 1e-7 is about where float32 probabilities near 1 stop carrying information
(spacing 6e-8), so every clipped value still orders like the probability it came from. Systems sharing a
CM give identical CM columns; the L2 penalty splits the weight between them, which changes no score.

Class weighting: dev has about 4 spoof and 4 nontarget trials per target trial, and unweighted training
would mostly learn to reject spoofs. Every trial is weighted so that the three keys carry fixed total
weights, target 1/2, nontarget 1/4 and spoof 1/4 (``KEY_WEIGHTS``): the two classes are balanced, which
makes the logistic output a likelihood ratio free of the dev class proportions (an LLR), and the negative
class is an equal mix of nontargets and spoofs, the same balance as the a-DCF default priors (Pnon = Pspf)
and as an SASV-EER that should not depend on the spoof/nontarget ratio of a trial list. Features are
standardised on dev before fitting (for a well-conditioned solver and a scale-free L2 penalty) and the
standardisation is folded back into the stored weights, so weights.json applies to raw scores directly.

Weights are stored as JSON, never pickled: readable in a results folder, and loading them runs no code.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logit
from sklearn.linear_model import LogisticRegression

from sasv.errors import SasvError
from sasv.fileio import atomic_write_text
from sasv.metrics.eer import KEYS, NONTARGET, SPOOF, TARGET, key_codes
from sasv.scoring.score_files import TrialScores

CM_CLIP = 1e-7
KEY_WEIGHTS: dict[str, float] = {TARGET: 0.5, NONTARGET: 0.25, SPOOF: 0.25}
# Inverse L2 strength on standardised features with sample weights averaging 1: weak enough that the
# ~30,000 dev trials decide the weights, strong enough to keep separable data finite.
DEFAULT_C = 1.0
FEATURE_KINDS: tuple[str, ...] = ("asv", "cm_logit", "cm_logp")
WEIGHTS_FORMAT = "sasv-logreg-fusion-v1"


class TrialMismatchError(SasvError, ValueError):
    """Score lists that should describe the same trials, in the same order, do not."""


def check_same_trials(systems: Sequence[TrialScores], names: Sequence[str]) -> None:
    """Refuse to fuse score lists whose trials (spk, utt, attack, key) differ or are in another order.

    Fusion pairs scores by position; one shifted line would pair every later trial with another trial's
    score, and the result would still look like a valid score file.
    """
    if len(systems) != len(names) or not systems:
        raise ValueError(f"{len(systems)} score lists but {len(names)} names")
    first = systems[0]
    for other, name in zip(systems[1:], names[1:], strict=True):
        if len(other) != len(first):
            raise TrialMismatchError(f"{name} has {len(other)} trials, {names[0]} has {len(first)}")
        for column in ("spk", "utt", "attack", "key"):
            differ = getattr(other, column) != getattr(first, column)
            if differ.any():
                at = int(np.flatnonzero(differ)[0])
                raise TrialMismatchError(
                    f"{name} and {names[0]} differ at trial {at + 1} (line {at + 1}): {column} "
                    f"{str(getattr(other, column)[at])!r} vs {str(getattr(first, column)[at])!r}; "
                    "all systems must be scored on the same trial list in the same order"
                )


def cm_features(cm_prob: np.ndarray, clip: float = CM_CLIP) -> tuple[np.ndarray, np.ndarray]:
    """(logit P, log P) of the clipped CM bona fide probability (see the module docstring).

    Refuses values that are not probabilities: a file of raw CM logits fused as if it held P would be
    silently clipped to two values.
    """
    cm_prob = np.asarray(cm_prob, dtype=np.float64)
    if cm_prob.size and (cm_prob.min() < 0.0 or cm_prob.max() > 1.0):
        raise ValueError("CM scores must be probabilities P(bona fide) in [0, 1] to be fused")
    clipped = np.clip(cm_prob, clip, 1.0 - clip)
    return logit(clipped), np.log(clipped)


def feature_matrix(systems: Sequence[TrialScores], clip: float = CM_CLIP) -> np.ndarray:
    """(trials, 3 x systems) features: per system its ASV cosine, logit P_CM and log P_CM (FEATURE_KINDS)."""
    columns = []
    for trials in systems:
        if trials.asv is None or trials.cm is None:
            raise ValueError(
                "fusion needs ASV and CM scores (a per-system score file, not a submission file)"
            )
        columns += [trials.asv, *cm_features(trials.cm, clip)]
    return np.stack(columns, axis=1)


def sample_weights(
    keys: Sequence[str] | np.ndarray, key_weights: Mapping[str, float] = KEY_WEIGHTS
) -> np.ndarray:
    """Per-trial weights giving each key its share ``key_weights`` of the total, normalised to mean 1.

    A key absent from ``keys`` gets no weight; mean 1 keeps the meaning of the regulariser ``C``
    independent of the trial count's bookkeeping (it is then the usual per-trial scale).
    """
    codes = key_codes(keys)
    counts = np.bincount(codes, minlength=len(KEYS))
    per_trial = np.array(
        [key_weights.get(k, 0.0) / counts[i] if counts[i] else 0.0 for i, k in enumerate(KEYS)]
    )
    weights = per_trial[codes]
    return weights * (weights.size / weights.sum())


@dataclass(frozen=True)
class FusionModel:
    """A trained linear fusion: ``fused = bias + sum_i weights[i] * feature_i`` on raw (unscaled) features.

    ``systems`` names the input systems in feature order (``FEATURE_KINDS`` features each).
    ``training`` records where it was trained (set, trial counts, C, class weights) for the report.
    """

    systems: tuple[str, ...]
    weights: np.ndarray
    bias: float
    cm_clip: float = CM_CLIP
    training: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        weights = np.asarray(self.weights, dtype=np.float64)
        if weights.shape != (len(FEATURE_KINDS) * len(self.systems),):
            n_weights = len(FEATURE_KINDS) * len(self.systems)
            raise ValueError(f"{len(self.systems)} systems need {n_weights} weights, got {weights.shape}")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "systems", tuple(self.systems))

    def feature_names(self) -> list[str]:
        return [f"{system}:{kind}" for system in self.systems for kind in FEATURE_KINDS]

    def components(self, systems: Sequence[TrialScores]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ASV part, CM part, fused): the weighted ASV cosines, the weighted CM features, and
        ``bias + asv_part + cm_part``. The split is what a score file's asv/cm columns carry for a fusion:
        the CM part depends on the test utterance only, like a CM score."""
        if len(systems) != len(self.systems):
            raise ValueError(f"the fusion was trained on {len(self.systems)} systems, got {len(systems)}")
        x = feature_matrix(systems, self.cm_clip)
        is_asv = np.array([kind == "asv" for _ in self.systems for kind in FEATURE_KINDS])
        asv_part = x[:, is_asv] @ self.weights[is_asv]
        cm_part = x[:, ~is_asv] @ self.weights[~is_asv]
        return asv_part, cm_part, self.bias + asv_part + cm_part

    def apply(self, systems: Sequence[TrialScores]) -> np.ndarray:
        """Fused (log-likelihood-ratio-like) score of every trial."""
        return self.components(systems)[2]

    def fused_trials(self, systems: Sequence[TrialScores]) -> TrialScores:
        """The fusion as :class:`TrialScores`; its asv/cm columns hold the parts of :meth:`components`."""
        base = systems[0]
        asv_part, cm_part, fused = self.components(systems)
        return dataclasses.replace(base, asv=asv_part, cm=cm_part, fused=fused)

    def to_dict(self) -> dict:
        return {
            "format": WEIGHTS_FORMAT,
            "formula": "fused = bias + sum(weight * feature); features: asv = cosine, "
            "cm_logit = logit(p), cm_logp = log(p), p = clip(P_CM, cm_clip, 1 - cm_clip)",
            "bias": float(self.bias),
            "cm_clip": float(self.cm_clip),
            "features": [
                {"system": s, "kind": k, "weight": float(w)}
                for (s, k), w in zip(
                    ((s, k) for s in self.systems for k in FEATURE_KINDS), self.weights.tolist(), strict=True
                )
            ],
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, record: Mapping) -> FusionModel:
        if record.get("format") != WEIGHTS_FORMAT:
            raise ValueError(
                f"not a fusion weights record ({WEIGHTS_FORMAT}): format {record.get('format')!r}"
            )
        features = record["features"]
        systems = tuple(dict.fromkeys(f["system"] for f in features))
        expected = [(s, k) for s in systems for k in FEATURE_KINDS]
        if [(f["system"], f["kind"]) for f in features] != expected:
            raise ValueError(f"fusion features must be {expected}, in this order")
        return cls(
            systems=systems,
            weights=np.array([f["weight"] for f in features], dtype=np.float64),
            bias=float(record["bias"]),
            cm_clip=float(record["cm_clip"]),
            training=dict(record.get("training", {})),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """JSON with floats written by ``repr`` (json's default), so loading gives the same float64 values."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FusionModel:
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))


def train_fusion(
    systems: Sequence[TrialScores],
    names: Sequence[str],
    key_weights: Mapping[str, float] = KEY_WEIGHTS,
    C: float = DEFAULT_C,
    cm_clip: float = CM_CLIP,
    set_name: str = "dev",
) -> FusionModel:
    """Fit the logistic-regression fusion of ``systems`` (same trials, see :func:`check_same_trials`).

    Target trials are the positive class, nontarget and spoof trials the negative one, weighted by
    ``key_weights`` (module docstring). Deterministic: lbfgs on fixed data has no randomness.
    """
    check_same_trials(systems, names)
    keys = systems[0].key
    codes = key_codes(keys)
    if not (codes == KEYS.index(TARGET)).any() or (codes == KEYS.index(TARGET)).all():
        raise ValueError("fusion training needs target and non-target (nontarget or spoof) trials")
    x = feature_matrix(systems, cm_clip)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0  # a constant feature carries no information; its weight stays 0
    model = LogisticRegression(C=C, solver="lbfgs", max_iter=1000, tol=1e-10)
    model.fit(
        (x - mean) / scale, codes == KEYS.index(TARGET), sample_weight=sample_weights(keys, key_weights)
    )
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - np.dot(weights, mean))
    counts = {k: int((codes == i).sum()) for i, k in enumerate(KEYS)}
    training = {
        "set": set_name,
        "counts": counts,
        "C": C,
        "key_weights": dict(key_weights),
        "solver": "lbfgs",
    }
    return FusionModel(systems=tuple(names), weights=weights, bias=bias, cm_clip=cm_clip, training=training)
