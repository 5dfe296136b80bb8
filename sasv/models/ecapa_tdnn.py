"""ECAPA-TDNN speaker embedding extractor, weight-compatible with TaoRuijie/ECAPA-TDNN ``pretrain.model``.

The SASV 2022 baseline and the DoubleRoc system use Ruijie Tao's ECAPA-TDNN variant (VoxCeleb2, C=1024,
192-d). It differs from the paper and from SpeechBrain's model in ways that change the numbers, so those
differences are reproduced on purpose rather than "fixed":

* every conv is followed by ReLU *then* BatchNorm (conv -> ReLU -> BN), also in the attention branch, which
  additionally has a Tanh after its BN;
* the SE bottleneck is 128 wide whatever ``C`` is, and has no BN;
* the multi-layer aggregation (``layer4``), attention and pooled widths are fixed at 1536 / 4608 / 3072, not
  derived from ``C`` (the small test model with ``C=16`` still has them);
* the global context appended before attention uses the *unbiased* variance over time, while the attentive
  standard deviation uses E_w[x²] - μ²; both are clamped at 1e-4 before the square root.

The SE-Res2Net blocks, the attention network and the attentive statistics are the shared ones of
:mod:`sasv.models.blocks` (UniSpeech's ECAPA head in :mod:`sasv.models.wavlm_ecapa` uses the same). Module and
parameter names mirror the original state dict after the ``speaker_encoder.`` prefix is stripped, so the
``taoruijie_ecapa`` checkpoint format loads strictly with only the front-end renames.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sasv.models.blocks import SERes2Block1d, attention_network, attentive_pooling
from sasv.models.frontend import LogMelFrontend

# The front-end the published model was trained with (torchaudio MelSpectrogram behind pre-emphasis,
# log(mel + 1e-6), per-bin mean removal over time). A conf's ``frontend`` block overrides single fields.
ECAPA_FRONTEND: dict[str, Any] = {
    "sample_rate": 16000,
    "n_fft": 512,
    "win_length": 400,
    "hop_length": 160,
    "f_min": 20.0,
    "f_max": 7600.0,
    "n_mels": 80,
    "pre_emphasis": 0.97,
    "input_scale": 1.0,
    "log_offset": 1e-6,
    "norm": "mean",
}

# Widths hard-coded in the original class (independent of C): they are part of the checkpoint's shapes.
RES2_SCALE = 8
SE_BOTTLENECK = 128
MFA_CHANNELS = 1536
ECAPA_ATTENTION_HIDDEN = 256
ECAPA_STATS_FLOOR = 1e-4


class EcapaTdnn(nn.Module):
    """waveform (B, N) float32 16 kHz -> speaker embedding (B, embedding_dim).

    ``C`` is the TDNN width (1024 for the published model); ``frontend`` overrides fields of
    :data:`ECAPA_FRONTEND`. Embeddings are returned raw (after ``bn6``), not length-normalised: the SASV
    recipes average and score them both raw and L2-normalised, so normalising is the caller's decision.
    """

    def __init__(
        self, C: int = 1024, embedding_dim: int = 192, frontend: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        if C < RES2_SCALE:
            raise ValueError(f"C must be at least the Res2Net scale {RES2_SCALE}, got {C}")
        self.embedding_dim = embedding_dim
        self.frontend = LogMelFrontend(**{**ECAPA_FRONTEND, **(frontend or {})})

        self.conv1 = nn.Conv1d(self.frontend.n_mels, C, kernel_size=5, padding=2)
        self.relu = nn.ReLU()
        self.bn1 = nn.BatchNorm1d(C)
        # TaoRuijie's Bottle2neck = the shared SE-Res2Block with 1x1-conv SE (keys se.se.1 / se.se.3)
        self.layer1 = SERes2Block1d(C, 3, dilation=2, scale=RES2_SCALE, se_bottleneck=SE_BOTTLENECK)
        self.layer2 = SERes2Block1d(C, 3, dilation=3, scale=RES2_SCALE, se_bottleneck=SE_BOTTLENECK)
        self.layer3 = SERes2Block1d(C, 3, dilation=4, scale=RES2_SCALE, se_bottleneck=SE_BOTTLENECK)
        self.layer4 = nn.Conv1d(3 * C, MFA_CHANNELS, kernel_size=1)
        # Attention input: frame features plus their utterance mean and std broadcast over time, so the
        # weights can depend on global context (ECAPA's "context-dependent" pooling).
        self.attention = attention_network(3 * MFA_CHANNELS, ECAPA_ATTENTION_HIDDEN, MFA_CHANNELS, tanh=True)
        self.bn5 = nn.BatchNorm1d(2 * MFA_CHANNELS)
        self.fc6 = nn.Linear(2 * MFA_CHANNELS, embedding_dim)
        self.bn6 = nn.BatchNorm1d(embedding_dim)

    def attentive_statistics(self, x: torch.Tensor) -> torch.Tensor:
        """Channel-wise attention-weighted mean and std over time, (B, C', T) -> (B, 2C').

        The statistics are computed in the original's order (unbiased variance for the context, E[x²] - μ²
        for the pooled std) because the trained ``bn5`` expects exactly those values; the floor under the
        variances keeps the square root finite on silent or constant input. The context is therefore not
        :func:`~sasv.models.blocks.attentive_pooling` with uniform weights (that would be the biased
        one-pass variance); only the pooled statistics are the shared function.
        """
        frames = x.shape[-1]
        mean = x.mean(dim=2, keepdim=True)
        std = torch.sqrt(torch.var(x, dim=2, keepdim=True, correction=1).clamp(min=ECAPA_STATS_FLOOR))
        context = torch.cat((x, mean.expand(-1, -1, frames), std.expand(-1, -1, frames)), dim=1)
        return attentive_pooling(x, self.attention(context), floor=ECAPA_STATS_FLOOR)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform tensor, got shape {tuple(wav.shape)}")
        # Centred STFT reflect-pads n_fft // 2 samples, and one frame has no unbiased variance (NaN
        # embedding): refuse such input with a message instead of a deep torch error or silent NaNs.
        min_samples = max(self.frontend.n_fft // 2 + 1, self.frontend.hop_length)
        if wav.shape[1] < min_samples:
            raise ValueError(
                f"waveform of {wav.shape[1]} samples is too short for ECAPA-TDNN: at least {min_samples} "
                "samples are needed"
            )
        x = self.bn1(self.relu(self.conv1(self.frontend(wav))))
        # Dense-style aggregation: each block sees the sum of the stem and all earlier block outputs.
        x1 = self.layer1(x)
        x2 = self.layer2(x + x1)
        x3 = self.layer3(x + x1 + x2)
        x = self.relu(self.layer4(torch.cat((x1, x2, x3), dim=1)))
        return self.bn6(self.fc6(self.bn5(self.attentive_statistics(x))))
