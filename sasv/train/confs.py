"""Training confs (``conf/train/{asv,cm}/*.yaml``): one dataclass per kind of training, every key checked.

:class:`CommonTrainConf` holds what the shared loop (:mod:`sasv.train.loop`) reads: epochs, batch,
optimizer, learning-rate schedule, precision, seeds, fine-tuning. :class:`AsvTrainConf` adds the speaker
classifier's crops, AAM-softmax and augmentation; :class:`CmTrainConf` the countermeasure's crops, class
weights, RawBoost and weight averaging. A conf file is read with :func:`load_train_conf`: unknown keys and
values of the wrong type are a :class:`~sasv.models.conf.ConfError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml

from sasv.arg_types import check_arguments
from sasv.audio import MIN_SAMPLES, SAMPLE_RATE
from sasv.models.conf import ConfError, init_checkpoint_spec
from sasv.train.augment import KINDS as AUGMENTATION_KINDS

MAX_AAM_MARGIN = math.pi / 2
"""As :data:`sasv.train.losses.MAX_MARGIN` (not imported: reading a training conf imports no torch)."""

CM_CLASSES = ("spoof", "bonafide")
"""CM class labels in logit order: index 1 is bona fide, as AASIST's output and ``utt2spf`` values."""


def _finite(key: str, value: float, minimum: float, strict: bool) -> None:
    """``train.<key>`` must be a finite number above (``strict``) or at least ``minimum``: NaN and inf pass
    every comparison the other checks make, and a negative rate, decay or weight trains backwards."""
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise ValueError(
            f"train.{key}: must be a finite number {'>' if strict else '>='} {minimum:g}, got {value}"
        )


def _at_least(key: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"train.{key}: must be at least {minimum}, got {value}")


@dataclass(frozen=True)
class CommonTrainConf:
    """What every training run has; the loop's defaults are the ASV recipe's (wespeaker voxceleb v2), but for
    ``lr_reference_batch``, which conf/train/asv/voxceleb_aam.yaml sets to wespeaker's 64: left out, a conf's
    rates are those of one process's batch (the demo's, the tests')."""

    epochs: int = 150
    batch_size: int = 128
    optimizer: Literal["sgd", "adam"] = "sgd"
    initial_lr: float = 0.1
    final_lr: float = 5e-5
    # warmup_exponential: wespeaker's ExponentialDecrease (warm_from_zero): exponential decay from
    # initial_lr over all steps, times a linear warm-up from 0 over warmup_epochs; cosine: half a cosine from
    # initial_lr to final_lr over all steps (clovaai/aasist), after the warm-up if there is one
    lr_schedule: Literal["warmup_exponential", "cosine"] = "warmup_exponential"
    warmup_epochs: int = 6
    # the global batch initial_lr and final_lr are tuned for: both are multiplied by world_size *
    # batch_size / lr_reference_batch (wespeaker's scale_ratio: 64); null: tuned for one process's batch,
    # multiplied by world_size only (sasv.train.schedules.lr_scale)
    lr_reference_batch: int | None = None
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seed: int = 42
    num_workers: int = 0
    # fp32 | bf16 | fp16: autocast of the forward pass (a GPU's; fp16 with gradient scaling); changes numbers
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    # fine-tuning a pretrained upstream (e.g. WavLM): parameters whose names start with one of these are
    # frozen, and a parameter's learning rate is multiplied by the factor of its longest matching prefix
    # (e.g. {"model.feature_extract": 0.1});
    # names as in sasv.train.loop.ModelWithLoss: "model.<...>", "head.*"
    freeze: list[str] = dataclasses.field(default_factory=list)
    lr_multipliers: dict[str, float] = dataclasses.field(default_factory=dict)
    # frozen warm-up: parameters under these prefixes keep their initial values (learning rate 0) for the
    # first freeze_epochs epochs, e.g. a pre-trained front end while a new back end settles. Their gradients
    # are still computed (DistributedDataParallel needs every trainable parameter in every step's graph)
    warmup_freeze: list[str] = dataclasses.field(default_factory=list)
    warmup_freeze_epochs: int = 0
    # recompute the transformer layers' activations in the backward pass instead of keeping them (a
    # self-supervised front end's memory at the cost of one more forward; no effect on other models)
    gradient_checkpointing: bool = False
    # pre-trained weights loaded into one sub-module of the freshly built model before the first epoch:
    # {module: <name in the model, e.g. ssl_model.model>, path, format, sha256, urls} (the checkpoint
    # block of a model conf, sasv.models.conf), e.g. XLS-R 300M under SSL-AASIST's front end
    init_checkpoint: dict[str, Any] | None = None
    # keys a resumed run may change (not a conf key): they change none of the steps already taken or to
    # come; num_workers: every crop is a function of (seed, epoch, index), whichever worker reads it.
    # epochs is judged by sasv.train.loop.resume_differences (only where the learning rates stay the same)
    resume_may_change: ClassVar[frozenset[str]] = frozenset({"num_workers"})

    def __post_init__(self) -> None:
        """Every value in its range, checked when the conf is read: what can be checked without the data
        (the step count also depends on the train set's size) and without the model (a freeze prefix
        that matches no parameter is found when the optimizer is built, before the first step)."""
        for key in ("epochs", "batch_size"):
            _at_least(key, getattr(self, key), 1)
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"train.warmup_epochs: must be in [0, epochs={self.epochs}), got {self.warmup_epochs}"
            )
        _finite("initial_lr", self.initial_lr, 0.0, strict=True)
        if not 0 < self.final_lr <= self.initial_lr:
            raise ValueError(
                f"train.final_lr: must be in (0, initial_lr={self.initial_lr}], got {self.final_lr}"
            )
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise ValueError(f"train.momentum: must be in [0, 1), got {self.momentum}")
        _finite("weight_decay", self.weight_decay, 0.0, strict=False)
        _at_least("seed", self.seed, 0)  # numpy's generators take no negative seed
        if self.num_workers < 0:
            raise ValueError("train.num_workers: must not be negative")
        if self.lr_reference_batch is not None and self.lr_reference_batch < 1:
            raise ValueError(f"train.lr_reference_batch: at least 1, or null, got {self.lr_reference_batch}")
        for prefix in self.freeze:
            if not prefix:
                raise ValueError(
                    "train.freeze: an empty prefix freezes every parameter (each name starts with it); "
                    "name what to freeze, e.g. model.feature_extract"
                )
        for prefix, factor in self.lr_multipliers.items():
            if not prefix:
                raise ValueError("train.lr_multipliers: an empty prefix matches every parameter")
            _finite(f"lr_multipliers.{prefix}", factor, 0.0, strict=True)
        if any(not prefix for prefix in self.warmup_freeze):
            raise ValueError("train.warmup_freeze: an empty prefix would hold every parameter still")
        if not 0 <= self.warmup_freeze_epochs < self.epochs:
            raise ValueError(
                f"train.warmup_freeze_epochs: must be in [0, epochs={self.epochs}), "
                f"got {self.warmup_freeze_epochs}"
            )
        if bool(self.warmup_freeze) != bool(self.warmup_freeze_epochs):
            raise ValueError(
                "train.warmup_freeze and warmup_freeze_epochs: give both (prefixes and epochs) or neither"
            )
        if self.init_checkpoint is not None:
            init_checkpoint_spec(self.init_checkpoint, "train.init_checkpoint")


