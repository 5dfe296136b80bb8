"""ResNet-family speaker embedding extractors used by the SASV 2022 DoubleRoc system.

* :class:`SEResNet34`: clovaai/voxceleb_trainer ``ResNetSE34V2`` (``baseline_v2_ap.model``), as DoubleRoc runs
  it: the float waveform is multiplied by 32768 first, because the 2020 trainer fed int16-scaled audio.
* :class:`SERes2Net50`: DoubleRoc ``Res2Net50V2`` (SE-Res2Net bottlenecks, ``res2net50v2.model``).
* :class:`Res2NeXt50`: DoubleRoc ``Res2NeXt50`` (grouped Res2Net bottlenecks, no SE, ``res2next50.model``).

All three share :mod:`sasv.models.blocks`; the classes only choose the block, the shortcut and SE variant,
the pooling BatchNorm and the published front-end. Parameter names mirror the original state dicts, so the
checkpoint formats only rename the torchaudio front-end buffers. Widths are never inferred from a
checkpoint: a conf whose widths do not match its file fails the strict load with the offending keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sasv.models.blocks import (
    BlockFactory,
    PoolingType,
    Res2NetBottleneck,
    ResNetTrunk,
    SEBasicBlock,
    attention_network,
    attentive_pooling,
    pooled_dim,
)
from sasv.models.frontend import LogMelFrontend

_MEL_COMMON: dict[str, Any] = {
    "sample_rate": 16000,
    "n_fft": 512,
    "win_length": 400,
    "hop_length": 160,
    "pre_emphasis": 0.97,
    "log_offset": 1e-6,
}

# Front-ends the published checkpoints were trained with; a conf's ``frontend`` block overrides fields.
SE_RESNET34_FRONTEND: dict[str, Any] = {
    **_MEL_COMMON,
    "f_min": 0.0,
    "f_max": None,  # sample_rate / 2
    "n_mels": 64,
    "input_scale": 32768.0,
    "norm": "instance",
}
SE_RES2NET50_FRONTEND: dict[str, Any] = {
    **_MEL_COMMON,
    "f_min": 0.0,
    "f_max": None,
    "n_mels": 80,
    "input_scale": 1.0,
    "norm": "instance",
}
RES2NEXT50_FRONTEND: dict[str, Any] = {
    **_MEL_COMMON,
    "f_min": 20.0,
    "f_max": 7600.0,
    "n_mels": 64,
    "input_scale": 1.0,
    "norm": "mean",
}

POOLING_TYPES = ("ASP", "SAP")
RESNET_ATTENTION_HIDDEN = 128  # hidden width of the ResNet family's frame-attention network
# the ResNet family's variance floor under the attentive std (keeps sqrt's gradient finite)
RESNET_STATS_FLOOR = 1e-5


class ResNetSpeakerEmbedding(ResNetTrunk):
    """waveform (B, N) float32 16 kHz -> speaker embedding (B, embedding_dim), for any residual block.

    The last stage's (channels x frequency) map is flattened into one feature vector per frame and pooled
    over time with attentive statistics; the attention width is therefore ``channels * out_freq``, which is
    what the checkpoints store. Embeddings are not length-normalised: the recipe scores both ways.
    """

    def __init__(
        self,
        block: BlockFactory,
        expansion: int,
        layers: Sequence[int],
        num_filters: Sequence[int],
        embedding_dim: int,
        encoder_type: PoolingType,
        frontend: dict[str, Any],
        shortcut_relu: bool = False,
        pooling_bn: bool = False,
    ) -> None:
        if encoder_type not in POOLING_TYPES:
            raise ValueError(f"encoder_type must be one of {POOLING_TYPES}, got {encoder_type!r}")
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be positive, got {embedding_dim}")
        feature_extractor = LogMelFrontend(**frontend)
        super().__init__(
            block, expansion, layers, num_filters, feature_extractor.n_mels, shortcut_relu=shortcut_relu
        )
        self.frontend = feature_extractor
        self.embedding_dim = embedding_dim
        self.encoder_type = encoder_type
        frame_dim = self.out_channels * self.out_freq
        self.attention = attention_network(frame_dim, RESNET_ATTENTION_HIDDEN)
        stats_dim = pooled_dim(frame_dim, encoder_type)
        self.pooling_bn = nn.BatchNorm1d(stats_dim) if pooling_bn else None
        self.fc = nn.Linear(stats_dim, embedding_dim)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = self.trunk(self.frontend(wav).unsqueeze(1))
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        stats = attentive_pooling(x, self.attention(x), self.encoder_type, floor=RESNET_STATS_FLOOR)
        if self.pooling_bn is not None:
            stats = self.pooling_bn(stats)
        return self.fc(stats)


class SEResNet34(ResNetSpeakerEmbedding):
    """voxceleb_trainer ResNetSE34V2: SE basic blocks, ASP, 512-d (``baseline_v2_ap.model``)."""

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        num_filters: Sequence[int] = (32, 64, 128, 256),
        embedding_dim: int = 512,
        encoder_type: PoolingType = "ASP",
        se_reduction: int = 8,
        frontend: dict[str, Any] | None = None,
    ) -> None:
        def block(
            inplanes: int, planes: int, stride: int, downsample: nn.Module | None, first_in_stage: bool
        ) -> nn.Module:
            return SEBasicBlock(inplanes, planes, stride, downsample, reduction=se_reduction)

        super().__init__(
            block,
            SEBasicBlock.expansion,
            layers,
            num_filters,
            embedding_dim,
            encoder_type,
            {**SE_RESNET34_FRONTEND, **(frontend or {})},
        )


class Res2NetSpeakerEmbedding(ResNetSpeakerEmbedding):
    """DoubleRoc's Res2Net family: Res2Net bottlenecks, ASP, pooling BatchNorm before the embedding layer.

    ``net_scale`` is the number of Res2Net splits. The original classes size the attention and pooling
    layers as ``num_filters[-1] * n_mels / 8 * net_scale``, which equals the real channel count only because
    net_scale equals the bottleneck expansion (4); with any other value the original cannot run, so it is
    refused here rather than silently "fixed" into an architecture no checkpoint has.
    """

    def __init__(
        self,
        layers: Sequence[int],
        num_filters: Sequence[int],
        embedding_dim: int,
        net_scale: int,
        base_width: int,
        cardinality: int,
        se_bottleneck: int | None,
        shortcut_relu: bool,
        encoder_type: PoolingType,
        frontend: dict[str, Any],
    ) -> None:
        if net_scale != Res2NetBottleneck.expansion:
            expansion = Res2NetBottleneck.expansion
            raise ValueError(
                f"net_scale must be {expansion}, got {net_scale}: the published Res2Net50V2 and "
                f"Res2NeXt50 size their attention/pooling layers with net_scale in place of the bottleneck "
                f"expansion ({expansion}), so only net_scale={expansion} is a model the original code can run"
            )

        def block(
            inplanes: int, planes: int, stride: int, downsample: nn.Module | None, first_in_stage: bool
        ) -> nn.Module:
            return Res2NetBottleneck(
                inplanes,
                planes,
                stride,
                downsample,
                base_width=base_width,
                scale=net_scale,
                cardinality=cardinality,
                first_in_stage=first_in_stage,
                se_bottleneck=se_bottleneck,
            )

        super().__init__(
            block,
            Res2NetBottleneck.expansion,
            layers,
            num_filters,
            embedding_dim,
            encoder_type,
            frontend,
            shortcut_relu=shortcut_relu,
            pooling_bn=True,
        )


class SERes2Net50(Res2NetSpeakerEmbedding):
    """DoubleRoc Res2Net50V2: SE-Res2Net bottlenecks (base width 24), 80 mels, 512-d."""

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        num_filters: Sequence[int] = (32, 64, 128, 128),
        embedding_dim: int = 512,
        net_scale: int = 4,
        base_width: int = 24,
        se_bottleneck: int = 128,
        encoder_type: PoolingType = "ASP",
        frontend: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            layers,
            num_filters,
            embedding_dim,
            net_scale,
            base_width,
            cardinality=1,
            se_bottleneck=se_bottleneck,
            shortcut_relu=True,
            encoder_type=encoder_type,
            frontend={**SE_RES2NET50_FRONTEND, **(frontend or {})},
        )


class Res2NeXt50(Res2NetSpeakerEmbedding):
    """DoubleRoc Res2NeXt50: Res2Net bottlenecks with ``cardinality`` conv groups, no SE, 64 mels, 256-d.

    The original hard-codes 64 mels in its front-end while its ``n_mels`` argument sizes the attention;
    here both come from the front-end, so they cannot disagree.
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        num_filters: Sequence[int] = (32, 64, 128, 128),
        embedding_dim: int = 256,
        net_scale: int = 4,
        base_width: int = 4,
        cardinality: int = 8,
        encoder_type: PoolingType = "ASP",
        frontend: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            layers,
            num_filters,
            embedding_dim,
            net_scale,
            base_width,
            cardinality=cardinality,
            se_bottleneck=None,
            shortcut_relu=False,
            encoder_type=encoder_type,
            frontend={**RES2NEXT50_FRONTEND, **(frontend or {})},
        )
