"""Speaker-embedding training: any ASV conf's architecture as a speaker classifier with AAM-softmax.

The model is built with random weights from its conf (its own front-end running on the fly) and trained
on random fixed-length crops of a Kaldi data dir (``wav.scp`` + ``utt2spk``) by the shared loop
(:mod:`sasv.train.loop`: resumable epochs, torchrun, logs); the training conf
(:class:`~sasv.train.confs.AsvTrainConf`) says how long and how fast. The AAM margin follows
:func:`~sasv.train.schedules.margin_schedule`, a function of the fractional epoch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sasv.audio import SAMPLE_RATE
from sasv.models.conf import ConfError, ModelConf, build_from_conf
from sasv.train.augment import AugmentationLists, Augmenter
from sasv.train.collectives import Ranks, finish_distributed, init_distributed
from sasv.train.confs import AsvTrainConf
from sasv.train.data import CropDataset, TrainList
from sasv.train.loop import ModelWithLoss, TrainingTask, model_identity, run_training
from sasv.train.losses import AAMSoftmax
from sasv.train.schedules import margin_schedule


def speaker_task(
    model_conf: ModelConf,
    conf: AsvTrainConf,
    train_dir: str | Path,
    augmentation_dirs: tuple[Path, Path] | None = None,
) -> TrainingTask:
    """The speaker classifier of ``model_conf``'s architecture on the speakers of ``train_dir``."""
    train_list = TrainList.from_data_dir(train_dir)
    augmenter = _augmenter(conf, augmentation_dirs)
    torch.manual_seed(conf.seed)
    model = build_from_conf(model_conf)
    dataset = CropDataset(
        train_list, round(conf.crop_seconds * SAMPLE_RATE), conf.seed, augmenter, conf.speed_perturb
    )
    head = AAMSoftmax(model.embedding_dim, dataset.num_classes, conf.aam_scale, conf.aam_margin)

    def set_margin(net: ModelWithLoss, epoch_float: float) -> dict[str, float]:
        margin = margin_schedule(
            epoch_float, conf.aam_margin, conf.margin_increase_start, conf.margin_fix_start
        )
        net.head.set_margin(margin)
        return {"margin": margin}

    return TrainingTask(
        conf,
        ModelWithLoss(model, head),
        dataset,
        {
            "classes": train_list.classes,
            "train_list": train_list.fingerprint(),
            "model": model_identity(model_conf),
            "augmentation": augmenter.lists.fingerprint() if augmenter is not None else "none",
        },
        ("margin",),
        before_step=set_margin,
        plot_labels={"accuracy": "training accuracy", "lr": "learning rate", "margin": "AAM margin"},
    )


def train(
    model_conf: ModelConf,
    conf: AsvTrainConf,
    train_dir: str | Path,
    out_dir: str | Path,
    device: torch.device | None = None,
    ranks: Ranks | None = None,
    augmentation_dirs: tuple[Path, Path] | None = None,
) -> Path:
    """Train ``model_conf``'s architecture on the Kaldi data dir ``train_dir``; return the last checkpoint.

    ``augmentation_dirs`` (MUSAN lists, RIR list: ``sasv prepare_augmentation``) are needed when the conf
    augments with anything but ``clean``. Resumes from ``out_dir``'s last epoch checkpoint.
    """
    ranks = ranks or Ranks.from_env()
    device = init_distributed(device or torch.device("cpu"), ranks)
    task = speaker_task(model_conf, conf, train_dir, augmentation_dirs)
    last = run_training(task, out_dir, device, ranks)
    finish_distributed(ranks)
    return last


def _augmenter(conf: AsvTrainConf, dirs: tuple[Path, Path] | None) -> Augmenter | None:
    """The conf's augmentation, or None; noise without its lists is an error, never clean training."""
    if not any(w > 0 for k, w in conf.augmentation.items() if k != "clean"):
        return None
    if dirs is None:
        kinds = ", ".join(k for k, w in conf.augmentation.items() if k != "clean" and w > 0)
        raise ConfError(
            f"training conf augments with {kinds}: pass --musan_dir and --rirs_dir (lists written by "
            f"`sasv prepare_augmentation`)"
        )
    return Augmenter(AugmentationLists.from_dirs(*dirs), conf.augmentation)
