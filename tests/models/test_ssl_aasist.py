"""SSL-AASIST: the wav2vec 2.0 front end shared with WavLM, the back end shared with AASIST, the released
checkpoint format, the front end as a conf choice, and training's activation recomputation.

Parity with the original code (TakHemlata/SSL_Anti-spoofing ``model.py`` with its fairseq) is
``test_ssl_aasist_parity.py``; the restricted reading of fairseq checkpoints
``test_fairseq_checkpoint.py``.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sasv.models.checkpoint_formats import CheckpointError, get_format
from sasv.models.checkpoints import map_checkpoint_keys
from sasv.models.conf import ConfError, build_from_conf, load_conf, parse_conf
from sasv.models.ssl_aasist import SSLAASIST
from sasv.models.wavlm import GatedRelPosSelfAttention, SelfAttention, WavLMConfig
from sasv.train.export import state_dict_for_format
from tests.conftest import REPO_ROOT
from tests.tiny_confs import TINY_SSL_AASIST, TINY_WAVLM_CFG, TINY_XLSR_FRONT_END


def _tiny(front_end: dict | None = None, seed: int = 0) -> SSLAASIST:
    torch.manual_seed(seed)
    return SSLAASIST(front_end or TINY_XLSR_FRONT_END).eval()


def test_wav2vec2_is_wavlm_without_the_relative_position_bias() -> None:
    model = _tiny()
    layers = model.ssl_model.model.encoder.layers
    assert all(type(layer.self_attn) is SelfAttention for layer in layers)
    keys = set(model.state_dict())
    assert not any("grep" in k or "relative_attention_bias" in k for k in keys)
    wavlm = _tiny({"family": "wavlm", **TINY_WAVLM_CFG})
    assert all(
        isinstance(layer.self_attn, GatedRelPosSelfAttention)
        for layer in wavlm.ssl_model.model.encoder.layers
    )
    # the back end is the same whatever the front end: only the encoder width reaches it, through LL
    back = {k for k in keys if not k.startswith("ssl_model.")}
    assert back == {k for k in wavlm.state_dict() if not k.startswith("ssl_model.")}
    with torch.no_grad():
        assert wavlm(torch.randn(2, 16000)).shape == (2, 2)


def test_front_end_cfg_is_checked_by_family() -> None:
    cfg = {k: v for k, v in TINY_XLSR_FRONT_END.items() if k != "family"}
    assert WavLMConfig.from_dict(cfg, family="wav2vec2").relative_position_embedding is False
    with pytest.raises(ValueError, match="unknown wav2vec 2.0 cfg fields"):
        WavLMConfig.from_dict({**cfg, "num_buckets": 320}, family="wav2vec2")
    with pytest.raises(ValueError, match="lacks the architecture fields"):
        WavLMConfig.from_dict(cfg, family="wavlm")  # a WavLM cfg needs its relative position fields
    with pytest.raises(ValueError, match="extractor_mode='default' is not supported"):
        WavLMConfig.from_dict({**cfg, "extractor_mode": "default"}, family="wav2vec2")
    with pytest.raises(ValueError, match="front_end.family"):
        SSLAASIST({**TINY_XLSR_FRONT_END, "family": "hubert"})
    with pytest.raises(ConfError, match="front_end"):
        build_from_conf(parse_conf({**TINY_SSL_AASIST, "args": {"front_end": cfg}}))


def test_forward_shapes_batch_consistency_and_short_input() -> None:
    model = _tiny()
    x = torch.randn(3, 64600, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batch = model(x)
        one = torch.cat([model(x[i : i + 1]) for i in range(3)])
        last_hidden, logits = model.forward_features(x)
        features = model.ssl_features(x)
        features_one = torch.cat([model.ssl_features(x[i : i + 1]) for i in range(3)])
    assert batch.shape == (3, 2) and last_hidden.shape == (3, 5 * 32)
    # rows do not mix: the front end's rows agree to float rounding; the untrained back end (BatchNorm at
    # its initial statistics) amplifies that rounding, so its logits are held to an absolute 1e-4
    scale = float(features.abs().max())
    torch.testing.assert_close(features, features_one, rtol=0, atol=1e-6 * scale)
    torch.testing.assert_close(batch, one, rtol=0, atol=1e-4)
    torch.testing.assert_close(logits, batch)
    assert model.min_samples == 400 + 2 * 320
    with torch.no_grad():
        model(torch.randn(1, model.min_samples))
    with pytest.raises(ValueError, match="too short"):
        model(torch.randn(1, model.min_samples - 1))
    # 42 spectral nodes for the original's 128-wide projection, as its pos_S
    assert SSLAASIST(TINY_XLSR_FRONT_END).pos_S.shape == (1, 42, 64)


def test_released_format_round_trips_and_skips_the_pretraining_quantizer() -> None:
    model = _tiny()
    fmt = get_format("ssl_aasist")
    saved = state_dict_for_format(model, fmt)
    assert "ssl_model.model.feature_extractor.conv_layers.0.0.weight" in saved
    assert "ssl_model.model.feature_extractor.conv_layers.3.2.1.bias" in saved
    assert "ssl_model.model.encoder.pos_conv.0.weight_g" in saved
    assert "LL.weight" in saved and "attention.2.running_var" in saved and "encoder.5.0.conv1.weight" in saved
    with_quantizer = {
        **saved,
        "ssl_model.model.quantizer.vars": torch.zeros(1, 4, 8),
        "ssl_model.model.project_q.weight": torch.zeros(8, 8),
        "ssl_model.model.final_proj.bias": torch.zeros(8),
    }
    loaded = map_checkpoint_keys(with_quantizer, fmt)
    assert set(loaded) == set(model.state_dict())
    other = _tiny(seed=5)
    other.load_state_dict(loaded, strict=True)
    x = torch.randn(2, 20000)
    with torch.no_grad():
        torch.testing.assert_close(other(x), model(x), rtol=0, atol=0)


def test_gradient_checkpointing_recomputes_the_same_gradients() -> None:
    """Recomputing the transformer layers in backward changes memory, not numbers."""
    x = torch.randn(2, 16000, generator=torch.Generator().manual_seed(2))
    grads = []
    for recompute in (False, True):
        model = _tiny(seed=3).train()
        model.ssl_model.model.encoder.gradient_checkpointing = recompute
        torch.manual_seed(4)  # the same dropout masks in the back end
        model(x).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any("encoder.layers.1" in n for n in grads[0])
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("name", ["ssl_aasist", "ssl_aasist_df", "wavlm_aasist"])
def test_shipped_confs_describe_the_full_size_models(name: str) -> None:
    """The shipped confs give the full-size architecture (24 layers, 1024 wide, 42 spectral nodes) and the
    released format; building XLS-R at full size takes a few seconds and 1.3 GB, so only the meta device."""
    conf = load_conf(REPO_ROOT / "conf" / "cm" / f"{name}.yaml")
    assert conf.kind == "cm" and conf.arch == "ssl_aasist" and conf.checkpoint.format == "ssl_aasist"
    with torch.device("meta"):
        model = build_from_conf(conf)
    assert model.cfg.encoder_layers == 24 and model.cfg.encoder_embed_dim == 1024
    assert model.pos_S.shape == (1, 42, 64) and model.LL.weight.shape == (128, 1024)
    parameters = sum(p.numel() for p in model.parameters())
    assert 315e6 < parameters < 320e6, parameters  # XLS-R 300M's 315 M + the back end's
    assert (model.family == "wav2vec2") == (name != "wavlm_aasist")
    assert model.ssl_model.normalize == (name == "wavlm_aasist")


def test_training_dropouts_are_fairseqs_and_leave_inference_alone() -> None:
    from sasv.models.wavlm import Dropouts

    with pytest.raises(ValueError, match="encoder_layerdrop must be a probability"):
        Dropouts.from_cfg({"encoder_layerdrop": 1.0})
    assert Dropouts.from_cfg({"dropout": 0.1, "mask_prob": 0.65}) == Dropouts(dropout=0.1)
    x = torch.randn(2, 16000, generator=torch.Generator().manual_seed(6))
    plain, regularised = _tiny(seed=7), _tiny(seed=7)
    regularised.ssl_model.model.set_dropouts(Dropouts(0.3, 0.3, 0.3, 0.4, 0.3))
    with torch.no_grad():
        torch.testing.assert_close(regularised(x), plain(x), rtol=0, atol=0)  # eval mode: no effect
        plain.train(), regularised.train()
        torch.manual_seed(8)
        a = plain.ssl_features(x)
        torch.manual_seed(8)
        b = regularised.ssl_features(x)
    assert not torch.allclose(a, b), "training mode applies them"
    # recomputed activations replay the same dropout masks and LayerDrop draws
    grads = []
    for recompute in (False, True):
        model = _tiny(seed=3).train()
        model.ssl_model.model.set_dropouts(Dropouts(0.2, 0.2, 0.2, 0.3, 0.2))
        model.ssl_model.model.encoder.gradient_checkpointing = recompute
        torch.manual_seed(9)
        model(x).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-7, msg=name)


def test_fine_tuning_from_a_fairseq_checkpoint_takes_its_dropouts(caplog) -> None:
    """As the original builds XLS-R from the checkpoint's cfg: its dropouts, with or without its weights."""
    from sasv.models.conf import init_checkpoint_spec, load_init_checkpoint

    fixtures = REPO_ROOT / "tests" / "fixtures" / "ssl_aasist"
    init = init_checkpoint_spec(
        {"module": "ssl_model.model", "path": str(fixtures / "tiny_xlsr.pt"), "format": "fairseq_pretrained"},
        "test",
    )
    for weights in (True, False):
        model = _tiny(seed=11)
        before = model.ssl_model.model.encoder.layers[0].fc1.weight.clone()
        caplog.set_level("INFO")
        digest = load_init_checkpoint(model, init, REPO_ROOT, weights=weights)
        encoder = model.ssl_model.model.encoder
        # tiny_xlsr.pt's cfg: dropout 0.1, attention 0.1, activation 0.0, LayerDrop 0.05, input 0.1
        assert (encoder.dropout, encoder.layerdrop, model.ssl_model.model.dropout_input) == (0.1, 0.05, 0.1)
        assert encoder.layers[1].self_attn.attention_dropout == 0.1
        assert torch.equal(encoder.layers[0].fc1.weight, before) != weights
        assert bool(digest) == weights
    with pytest.raises(CheckpointError, match="no sub-module 'front'"):
        load_init_checkpoint(model, dataclasses.replace(init, module="front"), REPO_ROOT)


