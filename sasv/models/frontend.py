"""Log-mel front-ends in plain torch.

The published ASV checkpoints were trained with torchaudio's ``MelSpectrogram`` behind a pre-emphasis
conv. torchaudio cannot be installed beside every torch build, so this module re-implements exactly that
computation (periodic Hamming window centred in the FFT frame, reflect padding, power spectrum, HTK mel
filters without normalisation) and keeps the same buffers, so a checkpoint's stored window and filterbank
are what the model uses after a strict load.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

FeatureNorm = Literal["mean", "instance", "none"]


def hz_to_mel_htk(freq: float) -> float:
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """HTK triangular filters as a (n_freqs, n_mels) float32 matrix.

    Computed in float32 with the same operation order as torchaudio's ``melscale_fbanks``: a float64
    formula differs by ~6e-6, which is visible in parity tests against the published models.
    """
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel_htk(f_min), hz_to_mel_htk(f_max), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.min(down, up), min=0.0)


class LogMelFrontend(nn.Module):
    """waveform (B, N) -> normalised log-mel features (B, n_mels, 1 + N // hop).

    Buffers (``preemphasis_filter``, ``window``, ``mel_fb``) mirror torchaudio's, so checkpoints that stored
    them load strictly and their stored values win over the ones computed here.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        f_min: float = 20.0,
        f_max: float | None = 7600.0,
        n_mels: int = 80,
        pre_emphasis: float = 0.97,
        input_scale: float = 1.0,
        log_offset: float = 1e-6,
        norm: FeatureNorm = "mean",
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if norm not in ("mean", "instance", "none"):
            raise ValueError(f"unknown feature normalisation {norm!r}: use 'mean', 'instance' or 'none'")
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.input_scale = input_scale
        self.log_offset = log_offset
        self.norm = norm
        self.norm_eps = norm_eps
        self.n_mels = n_mels
        self.register_buffer(
            "preemphasis_filter", torch.tensor([[[-pre_emphasis, 1.0]]], dtype=torch.float32)
        )
        self.register_buffer("window", torch.hamming_window(win_length, periodic=True))
        f_max = float(sample_rate // 2) if f_max is None else f_max
        self.register_buffer("mel_fb", mel_filterbank(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate))

    def power_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Pre-emphasis and power mel spectrogram (B, n_mels, T), before the log."""
        x = wav * self.input_scale if self.input_scale != 1.0 else wav
        x = F.conv1d(F.pad(x.unsqueeze(1), (1, 0), mode="reflect"), self.preemphasis_filter).squeeze(1)
        spec = torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.abs().pow(2.0)
        return torch.matmul(power.transpose(-1, -2), self.mel_fb).transpose(-1, -2)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=wav.device.type, enabled=False):
            feats = torch.log(self.power_mel(wav.float()) + self.log_offset)
            if self.norm == "mean":
                feats = feats - feats.mean(dim=-1, keepdim=True)
            elif self.norm == "instance":
                feats = F.instance_norm(feats, eps=self.norm_eps)
        return feats
