"""Record wespeaker's own learning-rate and margin schedules (the fixture's oracle).

Run once, beside a checkout of wespeaker (its schedulers need only the standard library; nothing of
wespeaker is imported but ``wespeaker/utils/schedulers.py``, loaded from its file, and one expression of
``wespeaker/bin/train.py``, read with ``ast``):

    git clone https://github.com/wenet-e2e/wespeaker
    python tests/oracles/record_wespeaker_schedules.py --wespeaker wespeaker \\
        --commit $(git -C wespeaker rev-parse HEAD) --out tests/fixtures/wespeaker_schedules.json

It drives the schedulers as ``wespeaker/utils/executor.py`` does, ``scheduler.step(cur_iter)`` and
``margin_scheduler.step(cur_iter)`` before every batch, with a stand-in optimizer (one param group) and a
stand-in model whose ``projection.update(margin=...)`` records the margin, and stores the rate and margin
every iteration sees (full precision) with the arguments of each case. ``scale_ratio`` is the expression
``train.py`` assigns to ``configs['scheduler_args']['scale_ratio']``, evaluated for a few world sizes and
batch sizes. No inputs are random. Only numbers are committed; wespeaker's code stays outside the repository.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import platform
import sys
from pathlib import Path

# ExponentialDecrease(num_epochs, epoch_iter, initial_lr, final_lr, warm_up_epoch, scale_ratio,
# warm_from_zero)
LR_CASES = {
    # examples/voxceleb/v2/conf/resnet.yaml on its 2 GPUs x batch 128 (scale 4), 4 iterations an epoch
    "voxceleb_v2": dict(num_epochs=150, epoch_iter=4, initial_lr=0.1, final_lr=0.00005, warm_up_epoch=6,
                        scale_ratio=4.0, warm_from_zero=True),
    # the same on one process of batch 64 (scale 1): the audit's 0.0738 at epoch 6, 0.0132 at epoch 40
    "voxceleb_v2_scale1": dict(num_epochs=150, epoch_iter=2, initial_lr=0.1, final_lr=0.00005,
                               warm_up_epoch=6, scale_ratio=1.0, warm_from_zero=True),
    "short": dict(num_epochs=10, epoch_iter=7, initial_lr=0.05, final_lr=0.0001, warm_up_epoch=2,
                  scale_ratio=0.5, warm_from_zero=True),
    "no_warmup": dict(num_epochs=6, epoch_iter=5, initial_lr=0.2, final_lr=0.02, warm_up_epoch=0,
                      scale_ratio=2.0, warm_from_zero=True),
}  # fmt: skip

# MarginScheduler(epoch_iter, increase_start_epoch, fix_start_epoch, initial_margin, final_margin,
# increase_type), run for `epochs` epochs
MARGIN_CASES = {
    "voxceleb_v2_exp": dict(epoch_iter=2, increase_start_epoch=20, fix_start_epoch=40, initial_margin=0.0,
                            final_margin=0.2, increase_type="exp", epochs=42),
    "voxceleb_v2_linear": dict(epoch_iter=2, increase_start_epoch=20, fix_start_epoch=40, initial_margin=0.0,
                               final_margin=0.2, increase_type="linear", epochs=42),
    "short_exp_initial": dict(epoch_iter=5, increase_start_epoch=4, fix_start_epoch=12, initial_margin=0.1,
                              final_margin=0.3, increase_type="exp", epochs=14),
    "step": dict(epoch_iter=3, increase_start_epoch=5, fix_start_epoch=5, initial_margin=0.0,
                 final_margin=0.3, increase_type="exp", epochs=7),
    "from_the_start_0": dict(epoch_iter=3, increase_start_epoch=0, fix_start_epoch=0, initial_margin=0.0,
                             final_margin=0.2, increase_type="exp", epochs=2),
    "rise_from_epoch_1": dict(epoch_iter=4, increase_start_epoch=1, fix_start_epoch=3, initial_margin=0.0,
                              final_margin=0.2, increase_type="exp", epochs=4),
}  # fmt: skip

SCALE_CASES = [(1, 128), (2, 128), (8, 32), (1, 16), (3, 24)]  # (world_size, batch_size per process)


class _Optimizer:
    def __init__(self) -> None:
        self.param_groups = [{"lr": 0.0}]


class _Projection:
    def __init__(self) -> None:
        self.margin = None

    def update(self, margin: float) -> None:
        self.margin = margin


class _Model:
    def __init__(self) -> None:
        self.projection = _Projection()


def _load_schedulers(root: Path):
    path = root / "wespeaker" / "utils" / "schedulers.py"
    spec = importlib.util.spec_from_file_location("wespeaker_schedulers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scale_ratio_expression(root: Path) -> tuple[str, ast.expr]:
    """The right-hand side of ``configs['scheduler_args']['scale_ratio'] = ...`` in ``train.py``."""
    tree = ast.parse((root / "wespeaker" / "bin" / "train.py").read_text())
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any("'scale_ratio'" in ast.unparse(t) for t in node.targets)
    ]
    if len(found) != 1:
        raise SystemExit(f"expected one assignment to scale_ratio in train.py, found {len(found)}")
    return ast.unparse(found[0]), found[0].value


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wespeaker", required=True, type=Path, help="a wespeaker checkout (its root)")
    parser.add_argument("--commit", required=True, help="the checkout's git commit (recorded)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    schedulers = _load_schedulers(args.wespeaker)

    lr = {}
    for name, case in LR_CASES.items():
        optimizer = _Optimizer()
        scheduler = schedulers.ExponentialDecrease(optimizer, **case)
        values = []
        for cur_iter in range(case["num_epochs"] * case["epoch_iter"]):
            scheduler.step(cur_iter)
            values.append(scheduler.get_lr())
        lr[name] = {"args": case, "lr": values}

    margin = {}
    for name, case in MARGIN_CASES.items():
        case = dict(case)
        epochs = case.pop("epochs")
        model = _Model()
        scheduler = schedulers.MarginScheduler(model=model, update_margin=True, **case)
        values = []
        for cur_iter in range(epochs * case["epoch_iter"]):
            scheduler.step(cur_iter)
            values.append(float(scheduler.get_margin()))
        margin[name] = {"args": {**case, "epochs": epochs}, "margin": values}

    source, expression = _scale_ratio_expression(args.wespeaker)
    code = compile(ast.Expression(expression), "train.py", "eval")
    scale = [
        {
            "world_size": world_size,
            "batch_size": batch_size,
            "scale_ratio": eval(
                code, {"world_size": world_size, "configs": {"dataloader_args": {"batch_size": batch_size}}}
            ),  # noqa: E501, S307
        }
        for world_size, batch_size in SCALE_CASES
    ]

    out = {
        "oracle": "wenet-e2e/wespeaker wespeaker/utils/schedulers.py (ExponentialDecrease, MarginScheduler), "
        "wespeaker/bin/train.py (scale_ratio)",
        "commit": args.commit,
        "environment": {"python": platform.python_version()},
        "recorder": "tests/oracles/record_wespeaker_schedules.py",
        "note": "iterations are wespeaker's cur_iter = (epoch - 1) * epoch_iter + i, 0-based; values are "
        "what the optimizer and the projection hold for that iteration's batch",
        "scale_ratio_source": source,
        "scale_ratio": scale,
        "lr": lr,
        "margin": margin,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
