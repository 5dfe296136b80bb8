"""Building blocks shared by the 2-D ResNet-family speaker embedding extractors.

SE-ResNet-34 (clovaai/voxceleb_trainer ``ResNetSE34V2``), SE-Res2Net-50 and Res2NeXt-50 (the
SASV2022_DoubleRoc team models) are one design: a 3x3 stem conv on the log-mel "image", four residual
stages (the first at stride 1, the others halving frequency and time), attentive statistics pooling over
time of the flattened (channel x frequency) map, and a linear embedding layer. They differ in the residual
block, in the shortcut, in the squeeze-excitation variant and in a pooling BatchNorm, so those are the
parameters here. Res2NeXt's block is the Res2Net block with grouped convs, hence one parametrised block.

The published models have a few quirks that change the numbers and are reproduced on purpose:

* convs are followed by ReLU *then* BatchNorm (conv -> ReLU -> BN), except the last conv of the
  SE basic block's residual branch and the shortcut conv, which have no ReLU (DoubleRoc's Res2Net shortcut
  does put one between its conv and BN);
* the Res2Net blocks add the shortcut without a final ReLU, the SE basic block keeps it;
* the first block of every Res2Net stage (even the stride-1 first stage) processes each split on its own
  and smooths the untouched last split with a 3x3 average pool (zero padding counted).

Module names mirror the original state dicts (``layerN.M.convs.K``, ``se.fc.0``, ``se.se.1``,
``downsample.2``, ``attention.3``...), so checkpoints load strictly with only the front-end renames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Protocol

import torch
from torch import nn

PoolingType = Literal["ASP", "SAP"]

STATS_FLOOR = 1e-5  # variance floor under the attentive std (keeps sqrt's gradient finite)
ATTENTION_HIDDEN = 128  # hidden width of the frame-attention network in all three published models


class SqueezeExciteFC(nn.Module):
    """voxceleb_trainer's ``SELayer``: channel gate from the spatially averaged map through two linears.

    The gate is a ``Sequential`` named ``fc`` (linear, ReLU, linear, sigmoid) because the checkpoint names
    its layers ``se.fc.0`` / ``se.fc.2``; its bottleneck is ``channels // reduction``.
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"SE reduction {reduction} leaves no hidden unit for {channels} channels")
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        gate = self.fc(nn.functional.adaptive_avg_pool2d(x, 1).view(b, c))
        return x * gate.view(b, c, 1, 1)


class SqueezeExciteConv(nn.Module):
    """DoubleRoc's ``SEModule``: the gate uses 1x1 convs with a BatchNorm in a fixed-width bottleneck.

    Unlike :class:`SqueezeExciteFC` the bottleneck width does not scale with the channels (128 in the real
    and the tiny checkpoints alike). The ``Sequential`` is named ``se`` (keys ``se.se.1/3/4``).
    """

    def __init__(self, channels: int, bottleneck: int = 128) -> None:
        super().__init__()
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, bottleneck, kernel_size=1),
            nn.ReLU(),
            nn.BatchNorm2d(bottleneck),
            nn.Conv2d(bottleneck, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.se(x)


def make_shortcut(in_channels: int, out_channels: int, stride: int, relu: bool = False) -> nn.Sequential:
    """1x1 projection shortcut. ``relu`` inserts DoubleRoc Res2Net's ReLU between conv and BN.

    The ReLU shifts the BatchNorm's index in the state dict (``downsample.2`` instead of ``downsample.1``),
    so choosing the wrong variant is caught by the strict checkpoint load.
    """
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)]
    if relu:
        layers.append(nn.ReLU())
    layers.append(nn.BatchNorm2d(out_channels))
    return nn.Sequential(*layers)


