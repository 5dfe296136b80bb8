"""Countermeasure training: AASIST (or any CM conf's architecture) as a bona fide / spoof classifier.

The recipe of clovaai/aasist's ``main.py`` with its ``AASIST.conf`` as the defaults
(:class:`~sasv.train.confs.CmTrainConf`): random 64,600-sample crops (a shorter utterance tiled first),
cross-entropy weighted 0.1 spoof / 0.9 bona fide, Adam with a per-step cosine schedule, the dev CM-EER
after every epoch, and the exported weights the average of the epochs that improved the dev CM-EER with
BatchNorm statistics re-estimated on the train set (what torchcontrib's SWA ``update_swa`` /
``swap_swa_sgd`` / ``bn_update`` do there). The train set is any data dir with ``wav.scp`` and ``utt2spf``
(``bonafide`` | ``spoof`` per utterance): LA train from ``sasv prepare_la --cm_sets``, or another corpus.
The shared loop (:mod:`sasv.train.loop`) runs it: resumable epochs, torchrun, logs, curves.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from sasv.models.conf import ConfError, ModelConf, build_from_conf
from sasv.train.collectives import Collectives, Ranks, finish_distributed, init_distributed
from sasv.train.confs import CM_CLASSES, CmTrainConf, codec_augmentation_settings
from sasv.train.data import CropDataset, TrainList
from sasv.train.loop import ModelWithLoss, TrainingTask, model_identity, run_training
from sasv.train.validate import cm_validation_set, validation_cm_eer

log = logging.getLogger(__name__)

LABEL_FILE = "utt2spf"
EER_TIE = 1e-9


class WeightedCrossEntropy(nn.Module):
    """Class-weighted cross-entropy of (B, 2) logits [spoof, bona fide]; returns (loss, accuracy)."""

    def __init__(self, weights: tuple[float, float]) -> None:
        super().__init__()
        self.register_buffer("weight", torch.tensor(weights, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss = nn.functional.cross_entropy(logits.float(), labels, weight=self.weight)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return loss, accuracy


def _list_fingerprint(wav_scp: dict[str, str], labels: dict[str, str]) -> str:
    """sha256 of a scored set's utterance ids with their labels."""
    text = "".join(f"{u} {labels[u]}\n" for u in sorted(wav_scp))
    return hashlib.sha256(text.encode()).hexdigest()


def cm_train_list(data_dir: str | Path) -> TrainList:
    """A CM data dir's utterances labelled 0 (spoof) / 1 (bona fide) from ``utt2spf``."""
    return TrainList.from_data_dir(data_dir, LABEL_FILE, CM_CLASSES)


