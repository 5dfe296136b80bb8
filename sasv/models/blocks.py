"""Building blocks shared by every speaker embedding extractor: squeeze-excitation, Res2Net, pooling.

The published models are built from one small set of blocks, so they are implemented once here and
parametrised by what really differs between the originals:

* :class:`SqueezeExcite`: the channel gate x * sigmoid(W2 relu(W1 mean(x))) of all four SE variants
  (voxceleb_trainer's ``SELayer``, DoubleRoc's ``SEModule``, TaoRuijie's ECAPA ``SEModule``, UniSpeech's
  ``SE_Connect``), which differ only in 1x1 convs vs linears (a weight-layout difference), 1-D vs 2-D maps,
  and DoubleRoc's BatchNorm in the bottleneck;
* :class:`Res2Block`: the Res2Net bottleneck (1x1 conv, hierarchical multi-scale convs over channel splits,
  1x1 conv, optional SE, residual), in 1-D with dilation for ECAPA-TDNN (TaoRuijie's ``Bottle2neck`` and
  UniSpeech's ``SE_Res2Block`` are the same computation, see :class:`SERes2Block1d`) and in 2-D with stride
  and conv groups for SE-Res2Net-50 / Res2NeXt-50 (:class:`Res2NetBottleneck`);
* :func:`attention_network` and :func:`attentive_pooling`: frame attention and the attention-weighted
  mean/std used by all five ASV models.

The 2-D ResNet family (SE-ResNet-34 from clovaai/voxceleb_trainer ``ResNetSE34V2``, SE-Res2Net-50 and
Res2NeXt-50 from SASV2022_DoubleRoc) shares a trunk as well (:class:`ResNetTrunk`): a 3x3 stem conv on the
log-mel "image" and four residual stages, the first at stride 1, the others halving frequency and time.

The published models have a few quirks that change the numbers and are reproduced on purpose:

* convs are followed by ReLU *then* BatchNorm (conv -> ReLU -> BN) in every model here, TaoRuijie's and
  UniSpeech's ECAPA included, except the last conv of the SE basic block's residual branch and the shortcut
  conv, which have no ReLU (DoubleRoc's Res2Net shortcut does put one between its conv and BN);
* the Res2Net blocks add the shortcut without a final ReLU, the SE basic block keeps it;
* the first block of every 2-D Res2Net stage (even the stride-1 first stage) processes each split on its
  own and smooths the untouched last split with a 3x3 average pool (zero padding counted);
* the attentive std is sqrt(E_w[x²] - μ²) with a per-model floor, not the two-pass form.

Module names mirror the original state dicts where the originals agree (``layerN.M.convs.K``, ``se.fc.0``,
``se.se.1``, ``downsample.2``, ``attention.3``...); where an original used other names for the same block
(UniSpeech's head), its checkpoint format in :mod:`sasv.models.checkpoints` renames the keys.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Protocol

import torch
from torch import nn

PoolingType = Literal["ASP", "SAP"]


_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_AVG_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


def _check_dims(dims: int) -> None:
    if dims not in _CONV:
        raise ValueError(f"dims must be 1 (B, C, T) or 2 (B, C, F, T), got {dims}")


# ----------------------------------------------------------------------------------------------------------
# Squeeze-excitation
# ----------------------------------------------------------------------------------------------------------


class SqueezeExcite(nn.Module):
    """Channel gate from the spatially averaged map: x * sigmoid(W2 · relu(W1 · mean(x) + b1) + b2).

    One implementation for the four published variants, which compute the same thing and store it
    differently; the arguments select the checkpoint layout:

    * ``linear=True``: the projections are ``nn.Linear`` on the pooled vector, in a ``Sequential`` named
      ``fc`` (keys ``fc.0`` / ``fc.2``): voxceleb_trainer's ``SELayer`` (2-D) and UniSpeech's
      ``SE_Connect`` (1-D, whose ``linear1`` / ``linear2`` keys the checkpoint format renames);
    * ``linear=False``: 1x1 convs (weights with trailing unit kernel dims) in a ``Sequential`` named ``se``
      that starts with the pool (keys ``se.1`` / ``se.3``): TaoRuijie's ECAPA ``SEModule`` (1-D) and, with
      ``batch_norm=True`` (a BatchNorm after the ReLU, so the second conv becomes ``se.4``), DoubleRoc's
      2-D ``SEModule``. ``dims`` picks the conv dimensionality and must match the input.

    The bottleneck width is an argument: voxceleb_trainer derives it from the channels (``channels //
    reduction``), the others fix it (128 in the real and the tiny checkpoints alike). The pooled mean is the
    same number whichever way it is taken (``adaptive_avg_pool`` to size 1 is a mean in torch).
    """

    def __init__(
        self,
        channels: int,
        bottleneck: int,
        *,
        dims: int = 1,
        linear: bool = False,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_dims(dims)
        if bottleneck < 1:
            raise ValueError(f"SE bottleneck must be positive, got {bottleneck} for {channels} channels")
        if linear and batch_norm:
            raise ValueError("no published SE variant has a BatchNorm between linear layers")
        self.linear = linear
        if linear:
            self.fc = nn.Sequential(
                nn.Linear(channels, bottleneck), nn.ReLU(), nn.Linear(bottleneck, channels), nn.Sigmoid()
            )
        else:
            conv = _CONV[dims]
            norm = [_BATCH_NORM[dims](bottleneck)] if batch_norm else []
            self.se = nn.Sequential(
                _AVG_POOL[dims](1),
                conv(channels, bottleneck, kernel_size=1),
                nn.ReLU(),
                *norm,
                conv(bottleneck, channels, kernel_size=1),
                nn.Sigmoid(),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.linear:
            return x * self.se(x)
        spatial = tuple(range(2, x.dim()))
        gate = self.fc(x.mean(dim=spatial))
        return x * gate.view(*gate.shape, *(1 for _ in spatial))


# ----------------------------------------------------------------------------------------------------------
# Res2Net
# ----------------------------------------------------------------------------------------------------------


class Res2Block(nn.Module):
    """Res2Net bottleneck in 1-D or 2-D: 1x1 conv, multi-scale convs over splits, 1x1 conv, SE, + shortcut.

    The 1x1 conv (``conv1``/``bn1``) maps to ``width * scale`` channels, cut into ``scale`` splits of
    ``width``; each of the ``scale - 1`` convs (``convs.i``/``bns.i``, ``groups`` conv groups) also receives
    the previous split's output, so one block covers several receptive fields, and the last split passes
    through untouched (``scale == 1``: one conv, no pass-through). ``conv3``/``bn3`` map back to
    ``out_channels``; ``se`` (if any) gates the result, which is added to ``downsample(x)`` (or ``x``).
    Every conv is conv -> ReLU -> BN and the sum has no final ReLU, as in all published Res2Net models.

    ``first_in_stage`` is the 2-D Res2Net's stage variant: the splits do not feed each other and the
    untouched last split is average-pooled with the convs' stride (3x3, zero padding counted), so that it
    keeps the strided splits' size. ``padding`` keeps the length: (kernel_size // 2) * dilation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int,
        scale: int,
        *,
        dims: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool,
        first_in_stage: bool = False,
        se: nn.Module | None = None,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        _check_dims(dims)
        if width < 1 or scale < 1:
            raise ValueError(
                f"Res2Net block needs positive width and scale, got width={width}, scale={scale}"
            )
        conv, norm = _CONV[dims], _BATCH_NORM[dims]
        self.width = width
        self.scale = scale
        self.first_in_stage = first_in_stage
        n_convs = 1 if scale == 1 else scale - 1
        self.conv1 = conv(in_channels, width * scale, kernel_size=1, bias=bias)
        self.bn1 = norm(width * scale)
        self.convs = nn.ModuleList(
            conv(
                width,
                width,
                kernel_size,
                stride=stride,
                padding=(kernel_size // 2) * dilation,
                dilation=dilation,
                groups=groups,
                bias=bias,
            )
            for _ in range(n_convs)
        )
        self.bns = nn.ModuleList(norm(width) for _ in range(n_convs))
        self.pool = None
        if first_in_stage and scale > 1:
            if dims != 2:
                raise ValueError("the pooled first-in-stage Res2Net variant exists only in 2-D")
            self.pool = nn.AvgPool2d(kernel_size=3, stride=stride, padding=1)
        self.conv3 = conv(width * scale, out_channels, kernel_size=1, bias=bias)
        self.bn3 = norm(out_channels)
        self.relu = nn.ReLU()
        self.se = se
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


class SERes2Block1d(Res2Block):
    """ECAPA-TDNN's SE-Res2Block: a 1-D :class:`Res2Block` with dilated convs and an SE gate, identity skip.

    TaoRuijie's ``Bottle2neck`` and UniSpeech's ``SE_Res2Block`` compute exactly this; they differ only in
    the SE projections' storage (``linear_se``: UniSpeech's linears vs TaoRuijie's 1x1 convs) and in module
    names (UniSpeech's are renamed by its checkpoint format). The split width is floored, as in TaoRuijie's
    code, so ``channels`` need not be a multiple of ``scale`` (UniSpeech's code requires it; see
    :class:`~sasv.models.wavlm_ecapa.WavLMEcapa`).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        dilation: int,
        scale: int = 8,
        se_bottleneck: int = 128,
        linear_se: bool = False,
    ) -> None:
        super().__init__(
            channels,
            channels,
            channels // scale,
            scale,
            dims=1,
            kernel_size=kernel_size,
            dilation=dilation,
            bias=True,
            se=SqueezeExcite(channels, se_bottleneck, linear=linear_se),
        )


class Res2NetBottleneck(Res2Block):
    """DoubleRoc's 2-D Res2Net bottleneck (Bottle2neck), with grouped split convs for Res2NeXt (Bottle2neckX).

    A :class:`Res2Block` with 3x3 bias-free convs, the stride on the split convs and ``planes * 4`` output
    channels; each split is ``floor(planes * base_width / 64) * cardinality`` wide with ``cardinality`` conv
    groups. ``first_in_stage`` selects the stage variant the original uses for the first block of every
    stage. ``se_bottleneck`` adds DoubleRoc's BatchNorm'd conv :class:`SqueezeExcite` after the last BN
    (SE-Res2Net); ``None`` leaves it out (Res2NeXt).
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
        group_width = math.floor(planes * (base_width / 64.0))
        if group_width < 1 or scale < 1 or cardinality < 1:
            raise ValueError(
                f"Res2Net block with planes={planes}, base_width={base_width}, scale={scale}, "
                f"cardinality={cardinality} has no channels: need planes * base_width >= 64"
            )
        out_channels = planes * self.expansion
        se = SqueezeExcite(out_channels, se_bottleneck, dims=2, batch_norm=True) if se_bottleneck else None
        super().__init__(
            inplanes,
            out_channels,
            group_width * cardinality,
            scale,
            dims=2,
            stride=stride,
            groups=cardinality,
            bias=False,
            first_in_stage=first_in_stage,
            se=se,
            downsample=downsample,
        )


# ----------------------------------------------------------------------------------------------------------
# 2-D ResNet family: basic block, shortcut, trunk
# ----------------------------------------------------------------------------------------------------------


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
    """Two 3x3 convs with a squeeze-excitation gate on the residual branch (ResNet-34 style).

    Not a Res2Net block: no channel splits, the second conv has no ReLU and the sum is followed by one.
    The SE gate is voxceleb_trainer's linear one with a ``planes // reduction`` bottleneck.
    """

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
        if planes // reduction < 1:
            raise ValueError(f"SE reduction {reduction} leaves no hidden unit for {planes} channels")
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.se = SqueezeExcite(planes, planes // reduction, dims=2, linear=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.relu(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


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


# ----------------------------------------------------------------------------------------------------------
# Attentive statistics pooling
# ----------------------------------------------------------------------------------------------------------


def attention_network(
    channels: int,
    hidden: int,
    out_channels: int | None = None,
    *,
    relu_bn: bool = True,
    tanh: bool = False,
) -> nn.Sequential:
    """Frame-attention weights: 1x1 conv, hidden activation, 1x1 conv, softmax over time per channel.

    The models differ only in the hidden activation, which is part of their trained math: ReLU -> BN for
    the ResNet family (keys ``attention.0/2/3``), ReLU -> BN -> Tanh for TaoRuijie's ECAPA
    (``attention.0/2/4``), Tanh alone for UniSpeech's head (``attention.0/2``). ``out_channels`` (default
    ``channels``) differs from the input width when the input carries global context (ECAPA).
    """
    activation: list[nn.Module] = [nn.ReLU(), nn.BatchNorm1d(hidden)] if relu_bn else []
    if tanh:
        activation.append(nn.Tanh())
    return nn.Sequential(
        nn.Conv1d(channels, hidden, kernel_size=1),
        *activation,
        nn.Conv1d(hidden, channels if out_channels is None else out_channels, kernel_size=1),
        nn.Softmax(dim=2),
    )


def pooled_dim(channels: int, pooling: PoolingType) -> int:
    """Width of :func:`attentive_pooling`'s output for ``channels`` input channels."""
    return 2 * channels if pooling == "ASP" else channels


def attentive_pooling(
    x: torch.Tensor, weights: torch.Tensor, pooling: PoolingType = "ASP", *, floor: float
) -> torch.Tensor:
    """(B, C, T) frames and their attention weights -> (B, 2C) mean+std ("ASP") or (B, C) mean ("SAP").

    The std is sqrt(max(E_w[x²] - μ², floor)), as in all published models: the two-pass form would be more
    accurate in float32 but give different numbers. The floor keeps the square root finite on constant input
    and is part of each model (ResNets 1e-5, TaoRuijie's ECAPA 1e-4, UniSpeech's 1e-9).
    """
    mu = torch.sum(x * weights, dim=2)
    if pooling == "SAP":
        return mu
    sigma = torch.sqrt((torch.sum(x.pow(2) * weights, dim=2) - mu.pow(2)).clamp(min=floor))
    return torch.cat((mu, sigma), dim=1)
