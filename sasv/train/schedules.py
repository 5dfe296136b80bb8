"""Learning-rate and AAM-margin schedules of speaker-embedding training, held to wespeaker's schedulers.

:func:`warmup_exponential_lr` is wespeaker's ``ExponentialDecrease`` with ``warm_from_zero`` (the voxceleb
v2 recipe), :func:`lr_scale` the ``scale_ratio`` its ``train.py`` applies to it, and :func:`margin_schedule`
its ``MarginScheduler`` (wenet-e2e/wespeaker, ``wespeaker/utils/schedulers.py``); the tests hold all three
to numbers that code produced when run (``tests/fixtures/wespeaker_schedules.json``).

They are pure functions of the global step (or of the fractional epoch, ``step / steps_per_epoch``) with no
torch or object state, so a run resumed from a checkpoint gets exactly the values an uninterrupted run
would: the step is all it needs. Steps and fractional epochs are 0-based: step 0 is the first optimizer
step, ``epoch_float = e + 0.5`` is half-way through the (e+1)-th epoch. Epoch numbers *in a conf*
(``margin_increase_start``, ``margin_fix_start``) count from 1, as wespeaker's do.
"""

from __future__ import annotations

import math
from typing import Literal

MARGIN_FLOOR = 1e-3
"""The exponential margin rise is ``1 - (MARGIN_FLOOR / (1 + 1e-6)) ** progress`` of the way (wespeaker's
``final_val / (initial_val + 1e-6)``): 99.9 % at the end of the rise, the rest a step at the fix epoch."""

