"""``--compile true`` (``torch.compile`` of the fixed-shape forwards) computes the reference system's numbers.

The same bar as tests/extraction/test_engines.py: every row within 1e-5 (max |diff| / max |ref|) of the
reference strategy and a cosine of at least 0.99999 with it. Compiling costs tens of seconds even for the tiny
models (inductor writes and builds C++), so one 1-D ASV family (ECAPA-TDNN: compiled segments, eager full
utterances) and the CM (AASIST: every forward compiled) run here; bench/compile_breakeven.py runs the
real-size models (all but WavLM).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from sasv.audio import cm_input
from sasv.extraction.engines import (
    CountermeasureEngine,
    EmbeddingEngine,
    EngineOptions,
    padded_batches,
)
from sasv.runtime.compiled import CompileError, compile_problem, compiled_model
from tests.extraction.test_engines import (
    LENGTHS,
    REL_TOL,
    _aasist,
    _build,
    _ecapa,
    _waveforms,
    assert_rows_match,
    reference_rows,
)

CPU = torch.device("cpu")
needs_compiler = pytest.mark.skipif(
    compile_problem(CPU) is not None, reason=f"torch.compile cannot build CPU kernels: {compile_problem(CPU)}"
)


def _graphs_compiled() -> int:
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def test_padded_batches_fill_the_last_batch_with_its_last_row() -> None:
    x = np.arange(7)[:, None] * np.ones((1, 2))
    batches = list(padded_batches(x, 3, pad=True))
    assert [n for _, n in batches] == [3, 3, 1]
    assert all(b.shape == (3, 2) for b, _ in batches)
    assert batches[2][0][:, 0].tolist() == [6, 6, 6]
    assert np.array_equal(np.concatenate([b[:n] for b, n in batches]), x)
    unpadded = list(padded_batches(x, 3, pad=False))
    assert [b.shape[0] for b, _ in unpadded] == [3, 3, 1] and [n for _, n in unpadded] == [3, 3, 1]
    assert [b.shape[0] for b, _ in padded_batches(x, 7, pad=True)] == [7]


def test_compile_is_part_of_the_fingerprint_only_when_on() -> None:
    """Compiled forwards round differently: their outputs are never taken for eager ones (and eager
    outputs made before the option existed keep their fingerprint)."""
    eager, compiled = EngineOptions(), EngineOptions(compile=True)
    assert eager.fingerprint_suffix("asv") == " autocast=none" and eager.fingerprint_suffix("cm") == ""
    assert compiled.fingerprint_suffix("asv") == " autocast=none compile=true"
    assert compiled.fingerprint_suffix("cm") == " compile=true"


def test_missing_compiler_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    assert "no C++ compiler (no-such-compiler-here" in compile_problem(CPU)
    # a GPU needs no C++ compiler: Triton builds its launchers with $CC (test_engines_gpu_paths.py)
    monkeypatch.setenv("CC", "no-such-c-compiler")
    assert "no C compiler for Triton's launchers (no-such-c-compiler" in compile_problem(torch.device("cuda"))
    with pytest.raises(CompileError, match="--compile true: .*no C\\+\\+ compiler"):
        compiled_model(torch.nn.Linear(2, 2), CPU)


@needs_compiler
def test_compiled_segments_equal_reference_strategy() -> None:
    """Segments through the compiled copy, in batches of 2 (35 segments: the last batch is padded), full
    utterances eager on the routed model; the model itself keeps its weights."""
    torch._dynamo.reset()
    waveforms = _waveforms()
    model = _build(_ecapa)
    reference = [reference_rows(model, w) for w in waveforms]
    engine = EmbeddingEngine(copy.deepcopy(model), CPU, model_batch=2, compile=True)
    assert engine.segment_model is not None and engine.segment_model is not engine.model
    before = _graphs_compiled()
    engine.compute(waveforms[:2])  # 10 segments: full batches only
    graphs = _graphs_compiled()
    assert graphs > before  # the segments went through the compiled copy
    got = engine.compute(waveforms)
    assert _graphs_compiled() == graphs  # the padded last batch compiled nothing new
    for i, (rows, ref) in enumerate(zip(got, reference, strict=True)):
        assert rows.dtype == np.float32
        assert_rows_match(rows, ref, f"compiled ecapa_tdnn utterance {i} ({LENGTHS[i]} samples)")


@needs_compiler
def test_compiled_cm_equals_reference_strategy() -> None:
    torch._dynamo.reset()
    waveforms = _waveforms()
    model = _build(_aasist)
    with torch.inference_mode():
        reference = np.concatenate([model(torch.from_numpy(cm_input(w))[None]).numpy() for w in waveforms])
    engine = CountermeasureEngine(copy.deepcopy(model), CPU, model_batch=3, compile=True)
    before = _graphs_compiled()
    engine.compute(waveforms[:3])
    graphs = _graphs_compiled()
    assert graphs > before
    got = engine.compute(waveforms)  # 7 inputs in batches of 3: the last one padded
    assert _graphs_compiled() == graphs
    assert got.shape == reference.shape == (len(waveforms), 2)
    assert np.abs(got - reference).max() / np.abs(reference).max() <= REL_TOL
