import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from sasv.audio import SEGMENT_SAMPLES, embedding_segments
from sasv.exp_layout import cm_scores_output, embeddings_output
from sasv.extraction.engines import CountermeasureEngine, EmbeddingEngine
from sasv.extraction.outputs import (
    MalformedOutputError,
    NonFiniteOutputError,
    read_cm_log_odds,
    read_cm_scores,
    read_embeddings,
)
from sasv.stages.driver import run_chunked


class FrameStats(nn.Module):
    """A tiny length-dependent embedder: conv over frames, mean+std pooling over time."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(1, 4, kernel_size=400, stride=160)
        self.calls = 0

    def forward(self, wav):
        self.calls += 1
        h = torch.tanh(self.conv(wav.unsqueeze(1)))
        return torch.cat([h.mean(-1), h.std(-1)], dim=1)


class TwoLogits(nn.Module):
    def forward(self, x):
        return torch.stack([x.mean(1), x.abs().mean(1) * 10], dim=1)


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    items = []
    for i, n in enumerate([8000, 24000, 48240, 52000, 52000, 130000, 16000]):
        path = tmp_path / "wav" / f"u{i}.flac"
        path.parent.mkdir(exist_ok=True)
        sf.write(str(path), (rng.integers(-8000, 8000, n) / 32768).astype(np.float32), 16000)
        items.append((f"utt{i}", str(path)))
    return items


def _reference_rows(model, wav):
    """The reference strategy: model(full) then model(five segments) as one batch, per utterance."""
    with torch.no_grad():
        full = model(torch.from_numpy(wav)[None])
        segs = model(torch.from_numpy(embedding_segments(wav)))
    return torch.cat([full, segs]).numpy()


def test_batched_rows_equal_reference_strategy(corpus):
    model = FrameStats().eval()
    engine = EmbeddingEngine(model, torch.device("cpu"), model_batch=7)
    wavs = [sf.read(p, dtype="float32")[0] for _, p in corpus]
    rows = engine.compute(wavs)
    for wav, got in zip(wavs, rows, strict=True):
        ref = _reference_rows(model, wav)
        assert got.shape == (6, 8)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_extract_writes_scp_and_resumes(corpus, tmp_path):
    model = FrameStats().eval()
    engine = EmbeddingEngine(model, torch.device("cpu"), model_batch=32)
    out = tmp_path / "emb"
    scp = run_chunked(engine, corpus, embeddings_output(out), "model-a", chunk_size=3)
    first = read_embeddings(scp)
    assert sorted(first) == sorted(u for u, _ in corpus)
    assert all(v.shape == (6, 8) for v in first.values())

    calls = model.calls
    run_chunked(engine, corpus, embeddings_output(out), "model-a", chunk_size=3)
    assert model.calls == calls, "a finished extraction must be skipped"

    # simulate a run killed during chunk 1: its index and the final scp are missing
    next((out / "chunks").glob("00001.*.scp")).unlink()
    (out / "xvector.done").unlink()
    calls = model.calls
    again = read_embeddings(run_chunked(engine, corpus, embeddings_output(out), "model-a", chunk_size=3))
    assert 0 < model.calls - calls <= 2 * 3, "only the unfinished chunk is recomputed"
    for utt in first:
        np.testing.assert_array_equal(first[utt], again[utt])


def test_changed_inputs_discard_stale_chunks(corpus, tmp_path):
    engine = EmbeddingEngine(FrameStats().eval(), torch.device("cpu"), model_batch=32)
    out = tmp_path / "emb"
    run_chunked(engine, corpus[:4], embeddings_output(out), "model-a", chunk_size=2)
    (out / "xvector.done").unlink()
    scp = run_chunked(engine, corpus, embeddings_output(out), "model-b", chunk_size=2)
    assert len(read_embeddings(scp)) == len(corpus)


def test_nan_embedding_names_the_utterance(corpus, tmp_path):
    class Broken(FrameStats):
        def forward(self, wav):
            out = super().forward(wav)
            return out * float("nan") if wav.shape[1] == 24000 else out

    engine = EmbeddingEngine(Broken().eval(), torch.device("cpu"), model_batch=32)
    with pytest.raises(NonFiniteOutputError, match="utt1"):
        run_chunked(engine, corpus, embeddings_output(tmp_path / "emb"), "m")


def test_cm_scores_file(corpus, tmp_path):
    engine = CountermeasureEngine(TwoLogits(), torch.device("cpu"), model_batch=3)
    out = run_chunked(
        engine, corpus, cm_scores_output(tmp_path / "cm" / "cm_scores.txt"), "cm", decode_batch=3
    )
    scores = read_cm_scores(out)
    assert sorted(scores) == sorted(u for u, _ in corpus)
    lines = out.read_text().splitlines()
    for line in lines:
        _, l0, l1, p = line.split()
        l0, l1, p = float(l0), float(l1), float(p)
        assert p == pytest.approx(np.exp(l1) / (np.exp(l0) + np.exp(l1)), rel=1e-6)


def test_segment_constant():
    assert SEGMENT_SAMPLES == 48240


def test_bf16_autocast_runs_and_stays_close(corpus):
    model = FrameStats().eval()
    wavs = [sf.read(p, dtype="float32")[0] for _, p in corpus[:3]]
    fp32 = EmbeddingEngine(model, torch.device("cpu"), model_batch=32).compute(wavs)
    bf16 = EmbeddingEngine(model, torch.device("cpu"), 32, autocast_dtype=torch.bfloat16).compute(wavs)
    for a, b in zip(fp32, bf16, strict=True):
        assert b.dtype == np.float32
        assert not np.array_equal(a, b), "autocast had no effect"
        np.testing.assert_allclose(b, a, atol=0.05)


def test_audio_errors_from_decoding_workers_keep_their_message(corpus, tmp_path):
    from sasv.audio import AudioError

    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"junk" * 100)
    items = [*corpus[:2], ("zz_bad", str(bad))]
    engine = EmbeddingEngine(FrameStats().eval(), torch.device("cpu"), model_batch=32)
    with pytest.raises(AudioError) as err:
        run_chunked(engine, items, embeddings_output(tmp_path / "emb"), "m", num_workers=1)
    assert str(err.value).startswith(f"{bad}: cannot decode")


def test_resume_under_another_chunk_size_redoes_the_chunks(corpus, tmp_path):
    """Chunks planned under one --chunk_size are never reused by position under another."""
    engine = CountermeasureEngine(TwoLogits(), torch.device("cpu"), model_batch=3)
    out = cm_scores_output(tmp_path / "cm" / "cm_scores.txt")
    run_chunked(engine, corpus, out, "cm", chunk_size=3)
    out.file.unlink()
    out.marker.unlink()  # as if killed before the merge
    run_chunked(engine, corpus, out, "cm", chunk_size=5)
    assert sorted(read_cm_scores(out.file)) == sorted(u for u, _ in corpus)
    assert json.loads(out.marker.read_text())["num_utts"] == len(corpus)
    fresh = cm_scores_output(tmp_path / "fresh" / "cm_scores.txt")
    assert out.file.read_text() == run_chunked(engine, corpus, fresh, "cm", chunk_size=5).read_text()
    assert len(list(out.chunk_dir.glob("*.txt"))) == 2, "only the current plan's chunks are kept"


def test_no_marker_unless_the_output_holds_exactly_the_expected_utterances(corpus, tmp_path):
    from sasv.errors import StaleOutputError

    engine = CountermeasureEngine(TwoLogits(), torch.device("cpu"), model_batch=3)
    out = cm_scores_output(tmp_path / "cm" / "cm_scores.txt")
    run_chunked(engine, corpus, out, "cm", chunk_size=3)
    out.file.unlink()
    out.marker.unlink()
    index = sorted(out.chunk_dir.glob("*.txt"))[1]
    index.write_text("".join(index.read_text().splitlines(keepends=True)[1:]))  # a chunk lost a line
    with pytest.raises(StaleOutputError, match=r"the chunks hold 6 CM scores for 7 expected utterances"):
        run_chunked(engine, corpus, out, "cm", chunk_size=3)
    assert not out.marker.exists() and not out.file.exists()


def test_changed_audio_redoes_exactly_its_chunk(corpus, tmp_path):
    model = FrameStats().eval()
    engine = EmbeddingEngine(model, torch.device("cpu"), model_batch=32)
    out = embeddings_output(tmp_path / "emb")
    first = read_embeddings(run_chunked(engine, corpus, out, "m", chunk_size=2))
    utt, path = corpus[4]
    wav, sr = sf.read(path, dtype="float32")
    sf.write(path, (wav[::-1] * 0.5).copy(), sr)  # same path, other content
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1_000_000_000))
    calls = model.calls
    again = read_embeddings(run_chunked(engine, corpus, out, "m", chunk_size=2))
    assert 0 < model.calls - calls <= 2 * 2, "only the chunk of the changed file is recomputed"
    assert not np.array_equal(first[utt], again[utt])
    for other in (u for u, _ in corpus if u not in (utt, corpus[5][0])):
        np.testing.assert_array_equal(first[other], again[other])


def test_cm_scores_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "cm_scores.txt"
    path.write_text("\ufeffutt1 0.1 0.2 0.52\nutt2 0.3 0.1 0.45\n", encoding="utf-8")
    assert read_cm_scores(path) == {"utt1": 0.52, "utt2": 0.45}


def test_cm_log_odds_are_the_logit_difference_where_p_saturates(tmp_path):
    """P(bona fide) 1.0 for two utterances (float32 saturation) that the log-odds still rank; each bad
    field names file, line and column."""
    path = tmp_path / "cm_scores.txt"
    path.write_text("utt1 -9.5 8.25 1.0\nutt2 -12.0 10.5 1.0\nutt3 0.5 -0.25 0.3208\n")
    assert read_cm_log_odds(path) == {"utt1": 17.75, "utt2": 22.5, "utt3": -0.75}
    path.write_text("utt1 -9.5 x 1.0\n")
    with pytest.raises(MalformedOutputError, match=r"cm_scores.txt:1: logit_bonafide 'x' is not a number"):
        read_cm_log_odds(path)
    path.write_text("utt1 -9.5 0.5 nan\n")
    with pytest.raises(MalformedOutputError, match=r"cm_scores.txt:1: P\(bona fide\) of utt1 is nan"):
        read_cm_scores(path)


def test_progress_in_logs_is_a_line_per_step_not_carriage_returns(corpus, tmp_path, capsys, caplog):
    """The stages' stderr goes into exp/logs: progress there must be readable lines, not tqdm redraws."""
    caplog.set_level("INFO", logger="sasv.progress")
    engine = CountermeasureEngine(TwoLogits(), torch.device("cpu"), model_batch=1)
    run_chunked(engine, corpus, cm_scores_output(tmp_path / "cm.txt"), "cm", decode_batch=1, chunk_size=1)
    assert "\r" not in capsys.readouterr().err
    steps = [r.getMessage() for r in caplog.records if r.name == "sasv.progress"]
    assert steps and steps[-1].endswith("s)") and "7/7 utt (100 %" in steps[-1]
    assert len(steps) <= 10