WESPEAKER_REFERENCE_BATCH = 64
"""wespeaker's ``train.py`` takes a global batch of 64 as the base of its learning rates."""


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_real(name: str, value: float, minimum: float, strict: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {minimum}, got {value!r}")


def _check_decay(
    step: int, steps_per_epoch: int, initial_lr: float, final_lr: float, num_epochs: int, warmup_epochs: float
) -> None:
    """The arguments every decaying learning-rate schedule takes, checked once."""
    _check_int("step", step, 0)
    _check_int("steps_per_epoch", steps_per_epoch, 1)
    _check_int("num_epochs", num_epochs, 1)
    _check_real("initial_lr", initial_lr, 0.0, strict=True)
    _check_real("final_lr", final_lr, 0.0, strict=True)
    if final_lr > initial_lr:
        raise ValueError(f"final_lr ({final_lr}) must be <= initial_lr ({initial_lr}): this schedule decays")
    _check_real("warmup_epochs", warmup_epochs, 0.0, strict=False)
    if warmup_epochs >= num_epochs:
        raise ValueError(f"warmup_epochs ({warmup_epochs}) must end before num_epochs ({num_epochs})")


def warmup_exponential_lr(
    step: int,
    steps_per_epoch: int,
    initial_lr: float,
    final_lr: float,
    num_epochs: int,
    warmup_epochs: float,
) -> float:
    """Learning rate at global ``step``: an exponential decay over the whole run, times a linear warm-up.

    ``initial_lr * (final_lr / initial_lr) ** (step / T)`` with ``T = num_epochs * steps_per_epoch``, so
    the decay starts at step 0 and would reach ``final_lr`` at step ``T`` (the last step taken, ``T - 1``,
    gets a hair more); over the first ``W = warmup_epochs * steps_per_epoch`` steps it is multiplied by
    ``step / W``, rising linearly from 0. This is wespeaker's ``ExponentialDecrease`` with
    ``warm_from_zero: True`` as its voxceleb v2 recipe runs it: the rate at the end of the warm-up is
    already decayed (0.0738 at epoch 6 of 150 for 0.1 -> 5e-5), not ``initial_lr``. Warming up from 0 keeps
    the first updates of a randomly initialised network, and of a rate scaled up for a large global batch
    (:func:`lr_scale`), from blowing it up. Pass the scaled rates as ``initial_lr`` and ``final_lr``:
    scaling both is what wespeaker's ``scale_ratio`` does.
    """
    _check_decay(step, steps_per_epoch, initial_lr, final_lr, num_epochs, warmup_epochs)
    total_steps = num_epochs * steps_per_epoch
    warmup_steps = warmup_epochs * steps_per_epoch
    warmup = step / warmup_steps if step < warmup_steps else 1.0
    return warmup * initial_lr * math.exp(step / total_steps * math.log(final_lr / initial_lr))


def margin_schedule(
    epoch_float: float,
    final_margin: float,
    increase_start_epoch: float,
    fix_start_epoch: float,
    increase_type: Literal["exp", "linear"] = "exp",
    initial_margin: float = 0.0,
) -> float:
    """AAM margin at fractional epoch ``epoch_float`` (epochs done so far, ``step / steps_per_epoch``).

    wespeaker's ``MarginScheduler``, whose epochs count from 1: ``initial_margin`` until epoch
    ``increase_start_epoch`` begins (``epoch_float = increase_start_epoch - 1``), rising from there to
    ``final_margin`` when epoch ``fix_start_epoch`` begins, fixed after (0 and 1 both mean "from the first
    step"). Training starts without a margin because a margin on an untrained, near-random classifier only
    slows convergence; it is brought in gradually so the loss does not jump. ``"exp"`` rises fast then
    levels off (:data:`MARGIN_FLOOR`), ``"linear"`` evenly.
    """
    _check_real("epoch_float", epoch_float, 0.0, strict=False)
    for name, margin in (("initial_margin", initial_margin), ("final_margin", final_margin)):
        _check_real(name, margin, 0.0, strict=False)
        if margin >= math.pi / 2:
            raise ValueError(f"{name} must be < pi/2 (what AAMSoftmax accepts), got {margin}")
    _check_real("increase_start_epoch", increase_start_epoch, 0.0, strict=False)
    _check_real("fix_start_epoch", fix_start_epoch, 0.0, strict=False)
    if fix_start_epoch < increase_start_epoch:
        raise ValueError(
            f"fix_start_epoch ({fix_start_epoch}) must be >= increase_start_epoch ({increase_start_epoch})"
        )
    if increase_type not in ("exp", "linear"):
        raise ValueError(f"increase_type must be 'exp' or 'linear', got {increase_type!r}")
    rise_start, fix_start = increase_start_epoch - 1, fix_start_epoch - 1  # as epochs done so far
    if epoch_float >= fix_start:
        return float(final_margin)
    if epoch_float < rise_start:
        return float(initial_margin)
    progress = (epoch_float - rise_start) / (fix_start - rise_start)
    if increase_type == "linear":
        ratio = progress
    else:
        ratio = 1.0 - math.exp(progress * math.log(MARGIN_FLOOR / (1.0 + 1e-6)))
    return initial_margin + (final_margin - initial_margin) * ratio


def lr_scale(world_size: int, batch_size: int, reference_batch: int | None = None) -> float:
    """The factor on ``initial_lr`` and ``final_lr`` for ``world_size`` processes of ``batch_size`` each.

    With ``reference_batch`` the rates are tuned for a global batch of that many examples and scale with
    the global batch, ``world_size * batch_size / reference_batch``: wespeaker's ``scale_ratio`` (its
    ``train.py`` takes 64 as the base, :data:`WESPEAKER_REFERENCE_BATCH`), so its voxceleb recipe, batch 128
    on 2 GPUs, trains at 4 x 0.1. Without it (None) the rates are tuned for one process's batch and scale
    with the number of processes only. Either way the linear scaling rule (Goyal et al. 2017, "Accurate,
    large minibatch SGD"): a larger global batch averages away more gradient noise and takes fewer updates
    per epoch, and a proportionally larger rate keeps the progress per epoch about the same.
    """
    _check_int("world_size", world_size, 1)
    _check_int("batch_size", batch_size, 1)
    if reference_batch is None:
        return float(world_size)
    _check_int("reference_batch", reference_batch, 1)
    return world_size * batch_size / reference_batch


def warmup_cosine_lr(
    step: int,
    steps_per_epoch: int,
    initial_lr: float,
    final_lr: float,
    num_epochs: int,
    warmup_epochs: float = 0.0,
) -> float:
    """Learning rate at global ``step``: linear warm-up from 0 over ``warmup_epochs``, then half a cosine
    from ``initial_lr`` down towards ``final_lr``.

    Without warm-up this is clovaai/aasist's schedule (a ``LambdaLR`` stepped after every optimizer step):
    ``final + (initial - final) * (1 + cos(pi * step / total)) / 2`` with ``total = num_epochs *
    steps_per_epoch``, so step 0 gets ``initial_lr`` and the rate approaches ``final_lr`` at the end.
    """
    _check_decay(step, steps_per_epoch, initial_lr, final_lr, num_epochs, warmup_epochs)
    total = num_epochs * steps_per_epoch
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    if warmup_steps >= total:
        raise ValueError(f"warmup_epochs ({warmup_epochs}) must end before the last of {total} steps")
    if step < warmup_steps:
        return initial_lr * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total - warmup_steps))
    return final_lr + (initial_lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
