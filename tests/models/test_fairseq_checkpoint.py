"""fairseq checkpoints read without fairseq: config objects rebuilt inert, anything else refused unrun.

``dictconfig_checkpoint.pt`` was pickled by omegaconf 2.0.6 (fairseq's pin) from the cfg of ``tiny_xlsr.pt``
(which fairseq's own pre-training wrote as a plain dict, as XLS-R's trainer did), with an
``argparse.Namespace`` as ``args``: the layout of XLSR-53-era checkpoints, whose ``cfg`` is a DictConfig.
"""

from __future__ import annotations

import enum
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from sasv.models.checkpoint_formats import CheckpointError
from sasv.models.checkpoints import read_checkpoint
from sasv.models.fairseq_checkpoint import read_fairseq_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ssl_aasist"


def test_a_dictconfig_cfg_reads_as_the_plain_dict_fairseq_would_give() -> None:
    plain_cfg = torch.load(FIXTURES / "tiny_xlsr.pt", map_location="cpu", weights_only=True)["cfg"]
    with pytest.raises(CheckpointError, match="refused by safe loading"):
        read_checkpoint(FIXTURES / "dictconfig_checkpoint.pt")  # plain weights_only refuses the objects
    checkpoint = read_fairseq_checkpoint(FIXTURES / "dictconfig_checkpoint.pt")
    assert checkpoint["cfg"] == plain_cfg
    assert checkpoint["cfg"]["model"]["encoder_embed_dim"] == 32
    assert checkpoint["args"] == {"arch": "wav2vec2", "sample_rate": 16000}
    assert all(isinstance(v, torch.Tensor) for v in checkpoint["model"].values())
    assert read_checkpoint(FIXTURES / "dictconfig_checkpoint.pt", config_objects=True)["cfg"] == plain_cfg


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_that_would_run_code_is_refused_before_anything_runs(tmp_path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"cfg": {"model": {}}, "model": {}, "extra": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match=r"posix\.mkdir.*not loaded"):
        read_fairseq_checkpoint(path)
    assert not marker.exists()


def test_fairseq_config_enums_become_their_values(tmp_path, monkeypatch) -> None:
    """A structured config's enum member (a fairseq class, admitted by module) is rebuilt inert."""

    class Mode(enum.Enum):
        LAYER_NORM = "layer_norm"

    module = types.ModuleType("fairseq.dataclass.constants")
    Mode.__module__, Mode.__qualname__ = module.__name__, "Mode"
    module.Mode = Mode
    for name in ("fairseq", "fairseq.dataclass"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    path = tmp_path / "enum.pt"
    torch.save({"cfg": {"model": {"extractor_mode": Mode.LAYER_NORM}}, "model": {}}, path)
    monkeypatch.delitem(sys.modules, module.__name__)  # reading never imports it
    assert read_fairseq_checkpoint(path)["cfg"] == {"model": {"extractor_mode": "layer_norm"}}


def test_a_corrupt_file_is_one_error(tmp_path) -> None:
    path = tmp_path / "cut.pt"
    path.write_bytes((FIXTURES / "dictconfig_checkpoint.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cut.pt"):
        read_fairseq_checkpoint(path)
