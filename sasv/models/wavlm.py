"""WavLM-Large, the self-supervised front end of UniSpeech's speaker model (its ECAPA-TDNN head is
:mod:`sasv.models.wavlm_ecapa`), weight-compatible with UniSpeech's released checkpoint; and wav2vec 2.0
(XLS-R 300M, SSL-AASIST's front end: :mod:`sasv.models.ssl_aasist`), which is the same network without the
gated relative position bias (``WavLMConfig.from_dict(cfg, family="wav2vec2")``, plain self-attention).
One implementation serves both, so that the parity tests of each hold the pieces they share.

The SASV 2022 DoubleRoc system uses Microsoft UniSpeech's speaker-verification model
``wavlm_large_finetune.pth`` (WavLM-Large fine-tuned jointly with a small ECAPA-TDNN, Vox1-O EER 0.431 %).
Its checkpoint is only useful if this module computes what the original stack (s3prl's WavLM
``UpstreamExpert`` + UniSpeech's ``ECAPA_TDNN``) computes in eval mode, so the computation follows the
original step by step:

* each waveform is layer-normalised over all its samples (``normalize: true``), then a 7-layer strided
  conv stack, each conv followed by a LayerNorm over channels and GELU (the "layer_norm" extractor mode),
  maps it to 50 frames/s; a LayerNorm and ``post_extract_proj`` lift the frames to the transformer width;
* a grouped convolutional positional embedding (kernel 128, old-style weight norm over the kernel axis, one
  frame cut because the kernel is even, GELU) is added;
* pre-LayerNorm transformer layers use a *gated relative position bias*: a bucketed (log-spaced beyond 80
  frames) bias table lives in layer 0 only and is shared by all layers, each of which scales it per head and
  per query frame by a gate computed from its (normalised) input;
* every layer input plus the final (LayerNorm-ed) encoder output - 25 hidden states for Large - is returned,
  for the head to mix (:mod:`sasv.models.wavlm_ecapa`).

Module names mirror the original state dict (``feature_extract.model.*``), except where the original used
anonymous ``nn.Sequential`` indices (``conv_layers.N.0`` -> ``conv_layers.N.conv``, ``conv_layers.N.2.1`` ->
``conv_layers.N.norm``, ``pos_conv.0`` -> ``pos_conv``); the ``unispeech_wavlm_ecapa`` checkpoint format
renames them.

GPU use: inputs are batched as (B, N) rows of equal length (the original never pads: padding would change the
instance normalisation and the pooling). The backbone honours a caller's ``torch.autocast``; the relative
position gate runs in float32 (:func:`float32_region`).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

#: Fields of a WavLM ``cfg`` dict that only matter for pre-training or fine-tuning (dropouts, masking, layer
#: drop, gradient scaling). They are accepted, so that a checkpoint's cfg can be passed verbatim, and left
#: out of the architecture; fine-tuning from a checkpoint takes its dropouts and gradient scaling
#: (:func:`sasv.models.conf.load_init_checkpoint`).
TRAINING_ONLY_FIELDS = frozenset(
    {
        "dropout",
        "attention_dropout",
        "activation_dropout",
        "encoder_layerdrop",
        "dropout_input",
        "dropout_features",
        "feature_grad_mult",
        "mask_length",
        "mask_prob",
        "mask_selection",
        "mask_other",
        "no_mask_overlap",
        "mask_min_space",
        "mask_channel_length",
        "mask_channel_prob",
        "mask_channel_selection",
        "mask_channel_other",
        "no_mask_channel_overlap",
        "mask_channel_min_space",
    }
)


@dataclass(frozen=True)
class Dropouts:
    """The regularisation fairseq's wav2vec 2.0 / WavLM apply in training mode, under their cfg names:
    ``dropout_input`` on the projected conv features, ``dropout`` after the positional embedding and on
    each layer's two residual branches, ``attention_dropout`` on the attention weights,
    ``activation_dropout`` after the feed-forward activation, and ``encoder_layerdrop``, the chance that a
    layer is skipped whole (LayerDrop). All 0 by default (none); none of them changes inference. Fine-tuning
    from a fairseq checkpoint takes the checkpoint's own (:func:`sasv.models.conf.load_init_checkpoint`), as
    the original builds its model from that cfg."""

    dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> Dropouts:
        """The dropouts a cfg gives (absent ones 0), each checked to be a probability in [0, 1)."""
        values = {}
        for f in fields(cls):
            value = cfg.get(f.name, 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{f.name} must be a probability in [0, 1), got {value!r}")
            values[f.name] = float(value)
        return cls(**values)


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout only where it acts: a probability of 0 (and eval mode) leaves x and the RNG untouched."""
    return F.dropout(x, p, training=True) if training and p > 0 else x


