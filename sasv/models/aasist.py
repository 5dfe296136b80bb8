"""AASIST spoofing countermeasure (Jung et al., ICASSP 2022), as released in clovaai/aasist.

The module and parameter names follow clovaai's ``models/AASIST.py`` one to one, so that the official
``AASIST.pth`` / ``AASIST-L.pth`` state dicts load strictly with the ``clovaai_aasist`` (plain) format.
AASIST and AASIST-L are the same network; only the constructor arguments (widths, pooling ratios) differ.

The numbers must match the released code, not the paper, so two of its quirks are kept on purpose:

* in every residual block but the first, ``bn1`` (and the SELU after it) is computed and then thrown away
  by the original, whose ``conv1`` reads the block input directly. ``bn1`` therefore exists (its weights are
  in the checkpoint) but is never applied here.
* all four heterogeneous layers use ``temperatures[2]`` and all four of their pools use ``pool_ratios[2]``;
  ``temperatures[3]`` and ``pool_ratios[3]`` are accepted (they are in the public configs) and unused.

Only inference is reproduced faithfully: the training-time frequency masking of the sinc filters
(``Freq_aug``) is not implemented.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "AASIST",
    "GraphAttentionLayer",
    "GraphBackEnd",
    "GraphPool",
    "HeterogeneousGraphAttentionLayer",
    "ResidualBlock",
    "SincConv",
    "bona_fide_probability",
    "residual_encoder",
    "sinc_band_pass_filters",
]

BONA_FIDE_INDEX = 1


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595 * np.log10(1 + hz / 700)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700 * (10 ** (mel / 2595) - 1)


def sinc_band_pass_filters(
    num_filters: int, kernel_size: int, sample_rate: int = 16000, nfft: int = 512
) -> Tensor:
    """The fixed (num_filters, kernel_size | 1) Hamming-windowed band-pass bank of AASIST's first layer.

    The bank is not stored in the checkpoints, so it has to be rebuilt with the same arithmetic as the
    original to get the same filters: band edges equally spaced on the mel scale between the extreme FFT bin
    frequencies (float64), the tap positions and the sinc argument in float32 (a torch ``arange`` scaled by a
    scalar), ``np.sinc`` in float32, the ideal band-pass difference in float64, and the windowing product in
    float32. An even ``kernel_size`` is made odd so that every filter is symmetric (linear phase).
    """
    if kernel_size % 2 == 0:
        kernel_size += 1
    bin_hz = (sample_rate // 2) * np.linspace(0, 1, nfft // 2 + 1)
    bin_mel = _hz_to_mel(bin_hz)
    edges_hz = _mel_to_hz(np.linspace(bin_mel.min(), bin_mel.max(), num_filters + 1))

    half = (kernel_size - 1) / 2
    taps = torch.arange(-half, half + 1, dtype=torch.float32)
    window = torch.from_numpy(np.hamming(kernel_size)).to(torch.float32)

    def ideal_low_pass(cutoff_hz: float) -> np.ndarray:
        # the scalar-times-float32-tensor product stays float32, as in the original
        arg = (2 * cutoff_hz * taps / sample_rate).numpy()
        return (2 * cutoff_hz / sample_rate) * np.sinc(arg).astype(np.float64)

    bank = torch.empty(num_filters, kernel_size, dtype=torch.float32)
    for i in range(num_filters):
        low, high = float(edges_hz[i]), float(edges_hz[i + 1])
        ideal = ideal_low_pass(high) - ideal_low_pass(low)
        bank[i] = window * torch.from_numpy(ideal).to(torch.float32)
    return bank


class SincConv(nn.Module):
    """First layer: a fixed (not learnt) mel-spaced sinc band-pass filter bank applied to the raw waveform.

    Using fixed band-pass filters makes the first layer an interpretable sub-band decomposition and leaves
    the learning to the 2-D residual encoder. The bank is a non-persistent buffer: it follows ``.to(device)``
    but stays out of the state dict, exactly like the original, whose checkpoints do not contain it.
    """

    band_pass: Tensor

    def __init__(self, out_channels: int, kernel_size: int, sample_rate: int = 16000) -> None:
        super().__init__()
        bank = sinc_band_pass_filters(out_channels, kernel_size, sample_rate)
        self.out_channels = out_channels
        self.kernel_size = bank.shape[1]
        self.sample_rate = sample_rate
        self.register_buffer("band_pass", bank, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 1, N) waveform -> (B, out_channels, N - kernel_size + 1) sub-band signals (no padding)."""
        return F.conv1d(x, self.band_pass.unsqueeze(1))


