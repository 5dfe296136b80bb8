"""The optimizer of a training run: which parameters it updates, in which learning-rate groups (the conf's
``freeze``, ``lr_multipliers`` and frozen warm-up ``warmup_freeze``), and each group's rate at a step."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sasv.models.conf import ConfError
from sasv.train.confs import CommonTrainConf


def param_groups(net: nn.Module, conf: CommonTrainConf) -> list[dict[str, Any]]:
    """Trainable parameters grouped by learning-rate multiplier (``lr_scale``); frozen ones (by the conf's
    ``freeze``, or by the model itself: parameters its forward never uses) left out. A
    prefix that matches nothing, or prefixes that freeze every parameter, are refused before the first
    step (the second would otherwise be torch's "empty parameter list")."""
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    unused = set(conf.freeze) | set(conf.lr_multipliers) | set(conf.warmup_freeze)
    for name, param in net.named_parameters():
        frozen = [p for p in conf.freeze if name.startswith(p)]
        unused -= set(frozen)
        if frozen:
            param.requires_grad_(False)
            continue
        if not param.requires_grad:  # the model's own frozen parameters (WavLM's mask_emb): no update
            continue
        matches = sorted((p for p in conf.lr_multipliers if name.startswith(p)), key=len)
        held = [p for p in conf.warmup_freeze if name.startswith(p)]
        unused -= set(matches) | set(held)
        scale = conf.lr_multipliers[matches[-1]] if matches else 1.0
        groups.setdefault((scale, bool(held)), []).append(param)
    if unused:
        raise ConfError(
            f"training conf: freeze/lr_multipliers/warmup_freeze prefix {sorted(unused)[0]!r} matches nothing"
        )
    if not groups:
        raise ConfError(f"training conf: freeze {conf.freeze} freezes every parameter: nothing to train")
    return [
        {"params": params, "lr_scale": scale, "warmup_frozen": held}
        for (scale, held), params in sorted(groups.items())
    ]


def group_lr(group: dict[str, Any], lr: float, epoch: int, conf: CommonTrainConf) -> float:
    """A parameter group's learning rate at ``epoch`` (0-based) when the schedule gives ``lr``: scaled by its
    multiplier, and 0 while a frozen warm-up holds it (``warmup_freeze`` for ``warmup_freeze_epochs``)."""
    if group.get("warmup_frozen") and epoch < conf.warmup_freeze_epochs:
        return 0.0
    return lr * group["lr_scale"]


def build_optimizer(net: nn.Module, conf: CommonTrainConf) -> torch.optim.Optimizer:
    """The conf's SGD (Nesterov) or Adam over :func:`param_groups`; each step sets the groups' rates with
    :func:`group_lr`."""
    groups = param_groups(net, conf)
    if conf.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=conf.initial_lr, momentum=conf.momentum, weight_decay=conf.weight_decay, nesterov=True
        )
    return torch.optim.Adam(groups, lr=conf.initial_lr, weight_decay=conf.weight_decay)