def test_wavlm_large_pt_initialises_the_wavlm_front_end(golden, tmp_path) -> None:
    """WavLM-Large.pt's layout ({'cfg': the model's cfg, 'model': ...}; the golden tiny stand-in written by
    the original code) into conf/cm/wavlm_aasist.yaml's front end, its cfg's dropouts taken."""
    from sasv.models.conf import init_checkpoint_spec, load_init_checkpoint

    upstream = torch.load(golden("wavlm_ecapa/tiny_upstream.pt"), map_location="cpu", weights_only=True)
    path = tmp_path / "WavLM-Large.pt"
    torch.save(
        {"cfg": {**upstream["cfg"], "dropout": 0.1, "encoder_layerdrop": 0.05}, "model": upstream["model"]},
        path,
    )
    model = _tiny({"family": "wavlm", **TINY_WAVLM_CFG})
    init = init_checkpoint_spec(
        {"module": "ssl_model.model", "path": str(path), "format": "fairseq_pretrained"}, "test"
    )
    load_init_checkpoint(model, init, tmp_path)
    reference = upstream["model"]
    assert torch.equal(
        model.ssl_model.model.encoder.layers[1].fc2.weight, reference["encoder.layers.1.fc2.weight"]
    )
    assert (model.ssl_model.model.encoder.dropout, model.ssl_model.model.encoder.layerdrop) == (0.1, 0.05)


