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
from sasv.extraction.engines import CountermeasureEngine, EmbeddingEngine
from tests.extraction.test_engines import (
    ASV_FAMILIES,
    _aasist,
    _build,
    _waveforms,
    assert_rows_match,
    reference_rows,
)

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
    from sasv.models.conf import parse_conf
    from sasv.train.asv import train
    from sasv.train.confs import AsvTrainConf as TrainConf
    from tests.tiny_confs import TINY_ECAPA

    conf = TrainConf(epochs=2, batch_size=8, crop_seconds=1.0, warmup_epochs=1, precision=precision, seed=1)
    last = train(parse_conf(TINY_ECAPA), conf, train_dir, tmp_path / precision, device=CUDA)
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert dataclasses.asdict(conf) == state["train_conf"]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cm_training_on_the_gpu_validates_every_epoch(train_dir, tmp_path, precision: str) -> None:
    """The CM trainer on the GPU: RawBoost crops, weighted cross entropy, the dev CM-EER after every epoch
    (validation on the GPU in batches), BatchNorm re-estimation, finite weights."""
    import csv

    from sasv.models.conf import parse_conf
    from sasv.train.cm import train
    from sasv.train.confs import CmTrainConf
    from tests.tiny_confs import TINY_AASIST

    conf = CmTrainConf(
        epochs=2, batch_size=8, crop_samples=16000, initial_lr=0.002, final_lr=0.0001, seed=3,
        precision=precision, average_max_dev_eer=1.0, num_workers=0,
    )  # fmt: skip
    out, data = tmp_path / precision, train_dir.parent
    last = train(parse_conf(TINY_AASIST), conf, data / "cm_train", out, data / "cm_dev", device=CUDA)
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert len(rows) == 2 and all(0.0 <= float(r["dev_cm_eer"]) <= 1.0 for r in rows), rows


def test_cm_compiled_on_the_gpu_matches_the_cpu_reference() -> None:
    model = _build(_aasist)
    waveforms = _waveforms()
    with torch.inference_mode():
        reference = np.concatenate([model(torch.from_numpy(cm_input(w))[None]).numpy() for w in waveforms])
    engine = CountermeasureEngine(copy.deepcopy(model), CUDA, model_batch=4, compile=True)
    got = engine.compute(waveforms)
    assert np.abs(got - reference).max() / np.abs(reference).max() <= 1e-4


@pytest.mark.parametrize("autocast", ["bf16", "fp16"])
def test_autocast_extraction_stays_close_and_float16_storage_holds_it(autocast: str) -> None:
    from sasv.extraction.engines import AUTOCAST_DTYPES

    model = _build(ASV_FAMILIES["ecapa_tdnn"])
    waveforms = _waveforms()
    reference = [reference_rows(model, w) for w in waveforms]
    engine = EmbeddingEngine(
        copy.deepcopy(model), CUDA, model_batch=16, autocast_dtype=AUTOCAST_DTYPES[autocast],
        storage_dtype=np.float16,
    )  # fmt: skip
    for rows, ref in zip(engine.compute(waveforms), reference, strict=True):
        assert rows.dtype == np.float16
        cosine = (rows.astype(np.float64) * ref).sum(1) / (
            np.linalg.norm(rows, axis=1) * np.linalg.norm(ref, axis=1)
        )
        assert cosine.min() >= 0.99, f"{autocast}: cosine {cosine.min():.5f}"