@dataclass(frozen=True)
class AsvTrainConf(CommonTrainConf):
    """A speaker-embedding training conf (``conf/train/asv/*.yaml``)."""

    crop_seconds: float = 2.0
    aam_scale: float = 30.0
    aam_margin: float = 0.2
    # AAM margin 0 until epoch margin_increase_start (counted from 1, as wespeaker's MarginScheduler counts),
    # rising exponentially to aam_margin when epoch margin_fix_start begins (sasv.train.schedules)
    margin_increase_start: int = 20
    margin_fix_start: int = 40
    # speed perturbation: 0.9x / 1.0x / 1.1x drawn per example, the changed speeds as new speakers
    speed_perturb: bool = False
    # weight of each augmentation kind (clean, reverb, noise, music, babble: sasv.train.augment); empty: none
    augmentation: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        _at_least("margin_increase_start", self.margin_increase_start, 0)
        if self.margin_fix_start < self.margin_increase_start:
            raise ValueError("train.margin_fix_start: must not be before margin_increase_start")
        shortest = MIN_SAMPLES / SAMPLE_RATE
        if not (math.isfinite(self.crop_seconds) and round(self.crop_seconds * SAMPLE_RATE) >= MIN_SAMPLES):
            raise ValueError(
                f"train.crop_seconds: at least {shortest:g} s ({MIN_SAMPLES} samples, what the models' "
                f"front-ends need), got {self.crop_seconds}"
            )
        # the AAM-softmax head's own ranges (sasv.train.losses.AAMSoftmax): beyond pi/2 even a perfectly
        # aligned embedding gets a negative target logit; a negative margin or scale inverts the loss
        if not (math.isfinite(self.aam_margin) and 0 <= self.aam_margin < MAX_AAM_MARGIN):
            raise ValueError(f"train.aam_margin: must be in [0, pi/2) (radians), got {self.aam_margin}")
        _finite("aam_scale", self.aam_scale, 0.0, strict=True)
        unknown = sorted(set(self.augmentation) - set(AUGMENTATION_KINDS))
        if unknown:
            raise ValueError(
                f"train.augmentation.{unknown[0]}: unknown kind; one of {', '.join(AUGMENTATION_KINDS)}"
            )
        for kind, weight in self.augmentation.items():
            _finite(f"augmentation.{kind}", weight, 0.0, strict=False)
        if self.augmentation and not any(self.augmentation.values()):
            raise ValueError(
                "train.augmentation: every weight is 0; give clean a weight, or leave augmentation out"
            )


