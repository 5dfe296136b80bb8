"""Tiny model confs (random weights, seeded) on which every stage runs in seconds, and the tiny constructor
arguments of the golden references (``shared/golden/*/config.json``); one definition for every test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TINY_ECAPA: dict[str, Any] = {"name": "tiny_ecapa", "kind": "asv", "arch": "ecapa_tdnn", "args": {"C": 16}}
TINY_RESNET: dict[str, Any] = {
    "name": "tiny_resnet",
    "kind": "asv",
    "arch": "se_resnet34",
    "args": {"layers": [1, 1, 1, 1], "num_filters": [8, 8, 16, 16], "embedding_dim": 16},
    "frontend": {"n_mels": 64, "f_min": 0.0, "f_max": None, "input_scale": 32768.0, "norm": "instance"},
    "embedding_dim": 16,
}
TINY_AASIST: dict[str, Any] = {
    "name": "tiny_aasist",
    "kind": "cm",
    "arch": "aasist",
    "args": {"filts": [20, [1, 8], [8, 8], [8, 16], [16, 16]], "gat_dims": [16, 16]},
}

# the architecture of tests/fixtures/ssl_aasist/tiny_xlsr.pt (XLS-R's layout: 24-channel convs, 2 layers of
# 32), and an SSL-AASIST on it (the back end at its original widths: they are fixed in the original Model)
TINY_XLSR_FRONT_END: dict[str, Any] = {
    "family": "wav2vec2",
    "encoder_layers": 2,
    "encoder_embed_dim": 32,
    "encoder_ffn_embed_dim": 64,
    "encoder_attention_heads": 4,
    "conv_feature_layers": "[(24,10,5)] + [(24,3,2)] * 4 + [(24,2,2)] * 2",
    "extractor_mode": "layer_norm",
    "conv_bias": True,
    "normalize": False,
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "layer_norm_first": True,
    "activation_fn": "gelu",
}
TINY_SSL_AASIST: dict[str, Any] = {
    "name": "tiny_ssl_aasist",
    "kind": "cm",
    "arch": "ssl_aasist",
    "args": {"front_end": TINY_XLSR_FRONT_END},
}


# shared/golden/*/config.json tiny_constructor_args, in this package's argument names
TINY_RESNET_ARGS: dict[str, dict[str, Any]] = {
    "se_resnet34": {"num_filters": [8, 16, 32, 64], "embedding_dim": 32},
    "se_res2net50": {"num_filters": [8, 8, 16, 16], "embedding_dim": 32, "base_width": 16},
    "res2next50": {"num_filters": [16, 16, 32, 32], "embedding_dim": 32, "base_width": 8, "cardinality": 2},
}
# shared/golden/wavlm_ecapa/config.json tiny_wavlm_cfg and tiny_head_args
TINY_WAVLM_CFG = {
    "extractor_mode": "layer_norm",
    "activation_fn": "gelu",
    "layer_norm_first": True,
    "conv_bias": False,
    "normalize": True,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "encoder_layerdrop": 0.0,
    "encoder_layers": 2,
    "encoder_embed_dim": 64,
    "encoder_ffn_embed_dim": 128,
    "encoder_attention_heads": 4,
    "conv_feature_layers": "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
}


def write_tiny_conf(folder: Path, raw: dict[str, Any], **changes: Any) -> Path:
    """``<folder>/<name>.yaml`` with a checkpoint that does not exist (so: --allow_random_init true)."""
    conf = {**raw, **changes}
    conf.setdefault("checkpoint", {"path": str(folder / f"absent_{conf['name']}.pt"), "format": "plain"})
    path = folder / f"{conf['name']}.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    return path
