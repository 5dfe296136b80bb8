"""Learning-rate and AAM-margin schedules of speaker-embedding training, after wespeaker's schedulers.

They are pure functions of the global step (or of the fractional epoch, ``step / steps_per_epoch``) with no
torch or object state, so a run resumed from a checkpoint gets exactly the values an uninterrupted run
would: the step is all it needs. Steps and epochs are 0-based: step 0 is the first optimizer step, epoch
``e + 0.5`` is half-way through the (e+1)-th epoch.
"""

from __future__ import annotations

import math
from typing import Literal

MARGIN_FLOOR = 1e-3
"""The exponential margin rise follows ``1 - MARGIN_FLOOR ** progress`` (wespeaker's final_val)."""


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


def warmup_exponential_lr(
    step: int,
    steps_per_epoch: int,
    initial_lr: float,
    final_lr: float,
    num_epochs: int,
    warmup_epochs: float,
) -> float:
    """Learning rate at global ``step``: linear warm-up from 0, then exponential decay to ``final_lr``.

    Over the first ``W = round(warmup_epochs * steps_per_epoch)`` steps the rate rises linearly from 0
    (step 0) towards ``initial_lr``, which step ``W`` reaches; from there it decays geometrically so that
    the last step taken, ``num_epochs * steps_per_epoch - 1``, gets exactly ``final_lr`` (later steps stay
    at ``final_lr``). Warming up from 0 keeps the first updates of a randomly initialised network, and of a
    learning rate scaled up for many processes (:func:`scaled_lr`), from blowing it up.
    """
    _check_decay(step, steps_per_epoch, initial_lr, final_lr, num_epochs, warmup_epochs)
    last_step = num_epochs * steps_per_epoch - 1
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    if warmup_steps >= last_step:
        raise ValueError(
            f"warmup_epochs ({warmup_epochs}) must end before the last step ({last_step}) of "
            f"num_epochs={num_epochs} x steps_per_epoch={steps_per_epoch}, to leave room for the decay"
        )
    if step < warmup_steps:
        return initial_lr * step / warmup_steps
    if step >= last_step:
        return float(final_lr)
    progress = (step - warmup_steps) / (last_step - warmup_steps)
    return initial_lr * math.exp(progress * math.log(final_lr / initial_lr))


def margin_schedule(
    epoch_float: float,
    final_margin: float,
    increase_start_epoch: float,
    fix_start_epoch: float,
    increase_type: Literal["exp", "linear"] = "exp",
) -> float:
    """AAM margin at fractional epoch ``epoch_float`` (epochs done so far, ``step / steps_per_epoch``).

    0 before ``increase_start_epoch``, rising to ``final_margin`` at ``fix_start_epoch``, fixed after.
    Training starts without a margin because a margin on an untrained, near-random classifier only slows
    convergence; it is brought in gradually so the loss does not jump. ``"exp"`` rises fast then levels
    off (``(1 - 1e-3 ** p) / (1 - 1e-3)`` of the way at progress ``p``), ``"linear"`` evenly.
    """
    _check_real("epoch_float", epoch_float, 0.0, strict=False)
    _check_real("final_margin", final_margin, 0.0, strict=False)
    if final_margin >= math.pi / 2:
        raise ValueError(f"final_margin must be < pi/2 (what AAMSoftmax accepts), got {final_margin}")
    _check_real("increase_start_epoch", increase_start_epoch, 0.0, strict=False)
    _check_real("fix_start_epoch", fix_start_epoch, 0.0, strict=False)
    if fix_start_epoch < increase_start_epoch:
        raise ValueError(
            f"fix_start_epoch ({fix_start_epoch}) must be >= increase_start_epoch ({increase_start_epoch})"
        )
    if increase_type not in ("exp", "linear"):
        raise ValueError(f"increase_type must be 'exp' or 'linear', got {increase_type!r}")
    if epoch_float < increase_start_epoch:
        return 0.0
    if epoch_float >= fix_start_epoch:
        return float(final_margin)
    progress = (epoch_float - increase_start_epoch) / (fix_start_epoch - increase_start_epoch)
    if increase_type == "linear":
        return final_margin * progress
    return final_margin * (1.0 - MARGIN_FLOOR**progress) / (1.0 - MARGIN_FLOOR)


def scaled_lr(base_lr: float, world_size: int, reference_world_size: int = 1) -> float:
    """``base_lr`` tuned for ``reference_world_size`` processes, scaled to ``world_size`` processes.

    The linear scaling rule (Goyal et al. 2017, "Accurate, large minibatch SGD"): each process keeps its
    batch size, so the global batch, and with it the averaged gradient's noise reduction, grows with the
    number of processes while the number of updates per epoch shrinks by the same factor; multiplying the
    learning rate by ``world_size / reference_world_size`` keeps the progress per epoch about the same.
    wespeaker applies the same rule to the global batch, ``scale_ratio = world_size * batch_size / 64``,
    to both ends of its schedule; here pass the scaled rates as ``initial_lr`` and ``final_lr`` of
    :func:`warmup_exponential_lr`, whose warm-up is what makes a large scaled rate safe to start with.
    """
    _check_real("base_lr", base_lr, 0.0, strict=True)
    _check_int("world_size", world_size, 1)
    _check_int("reference_world_size", reference_world_size, 1)
    return base_lr * world_size / reference_world_size


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
