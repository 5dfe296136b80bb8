import json

import numpy as np
import pytest
import torch

from sasv.extraction.outputs import bona_fide_probability
from sasv.scoring import cosine as scoring
from sasv.scoring.cosine import (
    NORMS,
    cosine_scores,
    fuse_scores,
    speaker_model,
    utterance_vector,
)
from tests.conftest import rel_err

TOL = 1e-6


@pytest.fixture
def fusion(golden):
    io = np.load(golden("fusion/io.npz"))
    trials = json.loads(golden("fusion/trials.json").read_text())
    return {key: io[key] for key in io.files}, trials


def _golden_vectors(fusion, norm):
    """Speaker models, test vectors and trial indices built from the raw (un-normalised) 6-row embeddings."""
    io, trials = fusion
    speakers = list(trials["spk2ids"])
    utts = sorted({t["tst"] for t in trials["trials"]})
    enrol = np.stack(
        [speaker_model([io[f"emb6_nonorm/{u}"] for u in trials["spk2ids"][s]], norm) for s in speakers]
    )
    test = np.stack([utterance_vector(io[f"emb6_nonorm/{u}"], norm) for u in utts])
    spk_idx = np.array([speakers.index(t["spk"]) for t in trials["trials"]])
    utt_idx = np.array([utts.index(t["tst"]) for t in trials["trials"]])
    return enrol, test, spk_idx, utt_idx


@pytest.mark.parametrize("norm", NORMS)
def test_golden_fusion(fusion, norm):
    io, _ = fusion
    enrol, test, spk_idx, utt_idx = _golden_vectors(fusion, norm)
    assert rel_err(enrol[spk_idx], io[f"{norm}_enrol_mean"]) < TOL
    assert rel_err(test[utt_idx], io[f"{norm}_test_mean"]) < TOL
    cos = cosine_scores(enrol, test, spk_idx, utt_idx)
    assert cos.dtype == np.float32
    assert rel_err(cos, io[f"{norm}_cos"]) < TOL
    assert rel_err((cos + 1) / 2, io[f"{norm}_cos01"]) < TOL
    for prefix in ("", "synth_"):
        prob = bona_fide_probability(io[f"{prefix}cm_logits"])
        assert rel_err(prob, io[f"{prefix}cm_softmax1"]) < TOL
        fused = fuse_scores(cos, prob)
        assert fused.dtype == np.float32
        assert rel_err(fused, io[f"{prefix}{norm}_fused"]) < TOL
        # with the reference's own float32 inputs the fusion arithmetic is bit-identical
        exact = fuse_scores(io[f"{norm}_cos"], io[f"{prefix}cm_softmax1"])
        assert np.array_equal(exact, io[f"{prefix}{norm}_fused"])


def test_golden_l2norm_rows_are_normalised_nonorm_rows(fusion):
    io, trials = fusion
    for utt in trials["spk2ids"]["LA_9002"]:
        assert rel_err(scoring.normalize_rows(io[f"emb6_nonorm/{utt}"]), io[f"emb6_l2norm/{utt}"]) < 2e-7
        # the stored l2norm rows are already unit length: averaging them without norm is the l2norm vector
        assert np.array_equal(
            utterance_vector(io[f"emb6_l2norm/{utt}"], "nonorm"), io[f"emb6_l2norm/{utt}"].mean(0)
        )


def test_utterance_vector_semantics():
    rng = np.random.default_rng(0)
    rows = (rng.standard_normal((6, 32)) * 4).astype(np.float32)
    rows[2] = 0.0
    assert np.array_equal(utterance_vector(rows, "nonorm"), rows.mean(0))
    expected = torch.nn.functional.normalize(torch.from_numpy(rows), dim=1).mean(0).numpy()
    got = utterance_vector(rows, "l2norm")
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    assert np.abs(got - expected).max() < 1e-6
    with pytest.raises(ValueError, match="unknown embedding norm"):
        utterance_vector(rows, "l2")
    with pytest.raises(ValueError, match="shape"):
        utterance_vector(rows[0], "nonorm")


def test_speaker_model_averages_rows_not_utterances():
    a = np.ones((1, 4), dtype=np.float32)
    b = np.full((3, 4), 5.0, dtype=np.float32)
    assert np.array_equal(speaker_model([a, b], "nonorm"), np.full(4, 4.0, dtype=np.float32))
    rng = np.random.default_rng(1)
    utts = [rng.standard_normal((6, 8)).astype(np.float32) for _ in range(3)]
    assert np.array_equal(speaker_model(utts, "nonorm"), np.concatenate(utts).mean(0))
    assert np.array_equal(speaker_model(utts, "l2norm"), utterance_vector(np.concatenate(utts), "l2norm"))
    with pytest.raises(ValueError, match="at least one"):
        speaker_model([], "nonorm")


def _torch_loop(enrol, test, spk_idx, utt_idx):
    cos = torch.nn.CosineSimilarity(dim=1, eps=1e-6)
    out = [
        cos(torch.from_numpy(enrol[s : s + 1]), torch.from_numpy(test[u : u + 1])).item()
        for s, u in zip(spk_idx, utt_idx, strict=True)
    ]
    return np.array(out)


