"""Export writes what the recipe trains in the public format its conf loads, and the conf to load it with.

Round trip per ASV format: a tiny model with seeded random weights (BN statistics and front-end buffers
included) -> ``save_checkpoint`` -> ``write_conf`` -> ``load_model(load_conf(...))`` strictly, equal in every
tensor and in its outputs. Against the golden tiny checkpoints (random weights in the real files' layouts):
golden file -> recipe model -> export gives back the same keys and tensors, so the exported layout is the
public one and not merely one that our own loader accepts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

from sasv.fileio import sha256_file
from sasv.models.checkpoints import (
    FORMATS,
    CheckpointFormat,
    get_format,
    map_checkpoint_keys,
    read_checkpoint,
)
from sasv.models.conf import ModelConf, build_from_conf, load_conf, load_model, parse_conf
from sasv.train.export import file_key, save_checkpoint, state_dict_for_format, write_conf
from tests.conftest import REPO_ROOT

ASV_FORMATS = {
    "ecapa_tdnn": "taoruijie_ecapa",
    "se_resnet34": "voxceleb_trainer",
    "se_res2net50": "doubleroc_resnet",
    "res2next50": "doubleroc_res2next",
    "wavlm_ecapa": "unispeech_wavlm_ecapa",
}
# small constructor args (one block per stage) so that each round trip takes well under a second
TINY_ARGS: dict[str, dict[str, Any]] = {
    "ecapa_tdnn": {"C": 16, "embedding_dim": 16},
    "se_resnet34": {"layers": [1, 1, 1, 1], "num_filters": [8, 8, 16, 16], "embedding_dim": 16},
    "se_res2net50": {
        "layers": [1, 1, 1, 1], "num_filters": [8, 8, 16, 16], "embedding_dim": 16, "base_width": 16,
        "se_bottleneck": 8,
    },
    "res2next50": {
        "layers": [1, 1, 1, 1], "num_filters": [16, 16, 32, 32], "embedding_dim": 16, "base_width": 8,
        "cardinality": 2,
    },
}  # fmt: skip
# golden config.json constructor argument -> ours (the ResNet family; n_mels / log_input are front-end's)
GOLDEN_ARG_NAMES = {"layers": "layers", "num_filters": "num_filters", "nOut": "embedding_dim",
                    "net_scale": "net_scale", "baseWidth": "base_width", "cardinality": "cardinality",
                    "encoder_type": "encoder_type"}  # fmt: skip


def tiny_conf(name: str, args: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> ModelConf:
    """``conf/asv/<name>.yaml`` (its front-end, format, batch size) with tiny args and another checkpoint."""
    source = REPO_ROOT / "conf" / "asv" / f"{name}.yaml"
    raw = yaml.safe_load(source.read_text())
    raw["name"] = f"tiny_{name}"
    raw["args"] = {**raw["args"], **args}
    raw["embedding_dim"] = raw["args"].get("embedding_dim", 192)
    raw["checkpoint"] = checkpoint or {"path": "absent.pt", "format": raw["checkpoint"]["format"]}
    return parse_conf(raw, source=str(source))


def wavlm_tiny_args(golden) -> dict[str, Any]:
    config = json.loads((golden("wavlm_ecapa") / "config.json").read_text())
    head = config["tiny_head_args"]
    return {"wavlm": config["tiny_wavlm_cfg"], "channels": head["channels"], "embedding_dim": head["emb_dim"]}


def golden_tiny_args(golden, name: str) -> dict[str, Any]:
    if name == "wavlm_ecapa":
        return wavlm_tiny_args(golden)
    original = json.loads((golden(name) / "config.json").read_text())["tiny_constructor_args"]
    return {GOLDEN_ARG_NAMES.get(k, k): v for k, v in original.items() if k not in ("n_mels", "log_input")}


def randomise(model: nn.Module, seed: int) -> None:
    """Seeded random values in every tensor, buffers included, so that nothing equals a fresh build.

    Parameters and BN means get additive noise; other float buffers (window, mel filterbank: their signs
    keep the log-mel finite) a positive factor; BN variances stay positive; integer counters random.
    """
    gen = torch.Generator().manual_seed(seed)
    params = {name for name, _ in model.named_parameters()}
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if not t.is_floating_point():
                t.copy_(torch.randint(1, 1000, t.shape, generator=gen))
                continue
            noise = torch.randn(t.shape, generator=gen)
            if key.endswith("running_var"):
                t.copy_(noise.abs() + 0.5)
            elif key in params or key.endswith("running_mean"):
                t.add_(0.1 * noise)
            else:
                t.mul_(1 + 0.1 * noise.abs())


def assert_same_model(a: nn.Module, b: nn.Module, seed: int = 0) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key
    wav = torch.randn(2, 8000, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = a.eval()(wav)
        assert out.isfinite().all()
        assert torch.equal(out, b.eval()(wav))


@pytest.mark.parametrize("name", ASV_FORMATS)
def test_export_write_conf_load_model_round_trip(golden, tmp_path: Path, name: str) -> None:
    args = wavlm_tiny_args(golden) if name == "wavlm_ecapa" else TINY_ARGS[name]
    conf = tiny_conf(name, args)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = build_from_conf(conf)
    randomise(model, seed=2)
    fresh = build_from_conf(conf).state_dict()
    assert not any(torch.equal(t, fresh[k]) for k, t in model.state_dict().items() if t.numel() > 1)

    sha = save_checkpoint(model, tmp_path / "model.pt", ASV_FORMATS[name])
    assert sha == sha256_file(tmp_path / "model.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary left behind
    conf_path = write_conf(
        conf, tmp_path / "model.pt", sha, tmp_path / "trained.yaml", name=f"{name}_trained"
    )

    first = conf_path.read_text().splitlines()[0]
    assert first.startswith("# Generated by sasv.export from") and f"{name}.yaml" in first
    new = load_conf(conf_path)
    assert new.name == f"{name}_trained"
    assert (new.kind, new.arch, new.args, new.frontend) == (conf.kind, conf.arch, conf.args, conf.frontend)
    assert (new.embedding_dim, new.batch_size) == (conf.embedding_dim, conf.batch_size)
    assert new.checkpoint is not None and new.checkpoint.format == ASV_FORMATS[name]
    assert (new.checkpoint.sha256, new.checkpoint.url) == (sha, None)

    loaded = load_model(new)  # strict, sha256 checked, no random init allowed
    assert loaded.checkpoint_sha256 == sha
    assert_same_model(model, loaded.model)


@pytest.mark.parametrize("name", ASV_FORMATS)
def test_export_of_golden_checkpoint_is_the_public_layout(golden, tmp_path: Path, name: str) -> None:
    fmt = get_format(ASV_FORMATS[name])
    golden_file = golden(name) / "tiny.pt"
    conf = tiny_conf(name, golden_tiny_args(golden, name), {"path": str(golden_file), "format": fmt.name})
    model = load_model(conf).model

    original = read_checkpoint(golden_file)
    exported = state_dict_for_format(model, fmt.name)
    if fmt.nested_key is not None:
        # UniSpeech's file also holds a top-level 'best_valid_eer' float, which no loader needs
        assert set(original) - {fmt.nested_key} == {"best_valid_eer"}
        original, exported = original[fmt.nested_key], exported[fmt.nested_key]
    ignored = {k for k in original if k.startswith(fmt.ignored_prefixes)}
    assert ignored == set(json.loads((golden(name) / "config.json").read_text())["tiny_extra_keys"])
    assert set(exported) == set(original) - ignored
    for key, value in exported.items():
        assert value.dtype == original[key].dtype and torch.equal(value, original[key]), key

    # with the loss head passed back as extra, the whole public state dict is reproduced
    head = {k: original[k] for k in ignored}
    full = state_dict_for_format(model, fmt.name, extra=head)
    state = full if fmt.nested_key is None else full[fmt.nested_key]
    assert set(state) == set(original)
    sha = save_checkpoint(model, tmp_path / "with_head.pt", fmt.name, extra=head)
    conf_path = write_conf(conf, tmp_path / "with_head.pt", sha, tmp_path / "with_head.yaml")
    assert_same_model(model, load_model(load_conf(conf_path)).model)


def test_renames_are_inverted_by_the_most_specific_rename() -> None:
    """UniSpeech's head renames are not injective; export picks the public name, and the loader agrees."""
    fmt = get_format("unispeech_wavlm_ecapa")
    key = "layer2.conv1.weight"
    preimages = ["layer2.Conv1dReluBn1.conv.weight", "layer2.Res2Conv1dReluBn.conv1.weight", key]
    loaded = map_checkpoint_keys({fmt.nested_key: {p: torch.zeros(1) for p in preimages[:1]}}, fmt)
    assert list(loaded) == [key]
    for p in preimages[1:]:
        assert list(map_checkpoint_keys({fmt.nested_key: {p: torch.zeros(1)}}, fmt)) == [key]
    assert file_key(key, fmt) == preimages[0]
    assert file_key("layer2.convs.0.weight", fmt) == "layer2.Res2Conv1dReluBn.convs.0.weight"
    assert file_key("layer1.conv.weight", fmt) == "layer1.conv.weight"  # no rename covers it


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=list(FORMATS))
def test_every_registered_rename_is_written_under_its_old_name(fmt: CheckpointFormat) -> None:
    for old, new in fmt.renames:
        assert file_key(new + "x", fmt) == fmt.model_prefix + old + "x"