@pytest.mark.parametrize("kind", ["asv", "cm"])
def test_ctrl_c_keeps_the_finished_part_of_a_chunk(corpus, tmp_path, kind):
    """An interruption loses at most the decode batch in flight (the model batches here are below it, as on
    CPU; a larger one groups several decode batches: test_engines_gpu_paths.py), not the whole chunk; the
    resumed output is bit-identical to an uninterrupted run."""

    def make():
        if kind == "asv":
            return EmbeddingEngine(FrameStats().eval(), torch.device("cpu"), model_batch=2), embeddings_output
        return CountermeasureEngine(TwoLogits(), torch.device("cpu"), model_batch=2), cm_scores_output

    engine, output_of = make()
    reference = output_of(tmp_path / "ref" / ("xvector" if kind == "asv" else "cm.txt"))
    run_chunked(engine, corpus, reference, "m", decode_batch=2, chunk_size=len(corpus))

    engine, _ = make()
    out = output_of(tmp_path / "run" / ("xvector" if kind == "asv" else "cm.txt"))
    compute, calls = engine.compute, []

    def interrupted(wavs):
        calls.append(len(wavs))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return compute(wavs)

    engine.compute = interrupted
    with pytest.raises(KeyboardInterrupt):
        run_chunked(engine, corpus, out, "m", decode_batch=2, chunk_size=len(corpus))
    assert len(list(out.chunk_dir.glob("*.part00000-00004.*"))) >= 1, "the 4 finished utterances are kept"
    calls.clear()
    run_chunked(engine, corpus, out, "m", decode_batch=2, chunk_size=len(corpus))
    assert sum(calls) == len(corpus) - 4, "only the unfinished utterances are computed again"
    assert not list(out.chunk_dir.glob(f"*.part*{'.scp' if kind == 'asv' else '.txt'}"))
    if kind == "asv":
        got, ref = read_embeddings(out.file), read_embeddings(reference.file)
        assert sorted(got) == sorted(ref) and all(np.array_equal(got[u], ref[u]) for u in ref)
    else:
        assert out.file.read_text() == reference.file.read_text()


