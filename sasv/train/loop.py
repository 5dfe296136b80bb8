"""The training loop both trainers share: torchrun ranks, resumable epoch checkpoints, logs and curves.

A kind of training (:mod:`sasv.train.asv`: speaker classifier; :mod:`sasv.train.cm`: countermeasure) hands
:func:`run_training` a :class:`TrainingTask`: the model with its loss head, the dataset, what identifies
the run, and optional hooks (a value set before every step, such as the AAM margin; a validation after
every epoch, such as the dev CM-EER). Everything else is here, once:

* the state at the end of every epoch (model, head, optimizer, scaler, epoch, the epoch's log row, the
  training conf, the task's identity and the world size) is written atomically to
  ``<out>/checkpoints/epoch_<n>.pt`` (a full disk is one error naming it); a re-run resumes from the last
  one and refuses one whose steps would differ, naming what differs (:func:`resume_differences`);
* everything random is derived from (seed, epoch, ...): the data order and crops (:mod:`sasv.train.data`)
  and torch's generator, re-seeded every epoch (dropout), so a resumed run continues exactly as an
  uninterrupted one; learning rates are functions of the step (:mod:`sasv.train.schedules`);
* under torchrun every process trains on its share of each epoch with gradients averaged by
  DistributedDataParallel (gloo on CPU, NCCL on GPUs), learning rates scaled linearly with the number of
  processes (with the global batch, ``world_size * batch_size / lr_reference_batch``, when the conf sets
  ``lr_reference_batch``: wespeaker's rule); every rank validates its share of the dev set (the scores
  gathered on rank 0), rank 0 writes checkpoints, ``train_log.csv`` and ``train_curves.png``, after
  checking that every rank holds the same weights and that the epoch drew every example exactly once;
* every collective goes through :class:`~sasv.train.collectives.Collectives`, which refuses a tensor that
  is not on the training device (NCCL has no CPU backend; the CPU tests' gloo would not notice);
* a step makes no host sync: batches are copied from pinned memory without blocking (on CUDA), the loss and
  accuracy sums stay on the device and are read once, at the end of the epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from sasv.models.conf import ConfError, ModelConf, init_checkpoint_spec, load_init_checkpoint
from sasv.progress import progress_bar
from sasv.train.collectives import Collectives, Ranks
from sasv.train.confs import CommonTrainConf
from sasv.train.data import CropDataset, epoch_order
from sasv.train.epoch_checkpoints import checkpoint_path, last_checkpoint
from sasv.train.export import save_torch_file
from sasv.train.optimizer import build_optimizer, group_lr
from sasv.train.schedules import lr_scale, warmup_cosine_lr, warmup_exponential_lr
from sasv.train.training_log import append_epoch_row, read_training_log

log = logging.getLogger(__name__)

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
COMMON_FIELDS = ("epoch", "loss", "accuracy", "lr")
TIMING_FIELDS = ("samples_per_s", "seconds")
LR_SCHEDULES = {"warmup_exponential": warmup_exponential_lr, "cosine": warmup_cosine_lr}


class ModelWithLoss(nn.Module):
    """The model and its loss head as one module, so one DistributedDataParallel syncs both; the head
    returns (loss, accuracy) for the model's output and the labels."""

    def __init__(self, model: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.model(x), labels)


@dataclass
class TrainingTask:
    """What one kind of training gives the loop.

    ``identity`` (e.g. the class names, the train list's fingerprint) is stored in every checkpoint and
    must match on resume, entry by entry (:data:`IDENTITY_WORDS` says what each is, for the message).
    ``before_step(net, epoch_float)`` sets per-step values on the net (the AAM margin) and returns them for
    the log; ``after_epoch(model, epoch, collectives)`` runs on every rank after each epoch (validation,
    each rank its share) and returns more log columns, complete on rank 0 (the other ranks' are ignored).
    ``extra_fields`` names the columns the two hooks add, in log order.
    """

    conf: CommonTrainConf
    net: ModelWithLoss
    dataset: CropDataset
    identity: dict[str, Any]
    extra_fields: tuple[str, ...] = ()
    before_step: Callable[[ModelWithLoss, float], dict[str, float]] | None = None
    after_epoch: Callable[[nn.Module, int, Collectives], dict[str, float]] | None = None
    plot_labels: dict[str, str] = field(default_factory=dict)
    # the model has parameters some forward passes never use (AASIST keeps clovaai's unused bn1 layers):
    # DistributedDataParallel must then look for them after every backward pass
    unused_parameters: bool = False

    @property
    def log_fields(self) -> tuple[str, ...]:
        return (*COMMON_FIELDS, *self.extra_fields, *TIMING_FIELDS)