@pytest.mark.parametrize("advantage", [0, 10**9], ids=["row-wise", "matrix"])
def test_cosine_matches_torch_loop(monkeypatch, advantage):
    monkeypatch.setattr(scoring, "_MATRIX_ADVANTAGE", advantage)
    rng = np.random.default_rng(2)
    enrol = rng.standard_normal((5, 24)).astype(np.float32)
    test = rng.standard_normal((40, 24)).astype(np.float32) * 3
    enrol[1] = 0.0  # zero speaker model -> cosine 0
    test[3] = 0.0
    test[4] = test[5] * 1e-8  # norm below eps: torch does not rescale it to unit length
    spk_idx = rng.integers(0, 5, 300)
    utt_idx = rng.integers(0, 40, 300)
    spk_idx[:3], utt_idx[:3] = [1, 0, 2], [0, 3, 4]
    got = cosine_scores(enrol, test, spk_idx, utt_idx)
    expected = _torch_loop(enrol, test, spk_idx, utt_idx)
    assert got.shape == (300,)
    assert np.abs(got - expected).max() < 1e-6
    assert got[0] == 0.0 and got[1] == 0.0
    assert abs(got[2]) < 0.1  # shrunk, not normalised


def test_row_wise_cosine_in_several_chunks(monkeypatch):
    """The row-wise path in chunks (7 trials each here): every trial scored, the first and the last chunk
    included (mutation testing found the first trial of the test above is 0 either way)."""
    monkeypatch.setattr(scoring, "_MATRIX_ADVANTAGE", 0)
    monkeypatch.setattr(scoring, "_ROW_CHUNK", 7)
    rng = np.random.default_rng(5)
    enrol = rng.standard_normal((4, 16)).astype(np.float32)
    test = rng.standard_normal((30, 16)).astype(np.float32)
    spk_idx, utt_idx = rng.integers(0, 4, 52), rng.integers(0, 30, 52)
    got = cosine_scores(enrol, test, spk_idx, utt_idx)
    assert np.abs(got - _torch_loop(enrol, test, spk_idx, utt_idx)).max() < 1e-6
    assert np.all(got != 0.0)


def test_utterance_vector_of_one_row_and_of_none():
    row = np.array([[3.0, 4.0]], dtype=np.float32)
    assert np.array_equal(utterance_vector(row, "nonorm"), row[0])
    assert np.allclose(utterance_vector(row, "l2norm"), [0.6, 0.8])
    with pytest.raises(ValueError, match="non-empty"):
        utterance_vector(np.zeros((0, 2), dtype=np.float32), "nonorm")


def test_cosine_input_checks():
    e = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="same dim"):
        cosine_scores(e, np.ones((2, 4)), [0], [0])
    with pytest.raises(ValueError, match="utt_idx has indices outside"):
        cosine_scores(e, e, [0], [2])
    with pytest.raises(ValueError, match="equal-length"):
        cosine_scores(e, e, [0, 1], [0])
    assert cosine_scores(e, e, [], []).shape == (0,)


def test_bona_fide_probability():
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((50, 2)) * 5).astype(np.float32)
    expected = torch.from_numpy(logits).softmax(-1)[:, 1].numpy()
    got = bona_fide_probability(logits)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-6 * np.abs(expected).max()
    extreme = bona_fide_probability(np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [0.0, 0.0]]))
    assert extreme.tolist() == [0.0, 1.0, 0.5]
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        bona_fide_probability(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="1 NaN/Inf"):
        bona_fide_probability(np.array([[0.0, np.nan]]))


def test_fuse_rules():
    cos = np.array([-1.0, 0.0, 0.5, 1.0])
    prob = np.array([0.2, 0.5, 1.0, 0.0])
    assert fuse_scores(cos, prob).tolist() == [0.0, 0.25, 0.75, 0.0]
    assert fuse_scores(cos, prob, rule="product").tolist() == [0.0, 0.25, 0.75, 0.0]
    assert fuse_scores(cos, prob, rule="sum").tolist() == [-0.8, 0.5, 1.5, 1.0]
    assert fuse_scores(cos.astype(np.float32), prob.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="unknown score rule 'max'"):
        fuse_scores(cos, prob, rule="max")
    with pytest.raises(ValueError, match="equal-length"):
        fuse_scores(cos, prob[:2])


def test_fuse_rejects_non_finite():
    cos = np.array([0.1, np.nan, 0.2, np.inf])
    with pytest.raises(
        ValueError, match=r"ASV cosine scores contain 2 NaN/Inf value\(s\) \(first at index 1\)"
    ):
        fuse_scores(cos, np.ones(4))
    with pytest.raises(ValueError, match=r"CM scores contain 1 NaN/Inf value\(s\) \(first at index 2\)"):
        fuse_scores(np.zeros(3), np.array([0.0, 1.0, np.nan]))