@pytest.mark.parametrize(
    ("renames", "key", "match"),
    [
        ((("a.", "x."), ("a.b.", "y.")), "y.w", "shadows"),  # a.b.* is taken by the earlier a.* rename
        ((("x.", "y."),), "x.w", "shadows"),  # the loader would rename the model's own x.w to y.w
    ],
)
def test_inconsistent_renames_are_refused(renames: tuple, key: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        file_key(key, CheckpointFormat(name="t", renames=renames))


class WithLoss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.loss = nn.Linear(2, 5)


def test_model_key_the_loader_ignores_is_refused() -> None:
    fmt = CheckpointFormat(name="t", model_prefix="m.", ignored_prefixes=("m.loss.",))
    with pytest.raises(ValueError, match="loader ignores"):
        state_dict_for_format(WithLoss(), fmt)


@pytest.mark.parametrize(
    ("fmt_name", "extra_key"),
    [
        ("taoruijie_ecapa", "speaker_encoder.fc6.weight"),  # would be loaded as model weights
        ("voxceleb_trainer", "__L__"),  # the prefix is "__L__.", not "__L__"
        ("unispeech_wavlm_ecapa", "best_valid_eer"),
        ("plain", "loss.weight"),  # plain ignores nothing
    ],
)
def test_extra_key_outside_the_ignored_prefixes_is_refused(
    tmp_path: Path, fmt_name: str, extra_key: str
) -> None:
    with pytest.raises(ValueError, match="not under an ignored prefix"):
        save_checkpoint(nn.Linear(3, 2), tmp_path / "m.pt", fmt_name, extra={extra_key: torch.zeros(2)})
    assert not list(tmp_path.iterdir())


def test_extra_values_must_be_tensors() -> None:
    fmt = CheckpointFormat(name="t", ignored_prefixes=("loss.",))
    with pytest.raises(ValueError, match="not a tensor"):
        state_dict_for_format(nn.Linear(3, 2), fmt, extra={"loss.eer": 0.1})  # type: ignore[dict-item]


def test_exported_tensors_are_compact_cpu_copies() -> None:
    """A parameter that is a view of a bigger storage is written with its own bytes only."""
    model = nn.Linear(3, 2)
    big = torch.randn(100)
    model.weight = nn.Parameter(big[:6].view(2, 3))
    state = state_dict_for_format(model, "plain")
    assert state["weight"].untyped_storage().nbytes() == 6 * 4
    assert torch.equal(state["weight"], model.weight) and not state["weight"].requires_grad


def test_write_conf_needs_a_format_when_the_conf_has_no_checkpoint(tmp_path: Path) -> None:
    conf = parse_conf({"name": "t", "kind": "asv", "arch": "ecapa_tdnn", "args": {"C": 16}})
    with pytest.raises(ValueError, match="format_name"):
        write_conf(conf, "m.pt", "0" * 64, tmp_path / "t.yaml")
    path = write_conf(conf, "m.pt", "0" * 64, tmp_path / "t.yaml", format_name="taoruijie_ecapa")
    spec = load_conf(path).checkpoint
    assert spec is not None and (spec.path, spec.format) == ("m.pt", "taoruijie_ecapa")


class Compiled(nn.Module):
    """Stands in for torch.compile's OptimizedModule (keys ``_orig_mod.*``) without importing dynamo."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self._orig_mod = module


def test_wrapped_models_are_exported_without_wrapper_prefixes() -> None:
    model = nn.Linear(3, 2)
    for wrapped in (nn.DataParallel(model), Compiled(model), Compiled(nn.DataParallel(model))):
        assert set(wrapped.state_dict()) != {"weight", "bias"}
        assert set(state_dict_for_format(wrapped, "plain")) == {"weight", "bias"}
