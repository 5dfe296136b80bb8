"""Learning-rate and margin schedules: held to wespeaker's own schedulers run on the same arguments
(tests/fixtures/wespeaker_schedules.json, tests/fixtures/README.md), end points and argument checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sasv.train.confs import AsvTrainConf, load_train_conf
from sasv.train.loop import _lr_function
from sasv.train.schedules import (
    WESPEAKER_REFERENCE_BATCH,
    lr_scale,
    margin_schedule,
    warmup_exponential_lr,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((REPO_ROOT / "tests/fixtures/wespeaker_schedules.json").read_text())
SPE, EPOCHS, WARMUP = 50, 10, 2  # steps per epoch, epochs, warm-up epochs
INITIAL, FINAL = 0.1, 5e-5


def lr(step: int, warmup_epochs: float = WARMUP) -> float:
    return warmup_exponential_lr(step, SPE, INITIAL, FINAL, EPOCHS, warmup_epochs)


@pytest.mark.parametrize("name", sorted(FIXTURE["lr"]))
def test_lr_is_wespeakers_exponential_decrease(name: str) -> None:
    """Every step's rate as wespeaker's ExponentialDecrease (warm_from_zero) gives it, ``scale_ratio``
    applied to both ends as the loop applies :func:`lr_scale`."""
    case = FIXTURE["lr"][name]
    a = case["args"]
    assert a["warm_from_zero"] is True
    scale = a["scale_ratio"]
    ours = [
        warmup_exponential_lr(
            step,
            a["epoch_iter"],
            a["initial_lr"] * scale,
            a["final_lr"] * scale,
            a["num_epochs"],
            a["warm_up_epoch"],
        )
        for step in range(len(case["lr"]))
    ]
    assert ours == pytest.approx(case["lr"], rel=1e-12, abs=0.0)


def test_the_audits_numbers() -> None:
    """0.1 -> 5e-5 over 150 epochs, 6 warm-up epochs, one process of batch 64: 0.0738 when epoch 7 starts
    (the warm-up's end, the rate already decayed), 0.0132 at epoch 41, not 0.1 and 0.0166."""
    spe = FIXTURE["lr"]["voxceleb_v2_scale1"]["args"]["epoch_iter"]
    assert warmup_exponential_lr(6 * spe, spe, 0.1, 5e-5, 150, 6) == pytest.approx(0.0738, abs=5e-5)
    assert warmup_exponential_lr(40 * spe, spe, 0.1, 5e-5, 150, 6) == pytest.approx(0.0132, abs=5e-5)


def test_the_shipped_voxceleb_conf_trains_at_wespeakers_rates() -> None:
    """conf/train/asv/voxceleb_aam.yaml through the loop's own lr function, on wespeaker's 2 processes:
    every step's rate is the recipe's (examples/voxceleb/v2/conf/resnet.yaml, scale 2 x 128 / 64 = 4)."""
    conf = load_train_conf(REPO_ROOT / "conf/train/asv/voxceleb_aam.yaml", AsvTrainConf)
    case = FIXTURE["lr"]["voxceleb_v2"]
    a = case["args"]
    assert (conf.epochs, conf.initial_lr, conf.final_lr, conf.warmup_epochs, conf.lr_schedule) == (
        a["num_epochs"], a["initial_lr"], a["final_lr"], a["warm_up_epoch"], "warmup_exponential",
    )  # fmt: skip
    assert conf.lr_reference_batch == WESPEAKER_REFERENCE_BATCH
    assert lr_scale(2, conf.batch_size, conf.lr_reference_batch) == a["scale_ratio"]
    lr_at = _lr_function(conf, a["epoch_iter"], 2, num_examples=1000)
    assert [lr_at(s) for s in range(len(case["lr"]))] == pytest.approx(case["lr"], rel=1e-12, abs=0.0)


@pytest.mark.parametrize("case", FIXTURE["scale_ratio"], ids=lambda c: f"{c['world_size']}x{c['batch_size']}")
def test_lr_scale_is_wespeakers_scale_ratio(case: dict) -> None:
    ours = lr_scale(case["world_size"], case["batch_size"], WESPEAKER_REFERENCE_BATCH)
    assert ours == pytest.approx(case["scale_ratio"], rel=1e-15)


def test_lr_scale_without_a_reference_batch_counts_processes() -> None:
    assert lr_scale(8, 24) == 8.0
    assert lr_scale(1, 24) == 1.0


@pytest.mark.parametrize("name", sorted(FIXTURE["margin"]))
def test_margin_is_wespeakers_margin_scheduler(name: str) -> None:
    """The margin every iteration sees, as wespeaker's MarginScheduler sets it (epochs counted from 1);
    the loop passes ``step / steps_per_epoch``."""
    case = FIXTURE["margin"][name]
    a = case["args"]
    ours = [
        margin_schedule(
            step / a["epoch_iter"],
            a["final_margin"],
            a["increase_start_epoch"],
            a["fix_start_epoch"],
            a["increase_type"],
            a["initial_margin"],
        )
        for step in range(len(case["margin"]))
    ]
    assert ours == pytest.approx(case["margin"], rel=1e-12, abs=1e-15)


def test_the_margin_starts_rising_when_epoch_increase_start_begins() -> None:
    """voxceleb v2's increase_start_epoch 20: 0 through epoch 19, above 0 from the second step of epoch 20
    (19 epochs done); fix_start_epoch 40: final from the first step of epoch 40."""
    assert margin_schedule(19.0, 0.2, 20, 40) == 0.0
    assert margin_schedule(18.99, 0.2, 20, 40) == 0.0
    assert margin_schedule(19.01, 0.2, 20, 40) > 0.0
    assert margin_schedule(38.99, 0.2, 20, 40) < 0.2
    assert margin_schedule(39.0, 0.2, 20, 40) == 0.2


def test_shipped_asv_confs_name_the_rise_in_wespeakers_epochs() -> None:
    conf = load_train_conf(REPO_ROOT / "conf/train/asv/voxceleb_aam.yaml", AsvTrainConf)
    case = FIXTURE["margin"]["voxceleb_v2_exp"]["args"]
    assert (conf.margin_increase_start, conf.margin_fix_start, conf.aam_margin) == (
        case["increase_start_epoch"], case["fix_start_epoch"], case["final_margin"],
    )  # fmt: skip


def test_warmup_starts_at_zero_and_rises_linearly() -> None:
    warmup_steps = WARMUP * SPE
    assert lr(0) == 0.0
    rising = [lr(s) for s in range(warmup_steps + 1)]
    decay = [lr(s, warmup_epochs=0) for s in range(warmup_steps + 1)]
    assert [r / d for r, d in zip(rising[1:], decay[1:], strict=True)] == pytest.approx(
        [s / warmup_steps for s in range(1, warmup_steps + 1)], rel=1e-12
    )


def test_decay_is_geometric_from_step_0_to_final_lr_at_the_end() -> None:
    values = [lr(s) for s in range(WARMUP * SPE, SPE * EPOCHS)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert values[1] / values[0] == pytest.approx(values[-1] / values[-2], rel=1e-9)
    assert values[-1] / values[-2] == pytest.approx((FINAL / INITIAL) ** (1 / (SPE * EPOCHS)), rel=1e-12)
    assert lr(SPE * EPOCHS) == pytest.approx(FINAL, rel=1e-12)  # where the decay would end


def test_no_warmup_starts_at_initial_lr() -> None:
    assert lr(0, warmup_epochs=0) == INITIAL


def test_lr_is_a_function_of_the_step_only() -> None:
    """What resuming relies on: the same step gives the same rate, whatever was computed before."""
    last = SPE * EPOCHS - 1
    forward = [lr(s) for s in range(last + 1)]
    backward = [lr(s) for s in reversed(range(last + 1))][::-1]
    assert forward == backward


@pytest.mark.parametrize("increase_type", ["exp", "linear"])
def test_margin_schedule_end_points_and_monotone_rise(increase_type: str) -> None:
    def margin(epoch: float) -> float:
        return margin_schedule(epoch, 0.2, 20, 40, increase_type)

    assert margin(0.0) == 0.0
    assert margin(19.0) == 0.0
    assert margin(39.0) == 0.2
    assert margin(150.0) == 0.2
    rising = [margin(19 + i / 10) for i in range(200)]
    assert all(a < b for a, b in zip(rising, rising[1:], strict=False))
    assert 0.198 < rising[-1] < 0.2  # near the end of the rise (exp ends at 99.9 %, then steps to 0.2)


def test_margin_increase_types_differ_as_documented() -> None:
    assert margin_schedule(29, 0.2, 20, 40, "linear") == pytest.approx(0.1)
    exp_mid = margin_schedule(29, 0.2, 20, 40, "exp")
    assert exp_mid == pytest.approx(0.2 * (1 - (1e-3 / (1 + 1e-6)) ** 0.5))
    assert exp_mid > 0.1  # exp rises fast, then levels off
    assert margin_schedule(29, 0.3, 20, 40, "linear", initial_margin=0.1) == pytest.approx(0.2)


def test_margin_step_when_increase_and_fix_coincide() -> None:
    assert margin_schedule(3.99, 0.3, 5, 5) == 0.0
    assert margin_schedule(4.0, 0.3, 5, 5) == 0.3
    assert margin_schedule(0.0, 0.3, 0, 0) == margin_schedule(0.0, 0.3, 1, 1) == 0.3  # from the start


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
def test_lr_bad_arguments(kwargs: dict, name: str) -> None:
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
        ({"initial_margin": -0.1}, "initial_margin"),
        ({"increase_start_epoch": -1}, "increase_start_epoch"),
        ({"fix_start_epoch": 10}, "fix_start_epoch"),
        ({"increase_type": "cosine"}, "increase_type"),
    ],
)
def test_margin_bad_arguments(kwargs: dict, name: str) -> None:
    args = {
        "epoch_float": 0.0, "final_margin": 0.2, "increase_start_epoch": 20, "fix_start_epoch": 40,
        "increase_type": "exp", **kwargs,
    }  # fmt: skip
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        margin_schedule(**args)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0, 8), "world_size"),
        ((True, 8), "world_size"),
        ((2, 0), "batch_size"),
        ((2, 8, 0), "reference_batch"),
    ],
)
def test_lr_scale_bad_arguments(args: tuple, name: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        lr_scale(*args)
