"""The GPU path's decisions, tested on the CPU by simulating CUDA (issue 27): out-of-memory splits and the
CPU fallback, the model batch filled from several decode batches, each job bound to its GPU before any CUDA
work, device and precision checks in one line, the compile check for Triton, the warning for a GPU torch
cannot use, and ``--cmd`` leaving the device to the tasks.

CUDA is simulated by monkeypatching ``torch.cuda`` functions and, for the OOM tests, by an engine whose
device says ``cuda`` while its tensors stay on the CPU (``to_device`` patched) and a fake model that raises
``torch.OutOfMemoryError`` for batches above a size or inputs above a length.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import types

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import sasv.extraction.engines as engines
import sasv.extraction.out_of_memory as out_of_memory
import sasv.runtime.compiled as compiled
import sasv.runtime.devices as devices
from sasv.extraction.chunks import compute_chunks, compute_group
from sasv.extraction.engines import CountermeasureEngine, EmbeddingEngine, EngineOptions
from sasv.extraction.outputs import OUTPUTS
from sasv.runtime.compiled import compile_problem
from sasv.runtime.devices import DeviceError, check_autocast, check_device_spelling, resolve_device
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA, write_tiny_conf

CUDA = torch.device("cuda")


class OomModel(nn.Module):
    """A small length-dependent embedder that runs "out of GPU memory" on batches of more than
    ``max_batch`` rows or inputs of more than ``max_len`` samples, while ``ooms`` (its CPU copy has it
    off: the CPU has the memory). Records the batch sizes it computed."""

    def __init__(
        self,
        max_batch: int | None = None,
        max_len: int | None = None,
        logits: bool = False,
        error: Exception | None = None,
    ) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(1, 4, kernel_size=400, stride=160)
        self.max_batch, self.max_len, self.logits = max_batch, max_len, logits
        self.error = error or torch.OutOfMemoryError("CUDA out of memory (simulated)")
        self.ooms = True
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        too_big = (self.max_batch is not None and x.shape[0] > self.max_batch) or (
            self.max_len is not None and x.shape[-1] > self.max_len
        )
        if self.ooms and too_big:
            raise self.error
        self.batches.append(x.shape[0])
        h = torch.tanh(self.conv(x.unsqueeze(1)))
        out = torch.cat([h.mean(-1), h.std(-1)], dim=1)
        return out[:, :2] if self.logits else out


def _waves(lengths: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


@pytest.fixture
def simulated_cuda(monkeypatch) -> list[nn.Module]:
    """Engines built on the CPU, then told their device is cuda: tensors stay on the CPU, the CPU copy of
    the OOM fallback has the memory. Returns the CPU copies made."""
    copies: list[nn.Module] = []
    real_copy = out_of_memory.cpu_copy

    def cpu_copy(model: nn.Module) -> nn.Module:
        copy = real_copy(model)
        copy.ooms, copy.batches = False, []
        copies.append(copy)
        return copy

    monkeypatch.setattr(out_of_memory, "cpu_copy", cpu_copy)
    monkeypatch.setattr(engines, "to_device", lambda batch, device: torch.from_numpy(np.array(batch)))
    return copies


LENGTHS = [52000, 8000, 30000, 52000, 130000, 16000, 52000, 52000]


@pytest.mark.parametrize("limit", [{"max_batch": 3}, {"max_batch": 1}, {"max_len": 60000}])
def test_embeddings_after_oom_equal_the_run_without(simulated_cuda, caplog, limit: dict) -> None:
    wavs = _waves(LENGTHS)
    expected = EmbeddingEngine(OomModel(), torch.device("cpu"), model_batch=8).compute(wavs)
    model = OomModel(**limit)
    engine = EmbeddingEngine(model, torch.device("cpu"), model_batch=8)
    engine.device = CUDA
    with caplog.at_level(logging.WARNING, logger="sasv.extraction.out_of_memory"):
        got = engine.compute(wavs)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    assert "out of GPU memory" in caplog.text
    if "max_batch" in limit:  # split down to batches that fit, never on the CPU
        assert max(model.batches) <= limit["max_batch"] and not simulated_cuda
    else:  # the 130,000-sample utterance alone does not fit: on the CPU, once, said in the log
        assert len(simulated_cuda) == 1 and simulated_cuda[0].batches == [1]
        assert "130000 samples (8.1 s) alone: computing it on the CPU" in caplog.text


def test_cm_after_oom_equals_the_run_without(simulated_cuda) -> None:
    wavs = _waves(LENGTHS)
    expected = CountermeasureEngine(OomModel(logits=True), torch.device("cpu"), model_batch=8).compute(wavs)
    model = OomModel(max_batch=2, logits=True)
    engine = CountermeasureEngine(model, torch.device("cpu"), model_batch=8)
    engine.device = CUDA
    np.testing.assert_allclose(engine.compute(wavs), expected, rtol=1e-5, atol=1e-6)
    assert max(model.batches) == 2


@pytest.mark.parametrize(
    "message",
    ["cuDNN error: CUDNN_STATUS_ALLOC_FAILED", "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling "
     "`cublasCreate(handle)`", "CUDA error: out of memory"],
)  # fmt: skip
def test_a_cuda_library_out_of_memory_splits_too(simulated_cuda, message: str) -> None:
    """cuDNN and cuBLAS allocate their own workspaces and say they could not as a plain RuntimeError."""
    wavs = _waves(LENGTHS)
    expected = CountermeasureEngine(OomModel(logits=True), torch.device("cpu"), model_batch=8).compute(wavs)
    model = OomModel(max_batch=2, logits=True, error=RuntimeError(message))
    engine = CountermeasureEngine(model, torch.device("cpu"), model_batch=8)
    engine.device = CUDA
    np.testing.assert_allclose(engine.compute(wavs), expected, rtol=1e-5, atol=1e-6)
    assert max(model.batches) == 2


def test_other_cuda_errors_are_not_taken_for_out_of_memory(simulated_cuda) -> None:
    error = RuntimeError("CUDA error: an illegal memory access was encountered")
    engine = CountermeasureEngine(
        OomModel(max_batch=2, logits=True, error=error), torch.device("cpu"), model_batch=8
    )
    engine.device = CUDA
    with pytest.raises(RuntimeError, match="illegal memory access"):
        engine.compute(_waves(LENGTHS))


def test_oom_on_the_cpu_is_not_swallowed() -> None:
    engine = CountermeasureEngine(OomModel(max_batch=0, logits=True), torch.device("cpu"), model_batch=2)
    with pytest.raises(torch.OutOfMemoryError):
        engine.compute(_waves([16000]))


def test_cpu_copy_leaves_the_model_and_copies_its_weights() -> None:
    model = OomModel()
    copy = out_of_memory.cpu_copy(model)
    assert copy is not model and copy.conv.weight is not model.conv.weight
    assert torch.equal(copy.conv.weight, model.conv.weight)


# --------------------------------------------------------- the model batch fills from decode batches


def test_the_model_sees_batches_of_the_model_batch(tmp_path) -> None:
    items = []
    for i in range(50):
        path = tmp_path / f"u{i:02d}.flac"
        sf.write(str(path), np.full(4000 + i, 0.01 * (i % 7), np.float32), 16000)
        items.append((f"u{i:02d}", str(path)))
    model = OomModel(logits=True)
    engine = CountermeasureEngine(model, torch.device("cpu"), model_batch=24, num_samples=4000)
    chunk_dir = tmp_path / "chunks"
    chunk_dir.mkdir()
    compute_chunks(engine, OUTPUTS["cm"], chunk_dir, [("00000.x", items)], 8, 0, lambda n: None)
    assert model.batches == [24, 24, 2]


def test_on_cpu_each_compute_is_one_decode_batch() -> None:
    """CPU model batches (at most 5) stay below the decode batch: the same calls, the same bits, as before."""
    engine = types.SimpleNamespace(model_batch=5)
    assert compute_group(engine, 8) == 8
    assert compute_group(types.SimpleNamespace(model_batch=24), 8) == 24
    assert compute_group(types.SimpleNamespace(model_batch=128), 8) == 128
    assert compute_group(types.SimpleNamespace(model_batch=20), 8) == 24


# ------------------------------------------------------------------- each job on its own GPU


def test_build_engine_binds_the_device_before_any_cuda_work(monkeypatch) -> None:
    from sasv.models.conf import load_model, parse_conf

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(engines, "prepare_model", lambda model, device, kernels: calls.append(("to", device)))
    loaded = load_model(parse_conf(TINY_AASIST), allow_random_init=True)
    engines.build_engine(loaded, torch.device("cuda:1"), EngineOptions())
    assert calls[0] == ("set_device", torch.device("cuda:1")) and ("to", torch.device("cuda:1")) in calls


def test_a_job_binds_its_gpu_before_building_its_engine(monkeypatch, tmp_path) -> None:
    import sasv.jobs.local
    from sasv.jobs.local import _Job, _job_main

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(sasv.jobs.local, "compute_chunks", lambda *args: calls.append(("compute", args[5])))
    spec = types.SimpleNamespace(build=lambda device, threads: calls.append(("build", device)))
    work = types.SimpleNamespace(spec=spec, output=None, plan=types.SimpleNamespace(chunk_dir=tmp_path),
                                 todo=[], decode_batch=8, num_workers=None)  # fmt: skip
    import os

    _job_main(_Job(1, work, "cuda:1", 1, os.getppid(), tmp_path / "err"), None)
    assert not (tmp_path / "err").exists()
    assert [c[0] for c in calls] == ["set_device", "build", "compute"]
    assert calls[0][1] == torch.device("cuda:1") and calls[2][1] >= 1  # decoding workers chosen for a GPU


# ------------------------------------------------------------------- devices and precision, in one line


@pytest.fixture
def one_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_a_gpu_ordinal_beyond_the_machine_is_a_device_error(one_gpu) -> None:
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(DeviceError, match=r"--device cuda:7: this machine has 1 GPU\(s\), cuda:0..cuda:0"):
        resolve_device("cuda:7")


def test_cuda_7_is_one_error_line_from_the_tool(one_gpu, tmp_path, capsys) -> None:
    from sasv.bin.score_cm import main
    from sasv.cli import run_cli

    conf = write_tiny_conf(tmp_path, TINY_AASIST)
    argv = [
        "--conf",
        str(conf),
        "--data_dirs",
        str(tmp_path),
        "--device",
        "cuda:7",
        "--exp_dir",
        str(tmp_path),
    ]
    assert run_cli(main, argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ERROR: --device cuda:7: this machine has 1 GPU(s), cuda:0..cuda:0 (CUDA_VISIBLE_DEVICES "
                   "renumbers them from 0)"]  # fmt: skip


def test_bf16_on_a_gpu_without_it_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100-SXM2-32GB")
    with pytest.raises(
        DeviceError, match="Tesla V100-SXM2-32GB has no bfloat16 support; use --autocast fp16"
    ):
        check_autocast(CUDA, "bf16")
    check_autocast(CUDA, "fp16")
    check_autocast(torch.device("cpu"), "bf16")


def test_device_spelling_is_checked_without_cuda() -> None:
    for good in ("auto", "cpu", "cuda", "cuda:3"):
        check_device_spelling(good)
    for bad in ("gpu", "cuda:x", "meta"):
        with pytest.raises(DeviceError, match="not a device"):
            check_device_spelling(bad)


def test_auto_warns_when_nvidia_smi_sees_a_gpu_torch_cannot_use(monkeypatch, caplog) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    listing = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)\n"
    monkeypatch.setattr(
        devices.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=listing)
    )
    with caplog.at_level(logging.WARNING, logger="sasv.runtime.devices"):
        assert resolve_device("auto") == torch.device("cpu")
    assert "nvidia-smi sees 1 GPU(s): GPU 0: NVIDIA H100 80GB HBM3, which this torch" in caplog.text
    caplog.clear()
    monkeypatch.setattr(devices.shutil, "which", lambda name: None)
    assert resolve_device("auto") == torch.device("cpu") and not caplog.text


# ------------------------------------------------------------------- the compile check on a GPU


def test_compile_on_a_gpu_needs_a_c_compiler_and_python_headers(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    assert "no C compiler for Triton's launchers (cc or gcc or clang" in compile_problem(CUDA)
    monkeypatch.setattr(compiled.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(compiled.sysconfig, "get_paths", lambda: {"include": str(tmp_path)})
    assert "no Python headers" in compile_problem(CUDA)
    (tmp_path / "Python.h").write_text("")
    assert compile_problem(CUDA) is None


# ------------------------------------------------------------------- --cmd: the tasks resolve the device


def test_with_cmd_the_submitter_leaves_the_device_to_the_tasks(monkeypatch, tmp_path, caplog) -> None:
    import sasv.stages.model_stage as stage

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a login node
    seen: list[dict] = []
    monkeypatch.setattr(stage, "stage_items", lambda kind, d: ([("u", "p")], {}))
    monkeypatch.setattr(stage, "run_chunked", lambda engine, items, out, key, **kw: seen.append(kw))
    conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    for device in ("cuda", "auto"):
        with caplog.at_level(logging.INFO, logger="sasv.stages.model_stage"):
            options = EngineOptions(device=device)
            stage.run_model_stage("asv", conf, [tmp_path / "dev"], tmp_path / "exp", options, nj=2,
                                  allow_random_init=True, cmd="utils/run.sh")  # fmt: skip
    assert [kw["num_workers"] for kw in seen] == [None, None]  # chosen by each task
    assert all(kw["jobs"].devices == () and kw["jobs"].cmd == "utils/run.sh" for kw in seen)
    assert "on cpu" not in caplog.text and "the device each task resolves (--device cuda)" in caplog.text
    with pytest.raises(DeviceError, match="--device gpu: not a device"):
        stage.run_model_stage("asv", conf, [tmp_path / "dev"], tmp_path / "exp", EngineOptions(device="gpu"),
                              allow_random_init=True, cmd="utils/run.sh")  # fmt: skip


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