@pytest.mark.parametrize("kind", ["asv", "cm"])
def test_two_interruptions_in_one_chunk_resume_from_both_parts(corpus, tmp_path, kind):
    """Ctrl-C twice inside the same chunk leaves two parts; the resumed chunk's index joins both and the
    rest, and the output equals an uninterrupted run's (found by mutation testing: one part only was
    tested). Model batches of 2: each compute is one decode batch
    (:func:`sasv.extraction.chunks.compute_group`)."""
    if kind == "asv":
        engine, output_of, name = (
            EmbeddingEngine(FrameStats().eval(), torch.device("cpu"), 2),
            embeddings_output,
            "xvector",
        )
    else:
        engine, output_of, name = (
            CountermeasureEngine(TwoLogits(), torch.device("cpu"), 2),
            cm_scores_output,
            "cm.txt",
        )
    reference = output_of(tmp_path / "ref" / name)
    run_chunked(engine, corpus, reference, "m", decode_batch=2, chunk_size=len(corpus))
    out = output_of(tmp_path / "run" / name)
    compute = engine.compute
    for stop_after in (1, 1):  # utterances 0-1 saved, then 2-3
        calls = []

        def interrupted(wavs, calls=calls, stop_after=stop_after):
            calls.append(len(wavs))
            if len(calls) > stop_after:
                raise KeyboardInterrupt
            return compute(wavs)

        engine.compute = interrupted
        with pytest.raises(KeyboardInterrupt):
            run_chunked(engine, corpus, out, "m", decode_batch=2, chunk_size=len(corpus))
    suffix = ".scp" if kind == "asv" else ".txt"
    parts = sorted(p.name.split(".", 2)[-1] for p in out.chunk_dir.glob(f"*.part*{suffix}"))
    assert parts == [f"part00000-00002{suffix}", f"part00002-00004{suffix}"]
    engine.compute = compute
    run_chunked(engine, corpus, out, "m", decode_batch=2, chunk_size=len(corpus))
    if kind == "asv":
        got, ref = read_embeddings(out.file), read_embeddings(reference.file)
        assert list(got) == list(ref) and all(np.array_equal(got[u], ref[u]) for u in ref)
    else:
        assert out.file.read_text() == reference.file.read_text()


