"""SSL-AASIST (Tak et al., Odyssey 2022; TakHemlata/SSL_Anti-spoofing ``model.py``): a self-supervised
front end (wav2vec 2.0 XLS-R 300M, fine-tuned) under AASIST's graph back end.

The front end is a choice of the conf (``front_end.family``), not a second model family: XLS-R
(``wav2vec2``, the released LA and DF checkpoints) or WavLM (``wavlm``, e.g. WavLM-Large,
``conf/cm/wavlm_aasist.yaml``), both :mod:`sasv.models.wavlm`'s network. Its last hidden state (fairseq's
``features_only`` output: the final LayerNorm-ed encoder output) is projected to ``projection_dim`` (128)
by ``LL`` and read by the back end as a one-channel (feature, frame) map:

* a (3, 3) max pool, BatchNorm and SELU, then AASIST's six residual stages without their time pools (50
  frames/s are already few), BatchNorm and SELU again (``first_bn1``);
* the spectral nodes (``projection_dim // 3`` = 42) are the encoder map averaged over time with attention
  weights (a softmax over frames of a small 1x1-conv network, ``attention``), the temporal nodes the map
  averaged over the feature axis with the same network's softmax over features; AASIST itself takes
  maxima of absolute values instead;
* then AASIST's spectro-temporal graph back end (:class:`sasv.models.aasist.GraphBackEnd`) unchanged.

Module and parameter names follow the original one to one (``ssl_model.model.*`` is the fairseq
``Wav2Vec2Model``, whose nn.Sequential indices the ``ssl_aasist`` checkpoint format renames), so that the
released ``LA_model.pth`` / ``Best_LA_model_for_DF.pth`` state dicts load strictly. The quirk of the
original residual block (``conv1`` reads the block input, ``bn1`` is computed and discarded) is AASIST's,
kept the same way.

The released models score with the raw bona fide logit ``logits[:, 1]`` (``main_SSL_LA.py``); the recipe's
P_CM is ``softmax(logits)[:, 1]`` like every CM's, and the ASVspoof 2021 evaluation reads the logit
column of the score file to reproduce the published numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sasv.models.aasist import GraphBackEnd, residual_encoder
from sasv.models.wavlm import FAMILIES, WavLMConfig, WavLMUpstream

__all__ = ["SSLAASIST", "front_end_config"]

#: SSL-AASIST's back end widths, fixed in the original ``Model`` (not arguments there).
ENCODER_CHANNELS = ((1, 32), (32, 32), (32, 64), (64, 64))
ATTENTION_CHANNELS = 128


def front_end_config(front_end: Mapping[str, Any]) -> tuple[str, WavLMConfig]:
    """``front_end`` conf block -> (family, validated architecture): ``family`` (wav2vec2 | wavlm) and the
    architecture fields of that family's cfg (:meth:`WavLMConfig.from_dict`)."""
    if not isinstance(front_end, Mapping) or "family" not in front_end:
        raise ValueError(f"front_end needs a 'family' ({' or '.join(FAMILIES)}) and its architecture fields")
    cfg = dict(front_end)
    family = cfg.pop("family")
    if family not in FAMILIES:
        raise ValueError(f"front_end.family must be {' or '.join(FAMILIES)}, got {family!r}")
    return family, WavLMConfig.from_dict(cfg, family=family)


class SSLAASIST(GraphBackEnd):
    """waveform (B, N) float32 16 kHz -> logits (B, 2), index 1 = bona fide.

    ``front_end``: the self-supervised encoder (see :func:`front_end_config`); ``projection_dim``: the width
    ``LL`` projects its output to (the spectral graph has ``projection_dim // 3`` nodes, 42 for 128);
    ``gat_dims``, ``pool_ratios``, ``temperatures``: as AASIST's (the original fixes them to [64, 32],
    [0.5] * 4, [2, 2, 100, 100]); ``nb_samp``: the input length the weights were trained on (64,600),
    recorded, not enforced.
    """

    def __init__(
        self,
        front_end: Mapping[str, Any],
        projection_dim: int = 128,
        gat_dims: Sequence[int] = (64, 32),
        pool_ratios: Sequence[float] = (0.5, 0.5, 0.5, 0.5),
        temperatures: Sequence[float] = (2.0, 2.0, 100.0, 100.0),
        nb_samp: int = 64600,
    ) -> None:
        super().__init__()
        if projection_dim < 3:
            raise ValueError(f"projection_dim must be at least 3 (the (3, 3) pool), got {projection_dim}")
        if len(gat_dims) != 2 or len(pool_ratios) != 4 or len(temperatures) != 4:
            raise ValueError("gat_dims takes 2 widths, pool_ratios and temperatures 4 values each")
        self.family, self.cfg = front_end_config(front_end)
        self.nb_samp = int(nb_samp)
        enc_dim = ENCODER_CHANNELS[-1][1]
        self.ssl_model = WavLMUpstream(self.cfg)
        self.LL = nn.Linear(self.cfg.encoder_embed_dim, projection_dim)
        self.first_bn = nn.BatchNorm2d(1)
        self.first_bn1 = nn.BatchNorm2d(enc_dim)
        self.drop = nn.Dropout(0.5)
        self.drop_way = nn.Dropout(0.2)
        self.selu = nn.SELU()
        self.encoder = residual_encoder(ENCODER_CHANNELS, time_pool=False)
        self.attention = nn.Sequential(
            nn.Conv2d(enc_dim, ATTENTION_CHANNELS, kernel_size=(1, 1)),
            nn.SELU(),
            nn.BatchNorm2d(ATTENTION_CHANNELS),
            nn.Conv2d(ATTENTION_CHANNELS, enc_dim, kernel_size=(1, 1)),
        )
        self.build_graph_back_end(enc_dim, projection_dim // 3, gat_dims, pool_ratios, temperatures)

    @property
    def min_samples(self) -> int:
        """The shortest input: three frames, what the back end's (3, 3) pool needs."""
        return self.cfg.min_samples(frames=3)

    def ssl_features(self, x: Tensor) -> Tensor:
        """(B, N) -> (B, T, D): the front end's last hidden state (fairseq's ``features_only`` ``x``)."""
        if x.dim() != 2:
            raise ValueError(f"SSL-AASIST expects a (batch, samples) waveform tensor, got {tuple(x.shape)}")
        if x.shape[1] < self.min_samples:
            raise ValueError(f"waveform of {x.shape[1]} samples is too short: at least {self.min_samples}")
        return self.ssl_model(x, last_only=True)[-1]

    def forward_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, N) waveforms -> (last_hidden (B, 5 * gat_dims[1]), logits (B, 2))."""
        x = self.LL(self.ssl_features(x)).transpose(1, 2).unsqueeze(1)  # (B, 1, projection_dim, T)
        x = self.selu(self.first_bn(F.max_pool2d(x, (3, 3))))
        x = self.selu(self.first_bn1(self.encoder(x)))  # (B, C, spectral nodes, frames)
        w = self.attention(x)
        e_S = torch.sum(x * F.softmax(w, dim=-1), dim=-1)  # attention over frames -> (B, C, spectral nodes)
        e_T = torch.sum(x * F.softmax(w, dim=-2), dim=-2)  # attention over features -> (B, C, frames)
        return self.graph_logits(e_S, e_T)
