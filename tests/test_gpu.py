"""The GPU path in one command wherever a GPU exists: `pytest -m gpu` (skipped without CUDA, saying so).

One short test per model family for extraction (the engine on cuda against the reference strategy on the CPU)
and one training step per trainer (fp32 and bf16). No GPU is on the developers' or CI's machines: these run
where one is lent (docs/PERFORMANCE.md records the figures), with `python bench/benchmark.py --device cuda`.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from sasv.audio import cm_input
from sasv.engines import CountermeasureEngine, EmbeddingEngine
from tests.test_engines import ASV_FAMILIES, _aasist, _build, _waveforms, assert_rows_match, reference_rows

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: run `pytest -m gpu` on a GPU"),
]
CUDA = torch.device("cuda")


@pytest.mark.parametrize("family", list(ASV_FAMILIES))
def test_extraction_on_the_gpu_matches_the_cpu_reference(family: str) -> None:
    model = _build(ASV_FAMILIES[family])
    waveforms = _waveforms()
    reference = [reference_rows(model, w) for w in waveforms]
    engine = EmbeddingEngine(copy.deepcopy(model), CUDA, model_batch=16)
    for i, (rows, ref) in enumerate(zip(engine.compute(waveforms), reference, strict=True)):
        assert_rows_match(rows, ref, f"{family} on cuda, utterance {i}")


def test_cm_on_the_gpu_matches_the_cpu_reference() -> None:
    model = _build(_aasist)
    waveforms = _waveforms()
    with torch.inference_mode():
        reference = np.concatenate([model(torch.from_numpy(cm_input(w))[None]).numpy() for w in waveforms])
    got = CountermeasureEngine(copy.deepcopy(model), CUDA, model_batch=4).compute(waveforms)
    assert np.abs(got - reference).max() / np.abs(reference).max() <= 1e-5


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_steps_on_the_gpu(train_dir, tmp_path, precision: str) -> None:
    from sasv.conf import parse_conf
    from sasv.train.asv import train
    from sasv.train.confs import AsvTrainConf as TrainConf
    from tests.tiny_confs import TINY_ECAPA

    conf = TrainConf(epochs=2, batch_size=8, crop_seconds=1.0, warmup_epochs=1, precision=precision, seed=1)
    last = train(parse_conf(TINY_ECAPA), conf, train_dir, tmp_path / precision, device=CUDA)
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert dataclasses.asdict(conf) == state["train_conf"]