def parse_conv_layers(spec: str | Sequence[Sequence[int]]) -> tuple[tuple[int, int, int], ...]:
    """``conv_feature_layers`` -> ((dim, kernel, stride), ...).

    WavLM stores this as a Python expression (``"[(512,10,5)] + [(512,3,2)] * 4 + ..."``) that the original
    code ``eval``s. A conf or checkpoint cfg is untrusted text, so only list/tuple literals of integers
    joined by ``+`` and ``* int`` are evaluated here; anything else is an error. A plain list of triples is
    accepted too.
    """
    if isinstance(spec, str):
        try:
            tree = ast.parse(spec, mode="eval")
        except SyntaxError as e:
            raise ValueError(f"conv_feature_layers {spec!r} is not a valid expression: {e}") from None
        value = _eval_layer_expr(tree.body, spec)
    else:
        value = list(spec)
    layers: list[tuple[int, int, int]] = []
    for item in value:
        if (
            not isinstance(item, (list, tuple))
            or len(item) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in item)
        ):
            raise ValueError(
                f"conv_feature_layers entries must be (dim, kernel, stride) positive ints, got {item!r}"
            )
        layers.append((int(item[0]), int(item[1]), int(item[2])))
    if not layers:
        raise ValueError("conv_feature_layers is empty")
    return tuple(layers)


