"""Learning-rate and margin schedules: end points, monotonicity and argument checks."""

from __future__ import annotations

import pytest

from sasv.train.schedules import margin_schedule, scaled_lr, warmup_exponential_lr

SPE, EPOCHS, WARMUP = 50, 10, 2  # steps per epoch, epochs, warm-up epochs
INITIAL, FINAL = 0.1, 5e-5
LAST = SPE * EPOCHS - 1


def lr(step: int, warmup_epochs: float = WARMUP) -> float:
    return warmup_exponential_lr(step, SPE, INITIAL, FINAL, EPOCHS, warmup_epochs)


def test_warmup_starts_at_zero_and_reaches_initial_lr():
    warmup_steps = WARMUP * SPE
    assert lr(0) == 0.0
    assert lr(warmup_steps // 2) == pytest.approx(INITIAL / 2, rel=1e-12)
    assert lr(warmup_steps) == pytest.approx(INITIAL, rel=1e-12)
    rising = [lr(s) for s in range(warmup_steps + 1)]
    assert all(a < b for a, b in zip(rising, rising[1:], strict=False))


def test_last_step_gives_final_lr_and_later_steps_stay_there():
    assert lr(LAST) == pytest.approx(FINAL, rel=1e-9)
    assert lr(LAST - 1) > FINAL
    assert lr(LAST + 100) == FINAL


def test_decay_after_warmup_is_monotone():
    values = [lr(s) for s in range(WARMUP * SPE, LAST + 1)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    # Geometric: equal steps divide the rate by equal factors.
    assert values[1] / values[0] == pytest.approx(values[-1] / values[-2], rel=1e-9)


def test_no_warmup_starts_at_initial_lr():
    assert lr(0, warmup_epochs=0) == pytest.approx(INITIAL, rel=1e-12)
    assert lr(LAST, warmup_epochs=0) == pytest.approx(FINAL, rel=1e-9)


def test_lr_is_a_function_of_the_step_only():
    """What resuming relies on: the same step gives the same rate, whatever was computed before."""
    forward = [lr(s) for s in range(LAST + 1)]
    backward = [lr(s) for s in reversed(range(LAST + 1))][::-1]
    assert forward == backward


@pytest.mark.parametrize("increase_type", ["exp", "linear"])
def test_margin_schedule_end_points_and_monotone_rise(increase_type):
    def margin(epoch: float) -> float:
        return margin_schedule(epoch, 0.2, 20, 40, increase_type)

    assert margin(0.0) == 0.0
    assert margin(19.99) == 0.0
    assert margin(20.0) == 0.0
    assert margin(40.0) == 0.2
    assert margin(150.0) == 0.2
    rising = [margin(20 + i / 10) for i in range(201)]
    assert all(a < b for a, b in zip(rising, rising[1:], strict=False))
    assert rising[-1] == pytest.approx(0.2, rel=1e-12)  # continuous at the fix point


def test_margin_increase_types_differ_as_documented():
    assert margin_schedule(30, 0.2, 20, 40, "linear") == pytest.approx(0.1)
    exp_mid = margin_schedule(30, 0.2, 20, 40, "exp")
    assert exp_mid == pytest.approx(0.2 * (1 - 1e-3**0.5) / (1 - 1e-3))
    assert exp_mid > 0.1  # exp rises fast, then levels off


def test_margin_step_when_increase_and_fix_coincide():
    assert margin_schedule(4.99, 0.3, 5, 5) == 0.0
    assert margin_schedule(5.0, 0.3, 5, 5) == 0.3


def test_scaled_lr_is_linear_in_the_number_of_processes():
    assert scaled_lr(0.1, 8) == 0.8
    assert scaled_lr(0.1, 1) == 0.1
    assert scaled_lr(0.1, 8, reference_world_size=4) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"step": -1}, "step"),
        ({"step": 1.5}, "step"),
        ({"steps_per_epoch": 0}, "steps_per_epoch"),
        ({"initial_lr": 0.0}, "initial_lr"),
        ({"final_lr": -1e-5}, "final_lr"),
        ({"final_lr": 0.2}, "final_lr"),
        ({"num_epochs": 0}, "num_epochs"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
        ({"warmup_epochs": EPOCHS}, "warmup_epochs"),
        ({"initial_lr": float("inf")}, "initial_lr"),
    ],
)
def test_lr_bad_arguments(kwargs, name):
    args = {
        "step": 0, "steps_per_epoch": SPE, "initial_lr": INITIAL, "final_lr": FINAL,
        "num_epochs": EPOCHS, "warmup_epochs": WARMUP, **kwargs,
    }  # fmt: skip
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        warmup_exponential_lr(**args)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"epoch_float": -0.5}, "epoch_float"),
        ({"final_margin": -0.1}, "final_margin"),
        ({"final_margin": 1.6}, "final_margin"),
        ({"increase_start_epoch": -1}, "increase_start_epoch"),
        ({"fix_start_epoch": 10}, "fix_start_epoch"),
        ({"increase_type": "cosine"}, "increase_type"),
    ],
)
def test_margin_bad_arguments(kwargs, name):
    args = {
        "epoch_float": 0.0, "final_margin": 0.2, "increase_start_epoch": 20, "fix_start_epoch": 40,
        "increase_type": "exp", **kwargs,
    }  # fmt: skip
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        margin_schedule(**args)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0.0, 8), "base_lr"),
        ((0.1, 0), "world_size"),
        ((0.1, True), "world_size"),
        ((0.1, 8, 0), "reference_world_size"),
    ],
)
def test_scaled_lr_bad_arguments(args, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        scaled_lr(*args)
