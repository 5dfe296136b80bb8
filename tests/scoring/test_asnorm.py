import numpy as np
import pytest

from sasv.scoring.asnorm import as_norm, top_k_stats


def naive_as_norm(enrol, test, cohort, spk_idx, utt_idx, top_k):
    """AS-norm written literally, one trial at a time, as the definition reads."""

    def cos(a, b):
        return float(a @ b / (max(np.linalg.norm(a), 1e-6) * max(np.linalg.norm(b), 1e-6)))

    out = []
    for s, u in zip(spk_idx, utt_idx, strict=True):
        e, t = enrol[s], test[u]
        top_e = sorted((cos(e, c) for c in cohort), reverse=True)[:top_k]
        top_t = sorted((cos(t, c) for c in cohort), reverse=True)[:top_k]
        raw = cos(e, t)
        out.append(0.5 * ((raw - np.mean(top_e)) / np.std(top_e) + (raw - np.mean(top_t)) / np.std(top_t)))
    return np.array(out)


@pytest.mark.parametrize("top_k", [2, 7, 40])
def test_as_norm_matches_the_per_trial_definition(top_k):
    rng = np.random.default_rng(top_k)
    enrol = rng.normal(size=(5, 16)).astype(np.float32)
    test = rng.normal(size=(30, 16)).astype(np.float32)
    cohort = rng.normal(size=(40, 16)).astype(np.float32)
    spk_idx = rng.integers(0, 5, 120)
    utt_idx = rng.integers(0, 30, 120)
    fast = as_norm(enrol, test, cohort, spk_idx, utt_idx, top_k=top_k)
    slow = naive_as_norm(
        enrol.astype(float), test.astype(float), cohort.astype(float), spk_idx, utt_idx, top_k
    )
    assert fast.dtype == np.float64
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9)


def test_chunked_statistics_equal_unchunked(monkeypatch):
    import sasv.scoring.asnorm

    rng = np.random.default_rng(1)
    vectors, cohort = rng.normal(size=(50, 8)), rng.normal(size=(30, 8))
    whole = top_k_stats(vectors, cohort, 5)
    monkeypatch.setattr(sasv.scoring.asnorm, "_CHUNK_CELLS", 30 * 7)  # 7 rows per chunk, last chunk partial
    chunked = top_k_stats(vectors, cohort, 5)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)  # BLAS blocking may differ by an ulp


def test_as_norm_argument_checks():
    rng = np.random.default_rng(2)
    enrol, test, cohort = rng.normal(size=(2, 4)), rng.normal(size=(3, 4)), rng.normal(size=(6, 4))
    idx = np.array([0, 1]), np.array([2, 0])
    with pytest.raises(ValueError, match="top_k must be at least 2"):
        as_norm(enrol, test, cohort, *idx, top_k=1)
    with pytest.raises(ValueError, match=r"top_k must be in \[1, 6\]"):
        as_norm(enrol, test, cohort, *idx, top_k=7)
    with pytest.raises(ValueError, match="cohort"):
        as_norm(enrol, test, cohort[:, :3], *idx, top_k=2)
    with pytest.raises(ValueError, match="outside"):
        as_norm(enrol, test, cohort, np.array([0, 5]), idx[1], top_k=2)
    with pytest.raises(ValueError, match="zero-spread"):
        as_norm(enrol, test, np.ones((6, 4)), *idx, top_k=3)


def test_top_k_is_checked_and_capped_at_the_cohort_size():
    """--top_k below 2 is an error naming the option; a valid K larger than the cohort uses it whole."""
    from sasv.scoring.asnorm import AsNormError, effective_top_k

    for bad in (0, -3, 1):
        with pytest.raises(AsNormError, match=rf"^--top_k {bad}: .* K must be at least 2"):
            effective_top_k(bad, 1000)
    assert effective_top_k(300, 24) == 24 and effective_top_k(100000, 24) == 24
    assert effective_top_k(3, 24) == 3 and effective_top_k(2, 2) == 2
    with pytest.raises(
        AsNormError, match=r"^data/train_cohort: 1 cohort utterance\(s\); AS-norm needs at least 2"
    ):
        effective_top_k(300, 1, "data/train_cohort")