def model_identity(model_conf: ModelConf) -> str:
    """sha256 of a model conf's architecture, arguments and front-end (not its name or checkpoint): a
    resumed run must build the same network. Arguments that change no shape (a front-end's ``f_min``)
    would load into another network without complaint."""
    described = {"arch": model_conf.arch, "args": model_conf.args, "frontend": model_conf.frontend}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def run_training(task: TrainingTask, out_dir: str | Path, device: torch.device, ranks: Ranks) -> Path:
    """Train ``task`` to its conf's last epoch under ``out_dir``; return the last epoch checkpoint.

    Resumes from the last epoch checkpoint (a finished run returns at once). Call :func:`init_distributed`
    first under torchrun (the task's net must be built after it, with the same seed on every rank).
    """
    conf, out_dir = task.conf, Path(out_dir)
    if conf.init_checkpoint is not None:
        # a fresh run starts from its weights; a resumed one only takes its training setup (its dropouts)
        init = init_checkpoint_spec(conf.init_checkpoint, "train.init_checkpoint")
        fresh = last_checkpoint(out_dir) is None
        digest = load_init_checkpoint(task.net.model, init, Path.cwd(), weights=fresh)
        if fresh:
            log.info("%s initialised from %s (sha256 %s)", init.module, init.checkpoint.path, digest)
    set_gradient_checkpointing(task.net, conf.gradient_checkpointing)
    net = task.net.to(device)
    optimizer = build_optimizer(net, conf)
    scaler = torch.amp.GradScaler(device.type, enabled=conf.precision == "fp16")
    steps_per_epoch = _steps_per_epoch(len(task.dataset), ranks.world_size, conf.batch_size)
    lr_at = _lr_function(conf, steps_per_epoch, ranks.world_size, len(task.dataset))
    start_epoch = _resume(out_dir, task, optimizer, scaler, device, ranks.world_size)
    collectives = Collectives(device, ranks.rank, ranks.world_size)
    trained: nn.Module = net
    if ranks.distributed:
        trained = DistributedDataParallel(
            net,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=task.unused_parameters,
        )
    for epoch in range(start_epoch, conf.epochs):
        row = _train_epoch(trained, task, optimizer, scaler, epoch, steps_per_epoch, lr_at, collectives)
        if ranks.distributed:
            _agree(net, collectives)
        if task.after_epoch is not None:  # every rank scores its share
            validated = task.after_epoch(net.model, epoch, collectives)
            net.train()
            if ranks.rank == 0:
                row.update(validated)
        if ranks.rank == 0:
            state = {
                "epoch": epoch + 1,
                "model": net.model.state_dict(),
                "head": net.head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "identity": task.identity,
                "train_conf": dataclasses.asdict(conf),
                "world_size": ranks.world_size,
                "log": row,
            }
            save_torch_file(state, checkpoint_path(out_dir, epoch + 1))
            append_epoch_row(out_dir, row, task.log_fields)
            _plot_log(out_dir, task)
            shown = ", ".join(f"{k} {row[k]:.4g}" for k in task.log_fields[1:] if k not in TIMING_FIELDS)
            log.info("epoch %d/%d: %s, %.1f samples/s", epoch + 1, conf.epochs, shown, row["samples_per_s"])
        collectives.barrier()
    last = last_checkpoint(out_dir)
    assert last is not None
    return last


