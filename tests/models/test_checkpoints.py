"""Checkpoints are untrusted input: every way a file can be wrong gets a message naming it and the cause."""

import pickle
import zipfile

import pytest
import torch
from torch import nn

from sasv.models.checkpoints import (
    FORMATS,
    CheckpointError,
    get_format,
    load_checkpoint_into,
    map_checkpoint_keys,
    read_checkpoint,
    sha256_file,
)
from sasv.models.conf import ConfError, load_model, parse_conf


class Tiny(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.fc = nn.Linear(width, 2)


def _save(path, obj):
    torch.save(obj, path)
    return path


def test_plain_roundtrip_and_sha(tmp_path):
    src = Tiny()
    path = _save(tmp_path / "m.pt", src.state_dict())
    dst = Tiny()
    digest = load_checkpoint_into(dst, path, "plain", expected_sha256=sha256_file(path))
    assert digest == sha256_file(path)
    assert torch.equal(dst.fc.weight, src.fc.weight)


def test_wrong_sha256_is_refused(tmp_path):
    path = _save(tmp_path / "m.pt", Tiny().state_dict())
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint_into(Tiny(), path, "plain", expected_sha256="0" * 64)


def test_wrong_architecture_lists_keys(tmp_path):
    path = _save(tmp_path / "m.pt", Tiny(width=8).state_dict())
    with pytest.raises(
        CheckpointError, match=r"shape mismatches: fc.weight: checkpoint \(2, 8\) vs model \(2, 4\)"
    ):
        load_checkpoint_into(Tiny(), path, "plain")
    path = _save(tmp_path / "other.pt", {"encoder.w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="missing keys: fc.bias, fc.weight") as err:
        load_checkpoint_into(Tiny(), path, "plain")
    assert "unexpected keys: encoder.w" in str(err.value)


def test_truncated_file(tmp_path):
    path = _save(tmp_path / "m.pt", Tiny().state_dict())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        read_checkpoint(path)
    assert str(path) in str(err.value)


def test_empty_file(tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(path)


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"fc.weight": torch.zeros(2, 4), "payload": _RunsCode()}, path)
    with pytest.raises(CheckpointError, match="refused by safe loading") as err:
        read_checkpoint(path)
    assert "arbitrary code" in str(err.value)


def test_legacy_raw_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump(_RunsCode(), f)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


def test_not_a_state_dict(tmp_path):
    path = _save(tmp_path / "t.pt", torch.zeros(3))
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_checkpoint(path)


def test_format_prefix_and_ignored_keys():
    fmt = get_format("taoruijie_ecapa")
    state = {
        "speaker_encoder.fc.weight": torch.zeros(1),
        "speaker_encoder.torchfbank.1.mel_scale.fb": torch.zeros(1),
        "speaker_loss.weight": torch.zeros(1),
    }
    assert sorted(map_checkpoint_keys(state, fmt)) == ["fc.weight", "frontend.mel_fb"]
    # an ignored key first: the keys after it are still mapped (mutation testing: `break` for `continue`)
    reordered = {"speaker_loss.weight": torch.zeros(1), **state}
    assert sorted(map_checkpoint_keys(reordered, fmt)) == ["fc.weight", "frontend.mel_fb"]
    with pytest.raises(CheckpointError, match="neither the model prefix"):
        map_checkpoint_keys({"something.else": torch.zeros(1)}, fmt)


def test_nested_format_needs_its_key():
    with pytest.raises(CheckpointError, match="under key 'model'"):
        map_checkpoint_keys({"fc.weight": torch.zeros(1)}, FORMATS["unispeech_wavlm_ecapa"])


def test_unknown_format():
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        get_format("nope")


def test_missing_checkpoint_says_how_to_obtain(tmp_path):
    conf = parse_conf(
        {
            "name": "ecapa_tdnn",
            "kind": "asv",
            "arch": "ecapa_tdnn",
            "args": {"C": 16},
            "checkpoint": {
                "path": str(tmp_path / "absent.model"),
                "format": "taoruijie_ecapa",
                "url": "https://x/y",
            },
        }
    )
    with pytest.raises(CheckpointError, match="does not exist") as err:
        load_model(conf)
    assert "local/download_pretrained.sh ecapa_tdnn" in str(err.value)
    assert "https://x/y" in str(err.value)
    # the demo tolerates the missing file and says the weights are random
    assert not load_model(conf, allow_random_init=True).pretrained


def test_random_init_is_reproducible(tmp_path):
    conf = parse_conf({"name": "t", "kind": "asv", "arch": "ecapa_tdnn", "args": {"C": 16}})
    a = load_model(conf, allow_random_init=True).model.state_dict()
    b = load_model(conf, allow_random_init=True).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "raw, message",
    [
        ([], "must be a YAML mapping"),
        ({"name": "x", "kind": "asv"}, "'arch' must be a non-empty string"),
        ({"name": "x", "kind": "lm", "arch": "ecapa_tdnn"}, "kind must be one of"),
        ({"name": "x", "kind": "asv", "arch": "transformer9000"}, "unknown architecture"),
        ({"name": "x", "kind": "asv", "arch": "ecapa_tdnn", "extra": 1}, "unknown keys"),
        ({"name": "x", "kind": "asv", "arch": "ecapa_tdnn", "checkpoint": {"path": "p"}}, "needs at least"),
        (
            {"name": "x", "kind": "asv", "arch": "ecapa_tdnn", "checkpoint": {"path": "p", "format": "zzz"}},
            "unknown checkpoint format",
        ),
    ],
)
def test_bad_confs(raw, message):
    with pytest.raises(ConfError, match=message):
        parse_conf(raw, source="conf/asv/bad.yaml")


def test_zip_checkpoint_not_a_zip(tmp_path):
    path = tmp_path / "m.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "not a torch archive")
    with pytest.raises(CheckpointError, match=str(path)):
        read_checkpoint(path)