def test_merged_output_check_names_the_first_difference(tmp_path):
    from sasv.errors import StaleOutputError
    from sasv.stages.driver import _check_merged

    out = embeddings_output(tmp_path / "emb")
    items = [("a", "/a.flac"), ("b", "/b.flac"), ("c", "/c.flac")]
    _check_merged("a ark:1\nb ark:2\n\nc ark:3\n", items, out, "embeddings")
    with pytest.raises(
        StaleOutputError,
        match=r"hold 3 embeddings for 3 expected utterances first difference at line 2: x vs b;",
    ):
        _check_merged("a ark:1\nx ark:2\nc ark:3\n", items, out, "embeddings")
    with pytest.raises(
        StaleOutputError, match=r"hold 2 embeddings for 3 expected utterances ; delete that folder"
    ):
        _check_merged("a ark:1\nb ark:2\n", items, out, "embeddings")


def test_a_finished_output_is_skipped_without_computing(corpus, tmp_path, caplog):
    """The completion marker's fingerprint makes a re-run with the same inputs a no-op (mutation testing:
    writing or checking the marker without the fingerprint recomputed from the chunks, unnoticed)."""
    engine = CountermeasureEngine(TwoLogits(), torch.device("cpu"), model_batch=3)
    out = cm_scores_output(tmp_path / "cm" / "cm_scores.txt")
    run_chunked(engine, corpus, out, "cm", chunk_size=3)
    compute, calls = engine.compute, []
    engine.compute = lambda wavs: calls.append(len(wavs)) or compute(wavs)
    caplog.set_level("INFO", logger="sasv.stages.driver")
    run_chunked(engine, corpus, out, "cm", chunk_size=3)
    assert calls == [] and "is complete for these inputs: skipping" in caplog.text
    run_chunked(engine, corpus, out, "another model", chunk_size=3)
    assert sum(calls) == len(corpus)


def test_a_damaged_cm_scores_file_is_merged_again_not_skipped(corpus, tmp_path, caplog):
    """cm_scores.txt with a line deleted after stage 3: the re-run sees that the file is not the one its
    marker vouched for (size and sha256) and merges it again from its chunks, without running the model."""
    engine = CountermeasureEngine(TwoLogits(), torch.device("cpu"), model_batch=3)
    out = cm_scores_output(tmp_path / "cm" / "cm_scores.txt")
    good = run_chunked(engine, corpus, out, "cm", chunk_size=3).read_text()
    out.file.write_text("".join(good.splitlines(keepends=True)[:3] + good.splitlines(keepends=True)[4:]))
    compute, calls = engine.compute, []
    engine.compute = lambda wavs: calls.append(len(wavs)) or compute(wavs)
    caplog.set_level("INFO", logger="sasv.stages.driver")
    run_chunked(engine, corpus, out, "cm", chunk_size=3)
    assert "skipping" not in caplog.text
    assert f"{out.file} changed since it was marked complete (6 lines, 7 then)" in caplog.text
    assert out.file.read_text() == good and calls == [], "merged again from the chunks, nothing computed"
    caplog.clear()
    run_chunked(engine, corpus, out, "cm", chunk_size=3)
    assert "is complete for these inputs: skipping" in caplog.text and calls == []