def _eval_layer_expr(node: ast.AST, spec: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval_layer_expr(e, spec) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _eval_layer_expr(node.left, spec), _eval_layer_expr(node.right, spec)
        if isinstance(node.op, ast.Add) and isinstance(left, list) and isinstance(right, list):
            return left + right
        if isinstance(node.op, ast.Mult) and isinstance(left, list) and isinstance(right, int) and right >= 0:
            return left * right
    raise ValueError(
        f"conv_feature_layers {spec!r}: only lists of (dim, kernel, stride) tuples joined by '+' and "
        f"'* <int>' are allowed"
    )


#: The fields of WavLM's gated relative position bias, which wav2vec 2.0 (XLS-R) has not.
RELATIVE_POSITION_FIELDS = ("relative_position_embedding", "num_buckets", "max_distance", "gru_rel_pos")

#: The two families of this network: WavLM, and wav2vec 2.0 (XLS-R), which is WavLM without the gated
#: relative position bias (its layers attend with the convolutional positional embedding alone).
FAMILIES = ("wavlm", "wav2vec2")


@dataclass(frozen=True)
class WavLMConfig:
    """The architecture fields of a WavLM ``cfg``, or of a wav2vec 2.0 one (``family="wav2vec2"``).

    All are required: WavLM's own defaults are Base's, and a silently defaulted field would build a model
    that does not fit the checkpoint, or worse, one that does. A wav2vec 2.0 cfg has no relative position
    fields; :meth:`from_dict` fills them with "none" (False, 0).
    """

    encoder_layers: int
    encoder_embed_dim: int
    encoder_ffn_embed_dim: int
    encoder_attention_heads: int
    conv_feature_layers: tuple[tuple[int, int, int], ...]
    extractor_mode: str
    conv_bias: bool
    normalize: bool
    conv_pos: int
    conv_pos_groups: int
    relative_position_embedding: bool
    num_buckets: int
    max_distance: int
    gru_rel_pos: bool
    layer_norm_first: bool
    activation_fn: str

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any], family: str = "wavlm") -> WavLMConfig:
        """Validate a cfg dict; only the configuration that is parity-tested against the original is accepted.

        WavLM-Large (and the tiny golden model) use the layer-norm extractor, pre-LayerNorm layers and gated
        relative position bias with GELU; XLS-R (wav2vec 2.0 large, ``family="wav2vec2"``) the same without
        the relative position bias. Other variants (WavLM Base or wav2vec 2.0 Base: group-norm extractor,
        post-LayerNorm) would need code paths that nothing here verifies, so they are refused rather than
        guessed.
        """
        if family not in FAMILIES:
            raise ValueError(f"unknown encoder family {family!r}; one of {', '.join(FAMILIES)}")
        title = "WavLM" if family == "wavlm" else "wav2vec 2.0"
        names = [f.name for f in fields(cls)]
        own = names if family == "wavlm" else [n for n in names if n not in RELATIVE_POSITION_FIELDS]
        unknown = set(cfg) - set(own) - TRAINING_ONLY_FIELDS
        if unknown:
            raise ValueError(f"unknown {title} cfg fields {sorted(unknown)}; architecture fields: {own}")
        missing = [n for n in own if n not in cfg]
        if missing:
            raise ValueError(f"{title} cfg lacks the architecture fields {missing}")
        values = {n: cfg[n] for n in own}
        if family == "wav2vec2":
            values.update(relative_position_embedding=False, num_buckets=0, max_distance=0, gru_rel_pos=False)
        values["conv_feature_layers"] = parse_conv_layers(cfg["conv_feature_layers"])
        conf = cls(**values)
        required: dict[str, Any] = {"extractor_mode": "layer_norm", "layer_norm_first": True}
        if family == "wavlm":
            required.update(relative_position_embedding=True, gru_rel_pos=True)
        required["activation_fn"] = "gelu"
        for name, want in required.items():
            if getattr(conf, name) != want:
                style = "WavLM-Large" if family == "wavlm" else "XLS-R (wav2vec 2.0 large)"
                raise ValueError(
                    f"{title} cfg {name}={getattr(conf, name)!r} is not supported: only the {style} style "
                    f"architecture ({', '.join(f'{k}={v!r}' for k, v in required.items())}) is implemented"
                )
        if conf.encoder_embed_dim % conf.encoder_attention_heads:
            raise ValueError("encoder_embed_dim must be divisible by encoder_attention_heads")
        if conf.encoder_embed_dim % conf.conv_pos_groups:
            raise ValueError("encoder_embed_dim must be divisible by conv_pos_groups")
        return conf

    @property
    def receptive_field(self) -> int:
        """Samples needed for one output frame (400 for the standard stack)."""
        field, jump = 1, 1
        for _, kernel, stride in self.conv_feature_layers:
            field += (kernel - 1) * jump
            jump *= stride
        return field

    def min_samples(self, frames: int) -> int:
        """The shortest waveform the conv stack turns into ``frames`` frames (hop 320 in the standard one)."""
        return self.receptive_field + (frames - 1) * math.prod(s for _, _, s in self.conv_feature_layers)


def float32_region(x: torch.Tensor) -> torch.autocast:
    """A region where a caller's autocast is switched off, for numerically delicate float32 computations."""
    return torch.autocast(device_type=x.device.type, enabled=False)