class SEBasicBlock(nn.Module):
    """Two 3x3 convs with a squeeze-excitation gate on the residual branch (ResNet-34 style)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        reduction: int = 8,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.se = SqueezeExciteFC(planes, reduction)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.relu(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class Res2NetBottleneck(nn.Module):
    """Res2Net bottleneck (Bottle2neck), with grouped split convs for Res2NeXt (Bottle2neckX).

    The 1x1 conv output is cut into ``scale`` splits of ``width = floor(planes * base_width / 64) *
    cardinality`` channels; each 3x3 conv (``groups=cardinality``) also receives the previous split's output,
    so one block covers several receptive fields. ``first_in_stage`` selects the stage variant (independent
    splits, average-pooled last split) that the original uses for the first block of every stage.
    ``se_bottleneck`` adds DoubleRoc's :class:`SqueezeExciteConv` after the last BN (SE-Res2Net); ``None``
    leaves it out (Res2NeXt).
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        base_width: int,
        scale: int = 4,
        cardinality: int = 1,
        first_in_stage: bool = False,
        se_bottleneck: int | None = None,
    ) -> None:
        super().__init__()
        group_width = math.floor(planes * (base_width / 64.0))
        if group_width < 1 or scale < 1 or cardinality < 1:
            raise ValueError(
                f"Res2Net block with planes={planes}, base_width={base_width}, scale={scale}, "
                f"cardinality={cardinality} has no channels: need planes * base_width >= 64"
            )
        self.width = group_width * cardinality
        self.scale = scale
        self.first_in_stage = first_in_stage
        n_convs = 1 if scale == 1 else scale - 1
        self.conv1 = nn.Conv2d(inplanes, self.width * scale, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.width * scale)
        self.convs = nn.ModuleList(
            nn.Conv2d(
                self.width,
                self.width,
                kernel_size=3,
                stride=stride,
                padding=1,
                groups=cardinality,
                bias=False,
            )
            for _ in range(n_convs)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(self.width) for _ in range(n_convs))
        # the untouched last split must match the strided splits' size in the stage block
        self.pool = (
            nn.AvgPool2d(kernel_size=3, stride=stride, padding=1) if first_in_stage and scale > 1 else None
        )
        self.conv3 = nn.Conv2d(self.width * scale, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.se = SqueezeExciteConv(planes * self.expansion, se_bottleneck) if se_bottleneck else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        splits = torch.split(self.bn1(self.relu(self.conv1(x))), self.width, dim=1)
        outputs: list[torch.Tensor] = []
        carry: torch.Tensor | None = None
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            inp = splits[i] if carry is None or self.first_in_stage else carry + splits[i]
            carry = bn(self.relu(conv(inp)))
            outputs.append(carry)
        if self.scale > 1:
            outputs.append(self.pool(splits[-1]) if self.pool is not None else splits[-1])
        out = self.bn3(self.relu(self.conv3(torch.cat(outputs, dim=1))))
        if self.se is not None:
            out = self.se(out)
        residual = x if self.downsample is None else self.downsample(x)
        return out + residual


class BlockFactory(Protocol):
    """Builds one residual block; ``first_in_stage`` is True for the first block of each stage."""

    def __call__(
        self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None, first_in_stage: bool
    ) -> nn.Module: ...


def conv_output_size(size: int, stride: int) -> int:
    """Output length of a 3x3/pad-1 (or 1x1/pad-0) conv along one axis: ceil(size / stride)."""
    return (size - 1) // stride + 1


class ResNetTrunk(nn.Module):
    """Stem conv and residual stages ``layer1..layerN`` as direct attributes (so keys stay top-level).

    Speaker models subclass this and add their front-end and pooling; :meth:`trunk` maps the normalised
    features (B, 1, n_mels, T) to (B, out_channels, out_freq, T'). The first stage keeps the resolution,
    every later one halves frequency and time. ``expansion`` is the block's output/``planes`` ratio.
    """

    def __init__(
        self,
        block: BlockFactory,
        expansion: int,
        layers: Sequence[int],
        num_filters: Sequence[int],
        n_mels: int,
        shortcut_relu: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != len(num_filters) or not layers:
            raise ValueError(
                f"layers {list(layers)} and num_filters {list(num_filters)} must be non-empty and of the "
                f"same length (one entry per residual stage)"
            )
        if min(layers) < 1 or min(num_filters) < 1:
            raise ValueError(f"layers {list(layers)} and num_filters {list(num_filters)} must be positive")
        self.conv1 = nn.Conv2d(1, num_filters[0], kernel_size=3, stride=1, padding=1)
        self.relu = nn.ReLU()
        self.bn1 = nn.BatchNorm2d(num_filters[0])
        inplanes = num_filters[0]
        out_freq = n_mels
        self.stage_names: list[str] = []
        for i, (num_blocks, planes) in enumerate(zip(layers, num_filters, strict=True)):
            stride = 1 if i == 0 else 2
            out_channels = planes * expansion
            downsample = None
            if stride != 1 or inplanes != out_channels:
                downsample = make_shortcut(inplanes, out_channels, stride, relu=shortcut_relu)
            blocks = [block(inplanes, planes, stride, downsample, True)]
            blocks += [block(out_channels, planes, 1, None, False) for _ in range(1, num_blocks)]
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            inplanes = out_channels
            out_freq = conv_output_size(out_freq, stride)
        self.out_channels = inplanes
        self.out_freq = out_freq

    def trunk(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.relu(self.conv1(feats)))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x


def attention_network(channels: int, hidden: int = ATTENTION_HIDDEN) -> nn.Sequential:
    """Frame-attention weights, softmax over time per channel (keys ``attention.0/2/3``)."""
    return nn.Sequential(
        nn.Conv1d(channels, hidden, kernel_size=1),
        nn.ReLU(),
        nn.BatchNorm1d(hidden),
        nn.Conv1d(hidden, channels, kernel_size=1),
        nn.Softmax(dim=2),
    )


def pooled_dim(channels: int, pooling: PoolingType) -> int:
    return 2 * channels if pooling == "ASP" else channels


def attentive_pooling(x: torch.Tensor, weights: torch.Tensor, pooling: PoolingType) -> torch.Tensor:
    """(B, C, T) frames and their attention weights -> (B, 2C) mean+std ("ASP") or (B, C) mean ("SAP").

    The std is sqrt(E_w[x²] - μ²) with a floor, as in the published models: the two-pass form would be
    more accurate in float32 but give different numbers.
    """
    mu = torch.sum(x * weights, dim=2)
    if pooling == "SAP":
        return mu
    sigma = torch.sqrt((torch.sum(x.pow(2) * weights, dim=2) - mu.pow(2)).clamp(min=STATS_FLOOR))
    return torch.cat((mu, sigma), dim=1)