def test_feature_grad_mult_scales_or_stops_the_conv_encoders_gradient_and_never_the_values(tmp_path) -> None:
    """fairseq's feature_grad_mult, taken from the checkpoint a run fine-tunes: the conv encoder's gradient
    times it, none at 0 (its parameters frozen, so no optimizer or DDP waits for them); the rest of the
    model, and every forward value, as at 1."""
    from sasv.models.conf import init_checkpoint_spec, load_init_checkpoint
    from sasv.models.fairseq_checkpoint import read_fairseq_checkpoint

    x = torch.randn(2, 16000, generator=torch.Generator().manual_seed(12))
    outputs, grads = {}, {}
    for mult in (1.0, 0.25, 0.0):
        model = _tiny(seed=13)
        model.ssl_model.model.set_feature_grad_mult(mult)
        out = model(x)
        out.sum().backward()
        outputs[mult] = out.detach()
        grads[mult] = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    conv = [n for n in grads[1.0] if ".feature_extractor." in n]
    assert conv and not any(n in grads[0.0] for n in conv)
    assert set(grads[0.0]) == set(grads[1.0]) - set(conv)
    for name in conv:
        torch.testing.assert_close(grads[0.25][name], 0.25 * grads[1.0][name], rtol=1e-5, atol=1e-9)
    for name in grads[0.0]:
        torch.testing.assert_close(grads[0.25][name], grads[1.0][name], rtol=0, atol=0)
        torch.testing.assert_close(grads[0.0][name], grads[1.0][name], rtol=0, atol=0)
    assert torch.equal(outputs[0.25], outputs[1.0]) and torch.equal(outputs[0.0], outputs[1.0])

    pretrained = read_fairseq_checkpoint(REPO_ROOT / "tests" / "fixtures" / "ssl_aasist" / "tiny_xlsr.pt")
    for mult, error in ((0.0, None), (-1.0, "feature_grad_mult must be a number >= 0")):
        path = tmp_path / f"mult_{mult}.pt"
        torch.save({"cfg": {"model": {**pretrained["cfg"]["model"], "feature_grad_mult": mult}},
                    "model": pretrained["model"]}, path)  # fmt: skip
        init = init_checkpoint_spec(
            {"module": "ssl_model.model", "path": str(path), "format": "fairseq_pretrained"}, "test"
        )
        model = _tiny(seed=11)
        if error:
            with pytest.raises(CheckpointError, match=error):
                load_init_checkpoint(model, init, REPO_ROOT)
            continue
        load_init_checkpoint(model, init, REPO_ROOT)
        assert model.ssl_model.model.feature_grad_mult == 0.0
        assert not any(p.requires_grad for p in model.ssl_model.model.feature_extractor.parameters())