def _steps_per_epoch(num_examples: int, world_size: int, batch_size: int) -> int:
    """Optimizer steps per epoch: each process's share of the examples (:func:`epoch_order`), in batches."""
    return math.ceil(math.ceil(num_examples / world_size) / batch_size)


def _lr_function(
    conf: CommonTrainConf, steps_per_epoch: int, world_size: int, num_examples: int
) -> Callable[[int], float]:
    """The learning rate of a global step; the schedule checks what depends on the data size too. Both
    ends of the schedule are scaled by :func:`~sasv.train.schedules.lr_scale` (the conf's
    ``lr_reference_batch``), as wespeaker's ``scale_ratio`` scales its whole schedule."""
    schedule = LR_SCHEDULES[conf.lr_schedule]
    scale = lr_scale(world_size, conf.batch_size, conf.lr_reference_batch)
    lr_range = (conf.initial_lr * scale, conf.final_lr * scale)

    def lr_at(step: int) -> float:
        return schedule(step, steps_per_epoch, *lr_range, conf.epochs, conf.warmup_epochs)

    try:
        lr_at(0)
    except ValueError as e:
        raise ConfError(f"training conf with {num_examples} examples: {e}") from None
    return lr_at


def set_gradient_checkpointing(net: nn.Module, enabled: bool) -> None:
    """Switch activation recomputation on in every module that offers it (the transformer encoders of
    :mod:`sasv.models.wavlm`); asking for it from a model without one is a conf error, not a no-op."""
    modules = [m for m in net.modules() if hasattr(m, "gradient_checkpointing")]
    if enabled and not modules:
        raise ConfError(
            "training conf: gradient_checkpointing: true, but this model has no layer that offers it"
        )
    for module in modules:
        module.gradient_checkpointing = enabled


def _resume(
    out_dir: Path,
    task: TrainingTask,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    world_size: int,
) -> int:
    """Load the last epoch checkpoint into the task's net and ``optimizer``; the epoch to start from.

    A checkpoint made by another setup is refused, naming every difference (:func:`resume_differences`):
    resuming it would give a run that is neither the one it began nor the one asked for."""
    resume = last_checkpoint(out_dir)
    if resume is None:
        return 0
    state = torch.load(resume, map_location=device, weights_only=True)
    differences = resume_differences(state, task, world_size)
    if differences:
        raise ConfError(
            f"{resume}: made with another training setup, so it cannot be resumed: "
            f"{'; '.join(differences)}. Resume with the setup the run began with, or use another output dir "
            f"(or delete {resume.parent})"
        )
    task.net.model.load_state_dict(state["model"])
    task.net.head.load_state_dict(state["head"])
    optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    log.info("resuming from %s (epoch %d of %d)", resume, state["epoch"], task.conf.epochs)
    return state["epoch"]


IDENTITY_WORDS = {
    "classes": "the class list",
    "train_list": "the train list (its utterance ids or their labels)",
    "model": "the model conf's architecture, arguments or front-end",
    "augmentation": "the augmentation files (the MUSAN and RIR lists)",
    "dev_list": "the dev set (its utterances or labels), whose CM-EERs select the exported epochs",
}
"""What each entry of a task's ``identity`` is, in words, for the message that refuses a resume."""


