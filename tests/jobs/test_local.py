"""Parallel jobs (:mod:`sasv.jobs.local`), chunk-aligned batching and streamed chunk writes
(:mod:`sasv.extraction.chunks`).

``--nj N`` splits the pending chunks over N spawned processes that write into one chunk dir; the result must
be the single-process result bit for bit (the same chunks are computed with the same batches), a failing
job must fail the run with its own one-line error, and the parent, not the jobs, holds the output lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sasv.audio import AudioError
from sasv.exp_layout import cm_scores_output, embeddings_output
from sasv.extraction.chunks import ChunkBatchSampler
from sasv.extraction.engines import CountermeasureEngine, EmbeddingEngine, EngineOptions, EngineSpec
from sasv.extraction.outputs import read_cm_scores, read_embeddings
from sasv.jobs.local import JobOptions
from sasv.locking import exclusive_lock
from sasv.models.conf import parse_conf
from sasv.stages.driver import run_chunked
from tests.conftest import REPO_ROOT
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA, write_tiny_conf

TWO_JOBS = JobOptions(num_jobs=2, devices=("cpu",), threads=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("wav")
    rng = np.random.default_rng(1)
    items = []
    for i, n in enumerate([9000, 20000, 48240, 40000, 40000, 70000, 16000, 33000, 12000]):
        path = folder / f"u{i}.flac"
        sf.write(str(path), (0.1 * rng.standard_normal(n)).astype(np.float32), 16000)
        items.append((f"utt{i}", str(path)))
    return items


def _spec(raw: dict) -> EngineSpec:
    # no checkpoint: seeded random initialisation, identical in every process
    return EngineSpec(parse_conf(raw), allow_random_init=True, options=EngineOptions(cpu_kernels="onednn"))


def test_chunk_batches_start_at_chunk_starts_and_never_cross_them() -> None:
    batches = list(ChunkBatchSampler([5, 2, 3], batch_size=2))
    assert batches == [[0, 1], [2, 3], [4], [5, 6], [7, 8], [9]]
    assert len(ChunkBatchSampler([5, 2, 3], batch_size=2)) == len(batches)


def test_two_jobs_write_what_one_process_writes(corpus, tmp_path) -> None:
    spec = _spec(TINY_ECAPA)
    single = run_chunked(
        spec.build(torch.device("cpu")), corpus, embeddings_output(tmp_path / "one"), "k", decode_batch=2,
        chunk_size=2,
    )  # fmt: skip
    parallel = run_chunked(
        spec, corpus, embeddings_output(tmp_path / "two"), "k", decode_batch=2, chunk_size=2, jobs=TWO_JOBS
    )
    a, b = read_embeddings(single), read_embeddings(parallel)
    assert sorted(a) == sorted(b) == sorted(u for u, _ in corpus)
    for utt in a:
        assert np.array_equal(a[utt], b[utt]), utt
    assert not list((tmp_path / "two" / "chunks").glob(".job*")), "job error files are cleaned up"


def test_jobs_resume_only_missing_chunks(corpus, tmp_path) -> None:
    spec = _spec(TINY_ECAPA)
    out = tmp_path / "emb"
    first = read_embeddings(
        run_chunked(spec, corpus, embeddings_output(out), "k", chunk_size=2, jobs=TWO_JOBS)
    )
    (out / "xvector.done").unlink()
    for n in (1, 3):
        next((out / "chunks").glob(f"{n:05d}.*.scp")).unlink()
    first_ark = next((out / "chunks").glob("00000.*.ark"))
    kept = first_ark.stat().st_mtime_ns
    again = read_embeddings(
        run_chunked(spec, corpus, embeddings_output(out), "k", chunk_size=2, jobs=TWO_JOBS)
    )
    assert first_ark.stat().st_mtime_ns == kept, "a finished chunk was recomputed"
    for utt in first:
        assert np.array_equal(first[utt], again[utt]), utt


def test_cm_scores_with_jobs_equal_single_process(corpus, tmp_path) -> None:
    spec = _spec(TINY_AASIST)
    engine = spec.build(torch.device("cpu"))
    assert isinstance(engine, CountermeasureEngine)
    single = read_cm_scores(
        run_chunked(engine, corpus, cm_scores_output(tmp_path / "a" / "cm.txt"), "k", chunk_size=3)
    )
    parallel = read_cm_scores(
        run_chunked(
            spec, corpus, cm_scores_output(tmp_path / "b" / "cm.txt"), "k", chunk_size=3, jobs=TWO_JOBS
        )
    )
    assert single == parallel


def test_failing_job_fails_the_run_with_its_message(corpus, tmp_path) -> None:
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio" * 50)
    items = [*corpus, ("utt_bad", str(bad))]
    with pytest.raises(AudioError) as err:
        run_chunked(
            _spec(TINY_ECAPA), items, embeddings_output(tmp_path / "emb"), "k", chunk_size=2, jobs=TWO_JOBS
        )
    assert str(err.value).startswith(f"{bad}: cannot decode")
    assert not (tmp_path / "emb" / "xvector.scp").exists()


def test_engine_instance_cannot_be_shared_by_jobs(corpus, tmp_path) -> None:
    engine = _spec(TINY_ECAPA).build(torch.device("cpu"))
    assert isinstance(engine, EmbeddingEngine)
    with pytest.raises(ValueError, match="EngineSpec"):
        run_chunked(engine, corpus, embeddings_output(tmp_path / "emb"), "k", chunk_size=2, jobs=TWO_JOBS)


def test_chunks_are_written_as_they_finish(corpus, tmp_path) -> None:
    """Results are streamed: when a chunk is computed, every earlier chunk is already on disk."""
    out = tmp_path / "emb"
    engine = _spec(TINY_ECAPA).build(torch.device("cpu"))
    assert isinstance(engine, EmbeddingEngine)
    embed = engine.compute
    seen: list[int] = []

    def watching(wavs: list[np.ndarray]) -> list[np.ndarray]:
        done = len(list((out / "chunks").glob("*.scp")))
        seen.append(done)
        return embed(wavs)

    engine.compute = watching  # type: ignore[method-assign]
    run_chunked(engine, corpus, embeddings_output(out), "k", decode_batch=2, chunk_size=2)
    assert seen == [0, 1, 2, 3, 4], "each chunk is written before the next one is computed"


def test_cli_jobs_match_single_process_and_respect_the_lock(corpus, tmp_path) -> None:
    data = tmp_path / "data" / "dev"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in corpus))
    conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))

    def run(exp: Path, *extra: str) -> subprocess.CompletedProcess:
        cmd = [
            sys.executable, "-m", "sasv", "extract_embeddings", "--conf", str(conf), "--data_dirs", str(data),
            "--exp_dir", str(exp), "--device", "cpu", "--chunk_size", "3", "--allow_random_init", "true",
            *extra,
        ]  # fmt: skip
        return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)

    for exp, extra in ((tmp_path / "exp1", ()), (tmp_path / "exp2", ("--nj", "2"))):
        out = run(exp, *extra)
        assert out.returncode == 0, out.stderr
    scp = Path("tiny_ecapa") / "embeddings" / "dev" / "xvector.scp"
    a, b = read_embeddings(tmp_path / "exp1" / scp), read_embeddings(tmp_path / "exp2" / scp)
    assert sorted(a) == sorted(b)
    assert all(np.array_equal(a[u], b[u]) for u in a)

    with exclusive_lock(tmp_path / "exp3" / scp.parent):
        out = run(tmp_path / "exp3", "--nj", "2")
    assert out.returncode == 1 and "another run (pid" in out.stderr and "Traceback" not in out.stderr


def test_fewer_chunks_than_jobs_says_what_runs(corpus, tmp_path, caplog) -> None:
    """--nj 2 on one chunk's worth of work says it runs one job, and why, instead of claiming two."""
    caplog.set_level("INFO", logger="sasv.stages.driver")
    out = embeddings_output(tmp_path / "emb")
    run_chunked(_spec(TINY_ECAPA), corpus, out, "k", chunk_size=len(corpus), jobs=TWO_JOBS)
    assert "1 chunk(s) left to compute, so 1 job(s) instead of --nj 2" in caplog.text
    assert "jobs, 1 intra-op" not in caplog.text, "no job process is spawned for a single chunk"
    assert len(read_embeddings(out.file)) == len(corpus)