class ResidualBlock(nn.Module):
    """One stage of the 2-D encoder over the (sub-band, time) map: two (2, 3) convs, a skip, a time pool.

    The (1, 3) pool only shortens time, so the 23 spectral rows survive to become the spectral graph's nodes.
    SSL-AASIST's blocks have no pool (``time_pool=False``): its 50 frames/s are few enough. As in the
    released code, ``bn1`` is kept for checkpoint compatibility but not applied (see the module docstring).
    """

    def __init__(
        self, in_channels: int, out_channels: int, first: bool = False, time_pool: bool = True
    ) -> None:
        super().__init__()
        self.first = first
        if not first:
            self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=(2, 3), padding=(0, 1))
        self.selu = nn.SELU()
        if in_channels != out_channels:
            self.conv_downsample = nn.Conv2d(in_channels, out_channels, kernel_size=(1, 3), padding=(0, 1))
        else:
            self.conv_downsample = None
        self.mp = nn.MaxPool2d((1, 3)) if time_pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.selu(self.bn2(self.conv1(x))))
        identity = x if self.conv_downsample is None else self.conv_downsample(x)
        return self.mp(out + identity)


def residual_encoder(blocks: Sequence[tuple[int, int]], time_pool: bool = True) -> nn.Sequential:
    """AASIST's six-stage 2-D encoder: the four ``[in, out]`` channel pairs of ``filts``, the last used three
    times, each stage in an ``nn.Sequential`` of its own (the checkpoints' ``encoder.<i>.0.*`` keys)."""
    stage_channels = [blocks[0], blocks[1], blocks[2], blocks[3], blocks[3], blocks[3]]
    return nn.Sequential(
        *(
            nn.Sequential(ResidualBlock(c_in, c_out, first=i == 0, time_pool=time_pool))
            for i, (c_in, c_out) in enumerate(stage_channels)
        )
    )


