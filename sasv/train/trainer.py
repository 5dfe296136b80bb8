"""Training a speaker embedding model of the zoo with AAM-softmax, resumable epoch by epoch.

The model is any ASV conf's architecture (built with random weights, its own front-end running on the fly);
the training conf (``conf/train/asv/*.yaml``, :class:`TrainConf`) says how long and how fast. The state at
the end of every epoch (model, loss head, optimizer, epoch) is written atomically to
``<out>/checkpoints/epoch_<n>.pt``; a re-run resumes from the last one. Everything random is derived from
(seed, epoch, ...): the data order and crops (:mod:`sasv.train.data`), and torch's generator, re-seeded at
each epoch (dropout), so a resumed run continues exactly as an uninterrupted one, and learning rate and
margin are functions of the step (:mod:`sasv.train.schedules`). One CSV line per epoch goes to
``<out>/train_log.csv``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from sasv.arg_types import check_arguments
from sasv.audio import SAMPLE_RATE
from sasv.conf import ConfError, ModelConf, build_from_conf
from sasv.fileio import atomic_output, atomic_write_text
from sasv.progress import progress_bar
from sasv.train.augment import KINDS as AUGMENTATION_KINDS
from sasv.train.augment import AugmentationLists, Augmenter
from sasv.train.data import CropDataset, TrainList, epoch_order
from sasv.train.losses import AAMSoftmax
from sasv.train.schedules import margin_schedule, scaled_lr, warmup_exponential_lr

log = logging.getLogger(__name__)

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
LOG_FIELDS = ("epoch", "loss", "accuracy", "lr", "margin", "samples_per_s", "seconds")


@dataclass(frozen=True)
class TrainConf:
    """A training conf (``conf/train/asv/*.yaml``); every key is one of these fields, checked by type."""

    epochs: int = 150
    batch_size: int = 128
    crop_seconds: float = 2.0
    optimizer: Literal["sgd", "adam"] = "sgd"
    initial_lr: float = 0.1
    final_lr: float = 5e-5
    warmup_epochs: int = 6
    momentum: float = 0.9
    weight_decay: float = 1e-4
    aam_scale: float = 30.0
    aam_margin: float = 0.2
    margin_increase_start: int = 20
    margin_fix_start: int = 40
    seed: int = 42
    num_workers: int = 0
    # fp32 | bf16 | fp16: autocast of the forward pass (a GPU's; fp16 with gradient scaling); changes numbers
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    # fine-tuning a pretrained upstream (e.g. WavLM): parameters whose names start with one of these are
    # frozen, and a parameter's learning rate is multiplied by the factor of its longest matching prefix
    # (e.g. {"model.feature_extract": 0.1}); names as in SpeakerClassifier: "model.<...>", "head.weight"
    freeze: list[str] = dataclasses.field(default_factory=list)
    lr_multipliers: dict[str, float] = dataclasses.field(default_factory=dict)
    # speed perturbation: 0.9x / 1.0x / 1.1x drawn per example, the changed speeds as new speakers
    speed_perturb: bool = False
    # weight of each augmentation kind (clean, reverb, noise, music, babble: sasv.train.augment); empty: none
    augmentation: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        """What can be checked without the data (the step count also depends on the train set's size)."""
        for key in ("epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"train.{key}: must be at least 1, got {getattr(self, key)}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"train.warmup_epochs: must be in [0, epochs={self.epochs}), got {self.warmup_epochs}"
            )
        if not 0 < self.final_lr <= self.initial_lr:
            raise ValueError(
                f"train.final_lr: must be in (0, initial_lr={self.initial_lr}], got {self.final_lr}"
            )
        if self.margin_fix_start < self.margin_increase_start:
            raise ValueError("train.margin_fix_start: must not be before margin_increase_start")
        if self.crop_seconds <= 0 or self.num_workers < 0:
            raise ValueError("train.crop_seconds must be positive and train.num_workers not negative")
        unknown = sorted(set(self.augmentation) - set(AUGMENTATION_KINDS))
        if unknown:
            raise ValueError(
                f"train.augmentation.{unknown[0]}: unknown kind; one of {', '.join(AUGMENTATION_KINDS)}"
            )


def load_train_conf(path: str | Path) -> TrainConf:
    """A training conf file; unknown keys and values of the wrong type are a :class:`ConfError`."""
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
        check_arguments(TrainConf, raw, "train")
        return TrainConf(**raw)
    except ValueError as e:
        raise ConfError(f"{path}: {e}") from e


def checkpoint_path(out_dir: Path, epoch: int) -> Path:
    return out_dir / "checkpoints" / f"epoch_{epoch:04d}.pt"


def last_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete epoch checkpoint (written atomically: a file there is complete)."""
    found = sorted((out_dir / "checkpoints").glob("epoch_[0-9][0-9][0-9][0-9].pt"))
    return found[-1] if found else None


def _save(path: Path, state: dict[str, Any]) -> None:
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def _log_epoch(out_dir: Path, row: dict[str, float]) -> None:
    """Append one epoch's row to ``train_log.csv`` (rewritten atomically, rows of later epochs dropped:
    a resumed run replaces what an interrupted one logged after its last checkpoint)."""
    path = out_dir / "train_log.csv"
    rows = []
    if path.is_file():
        rows = [r for r in csv.DictReader(io.StringIO(path.read_text())) if int(r["epoch"]) < row["epoch"]]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows([*rows, {k: row[k] for k in LOG_FIELDS}])
    atomic_write_text(path, buffer.getvalue())


def _plot_log(out_dir: Path) -> None:
    """``train_curves.png``: loss, accuracy, learning rate and margin per epoch."""
    from sasv.plots import plot_training_log

    rows = list(csv.DictReader(io.StringIO((out_dir / "train_log.csv").read_text())))
    plot_training_log({k: [float(r[k]) for r in rows] for k in LOG_FIELDS}, out_dir / "train_curves.png")


def _param_groups(net: nn.Module, conf: TrainConf) -> list[dict[str, Any]]:
    """Trainable parameters grouped by learning-rate multiplier (``lr_scale``); frozen ones left out."""
    groups: dict[float, list[nn.Parameter]] = {}
    unused = set(conf.freeze) | set(conf.lr_multipliers)
    for name, param in net.named_parameters():
        frozen = [p for p in conf.freeze if name.startswith(p)]
        unused -= set(frozen)
        if frozen:
            param.requires_grad_(False)
            continue
        matches = sorted((p for p in conf.lr_multipliers if name.startswith(p)), key=len)
        unused -= set(matches)
        groups.setdefault(conf.lr_multipliers[matches[-1]] if matches else 1.0, []).append(param)
    if unused:
        raise ConfError(f"training conf: freeze/lr_multipliers prefix {sorted(unused)[0]!r} matches nothing")
    return [{"params": params, "lr_scale": scale} for scale, params in sorted(groups.items())]


def _optimizer(net: nn.Module, conf: TrainConf) -> torch.optim.Optimizer:
    groups = _param_groups(net, conf)
    if conf.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=conf.initial_lr, momentum=conf.momentum, weight_decay=conf.weight_decay, nesterov=True
        )
    return torch.optim.Adam(groups, lr=conf.initial_lr, weight_decay=conf.weight_decay)


@dataclass(frozen=True)
class Ranks:
    """This process's place in a torchrun launch (RANK, WORLD_SIZE, LOCAL_RANK); one process without it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Ranks:
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


class SpeakerClassifier(nn.Module):
    """Embedding model + AAM-softmax head as one module, so one DistributedDataParallel syncs both."""

    def __init__(self, model: nn.Module, head: AAMSoftmax) -> None:
        super().__init__()
        self.model, self.head = model, head

    def forward(self, wavs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.model(wavs), labels)


def train(
    model_conf: ModelConf,
    conf: TrainConf,
    train_dir: str | Path,
    out_dir: str | Path,
    device: torch.device | None = None,
    ranks: Ranks | None = None,
    augmentation_dirs: tuple[Path, Path] | None = None,
) -> Path:
    """Train ``model_conf``'s architecture on the Kaldi data dir ``train_dir``; return the last checkpoint.

    Resumes from the last epoch checkpoint under ``out_dir`` (a finished run returns at once).
    ``augmentation_dirs`` (MUSAN lists, RIR list: ``sasv prepare_augmentation``) are needed when the conf
    augments with anything but ``clean``. Under torchrun (``ranks`` from the environment) every process
    trains on its share of each epoch (:func:`~sasv.train.data.epoch_order`) with gradients averaged by
    DistributedDataParallel (gloo on CPU, NCCL on GPUs), the learning rates scaled linearly with the number
    of processes (:func:`~sasv.train.schedules.scaled_lr`); rank 0 writes checkpoints and logs, after
    checking that every rank holds the same weights and that the epoch drew every utterance exactly once.
    """
    ranks = ranks or Ranks.from_env()
    device = device or torch.device("cpu")
    if ranks.distributed:
        if device.type == "cuda":
            device = torch.device("cuda", ranks.local_rank)
            torch.cuda.set_device(device)
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    out_dir = Path(out_dir)
    train_list = TrainList.from_data_dir(train_dir)
    torch.manual_seed(conf.seed)
    model = build_from_conf(model_conf).to(device)
    dataset = CropDataset(
        train_list,
        round(conf.crop_seconds * SAMPLE_RATE),
        conf.seed,
        _augmenter(conf, augmentation_dirs),
        conf.speed_perturb,
    )
    head = AAMSoftmax(model.embedding_dim, dataset.num_classes, conf.aam_scale, conf.aam_margin)
    net = SpeakerClassifier(model, head.to(device))
    optimizer = _optimizer(net, conf)
    scaler = torch.amp.GradScaler(device.type, enabled=conf.precision == "fp16")
    start_epoch = _resume(out_dir, net, optimizer, scaler, conf, train_list, device)
    if ranks.distributed:
        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    lr_range = (scaled_lr(conf.initial_lr, ranks.world_size), scaled_lr(conf.final_lr, ranks.world_size))
    per_rank = math.ceil(len(train_list) / ranks.world_size)
    steps_per_epoch = math.ceil(per_rank / conf.batch_size)
    try:  # the schedules check what depends on the data size too (warm-up must end before the last step)
        warmup_exponential_lr(0, steps_per_epoch, *lr_range, conf.epochs, conf.warmup_epochs)
    except ValueError as e:
        raise ConfError(f"training conf with {len(train_list)} utterances in {train_dir}: {e}") from None
    for epoch in range(start_epoch, conf.epochs):
        row = _train_epoch(
            net, optimizer, scaler, dataset, conf, epoch, steps_per_epoch, lr_range, device, ranks
        )
        inner = net.module if isinstance(net, DistributedDataParallel) else net
        if ranks.distributed:
            _agree(inner, ranks)
        if ranks.rank == 0:
            state = {
                "epoch": epoch + 1,
                "model": inner.model.state_dict(),
                "head": inner.head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "speakers": train_list.speakers,
                "train_conf": dataclasses.asdict(conf),
                "world_size": ranks.world_size,
            }
            _save(checkpoint_path(out_dir, epoch + 1), state)
            _log_epoch(out_dir, row)
            _plot_log(out_dir)
            log.info(
                "epoch %d/%d: loss %.4f, accuracy %.3f, lr %.3g, margin %.3f, %.1f samples/s",
                epoch + 1, conf.epochs, row["loss"], row["accuracy"], row["lr"], row["margin"],
                row["samples_per_s"],
            )  # fmt: skip
        if ranks.distributed:
            torch.distributed.barrier()
    last = last_checkpoint(out_dir)
    assert last is not None
    return last


def _augmenter(conf: TrainConf, dirs: tuple[Path, Path] | None) -> Augmenter | None:
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


def _resume(
    out_dir: Path,
    net: SpeakerClassifier,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    conf: TrainConf,
    train_list: TrainList,
    device: torch.device,
) -> int:
    """Load the last epoch checkpoint into ``net`` and ``optimizer``; the epoch to start from."""
    resume = last_checkpoint(out_dir)
    if resume is None:
        return 0
    state = torch.load(resume, map_location=device, weights_only=True)
    if state["speakers"] != train_list.speakers or state["train_conf"] != dataclasses.asdict(conf):
        raise ConfError(
            f"{resume}: made with another training conf or speaker list; use another output dir or "
            f"delete {resume.parent}"
        )
    net.model.load_state_dict(state["model"])
    net.head.load_state_dict(state["head"])
    optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    log.info("resuming from %s (epoch %d of %d)", resume, state["epoch"], conf.epochs)
    return state["epoch"]


def _agree(net: nn.Module, ranks: Ranks) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics are per process) and check that the
    parameters agree on every rank: a checkpoint is the state of all of them."""
    for buffer in net.buffers():
        torch.distributed.broadcast(buffer, 0)
    digest = torch.stack([p.detach().double().sum() for p in net.parameters()])
    gathered = [torch.empty_like(digest) for _ in range(ranks.world_size)]
    torch.distributed.all_gather(gathered, digest)
    if not all(torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError("the ranks' parameters differ after an epoch: gradients were not synchronised")
    log.info("parameters identical on all %d ranks", ranks.world_size)


def _train_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    dataset: CropDataset,
    conf: TrainConf,
    epoch: int,
    steps_per_epoch: int,
    lr_range: tuple[float, float],
    device: torch.device,
    ranks: Ranks,
) -> dict[str, float]:
    dataset.set_epoch(epoch)
    torch.manual_seed(conf.seed * 100_003 + epoch * 1_009 + ranks.rank)  # dropout: a function of epoch, rank
    order = epoch_order(len(dataset), epoch, conf.seed, ranks.rank, ranks.world_size)
    batches = [order[i : i + conf.batch_size].tolist() for i in range(0, len(order), conf.batch_size)]
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=conf.num_workers)
    head = net.module.head if isinstance(net, DistributedDataParallel) else net.head
    net.train()
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, examples
    lr = margin = 0.0
    start = time.perf_counter()
    join = net.join() if isinstance(net, DistributedDataParallel) else contextlib.nullcontext()
    with join, progress_bar(len(batches), desc=f"epoch {epoch + 1}/{conf.epochs}", unit="batch") as bar:
        for step_in_epoch, (x, y) in enumerate(loader):
            step = epoch * steps_per_epoch + step_in_epoch
            lr = warmup_exponential_lr(step, steps_per_epoch, *lr_range, conf.epochs, conf.warmup_epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            margin = margin_schedule(
                epoch + step_in_epoch / steps_per_epoch,
                conf.aam_margin,
                conf.margin_increase_start,
                conf.margin_fix_start,
            )
            head.set_margin(margin)
            amp = AMP_DTYPES.get(conf.precision)
            with torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
                loss, accuracy = net(x.to(device), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # fp32 and bf16: the scaler is disabled and changes nothing
            scaler.step(optimizer)
            scaler.update()
            totals += torch.tensor([float(loss.detach()) * len(y), float(accuracy) * len(y), len(y)])
            bar.update(1)
    if ranks.distributed:
        torch.distributed.all_reduce(totals)
    if int(totals[2]) != len(dataset):
        raise RuntimeError(f"epoch {epoch + 1} drew {int(totals[2])} examples for {len(dataset)} utterances")
    seconds = time.perf_counter() - start
    return {
        "epoch": epoch + 1,
        "loss": float(totals[0] / totals[2]),
        "accuracy": float(totals[1] / totals[2]),
        "lr": lr,
        "margin": margin,
        "samples_per_s": float(totals[2]) / seconds,
        "seconds": seconds,
    }


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The model weights averaged over epoch checkpoints (wespeaker's model averaging): float parameters and
    buffers are averaged in float64, integer buffers (BatchNorm's batch counters) taken from the last."""
    if not paths:
        raise ValueError("no checkpoints to average")
    states = [torch.load(p, map_location="cpu", weights_only=True)["model"] for p in paths]
    averaged = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            averaged[key] = (sum(s[key].double() for s in states) / len(states)).to(last.dtype)
        else:
            averaged[key] = last.clone()
    return averaged
