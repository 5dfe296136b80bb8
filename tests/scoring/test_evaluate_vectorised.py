"""Vectorised utterance vectors (sasv.scoring.evaluate.utterance_vectors) equal the per-utterance reference
exactly.

Scoring is sped up by normalising and averaging the rows of many utterances at once; the EERs see the tie
structure of the float32 scores, so "close" is not enough: the values must be bit-identical.
"""

from __future__ import annotations

import numpy as np
import pytest

from sasv.scoring.cosine import utterance_vector
from sasv.scoring.evaluate import utterance_vectors


def _rows(n: int, shape: tuple[int, int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-8, 3, size=n)  # tiny to large norms, incl. below the eps floors
    rows = [(rng.standard_normal(shape) * s).astype(np.float32) for s in scales]
    rows[1][2] = 0.0  # an all-zero row: the normalisation floor
    return rows


@pytest.mark.parametrize("norm", ["nonorm", "l2norm"])
@pytest.mark.parametrize("n", [1, 5, 256, 600])  # one block, partial block, exact block, several blocks
def test_utterance_vectors_bit_identical(norm: str, n: int) -> None:
    rows = _rows(max(n, 2), (6, 24), seed=n)[:n]
    expected = np.stack([utterance_vector(r, norm) for r in rows])
    got = utterance_vectors(rows, norm)
    assert got.dtype == expected.dtype == np.float32
    assert np.array_equal(got, expected)


def test_mixed_shapes_fall_back_to_per_utterance() -> None:
    rows = [np.ones((6, 4), np.float32), np.arange(12, dtype=np.float32).reshape(3, 4)]
    expected = np.stack([utterance_vector(r, "l2norm") for r in rows])
    assert np.array_equal(utterance_vectors(rows, "l2norm"), expected)


def test_unknown_norm_is_refused() -> None:
    with pytest.raises(ValueError, match="norm"):
        utterance_vectors([np.ones((6, 4), np.float32)], "zscore")
