"""The GPU path of training, checked on CPU (issue 27): every collective's tensors on the training device,
the ranks' validation sharded and gathered to exactly the single-process numbers, the process group's
timeout, no host sync per step, pinned batches on CUDA, and the torch version the code needs."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import sasv.train.validate as validate_module
from sasv.models.conf import build_from_conf, parse_conf
from sasv.runtime.torch_version import MIN_TORCH, TorchVersionError, require_torch
from sasv.train import loop
from sasv.train.asv import speaker_task
from sasv.train.collectives import (
    PROCESS_GROUP_TIMEOUT,
    CollectiveDeviceError,
    Collectives,
    Ranks,
    init_distributed,
)
from sasv.train.confs import AsvTrainConf
from sasv.train.loop import _lr_function, _train_epoch, epoch_loader
from sasv.train.optimizer import build_optimizer
from sasv.train.validate import validation_cm_log_odds
from tests.conftest import REPO_ROOT
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA

TINY_TRAIN = AsvTrainConf(
    epochs=1, batch_size=8, crop_seconds=1.0, initial_lr=0.2, final_lr=0.02, warmup_epochs=0,
    margin_increase_start=0, margin_fix_start=0, aam_scale=20.0, aam_margin=0.2, seed=3, num_workers=0,
)  # fmt: skip


@pytest.mark.parametrize("op", ["all_reduce", "broadcast", "all_gather", "all_gather_rows"])
def test_a_collective_refuses_a_tensor_off_the_training_device(op: str) -> None:
    """What NCCL does with a CPU tensor (it has no CPU backend), the wrapper does on every device, with
    a message naming the collective and both devices; a tensor on the device passes."""
    on_meta = Collectives(torch.device("meta"))
    with pytest.raises(CollectiveDeviceError, match=rf"^{op}: .* is on cpu, not on .*meta"):
        getattr(on_meta, op)(torch.zeros(3))
    on_cpu = Collectives(torch.device("cpu"))  # one process: the identity, after the check
    result = getattr(on_cpu, op)(torch.ones(3))
    assert torch.equal(result[0] if isinstance(result, list) else result, torch.ones(3))
    with pytest.raises(CollectiveDeviceError):
        Collectives(torch.device("cuda", 1)).all_reduce(torch.zeros(1, device="meta"))


def _epoch(train_dir: Path, default_device: str | None = None, batch_size: int = 8) -> dict[str, float]:
    """One epoch of a tiny speaker model on CPU, single process, its collectives through the checking
    wrapper; ``default_device``: where tensors created without ``device=`` land during the epoch's steps
    (the data loader, whose workers' seeds are host tensors, keeps the CPU)."""
    conf = dataclasses.replace(TINY_TRAIN, batch_size=batch_size)
    task = speaker_task(parse_conf(TINY_ECAPA), conf, train_dir)
    optimizer = build_optimizer(task.net, conf)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    steps = -(-len(task.dataset) // conf.batch_size)
    lr_at = _lr_function(conf, steps, 1, len(task.dataset))
    collectives = Collectives(torch.device("cpu"))
    with torch.device(default_device) if default_device else contextlib.nullcontext():
        return _train_epoch(task.net, task, optimizer, scaler, 0, steps, lr_at, collectives)


@pytest.fixture
def host_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """The epoch's batches drawn on the host whatever the default device (as a DataLoader does on a GPU)."""

    real = loop.epoch_loader

    def on_host(*args: object) -> list:
        with torch.device("cpu"):
            return list(real(*args))

    monkeypatch.setattr(loop, "epoch_loader", lambda *args: _Loader(on_host(*args)))


class _Loader(list):
    pin_memory = False


def test_the_epoch_totals_are_created_on_the_training_device(train_dir: Path, host_loader: None) -> None:
    """The per-epoch totals go to all_reduce. Created without ``device=`` they were CPU tensors, which
    NCCL refuses at the end of the first epoch of every multi-GPU run, and gloo (the CPU tests) accepts.
    With the default device moved away from the training device (``meta`` here, as ``cpu`` is away from
    ``cuda`` on a GPU), a tensor created without ``device=`` is off the device, and the wrapper stops it:
    the epoch runs, and gives the numbers it gives without the move."""
    moved = _epoch(train_dir, "meta")
    plain = _epoch(train_dir)
    assert {k: moved[k] for k in ("loss", "accuracy", "lr")} == {
        k: plain[k] for k in ("loss", "accuracy", "lr")
    }
    assert np.isfinite(moved["loss"]) and moved["loss"] > 0


def test_a_step_makes_no_host_sync(train_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a device tensor on the host (``float(loss)``, ``.item()``) waits for the GPU: the loop
    reads the epoch's sums once, after its last step, so the reads do not grow with the steps (9 steps
    read what 5 do; the data loader reads a seed per epoch)."""
    reads: list[str] = []
    for name in ("__float__", "item", "tolist", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original):  # noqa: ANN001, ANN202
            reads.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counted)
    _epoch(train_dir, batch_size=8)
    five_steps, reads[:] = list(reads), []
    _epoch(train_dir, batch_size=4)
    assert reads == five_steps and reads.count("tolist") == 1, (five_steps, reads)


def test_batches_are_pinned_for_cuda_only(train_dir: Path) -> None:
    """Pinned host memory lets the copy to the GPU run without blocking (``non_blocking=True``)."""
    task = speaker_task(parse_conf(TINY_ECAPA), TINY_TRAIN, train_dir)
    assert epoch_loader(task.dataset, [[0, 1]], 0, torch.device("cuda", 0)).pin_memory
    assert not epoch_loader(task.dataset, [[0, 1]], 0, torch.device("cpu")).pin_memory


def test_the_process_group_waits_longer_than_nccls_ten_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 0 still writes checkpoints and logs alone while the others wait: NCCL's default 10 minutes is
    too short for a large run's epoch end, so the group is created with the recipe's timeout."""
    calls: list[tuple] = []
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda *a, **k: calls.append((a, k)))
    init_distributed(torch.device("cpu"), Ranks(0, 2, 0))
    assert calls == [(("gloo",), {"timeout": PROCESS_GROUP_TIMEOUT})]
    assert datetime.timedelta(minutes=10) < PROCESS_GROUP_TIMEOUT


def _tiny_cm() -> torch.nn.Module:
    torch.manual_seed(5)
    return build_from_conf(parse_conf(TINY_AASIST)).eval()


def _validate_rank(rank: int, world_size: int, dev_dir: str, init_file: str, out: str) -> None:
    """One rank of a gloo validation (run by torch.multiprocessing): its log-odds, saved by rank 0."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                         world_size=world_size)  # fmt: skip
    validate_module.VALIDATION_BATCH = 3
    try:
        collectives = Collectives(torch.device("cpu"), rank, world_size)
        log_odds, bonafide = validation_cm_log_odds(_tiny_cm(), dev_dir, torch.device("cpu"), collectives)
        if rank == 0:
            np.savez(out, log_odds=log_odds, bonafide=bonafide)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_validate_their_shares_and_give_the_single_process_numbers(
    train_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world_size: int
) -> None:
    """Every rank scores its share of the dev set in batches, the rows gathered in order: the log-odds are
    bit-identical to one process's (the batches are cut the same whatever the number of ranks), with
    uneven shares (3-utterance batches dealt round-robin)."""
    dev_dir = train_dir.parent / "cm_dev"
    monkeypatch.setattr(validate_module, "VALIDATION_BATCH", 3)
    single, labels = validation_cm_log_odds(_tiny_cm(), dev_dir)
    assert len(single) > 3 * world_size  # every rank has a batch, the last ones fewer
    out = tmp_path / "ranks.npz"
    mp.start_processes(_validate_rank, (world_size, str(dev_dir), str(tmp_path / "init"), str(out)),
                       nprocs=world_size, start_method="spawn")  # fmt: skip
    gathered = np.load(out)
    assert np.array_equal(gathered["log_odds"], single) and np.array_equal(gathered["bonafide"], labels)


def test_an_old_torch_is_one_error_naming_both_versions() -> None:
    """The code calls torch 2.4's APIs; the README keeps a user's own torch, so an older one is refused at
    import of the training code with one line, not an AttributeError mid-run."""
    need = ".".join(map(str, MIN_TORCH))
    with pytest.raises(TorchVersionError, match=rf"torch 2\.3\.1\+cu121 is installed; .* torch >= {need}"):
        require_torch("2.3.1+cu121")
    require_torch(f"{need}.0")
    require_torch("2.13.0a0+git123")
    require_torch()  # this environment's


def test_pyproject_states_the_minimum_the_code_checks() -> None:
    text = (REPO_ROOT / "pyproject.toml").read_text()
    assert re.search(r'"torch>=(\d+\.\d+)"', text)[1] == ".".join(map(str, MIN_TORCH))
