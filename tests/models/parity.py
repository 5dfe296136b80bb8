"""Helpers shared by the ASV model parity tests (ECAPA-TDNN, the ResNet family, WavLM + ECAPA).

Every ASV folder of shared/golden holds the same three waveforms and the outputs of the DoubleRoc embedding
protocol (``save_embeddings.py``) for them, and a ``full_shapes.json`` describing the real checkpoint. The
protocol and the synthetic real-layout checkpoint are defined once here, so that all models are held to
the same reference computation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sasv.audio import embedding_segments
from sasv.models.checkpoints import load_checkpoint_into
from tests.conftest import rel_err

N_WAVEFORMS = 3  # wav0..wav2 in every ASV io.npz
L2_EPS = 1e-12  # F.normalize's floor under the row norm, as in the protocol's emb6_l2


def run_tiny_protocol(
    model: nn.Module, folder: Path, format_name: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Load ``folder/tiny.pt`` into ``model`` and run :func:`golden_embeddings`; returns (outputs, io.npz).

    The model is left loaded and in eval mode, so callers can add their own intermediate outputs.
    """
    ref = dict(np.load(folder / "io.npz"))
    load_checkpoint_into(model, folder / "tiny.pt", format_name)
    model.eval()
    return golden_embeddings(model, ref), ref


def golden_embeddings(model: nn.Module, ref: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``emb_full{i}`` (1, D) and ``emb6_{i}`` (6, D) of ``model`` (in eval mode) for the golden waveforms.

    The 6 rows are the protocol's: the full utterance, then its 5 fixed-length segments run as one batch
    (batching changes the numbers slightly, so it is part of the reference).
    """
    out: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for i in range(N_WAVEFORMS):
            wav = ref[f"wav{i}"]
            full = model(torch.from_numpy(wav)[None]).numpy()
            segments = model(torch.from_numpy(embedding_segments(wav))).numpy()
            out[f"emb_full{i}"] = full
            out[f"emb6_{i}"] = np.concatenate([full, segments])
    return out


def l2_rows(rows: np.ndarray) -> np.ndarray:
    """Each row divided by max(||row||₂, 1e-12): the protocol's length-normalised embeddings."""
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), L2_EPS)


def six_row_errors(rows: np.ndarray, ref: dict[str, np.ndarray], i: int) -> dict[str, float]:
    """Relative errors of waveform ``i``'s 6 rows and of what the recipe derives from them.

    Raw and L2-normalised rows and their means (the test-utterance vectors of ``test_asv_cm.py``), keyed
    by the golden array names.
    """
    l2 = l2_rows(rows)
    return {
        f"emb6_{i}": rel_err(rows, ref[f"emb6_{i}"]),
        f"emb6_l2_{i}": rel_err(l2, ref[f"emb6_l2_{i}"]),
        f"mean_nonorm{i}": rel_err(rows.mean(0), ref[f"mean_nonorm{i}"]),
        f"mean_l2norm{i}": rel_err(l2.mean(0), ref[f"mean_l2norm{i}"]),
    }


def check_full_embedding(
    out: dict[str, np.ndarray], ref: dict[str, np.ndarray], i: int, embedding_dim: int, tol: float
) -> None:
    """Assert waveform ``i``'s full-utterance embedding has shape (1, D) and a rel error below ``tol``."""
    full = out[f"emb_full{i}"]
    assert full.shape == (1, embedding_dim)
    err = rel_err(full, ref[f"emb_full{i}"])
    assert err < tol, err


def check_six_row_protocol(
    rows: np.ndarray, ref: dict[str, np.ndarray], i: int, embedding_dim: int, tol: float
) -> None:
    """Assert the 6-row shape and every :func:`six_row_errors` entry below ``tol``."""
    assert rows.shape == (6, embedding_dim)
    for name, err in six_row_errors(rows, ref, i).items():
        assert err < tol, (name, err)


def synthetic_checkpoint(shapes_file: Path, device: str | None = None) -> dict[str, torch.Tensor]:
    """Zero tensors with the real file's key names, shapes and dtypes (incl. its prefix and extra keys).

    The real checkpoints cannot be downloaded in tests; their layout (``full_shapes.json``) is enough to
    check that the conf's model loads them strictly. ``device="meta"`` avoids allocating large models.
    """
    info = json.loads(shapes_file.read_text())
    dtypes = {k: getattr(torch, v) for k, v in info["non_float32_dtypes"].items()}
    state = {
        key: torch.zeros(shape, dtype=dtypes.get(key, torch.float32), device=device)
        for key, shape in info["shapes"].items()
    }
    assert len(state) == info["num_keys"]
    return state
