"""UniSpeech's ECAPA-TDNN head on WavLM-Large (:mod:`sasv.models.wavlm`): the speaker model of the SASV 2022
DoubleRoc system (``wavlm_large_finetune.pth``, Vox1-O EER 0.431 %).

Every layer input plus the final (LayerNorm-ed) encoder output - 25 hidden states for Large - are mixed with
learnt softmax weights, +1e-6, instance-normalised over time and fed to an ECAPA-TDNN whose widths follow
UniSpeech's variant (Conv-ReLU-BN order, SE bottleneck 128, 1536-channel aggregation, attention over 1536
channels without global context). The head's SE-Res2Blocks and attentive pooling are the shared
:mod:`sasv.models.blocks` ones; the ``unispeech_wavlm_ecapa`` checkpoint format renames the original keys
onto them. The hidden-state mixing and the head always run in float32 (the pooled standard deviation
E[x^2] - mu^2 cancels catastrophically in half precision, and the head costs little).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sasv.models.blocks import SERes2Block1d, attention_network, attentive_pooling
from sasv.models.wavlm import WavLMConfig, WavLMUpstream, float32_region

# Widths fixed by UniSpeech's ECAPA_TDNN (not constructor arguments there); they shape the checkpoint.
RES2_SCALE = 8
SE_BOTTLENECK = 128
MFA_CHANNELS = 1536
ATTENTION_CHANNELS = 128
WAVLM_ECAPA_STATS_FLOOR = 1e-9  # floor under the attentive variance E_w[x^2] - mu^2
FEATURE_OFFSET = 1e-6  # added to the mixed hidden states before the instance norm, as the original does


class Conv1dReluBn(nn.Module):
    """conv -> ReLU -> BatchNorm (the order the weights were trained with): the head's stem, ``layer1``."""

    def __init__(
        self, in_dim: int, out_dim: int, kernel: int = 1, padding: int = 0, dilation: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, padding=padding, dilation=dilation)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class WavLMEcapa(nn.Module):
    """waveform (B, N) float32 16 kHz -> speaker embedding (B, embedding_dim), not length-normalised.

    ``wavlm``: the WavLM architecture cfg (see :class:`WavLMConfig`; a checkpoint's ``cfg`` dict is accepted
    as is). ``channels``: the ECAPA width (512 in ``ECAPA_TDNN_SMALL``). Rows of a batch must have equal
    length; embed full utterances one at a time.

    The head's SE-Res2Blocks and attentive pooling are the shared :mod:`sasv.models.blocks` ones: UniSpeech's
    ``SE_Res2Block`` computes what TaoRuijie's ECAPA block does, except that its SE gate uses linears where
    TaoRuijie's uses 1x1 convs, and its attention has a Tanh alone where TaoRuijie's has ReLU -> BN -> Tanh
    and global context. The checkpoint format renames the original keys onto them.
    """

    def __init__(self, wavlm: Mapping[str, Any], channels: int = 512, embedding_dim: int = 256) -> None:
        super().__init__()
        if channels % RES2_SCALE:
            # UniSpeech's Res2Conv1dReluBn asserts this; TaoRuijie's block would floor the split width instead
            raise ValueError(f"channels ({channels}) must be a multiple of the Res2 scale {RES2_SCALE}")
        self.cfg = WavLMConfig.from_dict(wavlm)
        self.embedding_dim = embedding_dim
        feat_dim = self.cfg.encoder_embed_dim
        self.feature_weight = nn.Parameter(torch.zeros(self.cfg.encoder_layers + 1))
        self.feature_extract = WavLMUpstream(self.cfg)
        self.instance_norm = nn.InstanceNorm1d(feat_dim)
        self.layer1 = Conv1dReluBn(feat_dim, channels, kernel=5, padding=2)

        def block(dilation: int) -> SERes2Block1d:
            # UniSpeech's SE_Res2Block: linear SE projections (keys se.fc.0 / se.fc.2)
            return SERes2Block1d(channels, 3, dilation, RES2_SCALE, SE_BOTTLENECK, linear_se=True)

        self.layer2 = block(dilation=2)
        self.layer3 = block(dilation=3)
        self.layer4 = block(dilation=4)
        self.conv = nn.Conv1d(3 * channels, MFA_CHANNELS, kernel_size=1)
        # attention over the frames alone (no global context): conv -> tanh -> conv -> softmax over time
        self.attention = attention_network(MFA_CHANNELS, ATTENTION_CHANNELS, relu_bn=False, tanh=True)
        self.bn = nn.BatchNorm1d(2 * MFA_CHANNELS)
        self.linear = nn.Linear(2 * MFA_CHANNELS, embedding_dim)

    def hidden_states(self, wav: torch.Tensor) -> list[torch.Tensor]:
        """The L + 1 WavLM hidden states (B, T, D) of a (B, N) waveform batch (for inspection and tests)."""
        if wav.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform tensor, got shape {tuple(wav.shape)}")
        # The conv stack needs one receptive field per frame; the instance norm needs more than one frame.
        need = self.cfg.min_samples(frames=2)
        if wav.shape[1] < need:
            raise ValueError(f"waveform of {wav.shape[1]} samples is too short: at least {need} are needed")
        return self.feature_extract(wav)

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, D, T) float32: softmax-mixed hidden states, +1e-6, instance-normalised."""
        states = self.hidden_states(wav)
        with float32_region(wav):
            weights = torch.softmax(self.feature_weight.float(), dim=-1)
            mixed = torch.stack([s.float() for s in states]).mul(weights[:, None, None, None]).sum(dim=0)
            return self.instance_norm(mixed.transpose(1, 2) + FEATURE_OFFSET)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = self.features(wav)
        with float32_region(x):
            out1 = self.layer1(x)
            out2 = self.layer2(out1)
            out3 = self.layer3(out2)
            out4 = self.layer4(out3)
            out = F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))
            stats = attentive_pooling(out, self.attention(out), floor=WAVLM_ECAPA_STATS_FLOOR)
            return self.linear(self.bn(stats))