def resume_differences(state: dict[str, Any], task: TrainingTask, world_size: int) -> list[str]:
    """Why the checkpoint ``state`` cannot be resumed by ``task`` on ``world_size`` processes; [] if it can.

    A resumed run must take exactly the steps the interrupted run would have taken (the tests hold a
    resumed run to the weights of an uninterrupted one), so anything that changes a step is refused:

    * the world size: each process's share of an epoch (:func:`epoch_order` deals the examples round-robin),
      so the steps per epoch and every batch, and the learning-rate scale (:func:`lr_scale`);
    * the task's identity (:data:`IDENTITY_WORDS`): the classes, the train list, the model conf, the
      augmentation files, a CM run's dev set; an entry the checkpoint does not record (made by an older
      version) cannot be compared and is not;
    * every training conf key, but for those the conf class lists in ``resume_may_change`` (they change no
      step: ``num_workers``, whose workers draw nothing of their own, since every crop is a function of
      seed, epoch and index; a CM run's export rule, read after the last step), and ``epochs``.

    ``epochs`` may grow (or shrink, down to the epochs done) only where that leaves the learning rate of
    every step already taken unchanged. Both schedules span the whole run (the exponential decay and the
    cosine reach ``final_lr`` at the last step of the last epoch), so with ``initial_lr > final_lr`` more
    epochs give every earlier step another rate: 6 epochs resumed as 8 would be a run that decayed as if
    it had 6 epochs, then decayed again over the rest, neither the 6-epoch nor the 8-epoch run. That is
    refused, saying so, rather than adapted (rescaling the rest of the schedule would be a third schedule
    no conf describes). A rate that does not decay (``initial_lr == final_lr``: the warm-up depends on
    ``warmup_epochs`` only) is the same at every step whatever ``epochs`` says, and the run is extended
    exactly; so is an AAM margin, whose schedule does not depend on ``epochs`` either. The device is not
    checked: another device rounds differently, but takes the same steps.
    """
    conf = task.conf
    differences = []
    recorded_world_size = state.get("world_size", 1)
    if recorded_world_size != world_size:
        differences.append(
            f"world size: {recorded_world_size} in the checkpoint, {world_size} now (each process's share "
            f"of an epoch, the steps per epoch and the learning-rate scale depend on it; launch "
            f"{recorded_world_size} process(es) in all, e.g. --nproc_per_node {recorded_world_size} on one "
            f"node)"
        )
    recorded = state.get("identity") or {}
    for key in sorted(set(recorded) & set(task.identity)):
        if recorded[key] != task.identity[key]:
            differences.append(f"{IDENTITY_WORDS.get(key, key)} differs from the checkpoint's")
    old, new = state.get("train_conf") or {}, dataclasses.asdict(conf)
    for key in sorted(set(old) | set(new)):
        if old.get(key, "(absent)") == new.get(key, "(absent)") or key in conf.resume_may_change:
            continue
        change = f"train.{key}: {old.get(key, '(absent)')} in the checkpoint, {new.get(key, '(absent)')} now"
        if key == "epochs" and isinstance(old.get(key), int):
            why = _epochs_change_problem(task, old[key], int(state["epoch"]), world_size)
            if why is not None:
                differences.append(f"{change}: {why}")
            continue
        differences.append(change)
    return differences


def _epochs_change_problem(task: TrainingTask, old_epochs: int, done: int, world_size: int) -> str | None:
    """Why ``task.conf.epochs`` cannot replace ``old_epochs`` after ``done`` epochs (None: it can): see
    :func:`resume_differences`."""
    conf = task.conf
    if conf.epochs < done:
        return f"the checkpoint is already after epoch {done}"
    num_examples = len(task.dataset)
    steps_per_epoch = _steps_per_epoch(num_examples, world_size, conf.batch_size)
    try:
        before = _lr_function(dataclasses.replace(conf, epochs=old_epochs), steps_per_epoch, world_size,
                              num_examples)  # fmt: skip
    except (ValueError, ConfError) as e:
        return f"the conf with the checkpoint's epochs is not valid ({e})"
    now = _lr_function(conf, steps_per_epoch, world_size, num_examples)
    for step in range(done * steps_per_epoch):
        if before(step) != now(step):
            return (
                f"the {conf.lr_schedule} learning-rate schedule spans every epoch, so the "
                f"{done * steps_per_epoch} steps already taken would have had other learning rates (step "
                f"{step}: {now(step):.6g}, not {before(step):.6g}); a run of {conf.epochs} epochs is a new "
                f"run (another output dir), unless its rate does not decay (initial_lr = final_lr)"
            )
    return None