@dataclass(frozen=True)
class CmTrainConf(CommonTrainConf):
    """A countermeasure training conf (``conf/train/cm/*.yaml``); defaults: clovaai/aasist's AASIST.conf."""

    epochs: int = 100
    batch_size: int = 24
    optimizer: Literal["sgd", "adam"] = "adam"
    initial_lr: float = 1e-4
    final_lr: float = 5e-6
    lr_schedule: Literal["warmup_exponential", "cosine"] = "cosine"
    warmup_epochs: int = 0
    weight_decay: float = 1e-4
    seed: int = 1234
    # crop of this many samples per example and epoch (a shorter utterance is tiled first): at a random
    # offset, new each epoch (crop_position: random, clovaai), or always the first ones (start,
    # TakHemlata/SSL_Anti-spoofing's pad(): what the CM sees when it scores)
    crop_samples: int = 64600
    crop_position: Literal["random", "start"] = "random"
    # cross-entropy weight of each class (clovaai: spoof 0.1, bona fide 0.9: LA train is ~90 % spoofed)
    class_weights: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"spoof": 0.1, "bonafide": 0.9}
    )
    # RawBoost algorithm 1-8 (sasv.train.rawboost.ALGOS); 0: off. rawboost_on: "crop" boosts the random
    # crop (cheaper, and a tiled short utterance gets noise that does not repeat), "utterance" the whole
    # utterance before it is cropped, as TakHemlata/SSL_Anti-spoofing does
    rawboost: int = 0
    rawboost_on: Literal["crop", "utterance"] = "crop"
    # codec augmentation (ASVspoof 5's coded conditions): {codecs: [names of sasv.train.codecs.CODECS],
    # probability: p}: with probability p a crop goes through one of the codecs (after RawBoost); needs PyAV
    codec_augmentation: dict[str, Any] | None = None
    # exported weights: "best_dev" averages the epochs that set a new best dev CM-EER, each at most
    # average_max_dev_eer (clovaai's SWA: running best from 1 %), then re-estimates BatchNorm statistics on
    # the train set; no such epoch, or "last": the last epoch's weights; "best_epoch": the one epoch with
    # the lowest dev CM-EER, as it was (TakHemlata/SSL_Anti-spoofing: the best dev epoch's checkpoint)
    average: Literal["best_dev", "last", "best_epoch"] = "best_dev"
    average_max_dev_eer: float = 1.0
    bn_update: bool = True
    # the export rule is read after the last step (sasv train_cm's export), never by a training step
    resume_may_change: ClassVar[frozenset[str]] = CommonTrainConf.resume_may_change | {
        "average",
        "average_max_dev_eer",
        "bn_update",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.crop_samples < 400:
            raise ValueError(f"train.crop_samples: must be at least 400, got {self.crop_samples}")
        weights = self.class_weights.values()
        if (
            sorted(self.class_weights) != sorted(CM_CLASSES)
            or min(weights) <= 0
            or not all(math.isfinite(w) for w in weights)
        ):
            raise ValueError(
                f"train.class_weights: positive weights of exactly {', '.join(CM_CLASSES)}, each finite, "
                f"got {self.class_weights}"
            )
        if not 0 <= self.rawboost <= 8:
            raise ValueError(f"train.rawboost: 0 (off) or an algorithm 1-8, got {self.rawboost}")
        if self.codec_augmentation is not None:
            codec_augmentation_settings(self.codec_augmentation)
        if not 0 < self.average_max_dev_eer <= 1:
            raise ValueError(
                f"train.average_max_dev_eer: a fraction in (0, 1], got {self.average_max_dev_eer}"
            )


def codec_augmentation_settings(raw: dict[str, Any]) -> tuple[list[str], float]:
    """(codec names, probability) of a ``codec_augmentation`` block, checked (names, a probability)."""
    from sasv.train.codecs import CODECS

    if set(raw) != {"codecs", "probability"}:
        raise ValueError(
            f"train.codec_augmentation: exactly the keys codecs and probability, got {sorted(raw)}"
        )
    codecs, probability = raw["codecs"], raw["probability"]
    if not isinstance(codecs, list) or not codecs or any(c not in CODECS for c in codecs):
        raise ValueError(f"train.codec_augmentation.codecs: a list of {', '.join(CODECS)}; got {codecs!r}")
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 < probability <= 1:
        raise ValueError(f"train.codec_augmentation.probability: in (0, 1], got {probability!r}")
    return list(codecs), float(probability)


Conf = TypeVar("Conf", bound=CommonTrainConf)


def load_train_conf(path: str | Path, kind: type[Conf]) -> Conf:
    """A training conf file of ``kind``; unknown keys and values of the wrong type are a ConfError."""
    path = Path(path)
    if not path.is_file():
        raise ConfError(f"training conf {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfError(f"{path}: a training conf must be a YAML mapping")
    try:
        check_arguments(kind, raw, "train")
        return kind(**raw)
    except ValueError as e:
        raise ConfError(f"{path}: {e}") from e