def _chain(*augments: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> Callable:
    """The augmentations one after the other, each drawing from the example's generator in turn."""

    def augment(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for one in augments:
            wav = one(wav, rng)
        return wav

    return augment


def crop_dataset(conf: CmTrainConf, train_list: TrainList) -> CropDataset:
    """The conf's crops, RawBoost-augmented when the conf says so: the crop itself (``rawboost_on:
    crop``), or the whole utterance before it is cropped (``utterance``, as TakHemlata/SSL_Anti-spoofing).

    Boosting the crop is the default on purpose: it costs one crop's filtering whatever the utterance's
    length (an utterance of a minute costs 15 times a 4 s crop), and a short utterance tiled up to the crop
    gets noise that does not repeat with it. The algorithm itself is the reference's either way."""
    augment = None
    if conf.rawboost:
        from sasv.train.rawboost import RawBoost

        augment = RawBoost(conf.rawboost)
    if conf.codec_augmentation is not None:
        from sasv.train.codecs import CodecAugment

        codecs = CodecAugment(*codec_augmentation_settings(conf.codec_augmentation))
        augment = codecs if augment is None else _chain(augment, codecs)
    before_crop = conf.rawboost_on == "utterance"
    return CropDataset(train_list, conf.crop_samples, conf.seed, augment, augment_before_crop=before_crop,
                       crop_at_start=conf.crop_position == "start")  # fmt: skip


def cm_task(
    model_conf: ModelConf,
    conf: CmTrainConf,
    train_dir: str | Path,
    dev_dir: str | Path | None,
    device: torch.device,
) -> TrainingTask:
    """The countermeasure of ``model_conf``'s architecture on ``train_dir``, validated on ``dev_dir`` (both
    checked first: a dev set that cannot give a CM-EER stops the run before its first epoch)."""
    train_list = cm_train_list(train_dir)
    identity = {"classes": train_list.classes, "train_list": train_list.fingerprint(),
                "model": model_identity(model_conf)}  # fmt: skip
    if dev_dir is not None:
        # the dev CM-EERs of all epochs select the exported ones: a resumed run must score the same set
        dev_wavs, dev_labels = cm_validation_set(dev_dir)
        identity["dev_list"] = _list_fingerprint(dev_wavs, dev_labels)
    torch.manual_seed(conf.seed)
    model = build_from_conf(model_conf)
    head = WeightedCrossEntropy(tuple(conf.class_weights[c] for c in CM_CLASSES))

    def validate(trained: nn.Module, epoch: int, collectives: Collectives) -> dict[str, float]:
        return {"dev_cm_eer": validation_cm_eer(trained, dev_dir, collectives.device, collectives)}

    return TrainingTask(
        conf,
        ModelWithLoss(model, head),
        crop_dataset(conf, train_list),
        identity,
        ("dev_cm_eer",) if dev_dir is not None else (),
        after_epoch=validate if dev_dir is not None else None,
        plot_labels={"accuracy": "training accuracy", "lr": "learning rate", "dev_cm_eer": "dev CM-EER"},
        unused_parameters=True,  # AASIST: the residual blocks' bn1 of the original, never applied
    )


def train(
    model_conf: ModelConf,
    conf: CmTrainConf,
    train_dir: str | Path,
    out_dir: str | Path,
    dev_dir: str | Path | None = None,
    device: torch.device | None = None,
    ranks: Ranks | None = None,
) -> Path:
    """Train the countermeasure; return the last epoch checkpoint (resumes from ``out_dir``'s last one)."""
    ranks = ranks or Ranks.from_env()
    device = init_distributed(device or torch.device("cpu"), ranks)
    if conf.average == "best_dev" and dev_dir is None:
        raise ConfError("training conf averages the best dev epochs (average: best_dev): pass a dev set")
    task = cm_task(model_conf, conf, train_dir, dev_dir, device)
    last = run_training(task, out_dir, device, ranks)
    finish_distributed(ranks)
    return last


def best_dev_epochs(dev_eers: list[float], max_dev_eer: float) -> list[int]:
    """The 1-based epochs clovaai's SWA averages: each epoch whose dev EER is at most the best so far,
    the running best starting at ``max_dev_eer`` (clovaai: 1 %), ties included (equal up to
    :data:`EER_TIE`: the same error count can give EERs that differ in the last bits)."""
    best, chosen = max_dev_eer, []
    for epoch, eer in enumerate(dev_eers, start=1):
        if eer <= best + EER_TIE:
            best = eer
            chosen.append(epoch)
    return chosen


@torch.no_grad()
def update_batchnorm(model: nn.Module, dataset: CropDataset, batch_size: int, device: torch.device) -> None:
    """Re-estimate every BatchNorm's running statistics with one pass over ``dataset`` in training mode:
    averaged weights need statistics of their own. As torchcontrib's ``bn_update``, each batch enters
    with momentum ``b / (n + b)`` (``n`` examples seen before it, ``b`` in it), so the statistics are the
    average over every example, however the last batch is cut."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
    was_training = model.training
    model.train()
    seen = 0
    for x, _ in DataLoader(dataset, batch_size=batch_size):
        for m in norms:
            m.momentum = len(x) / (seen + len(x))
        model(x.to(device))
        seen += len(x)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)


def exported_epochs(conf: CmTrainConf, dev_eers: list[float]) -> tuple[list[int], bool]:
    """The 1-based epochs whose weights are exported, and whether they are the best-dev average (else the
    last epoch alone: ``average: last``, or no epoch reached ``average_max_dev_eer``, as in clovaai)."""
    if conf.average == "best_dev":
        chosen = best_dev_epochs(dev_eers, conf.average_max_dev_eer)
        if chosen:
            return chosen, True
    if conf.average == "best_epoch":
        best = min(dev_eers)
        return [next(e for e, eer in enumerate(dev_eers, start=1) if eer <= best + EER_TIE)], False
    return [len(dev_eers)], False


def average_rule(conf: CmTrainConf, epochs: list[int], averaged: bool, bn_updated: bool) -> str:
    """How the exported weights were made, in words (results.md, results.json)."""
    if conf.average == "best_epoch":
        return f"epoch {epochs[-1]} (the lowest dev CM-EER; average: best_epoch)"
    if not averaged:
        why = "average: last" if conf.average == "last" else (
            f"no epoch reached a dev CM-EER <= {100 * conf.average_max_dev_eer:g} %"
        )  # fmt: skip
        return f"epoch {epochs[-1]} (the last; {why})"
    listed = ", ".join(str(e) for e in epochs)
    most = f"{100 * conf.average_max_dev_eer:g} %"
    rule = f"average of epochs {listed} (each a new best dev CM-EER, at most {most})"
    return rule + (", BatchNorm statistics re-estimated on the train set" if bn_updated else "")