def _agree(net: nn.Module, collectives: Collectives) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics are per process) and check that the
    parameters agree on every rank: a checkpoint is the state of all of them."""
    for buffer in net.buffers():
        collectives.broadcast(buffer, 0)
    digest = torch.stack([p.detach().double().sum() for p in net.parameters()])
    gathered = collectives.all_gather(digest)
    if not all(torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError("the ranks' parameters differ after an epoch: gradients were not synchronised")
    log.info("parameters identical on all %d ranks", collectives.world_size)


def epoch_loader(
    dataset: CropDataset, batches: list[list[int]], num_workers: int, device: torch.device
) -> DataLoader:
    """The epoch's batches; in pinned host memory when training on CUDA, so that the copy to the GPU
    (``non_blocking=True``) overlaps the previous step instead of waiting for it."""
    return DataLoader(
        dataset, batch_sampler=batches, num_workers=num_workers, pin_memory=device.type == "cuda"
    )


def _train_epoch(
    trained: nn.Module,
    task: TrainingTask,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    epoch: int,
    steps_per_epoch: int,
    lr_at: Callable[[int], float],
    collectives: Collectives,
) -> dict[str, float]:
    """One epoch of this rank's share; the row of the log, with totals over every rank.

    No step waits for the device: the batch is copied from pinned memory without blocking (CUDA), and the
    loss and accuracy sums accumulate on the device in float64 (each the float32 value times the batch
    size, as exact as a Python float was), read once after the last step. On CPU the sums are the very
    numbers the per-step ``float(loss)`` gave."""
    conf, dataset, device = task.conf, task.dataset, collectives.device
    rank, world_size = collectives.rank, collectives.world_size
    dataset.set_epoch(epoch)
    torch.manual_seed(conf.seed * 100_003 + epoch * 1_009 + rank)  # dropout: a function of epoch, rank
    order = epoch_order(len(dataset), epoch, conf.seed, rank, world_size)
    batches = [order[i : i + conf.batch_size].tolist() for i in range(0, len(order), conf.batch_size)]
    loader = epoch_loader(dataset, batches, conf.num_workers, device)
    pin = loader.pin_memory
    trained.train()
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, examples
    examples = 0
    lr, values = 0.0, {}
    amp = AMP_DTYPES.get(conf.precision)
    start = time.perf_counter()
    join = trained.join() if isinstance(trained, DistributedDataParallel) else contextlib.nullcontext()
    with join, progress_bar(len(batches), desc=f"epoch {epoch + 1}/{conf.epochs}", unit="batch") as bar:
        for step_in_epoch, (x, y) in enumerate(loader):
            lr = lr_at(epoch * steps_per_epoch + step_in_epoch)
            for group in optimizer.param_groups:
                group["lr"] = group_lr(group, lr, epoch, conf)
            if task.before_step is not None:
                values = task.before_step(task.net, epoch + step_in_epoch / steps_per_epoch)
            with torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
                loss, accuracy = trained(x.to(device, non_blocking=pin), y.to(device, non_blocking=pin))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # fp32 and bf16: the scaler is disabled and changes nothing
            scaler.step(optimizer)
            scaler.update()
            totals[0] += loss.detach().double() * len(y)
            totals[1] += torch.as_tensor(accuracy, dtype=torch.float64, device=device).detach() * len(y)
            examples += len(y)
            bar.update(1)
    totals[2] = examples
    loss_sum, correct, drawn = collectives.all_reduce(totals).tolist()  # the epoch's one host sync
    if int(drawn) != len(dataset):
        raise RuntimeError(f"epoch {epoch + 1} drew {int(drawn)} examples for {len(dataset)}")
    seconds = time.perf_counter() - start
    return {
        "epoch": epoch + 1,
        "loss": loss_sum / drawn,
        "accuracy": correct / drawn,
        "lr": lr,
        **values,
        "samples_per_s": drawn / seconds,
        "seconds": seconds,
    }


def _plot_log(out_dir: Path, task: TrainingTask) -> None:
    """``train_curves.png``: one panel per logged quantity against the epoch."""
    from sasv.reports.figures import plot_training_log

    columns = read_training_log(out_dir)
    panels = {k: task.plot_labels.get(k, k) for k in task.log_fields[1:] if k not in TIMING_FIELDS}
    plot_training_log(columns, panels, out_dir / "train_curves.png")
