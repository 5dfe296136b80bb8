"""Scoring streams a stage's embeddings (sasv.extraction.outputs.EmbeddingArchive,
sasv.scoring.evaluate.scoring_vectors): the same bits as the all-in-memory path, with only one vector per test
utterance held."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from sasv.corpora.datadir import DataDir
from sasv.corpora.protocols import Trial
from sasv.extraction.outputs import EmbeddingArchive, write_embedding_chunk
from sasv.scoring import cosine as scoring
from sasv.scoring.cosine import COSINE_EPS, cosine_scores, speaker_model
from sasv.scoring.evaluate import _VECTOR_BLOCK, compute_trial_scores, scoring_vectors, utterance_vectors


def _archive(tmp_path, embeddings: dict[str, np.ndarray], chunks: int = 3) -> EmbeddingArchive:
    """A merged xvector.scp as stage 2 writes it: chunk arks, their scp texts joined (utterances shuffled)."""
    utts = list(embeddings)
    np.random.default_rng(1).shuffle(utts)
    text = ""
    for k, part in enumerate(np.array_split(np.array(utts), chunks)):
        text += write_embedding_chunk([(u, embeddings[u]) for u in part], tmp_path / f"{k:05d}")
    (tmp_path / "xvector.scp").write_text(text)
    return EmbeddingArchive(tmp_path / "xvector.scp")


def _set(n_test: int, dim: int, seed: int = 0) -> tuple[DataDir, dict[str, np.ndarray], dict[str, float]]:
    rng = np.random.default_rng(seed)
    speakers = [f"S{i}" for i in range(5)]
    enroll = {s: [f"{s}_e{j}" for j in range(1 + i % 3)] for i, s in enumerate(speakers)}
    test = [f"T{i:05d}" for i in range(n_test)]
    keys = ["target", "nontarget", "spoof"]
    trials = [Trial(speakers[i % 5], u, "A07" if i % 3 == 2 else "bonafide", keys[i % 3])
              for i, u in enumerate(test)]  # fmt: skip
    trials += [Trial("S1", "S0_e0", "bonafide", "nontarget")]  # an enrolment utterance tested too
    utts = [u for us in enroll.values() for u in us] + test + ["unused_1", "unused_2"]
    emb = {u: (rng.standard_normal((6, dim)) * rng.uniform(0.1, 10)).astype(np.float32) for u in utts}
    cm = {u: float(rng.random()) for u in [*test, "S0_e0"]}
    data = DataDir(wav_scp={u: f"/x/{u}.flac" for u in utts}, utt2spk={}, enroll=enroll, trials=trials)
    return data, emb, cm


@pytest.mark.parametrize("norm", ["nonorm", "l2norm"])
def test_streamed_scores_are_bit_identical_to_the_in_memory_path(tmp_path, norm):
    data, emb, cm = _set(n_test=700, dim=16)  # several blocks of 256 vectors
    archive = _archive(tmp_path, emb)
    assert "T00003" in archive and "S2_e2" in archive and "nope" not in archive
    streamed = compute_trial_scores(data, archive, cm, norm)
    in_memory = compute_trial_scores(data, emb, cm, norm)
    for name in ("asv", "cm", "fused"):
        assert np.array_equal(getattr(streamed, name), getattr(in_memory, name)), name
    # and against the definitions, utterance by utterance (no blocks, no streaming)
    speakers = sorted({t.spk for t in data.trials})
    test_utts = sorted({t.utt for t in data.trials})
    models, vectors = scoring_vectors(archive, speakers, data.enroll, test_utts, norm)
    for i, s in enumerate(speakers):
        assert np.array_equal(models[i], speaker_model([emb[u] for u in data.enroll[s]], norm))
    assert np.array_equal(vectors, utterance_vectors([emb[u] for u in test_utts], norm))


def test_archive_streams_only_the_utterances_asked_for_in_index_order(tmp_path):
    _, emb, _ = _set(n_test=20, dim=4)
    archive = _archive(tmp_path, emb)
    order = [line.split()[0] for line in (tmp_path / "xvector.scp").read_text().splitlines()]
    wanted = {"T00007", "S2_e0", "T00011"}
    got = list(archive.rows(wanted))
    assert [u for u, _ in got] == [u for u in order if u in wanted]
    for utt, rows in got:
        assert rows.dtype == np.float32 and np.array_equal(rows, emb[utt])


def test_streamed_scoring_holds_one_block_of_rows_at_a_time(tmp_path):
    """Of the rows the archive yields, at most one block of test utterances (and the enrolment rows) is
    alive at any time, whatever the number of test utterances: reading them all first fails this."""
    data, emb, cm = _set(n_test=2000, dim=8)
    alive: set[int] = set()
    most = 0

    class CountingArchive(EmbeddingArchive):
        def rows(self, wanted):
            nonlocal most
            for utt, rows in super().rows(wanted):
                alive.add(id(rows))
                weakref.finalize(rows, alive.discard, id(rows))
                most = max(most, len(alive))
                yield utt, rows

    _archive(tmp_path, emb)
    scores = compute_trial_scores(data, CountingArchive(tmp_path / "xvector.scp"), cm, "l2norm")
    assert np.array_equal(scores.asv, compute_trial_scores(data, emb, cm, "l2norm").asv)
    n_enrol = sum(map(len, data.enroll.values()))
    assert 0 < most <= _VECTOR_BLOCK + n_enrol + 1, most


def _reference_cosine(enrol, test, spk_idx, utt_idx):
    """The row-wise path before chunked scaling: every vector scaled at once, in float64."""

    def scaled(v):
        v = v.astype(np.float64)
        return v / np.maximum(np.sqrt(np.einsum("ij,ij->i", v, v))[:, None], COSINE_EPS)

    return np.einsum("ij,ij->i", scaled(enrol)[spk_idx], scaled(test)[utt_idx]).astype(np.float32)


@pytest.mark.parametrize("chunk", [1, 7, 1 << 13])
def test_row_wise_cosine_scales_chunk_by_chunk_with_the_same_bits(monkeypatch, chunk):
    monkeypatch.setattr(scoring, "_MATRIX_ADVANTAGE", 0)
    monkeypatch.setattr(scoring, "_ROW_CHUNK", chunk)
    rng = np.random.default_rng(3)
    enrol = rng.standard_normal((9, 192)).astype(np.float32)
    test = (rng.standard_normal((1000, 192)) * 10.0 ** rng.uniform(-8, 2, (1000, 1))).astype(np.float32)
    spk_idx, utt_idx = rng.integers(0, 9, 2500), rng.integers(0, 1000, 2500)
    got = cosine_scores(enrol, test, spk_idx, utt_idx)
    assert np.array_equal(got, _reference_cosine(enrol, test, spk_idx, utt_idx))