def _batch_norm_nodes(bn: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """BatchNorm over the feature axis of (B, N, D) node features, every node of every graph a sample."""
    shape = x.shape
    return bn(x.reshape(-1, shape[-1])).reshape(shape)


def _pairwise_products(x: Tensor) -> Tensor:
    """(B, N, D) -> (B, N, N, D) with [b, i, j] = x[b, i] * x[b, j]: the input of the attention scorer."""
    n = x.size(1)
    expanded = x.unsqueeze(2).expand(-1, -1, n, -1)
    return expanded * expanded.transpose(1, 2)


def _xavier_parameter(rows: int, cols: int) -> nn.Parameter:
    weight = torch.empty(rows, cols)
    nn.init.xavier_normal_(weight)
    return nn.Parameter(weight)


class GraphAttentionLayer(nn.Module):
    """Graph attention over a fully connected graph of one kind of node (sub-bands or time frames).

    Edge scores come from the element-wise product of the two nodes' features, so the network learns which
    pairs of sub-bands (or frames) should exchange information; a temperature flattens or sharpens the
    softmax. Each node's output mixes its attended neighbourhood with a direct projection of itself.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = _xavier_parameter(out_dim, 1)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(p=0.2)
        self.act = nn.SELU()
        self.temp = float(temperature)

    def forward(self, x: Tensor) -> Tensor:
        """(B, N, in_dim) -> (B, N, out_dim)."""
        x = self.input_drop(x)
        scores = torch.matmul(torch.tanh(self.att_proj(_pairwise_products(x))), self.att_weight)
        # normalised over the first node index, as in the original (the scores are symmetric anyway)
        att = F.softmax(scores / self.temp, dim=-2).squeeze(-1)
        x = self.proj_with_att(torch.matmul(att, x)) + self.proj_without_att(x)
        return self.act(_batch_norm_nodes(self.bn, x))


class HeterogeneousGraphAttentionLayer(nn.Module):
    """HS-GAL: attention over the union of a temporal and a spectral graph, plus a stack (master) node.

    The two node types are first projected to a common space; edge scores then use separate weights for
    temporal-temporal, spectral-spectral and cross-type pairs, so the layer can model the artefacts that only
    show up as a relation between when and where in frequency they occur. The master node attends to all nodes
    and accumulates a summary of the whole heterogeneous graph.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = _xavier_parameter(out_dim, 1)
        self.att_weight22 = _xavier_parameter(out_dim, 1)
        self.att_weight12 = _xavier_parameter(out_dim, 1)
        self.att_weightM = _xavier_parameter(out_dim, 1)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(p=0.2)
        self.act = nn.SELU()
        self.temp = float(temperature)

    def forward(self, x1: Tensor, x2: Tensor, master: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, N1, in_dim), (B, N2, in_dim), master (B or 1, 1, in_dim) -> the three updated, at out_dim."""
        n1, n2 = x1.size(1), x2.size(1)
        x = torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1)
        x = self.input_drop(x)
        att = self._node_attention(x, n1)
        master = self._update_master(x, master)
        x = self.proj_with_att(torch.matmul(att, x)) + self.proj_without_att(x)
        x = self.act(_batch_norm_nodes(self.bn, x))
        return x.narrow(1, 0, n1), x.narrow(1, n1, n2), master

    def _node_attention(self, x: Tensor, n1: int) -> Tensor:
        """(B, N, N) attention; the block of each (row type, column type) pair is scored by its own weight."""
        hidden = torch.tanh(self.att_proj(_pairwise_products(x)))
        top = torch.cat(
            [
                torch.matmul(hidden[:, :n1, :n1], self.att_weight11),
                torch.matmul(hidden[:, :n1, n1:], self.att_weight12),
            ],
            dim=2,
        )
        bottom = torch.cat(
            [
                torch.matmul(hidden[:, n1:, :n1], self.att_weight12),
                torch.matmul(hidden[:, n1:, n1:], self.att_weight22),
            ],
            dim=2,
        )
        scores = torch.cat([top, bottom], dim=1)
        return F.softmax(scores / self.temp, dim=-2).squeeze(-1)

    def _update_master(self, x: Tensor, master: Tensor) -> Tensor:
        scores = torch.matmul(torch.tanh(self.att_projM(x * master)), self.att_weightM)
        att = F.softmax(scores / self.temp, dim=-2).squeeze(-1).unsqueeze(1)  # (B, 1, N)
        return self.proj_with_attM(torch.matmul(att, x)) + self.proj_without_attM(master)


class GraphPool(nn.Module):
    """Graph pooling: keep the ``ratio`` most salient nodes (by a learnt sigmoid score), scaled by that score.

    Dropping uninformative sub-bands and frames shrinks the graphs the later layers attend over; the scaling
    keeps the scorer differentiable. Kept nodes come out in descending score order, which matters because the
    two inference branches are later combined element-wise, node by node.
    """

    def __init__(self, ratio: float, in_dim: int, dropout: float = 0.3) -> None:
        super().__init__()
        self.ratio = float(ratio)
        self.proj = nn.Linear(in_dim, 1)
        self.drop = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()

    def forward(self, h: Tensor) -> Tensor:
        """(B, N, D) -> (B, max(int(N * ratio), 1), D)."""
        scores = torch.sigmoid(self.proj(self.drop(h)))
        keep = max(int(h.size(1) * self.ratio), 1)
        _, idx = torch.topk(scores, keep, dim=1)
        return torch.gather(h * scores, 1, idx.expand(-1, -1, h.size(2)))


def _check_config(
    filts: Sequence, gat_dims: Sequence[int], pool_ratios: Sequence[float], temperatures: Sequence[float]
) -> None:
    """Fail at construction, with the offending field named, rather than with a shape error in forward."""
    if not isinstance(filts, Sequence) or len(filts) != 5 or not isinstance(filts[0], int):
        raise ValueError(f"filts must be [num_sinc_filters, [in, out] x 4], got {filts!r}")
    for pair in filts[1:]:
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"filts[1:] must be [in_channels, out_channels] pairs, got {filts!r}")
    if filts[1][0] != 1:
        raise ValueError("the first residual block reads the 1-channel sinc map: filts[1][0] must be 1")
    if len(gat_dims) != 2:
        raise ValueError(f"gat_dims must be [graph_dim, heterogeneous_graph_dim], got {gat_dims!r}")
    if len(pool_ratios) != 4 or not all(0 < r <= 1 for r in pool_ratios):
        raise ValueError(f"pool_ratios must be 4 ratios in (0, 1], got {pool_ratios!r}")
    if len(temperatures) != 4 or not all(t > 0 for t in temperatures):
        raise ValueError(f"temperatures must be 4 positive numbers, got {temperatures!r}")


class GraphBackEnd(nn.Module):
    """The spectro-temporal graph back end AASIST and SSL-AASIST end with, from the encoder's two readings.

    The encoder output is read twice, as a graph of sub-band nodes and a graph of frame nodes; two
    independent branches of heterogeneous graph attention with a master node combine them and are merged by
    an element-wise maximum, then read out to two logits. Subclasses build their front end and encoder, then
    call :meth:`build_graph_back_end` (which registers the modules under the original names, in the original
    order) and :meth:`graph_logits`.
    """

    def build_graph_back_end(
        self,
        enc_dim: int,
        spectral_nodes: int,
        gat_dims: Sequence[int],
        pool_ratios: Sequence[float],
        temperatures: Sequence[float],
    ) -> None:
        graph_dim, htrg_dim = int(gat_dims[0]), int(gat_dims[1])
        self.pos_S = nn.Parameter(torch.randn(1, spectral_nodes, enc_dim))
        self.master1 = nn.Parameter(torch.randn(1, 1, graph_dim))
        self.master2 = nn.Parameter(torch.randn(1, 1, graph_dim))

        self.GAT_layer_S = GraphAttentionLayer(enc_dim, graph_dim, temperature=temperatures[0])
        self.GAT_layer_T = GraphAttentionLayer(enc_dim, graph_dim, temperature=temperatures[1])
        self.HtrgGAT_layer_ST11 = HeterogeneousGraphAttentionLayer(graph_dim, htrg_dim, temperatures[2])
        self.HtrgGAT_layer_ST12 = HeterogeneousGraphAttentionLayer(htrg_dim, htrg_dim, temperatures[2])
        self.HtrgGAT_layer_ST21 = HeterogeneousGraphAttentionLayer(graph_dim, htrg_dim, temperatures[2])
        self.HtrgGAT_layer_ST22 = HeterogeneousGraphAttentionLayer(htrg_dim, htrg_dim, temperatures[2])

        self.pool_S = GraphPool(pool_ratios[0], graph_dim)
        self.pool_T = GraphPool(pool_ratios[1], graph_dim)
        self.pool_hS1 = GraphPool(pool_ratios[2], htrg_dim)
        self.pool_hT1 = GraphPool(pool_ratios[2], htrg_dim)
        self.pool_hS2 = GraphPool(pool_ratios[2], htrg_dim)
        self.pool_hT2 = GraphPool(pool_ratios[2], htrg_dim)

        self.out_layer = nn.Linear(5 * htrg_dim, 2)

    def _branch(
        self,
        out_T: Tensor,
        out_S: Tensor,
        master: Tensor,
        first: HeterogeneousGraphAttentionLayer,
        second: HeterogeneousGraphAttentionLayer,
        pool_S: GraphPool,
        pool_T: GraphPool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One inference branch: HS-GAL, pooling, then a second HS-GAL added as a residual refinement."""
        t, s, master = first(out_T, out_S, master)
        s = pool_S(s)
        t = pool_T(t)
        t_aug, s_aug, master_aug = second(t, s, master)
        return t + t_aug, s + s_aug, master + master_aug

    def graph_logits(self, e_S: Tensor, e_T: Tensor) -> tuple[Tensor, Tensor]:
        """Spectral nodes (B, C, spectral nodes), temporal nodes (B, C, frames) -> (last_hidden, logits)."""
        out_S = self.pool_S(self.GAT_layer_S(e_S.transpose(1, 2) + self.pos_S))
        out_T = self.pool_T(self.GAT_layer_T(e_T.transpose(1, 2)))

        t1, s1, m1 = self._branch(
            out_T,
            out_S,
            self.master1,
            self.HtrgGAT_layer_ST11,
            self.HtrgGAT_layer_ST12,
            self.pool_hS1,
            self.pool_hT1,
        )
        t2, s2, m2 = self._branch(
            out_T,
            out_S,
            self.master2,
            self.HtrgGAT_layer_ST21,
            self.HtrgGAT_layer_ST22,
            self.pool_hS2,
            self.pool_hT2,
        )

        out_T = torch.maximum(self.drop_way(t1), self.drop_way(t2))
        out_S = torch.maximum(self.drop_way(s1), self.drop_way(s2))
        master = torch.maximum(self.drop_way(m1), self.drop_way(m2))

        T_max, _ = torch.max(torch.abs(out_T), dim=1)
        S_max, _ = torch.max(torch.abs(out_S), dim=1)
        last_hidden = torch.cat(
            [T_max, out_T.mean(dim=1), S_max, out_S.mean(dim=1), master.squeeze(1)], dim=1
        )
        logits = self.out_layer(self.drop(last_hidden))
        return last_hidden, logits

    def forward_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """(B, N) waveforms -> (B, 2) logits, index 1 = bona fide."""
        return self.forward_features(x)[1]


class AASIST(GraphBackEnd):
    """Raw-waveform spoofing countermeasure: sinc filter bank, 2-D residual encoder, spectro-temporal graphs
    (:class:`GraphBackEnd`): the sub-band nodes are the encoder's maximum over time, the frame nodes its
    maximum over frequency. Arguments are the ``model_config`` fields of clovaai's ``config/AASIST.conf`` /
    ``AASIST-L.conf``. ``nb_samp`` is the input length the weights were trained on (64,600 samples, see
    :func:`sasv.audio.cm_input`); it is recorded, not enforced.

    Logits index 1 is bona fide, index 0 spoof.
    """

    def __init__(
        self,
        nb_samp: int = 64600,
        first_conv: int = 128,
        filts: Sequence = (70, (1, 32), (32, 32), (32, 64), (64, 64)),
        gat_dims: Sequence[int] = (64, 32),
        pool_ratios: Sequence[float] = (0.5, 0.7, 0.5, 0.5),
        temperatures: Sequence[float] = (2.0, 2.0, 100.0, 100.0),
    ) -> None:
        super().__init__()
        _check_config(filts, gat_dims, pool_ratios, temperatures)
        self.nb_samp = int(nb_samp)
        num_sinc = int(filts[0])
        blocks = [(int(pair[0]), int(pair[1])) for pair in filts[1:]]

        self.conv_time = SincConv(num_sinc, int(first_conv))
        self.first_bn = nn.BatchNorm2d(1)
        self.selu = nn.SELU()
        self.drop = nn.Dropout(0.5)
        self.drop_way = nn.Dropout(0.2)
        self.encoder = residual_encoder(blocks)
        # the (3, 3) max pool after the sinc layer leaves num_sinc // 3 sub-band rows = spectral nodes
        self.build_graph_back_end(blocks[-1][1], num_sinc // 3, gat_dims, pool_ratios, temperatures)

    @classmethod
    def from_model_config(cls, model_config: dict) -> AASIST:
        """Build from a clovaai ``model_config`` block, which also carries its ``architecture`` name."""
        config = dict(model_config)
        arch = config.pop("architecture", "AASIST")
        if arch != "AASIST":
            raise ValueError(f"model_config is for architecture {arch!r}, not AASIST")
        return cls(**config)

    def forward_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, N) waveforms -> (last_hidden (B, 5 * gat_dims[1]), logits (B, 2)), clovaai's two outputs."""
        if x.dim() != 2:
            raise ValueError(f"AASIST expects a (batch, samples) waveform tensor, got shape {tuple(x.shape)}")
        x = self.conv_time(x.unsqueeze(1)).unsqueeze(1)
        x = F.max_pool2d(torch.abs(x), (3, 3))
        x = self.selu(self.first_bn(x))
        e = self.encoder(x)  # (B, C, spectral nodes, frames)
        e_S, _ = torch.max(torch.abs(e), dim=3)
        e_T, _ = torch.max(torch.abs(e), dim=2)
        return self.graph_logits(e_S, e_T)


def bona_fide_probability(logits: Tensor) -> Tensor:
    """softmax(logits)[:, 1]: the CM score the SASV 2022 fusion (DoubleRoc) multiplies with the ASV score.

    clovaai's own score files use the raw ``logits[:, 1]`` instead; both rank trials identically.
    """
    return F.softmax(logits, dim=1)[:, BONA_FIDE_INDEX]