def _layer_norm_fp32(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """LayerNorm computed in float32 and cast back, as fairseq's Fp32LayerNorm does in the conv extractor."""
    with float32_region(x):
        out = F.layer_norm(x.float(), norm.normalized_shape, norm.weight.float(), norm.bias.float(), norm.eps)
    return out.to(x.dtype)


def _gelu_fp32(x: torch.Tensor) -> torch.Tensor:
    """GELU evaluated in float32 (fairseq's ``gelu`` activation) so half-precision runs keep its tails."""
    return F.gelu(x.float()).to(x.dtype)


# ----------------------------------------------------------------------------------------------------------
# WavLM encoder
# ----------------------------------------------------------------------------------------------------------


class ConvBlock(nn.Module):
    """Strided conv (no padding) -> LayerNorm over channels -> GELU: one stage of the waveform encoder, on
    channels-last frames (B, T, C_in) -> (B, T', C_out).

    Channels-last because the LayerNorm is over channels: given a (B, C, T) view of (B, T, C) memory, the
    convolution writes channels-last too, and no stage transposes its output twice (on the 12,919-frame
    maps of a 4 s input those copies were a third of the encoder's time). The single-channel first stage is
    one matrix product over the waveform's strided windows. Same function as ``nn.Conv1d`` on (B, C, T),
    up to float rounding; the parameters and their names are the Conv1d's (the checkpoints' layout)."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int, bias: bool) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, stride=stride, bias=bias)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        (kernel,), (stride,) = conv.kernel_size, conv.stride
        if conv.in_channels == 1:
            windows = x.squeeze(-1).unfold(1, kernel, stride)  # (B, T', kernel), overlapping views
            x = F.linear(windows, conv.weight.view(conv.out_channels, kernel), conv.bias)
        else:
            x = F.conv2d(
                x.transpose(1, 2).unsqueeze(2), conv.weight.unsqueeze(2), conv.bias, stride=(1, stride)
            )
            x = x.squeeze(2).transpose(1, 2)
        return F.gelu(_layer_norm_fp32(x, self.norm))


class ConvFeatureExtractor(nn.Module):
    """(B, N) waveform -> (B, C, T) frames, T = the conv stack's valid output length (hop 320 for WavLM).

    The frames are a (B, C, T) view of channels-last (B, T, C) memory (:class:`ConvBlock`): ``transpose(1,
    2)`` gives the (B, T, C) features without a copy."""

    def __init__(self, layers: Sequence[tuple[int, int, int]], bias: bool) -> None:
        super().__init__()
        blocks = []
        in_dim = 1
        for dim, kernel, stride in layers:
            blocks.append(ConvBlock(in_dim, dim, kernel, stride, bias))
            in_dim = dim
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = wav.unsqueeze(-1)
        for block in self.conv_layers:
            x = block(x)
        return x.transpose(1, 2)


class WeightNormConvPositionalEmbedding(nn.Module):
    """Grouped conv over time whose kernel is reparametrised as g * v / ||v||, the norm taken per kernel tap.

    The checkpoint stores the old ``torch.nn.utils.weight_norm(conv, dim=2)`` parameters ``weight_g``
    [1, 1, K] and ``weight_v``; the effective kernel is recomputed in forward instead of using the deprecated
    hook API.
    With an even kernel, symmetric padding K // 2 yields one frame too many; the last one is dropped so that
    output frame t is centred on input frame t, as in the original (``SamePad``).
    """

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.groups = groups
        self.weight_v = nn.Parameter(torch.empty(dim, dim // groups, kernel))
        self.weight_g = nn.Parameter(torch.empty(1, 1, kernel))
        self.bias = nn.Parameter(torch.zeros(dim))
        with torch.no_grad():
            nn.init.normal_(self.weight_v, mean=0.0, std=math.sqrt(4.0 / (kernel * dim)))
            self.weight_g.copy_(self._v_norm())
        self._cached: tuple[tuple, torch.Tensor] | None = None

    def _v_norm(self) -> torch.Tensor:
        return self.weight_v.norm(p=2, dim=(0, 1), keepdim=True)

    def weight(self) -> torch.Tensor:
        """g * v / ||v||, torch's fused kernel (what nn.utils.weight_norm calls). Without gradients
        (inference) it is computed once per value of the parameters and kept: 0.1 s of every XLS-R forward
        on a CPU thread otherwise."""
        if torch.is_grad_enabled() and (self.weight_v.requires_grad or self.weight_g.requires_grad):
            return torch._weight_norm(self.weight_v, self.weight_g, dim=2)
        key = (self.weight_v._version, self.weight_g._version, self.weight_v.data_ptr(),
               self.weight_g.data_ptr(), self.weight_v.dtype, self.weight_v.device)  # fmt: skip
        if self._cached is None or self._cached[0] != key:
            with torch.no_grad():
                self._cached = (key, torch._weight_norm(self.weight_v, self.weight_g, dim=2))
        return self._cached[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D, T) -> (B, D, T)."""
        y = F.conv1d(x, self.weight(), self.bias, padding=self.kernel // 2, groups=self.groups)
        if self.kernel % 2 == 0:
            y = y[:, :, :-1]
        return F.gelu(y)


def relative_position_buckets(
    length: int, num_buckets: int, max_distance: int, device: torch.device | None = None
) -> torch.Tensor:
    """(T, T) bucket index of (key position - query position), T5-style and bidirectional.

    Half of the buckets are for keys after the query. Within a direction, distances below a quarter of
    ``num_buckets`` get their own bucket; longer ones share log-spaced buckets up to ``max_distance``, beyond
    which everything falls into the last. The float32 arithmetic matches the original so that the bucket
    boundaries (a float -> int truncation) fall at the same distances.
    """
    pos = torch.arange(length, dtype=torch.long, device=device)
    rel = pos[None, :] - pos[:, None]
    half = num_buckets // 2
    buckets = (rel > 0).to(torch.long) * half
    dist = rel.abs()
    max_exact = half // 2
    # clamp(min=1) only avoids log(0) for distance 0, which takes the exact branch anyway
    log_ratio = torch.log(dist.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact)
    far = max_exact + (log_ratio * (half - max_exact)).to(torch.long)
    far = torch.clamp(far, max=half - 1)
    return buckets + torch.where(dist < max_exact, dist, far)


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (fairseq's ``MultiheadAttention`` in eval mode), the
    attention of wav2vec 2.0; the positions come from the convolutional embedding added before the layers."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.attention_dropout = 0.0

    def _attend(self, x: torch.Tensor, attn_bias: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape

        def split(proj: nn.Linear) -> torch.Tensor:
            return proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q_proj), split(self.k_proj), split(self.v_proj)
        mask = None if attn_bias is None else attn_bias.to(q.dtype)
        p = self.attention_dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))

    def forward(self, x: torch.Tensor, position_bias: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, D) (already layer-normalised) -> (B, T, D); ``position_bias`` is None here."""
        return self._attend(x, None)


class GatedRelPosSelfAttention(SelfAttention):
    """Multi-head self-attention with WavLM's gated relative position bias.

    The bias table (``relative_attention_bias``, buckets x heads) exists only in the first layer and is
    shared. Each layer gates it per head and query frame: from the head's slice of the layer input,
    ``grep_linear`` gives 8 values, summed in two groups of four into a and b; the gate is
    sigmoid(a) * (sigmoid(b) * grep_a - 1) + 2. The gated bias is added to the scaled dot-product logits
    (``F.scaled_dot_product_attention`` with an additive mask).
    """

    def __init__(
        self, dim: int, heads: int, has_bias_table: bool, num_buckets: int, max_distance: int
    ) -> None:
        super().__init__(dim, heads)
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.grep_linear = nn.Linear(self.head_dim, 8)
        self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))
        if has_bias_table:
            self.relative_attention_bias = nn.Embedding(num_buckets, heads)

    def position_bias(self, length: int) -> torch.Tensor:
        """(1, H, T, T) float32 ungated bias; only valid on the layer that owns the table."""
        table = self.relative_attention_bias.weight
        buckets = relative_position_buckets(length, self.num_buckets, self.max_distance, table.device)
        return F.embedding(buckets, table.float()).permute(2, 0, 1).unsqueeze(0)

    def forward(self, x: torch.Tensor, position_bias: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, D) (already layer-normalised), position_bias (1, H, T, T) -> (B, T, D)."""
        assert position_bias is not None, "the gated attention needs the first layer's position bias"
        b, t, _ = x.shape
        with float32_region(x):
            heads_in = x.float().view(b, t, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, dh)
            w, bias = self.grep_linear.weight.float(), self.grep_linear.bias.float()
            gates = torch.sigmoid(F.linear(heads_in, w, bias).view(b, self.heads, t, 2, 4).sum(-1))
            gate_a, gate_b = gates[..., 0:1], gates[..., 1:2]  # (B, H, T, 1)
            gate = gate_a * (gate_b * self.grep_a.float() - 1.0) + 2.0
            attn_bias = gate * position_bias  # (B, H, T, T)
        return self._attend(x, attn_bias)


class TransformerLayer(nn.Module):
    """Pre-LayerNorm block: x + attn(LN(x)), then x + fc2(gelu(fc1(LN(x))))."""

    def __init__(self, cfg: WavLMConfig, has_bias_table: bool) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn: SelfAttention
        if cfg.relative_position_embedding:
            self.self_attn = GatedRelPosSelfAttention(
                dim, cfg.encoder_attention_heads, has_bias_table, cfg.num_buckets, cfg.max_distance
            )
        else:
            self.self_attn = SelfAttention(dim, cfg.encoder_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.dropout = 0.0
        self.activation_dropout = 0.0

    def forward(self, x: torch.Tensor, position_bias: torch.Tensor | None) -> torch.Tensor:
        train = self.training
        x = x + _dropout(self.self_attn(self.self_attn_layer_norm(x), position_bias), self.dropout, train)
        hidden = _dropout(_gelu_fp32(self.fc1(self.final_layer_norm(x))), self.activation_dropout, train)
        return x + _dropout(self.fc2(hidden), self.dropout, train)


class TransformerEncoder(nn.Module):
    """Positional convolution, then the pre-LayerNorm layers, then a final LayerNorm.

    ``gradient_checkpointing`` (set by training, :func:`sasv.train.loop` via the training conf): in training
    mode each layer's activations are recomputed in the backward pass instead of kept, which is what lets a
    24-layer, 1024-wide encoder fine-tune with a batch of 14 four-second crops on one GPU.
    """

    def __init__(self, cfg: WavLMConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.relative_position_embedding = cfg.relative_position_embedding
        self.pos_conv = WeightNormConvPositionalEmbedding(dim, cfg.conv_pos, cfg.conv_pos_groups)
        self.layers = nn.ModuleList(
            TransformerLayer(cfg, has_bias_table=i == 0) for i in range(cfg.encoder_layers)
        )
        self.layer_norm = nn.LayerNorm(dim)
        self.gradient_checkpointing = False
        self.dropout = 0.0
        self.layerdrop = 0.0

    def forward(self, x: torch.Tensor, last_only: bool = False) -> list[torch.Tensor]:
        """(B, T, D) -> the L + 1 hidden states: each layer's input, then the LayerNorm-ed final output.

        These are exactly the tensors s3prl's ``hidden_states`` hooks capture, which the speaker head mixes;
        the last one is fairseq's ``features_only`` output ``x``, which SSL-AASIST reads (``last_only``: only
        that one is returned, and no layer's input is held beyond its layer).
        """
        x = _dropout(x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2), self.dropout, self.training)
        position_bias = None
        if self.relative_position_embedding:
            attention = self.layers[0].self_attn
            assert isinstance(attention, GatedRelPosSelfAttention)
            position_bias = attention.position_bias(x.shape[1])
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        states = []
        skipped = (torch.rand(len(self.layers)) < self.layerdrop).tolist() if self.training else None
        for i, layer in enumerate(self.layers):
            if not last_only:
                states.append(x)
            if skipped is not None and self.layerdrop > 0 and skipped[i]:
                continue  # LayerDrop: the layer is skipped whole this step
            if recompute:
                x = torch.utils.checkpoint.checkpoint(layer, x, position_bias, use_reentrant=False)
            else:
                x = layer(x, position_bias)
        states.append(self.layer_norm(x))
        return states


class WavLM(nn.Module):
    """The WavLM network (eval mode, no masking): normalised waveform (B, N) -> L + 1 hidden states (B, T, D).

    ``mask_emb`` (the learnt embedding for masked frames in pre-training) is unused at inference; it is kept
    because it is part of the checkpoint and the load is strict. It is frozen (``requires_grad`` off): no
    forward of this network masks frames, so it can never receive a gradient, and DistributedDataParallel
    without ``find_unused_parameters`` (the ASV task: every other parameter is used every step) waits for
    the gradient of every trainable parameter, and stops a fine-tuning run at its second step. Freezing it
    here, where the reason lives, keeps it in the checkpoint and costs DDP nothing; searching every step
    for unused parameters (``find_unused_parameters=True``) would cost a graph traversal per step, and
    hide a parameter that a bug leaves unused.
    """

    def __init__(self, cfg: WavLMConfig) -> None:
        super().__init__()
        conv_dim = cfg.conv_feature_layers[-1][0]
        self.feature_extractor = ConvFeatureExtractor(cfg.conv_feature_layers, cfg.conv_bias)
        self.post_extract_proj = (
            nn.Linear(conv_dim, cfg.encoder_embed_dim) if conv_dim != cfg.encoder_embed_dim else None
        )
        self.mask_emb = nn.Parameter(torch.empty(cfg.encoder_embed_dim).uniform_(), requires_grad=False)
        self.encoder = TransformerEncoder(cfg)
        self.layer_norm = nn.LayerNorm(conv_dim)
        self.dropout_input = 0.0
        self.feature_grad_mult = 1.0

    def set_dropouts(self, dropouts: Dropouts) -> None:
        """Training-mode regularisation, as fairseq's model with these cfg values applies it."""
        self.dropout_input = dropouts.dropout_input
        self.encoder.dropout = dropouts.dropout
        self.encoder.layerdrop = dropouts.encoder_layerdrop
        for layer in self.encoder.layers:
            layer.dropout = dropouts.dropout
            layer.activation_dropout = dropouts.activation_dropout
            layer.self_attn.attention_dropout = dropouts.attention_dropout

    def set_feature_grad_mult(self, mult: float) -> None:
        """fairseq's ``feature_grad_mult``: the conv feature encoder's gradient is scaled by it in training
        (XLS-R and the large models pre-train with 1, wav2vec 2.0 Base with 0.1), and at 0 the encoder runs
        without a graph and stays as it is (fairseq's fine-tuning recipes); its parameters are then frozen
        outright, so that no optimizer or DistributedDataParallel waits for their gradients. The forward
        values never change."""
        if isinstance(mult, bool) or not isinstance(mult, (int, float)) or not 0 <= mult < float("inf"):
            raise ValueError(f"feature_grad_mult must be a number >= 0, got {mult!r}")
        self.feature_grad_mult = float(mult)
        self.feature_extractor.requires_grad_(mult > 0)

    def conv_features(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, C, T): the conv feature encoder, its gradient scaled by ``feature_grad_mult``."""
        if self.feature_grad_mult == 0:
            with torch.no_grad():
                return self.feature_extractor(wav)
        features = self.feature_extractor(wav)
        if self.feature_grad_mult != 1 and features.requires_grad:
            mult = self.feature_grad_mult
            features.register_hook(lambda grad: grad * mult)
        return features

    def forward(self, wav: torch.Tensor, last_only: bool = False) -> list[torch.Tensor]:
        x = self.layer_norm(self.conv_features(wav).transpose(1, 2))
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(_dropout(x, self.dropout_input, self.training), last_only)


class WavLMUpstream(nn.Module):
    """s3prl's upstream wrapper: per-waveform normalisation in front of WavLM (parameter-free); with
    ``normalize`` off (SSL-AASIST feeds XLS-R the raw waveform), the network alone under the same name."""

    def __init__(self, cfg: WavLMConfig) -> None:
        super().__init__()
        self.normalize = cfg.normalize
        self.model = WavLM(cfg)

    def forward(self, wav: torch.Tensor, last_only: bool = False) -> list[torch.Tensor]:
        if self.normalize:
            # zero mean, unit (biased) variance over each waveform's samples, eps 1e-5, no affine
            with float32_region(wav):
                wav = F.layer_norm(wav.float(), wav.shape[-1:])
        return self.model(wav, last_only)
