"""The fast extraction path computes the reference system's numbers, for every model family.

The reference strategy (DoubleRoc ``save_embeddings.py``) runs each utterance alone: ``model(full[None])``,
then its five segments as one batch of 5, in plain fp32 torch. The engine instead batches segments across
utterances, batches equal-length full utterances, and on CPU stores 2-D conv weights channels-last and
routes 1x1 convolutions and linear layers to oneDNN (:func:`sasv.runtime.cpu_kernels.prepare_model`). None of
that may change an embedding beyond float rounding: each row must be within 1e-5 (max |diff| / max |ref|) of
the reference row and have a cosine of at least 0.99999 with it.

Models are tiny (the golden fixtures' tiny widths) with seeded random weights, so the test needs no fixture
files; they run the same code paths as the published models.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from sasv.audio import cm_input, embedding_segments
from sasv.extraction.engines import CountermeasureEngine, EmbeddingEngine
from sasv.models.conf import load_conf
from sasv.runtime.cpu_kernels import (
    OneDnnConv1d,
    OneDnnConv2d,
    OneDnnLinear,
    mkl_runs_avx512,
    onednn_available,
    prepare_model,
)
from tests.conftest import REPO_ROOT
from tests.tiny_confs import TINY_RESNET_ARGS, TINY_WAVLM_CFG

REL_TOL = 1e-5
MIN_COSINE = 0.99999

# utterance lengths: very short, under one segment, exactly one segment, two of equal length (batched
# together as full utterances), long; in an order that mixes them
LENGTHS = [52000, 8000, 30000, 48240, 52000, 130000, 16000]


def _ecapa() -> nn.Module:
    from sasv.models.ecapa_tdnn import EcapaTdnn

    return EcapaTdnn(C=16)


def _resnet(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from sasv.models.registry import resolve_architecture

        conf = load_conf(REPO_ROOT / "conf" / "asv" / f"{name}.yaml")
        return resolve_architecture(conf.arch)(**TINY_RESNET_ARGS[name], frontend=conf.frontend)

    return build


def _wavlm() -> nn.Module:
    from sasv.models.wavlm_ecapa import WavLMEcapa

    return WavLMEcapa(wavlm=TINY_WAVLM_CFG, channels=16, embedding_dim=16)


def _aasist() -> nn.Module:
    from sasv.models.aasist import AASIST

    return AASIST(filts=[20, [1, 8], [8, 8], [8, 16], [16, 16]], gat_dims=[16, 16])


ASV_FAMILIES: dict[str, Callable[[], nn.Module]] = {
    "ecapa_tdnn": _ecapa,
    "se_resnet34": _resnet("se_resnet34"),
    "se_res2net50": _resnet("se_res2net50"),
    "res2next50": _resnet("res2next50"),
    "wavlm_ecapa": _wavlm,
}

# (model_batch, cpu_kernels): the CPU default (batch 1, oneDNN), batching across utterances with and
# without oneDNN routing (7 segments per batch: batches straddle utterances and end ragged)
ENGINE_SETTINGS = [(1, "onednn"), (7, "onednn"), (7, "torch")]


def _build(factory: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return factory().eval()


def _waveforms() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    # speech-like scale and a DC-free random signal; the 4th equal-length utterance is not a copy
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in LENGTHS]


@torch.inference_mode()
def reference_rows(model: nn.Module, wav: np.ndarray) -> np.ndarray:
    """The reference strategy: model(full[None]) then model(five segments) as one batch of 5."""
    full = model(torch.from_numpy(wav)[None])
    segments = model(torch.from_numpy(embedding_segments(wav)))
    return torch.cat([full, segments]).numpy()


def assert_rows_match(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert got.shape == ref.shape, what
    for r, (g, e) in enumerate(zip(got.astype(np.float64), ref.astype(np.float64), strict=True)):
        rel = np.abs(g - e).max() / np.abs(e).max()
        cosine = g @ e / (np.linalg.norm(g) * np.linalg.norm(e))
        assert rel <= REL_TOL, f"{what} row {r}: relative difference {rel:.2e}"
        assert cosine >= MIN_COSINE, f"{what} row {r}: cosine {cosine:.7f}"


@pytest.fixture(scope="module")
def waveforms() -> list[np.ndarray]:
    return _waveforms()


@pytest.fixture(scope="module", params=list(ASV_FAMILIES))
def asv_family(request, waveforms) -> tuple[str, nn.Module, list[np.ndarray]]:
    """A tiny model of one family and its reference rows for every waveform (computed once per family)."""
    model = _build(ASV_FAMILIES[request.param])
    return request.param, model, [reference_rows(model, w) for w in waveforms]


@pytest.mark.parametrize("model_batch, cpu_kernels", ENGINE_SETTINGS)
def test_engine_rows_equal_reference_strategy(asv_family, waveforms, model_batch, cpu_kernels) -> None:
    name, model, reference = asv_family
    engine = EmbeddingEngine(
        copy.deepcopy(model), torch.device("cpu"), model_batch=model_batch, cpu_kernels=cpu_kernels
    )
    got = engine.compute(waveforms)
    for i, (rows, ref) in enumerate(zip(got, reference, strict=True)):
        assert rows.dtype == np.float32
        assert_rows_match(rows, ref, f"{name} utterance {i} ({LENGTHS[i]} samples)")


@pytest.mark.parametrize("model_batch, cpu_kernels", [(1, "onednn"), (3, "onednn"), (len(LENGTHS), "torch")])
def test_cm_engine_equals_reference_strategy(waveforms, model_batch, cpu_kernels) -> None:
    model = _build(_aasist)
    with torch.inference_mode():
        reference = np.concatenate([model(torch.from_numpy(cm_input(w))[None]).numpy() for w in waveforms])
    engine = CountermeasureEngine(
        copy.deepcopy(model), torch.device("cpu"), model_batch=model_batch, cpu_kernels=cpu_kernels
    )
    got = engine.compute(waveforms)
    assert got.shape == reference.shape == (len(waveforms), 2)
    scale = np.abs(reference).max()
    assert np.abs(got - reference).max() / scale <= REL_TOL


@pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN")
def test_prepare_model_routes_only_what_it_can() -> None:
    """1x1 convs and linear layers are routed, other convs and subclasses are left alone; names and the
    state dict are unchanged, so checkpoints still load into a prepared model."""

    class Custom(nn.Conv1d):
        pass

    model = nn.Sequential(
        nn.Conv1d(4, 4, 1),
        nn.Conv1d(4, 4, 3, padding=1),
        nn.Conv2d(4, 4, 1),
        nn.Conv1d(4, 4, 1, padding_mode="reflect"),
        Custom(4, 4, 1),
        nn.Linear(4, 4),
    )
    keys = list(model.state_dict())
    prepare_model(model, torch.device("cpu"))
    kinds = [type(m) for m in model]
    # linear layers go to oneDNN only where MKL runs its AVX2 code (not on Intel CPUs)
    linear = nn.Linear if mkl_runs_avx512() else OneDnnLinear
    assert kinds == [OneDnnConv1d, nn.Conv1d, OneDnnConv2d, nn.Conv1d, Custom, linear]
    assert list(model.state_dict()) == keys
    assert model[2].weight.is_contiguous(memory_format=torch.channels_last)
    # training or autocast falls back to torch's own kernels
    x = torch.randn(2, 4, 5, requires_grad=True)
    model[0](x).sum().backward()
    assert x.grad is not None


def test_prepare_model_torch_kernels_leaves_modules() -> None:
    model = nn.Sequential(nn.Conv1d(4, 4, 1), nn.Linear(5, 5))
    prepare_model(model, torch.device("cpu"), cpu_kernels="torch")
    assert [type(m) for m in model] == [nn.Conv1d, nn.Linear]
    with pytest.raises(ValueError, match="cpu_kernels"):
        prepare_model(model, torch.device("cpu"), cpu_kernels="fast")


def test_default_model_batch_rule() -> None:
    """GPU: the conf's batch. CPU: 1 for 2-D conv models (cache-bound), 2 per thread (at most 5) otherwise."""
    from sasv.extraction.engines import default_model_batch

    two_d, one_d = nn.Sequential(nn.Conv2d(1, 1, 3)), nn.Sequential(nn.Conv1d(1, 1, 3))
    assert default_model_batch(torch.device("cuda"), 16, two_d) == 16
    assert default_model_batch(torch.device("cpu"), 16, two_d, threads=4) == 1
    assert default_model_batch(torch.device("cpu"), 16, one_d, threads=1) == 2
    assert default_model_batch(torch.device("cpu"), 16, one_d, threads=4) == 5
    assert default_model_batch(torch.device("cpu"), 16) == 1