def test_a_damaged_xvector_scp_or_ark_is_redone(corpus, tmp_path, caplog):
    """xvector.scp with a line deleted is merged again; an ark it points into that was truncated (or
    deleted) since: the chunks of that ark are computed again, the others kept. The marker records the
    index's sha256 and the arks' sizes only (arks of GBs are not hashed)."""
    model = FrameStats().eval()
    engine = EmbeddingEngine(model, torch.device("cpu"), model_batch=32)
    out = embeddings_output(tmp_path / "emb")
    first = read_embeddings(run_chunked(engine, corpus, out, "m", chunk_size=3))
    index = out.file.read_text()
    recorded = json.loads(out.marker.read_text())["output"]
    assert (
        set(recorded["data"]) == {str(p) for p in out.chunk_dir.glob("*.ark")} and len(recorded["data"]) == 3
    )
    caplog.set_level("INFO", logger="sasv.stages.driver")

    out.file.write_text("".join(index.splitlines(keepends=True)[1:]))
    calls = model.calls
    run_chunked(engine, corpus, out, "m", chunk_size=3)
    assert out.file.read_text() == index and model.calls == calls
    assert "skipping" not in caplog.text

    ark = sorted(out.chunk_dir.glob("00001.*.ark"))[0]
    ark.write_bytes(ark.read_bytes()[:-100])
    caplog.clear()
    run_chunked(engine, corpus, out, "m", chunk_size=3)
    assert f"{ark}" in caplog.text and "skipping" not in caplog.text
    assert 0 < model.calls - calls <= 2 * 3, "only the chunk of the truncated ark is computed again"
    again = read_embeddings(out.file)
    assert list(again) == list(first) and all(np.array_equal(first[u], again[u]) for u in first)


def test_a_marker_without_an_output_record_is_verified_by_merging_again(corpus, tmp_path, caplog):
    """A marker written before it recorded its output vouches for nothing it can check: the output is merged
    again from its chunks (no model run) and the new marker records it."""
    engine = CountermeasureEngine(TwoLogits(), torch.device("cpu"), model_batch=3)
    out = cm_scores_output(tmp_path / "cm" / "cm_scores.txt")
    good = run_chunked(engine, corpus, out, "cm", chunk_size=3).read_text()
    record = json.loads(out.marker.read_text())
    del record["output"]
    out.marker.write_text(json.dumps(record))
    out.file.write_text(good.replace("utt3", "utt9"))
    compute, calls = engine.compute, []
    engine.compute = lambda wavs: calls.append(len(wavs)) or compute(wavs)
    caplog.set_level("INFO", logger="sasv.stages.driver")
    run_chunked(engine, corpus, out, "cm", chunk_size=3)
    assert out.file.read_text() == good and calls == [] and "records no checksum" in caplog.text
    assert "output" in json.loads(out.marker.read_text())


def test_a_skipped_stage_says_only_that_it_skipped(corpus, tmp_path, caplog):
    """The stage's log says `wrote X` when it wrote X, and not after `X is complete ...: skipping` (it did
    both before: stage.py logged `wrote` whatever the driver had done)."""
    from sasv.extraction.engines import EngineOptions
    from sasv.stages.model_stage import run_model_stage
    from tests.tiny_confs import TINY_ECAPA, write_tiny_conf

    data = tmp_path / "data" / "dev"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in corpus[:3]))
    conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    caplog.set_level("INFO")
    run = lambda: run_model_stage(  # noqa: E731
        "asv", conf, [data], tmp_path / "exp", EngineOptions(device="cpu"), allow_random_init=True
    )
    run()
    scp = tmp_path / "exp" / "tiny_ecapa" / "embeddings" / "dev" / "xvector.scp"
    assert f"wrote {scp}" in caplog.text
    caplog.clear()
    run()
    assert f"{scp} is complete for these inputs: skipping" in caplog.text and "wrote" not in caplog.text