def test_oom_fallback_on_the_gpu_matches_the_run_without() -> None:
    """A model that raises torch.OutOfMemoryError on the GPU for inputs above 60,000 samples: the engine
    computes those on the CPU, and the rows equal the CPU reference within the engines' tolerance."""

    class OomOnGpu(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.is_cuda and (x.shape[-1] > 60000 or x.shape[0] > 2):
                raise torch.OutOfMemoryError("CUDA out of memory (simulated on a real GPU)")
            return self.inner(x)

    model = _build(ASV_FAMILIES["ecapa_tdnn"])
    waveforms = _waveforms()
    reference = [reference_rows(model, w) for w in waveforms]
    engine = EmbeddingEngine(OomOnGpu(copy.deepcopy(model)), CUDA, model_batch=16)
    for i, (rows, ref) in enumerate(zip(engine.compute(waveforms), reference, strict=True)):
        assert_rows_match(rows, ref, f"OOM fallback, utterance {i}")


def test_cm_with_two_jobs_on_the_gpu_equals_one_job(tmp_path) -> None:
    from sasv.__main__ import main as sasv_main
    from tests.tiny_confs import TINY_AASIST, write_tiny_conf

    conf = write_tiny_conf(tmp_path, TINY_AASIST)
    assert sasv_main(["make_mini_corpus", "--out", str(tmp_path / "corpus"), "--seed", "7", "--speakers", "2",
                      "--bonafide_per_spk", "4", "--enroll_per_spk", "2"]) == 0  # fmt: skip
    la = tmp_path / "corpus" / "LA"
    assert (
        sasv_main(["prepare_la", "--la_root", str(la), "--out", str(tmp_path / "data"), "--sets", "dev"]) == 0
    )
    outs = []
    for nj in ("1", "2"):
        exp = tmp_path / f"exp{nj}"
        assert sasv_main(["score_cm", "--conf", str(conf), "--data_dirs", str(tmp_path / "data" / "dev"),
                          "--exp_dir", str(exp), "--device", "cuda", "--allow_random_init", "true",
                          "--chunk_size", "4", "--nj", nj]) == 0  # fmt: skip
        lines = (exp / "tiny_aasist" / "scores" / "dev" / "cm_scores.txt").read_text().split("\n")
        outs.append([line.split()[0] for line in lines if line] + [])
        outs.append(np.array([[float(v) for v in line.split()[1:]] for line in lines if line]))
    assert outs[0] == outs[2]  # the same utterances, in order; the numbers within rounding (one cuDNN each)
    np.testing.assert_allclose(outs[1], outs[3], rtol=1e-5, atol=1e-6)


def _full_size_ssl_aasist() -> torch.nn.Module:
    """conf/cm/ssl_aasist.yaml's architecture (XLS-R 300M + AASIST back end) with seeded random weights."""
    from sasv.models.conf import build_from_conf, load_conf
    from tests.conftest import REPO_ROOT

    torch.manual_seed(0)
    return build_from_conf(load_conf(REPO_ROOT / "conf" / "cm" / "ssl_aasist.yaml"))


def test_full_size_ssl_aasist_scores_on_the_gpu_like_the_cpu() -> None:
    """The released model's size, fp32 on cuda against the CPU, through the CM engine (64,600 samples)."""
    model = _full_size_ssl_aasist().eval()
    waveforms = _waveforms()[:3]
    with torch.inference_mode():
        reference = np.concatenate([model(torch.from_numpy(cm_input(w))[None]).numpy() for w in waveforms])
    got = CountermeasureEngine(model, CUDA, model_batch=3).compute(waveforms)
    assert np.abs(got - reference).max() / np.abs(reference).max() <= 1e-4


def test_full_size_ssl_aasist_training_step_in_bf16_fits_one_gpu() -> None:
    """One step of conf/train/cm/ssl_aasist.yaml's setting: batch 14 of 64,600 samples, bf16 autocast,
    transformer activations recomputed, Adam on every parameter; the loss is finite, every parameter that
    the forward reads gets a finite gradient, and the peak memory is what one 40 GB GPU holds."""
    model = _full_size_ssl_aasist().to(CUDA).train()
    model.ssl_model.model.encoder.gradient_checkpointing = True
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6, weight_decay=1e-4)
    x = torch.randn(14, 64600, device=CUDA) * 0.1
    labels = torch.randint(0, 2, (14,), device=CUDA)
    torch.cuda.reset_peak_memory_stats()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(x)
    loss = torch.nn.functional.cross_entropy(
        logits.float(), labels, weight=torch.tensor([0.1, 0.9], device=CUDA)
    )
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    grads = [p.grad for n, p in model.named_parameters() if p.requires_grad and "bn1" not in n]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.cuda.max_memory_allocated() < 40 * 2**30
