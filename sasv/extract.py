"""Batched inference: speaker embeddings (6 rows per utterance) and countermeasure scores.

Outputs are written in fixed chunks of the sorted utterance list. A chunk's data file is written first and
its index (``.scp``/``.txt``) is renamed into place last, so a chunk with an index is complete; a killed run
leaves at most one chunk to redo. A fingerprint of the inputs (conf, checkpoint, utterance list) guards the
chunks: when it changes, stale chunks are discarded instead of being mixed with new ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from sasv.audio import CM_SAMPLES, AudioError, cm_input, embedding_segments, read_audio
from sasv.fileio import atomic_write_text
from sasv.scoring import bona_fide_probability

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 200
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteOutputError(RuntimeError):
    """A model produced NaN or Inf for an utterance."""


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return dev


class AudioListDataset(Dataset):
    """(utt, path) pairs -> (utt, waveform); decoding runs in DataLoader workers when there are any."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray | AudioError]:
        utt, path = self.items[index]
        try:
            return utt, read_audio(path)
        except AudioError as e:
            # returned, not raised: a DataLoader worker would wrap it in a traceback-laden message
            return utt, e


def _collate_list(batch: list) -> list:
    return batch


def iterate_audio(
    items: Sequence[tuple[str, str]], batch_size: int, num_workers: int
) -> Iterator[list[tuple[str, np.ndarray]]]:
    loader = DataLoader(
        AudioListDataset(items),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate_list,
        prefetch_factor=4 if num_workers > 0 else None,
        persistent_workers=False,
    )
    for batch in loader:
        for _, wav in batch:
            if isinstance(wav, AudioError):
                raise wav
        yield batch


def _check_finite(values: np.ndarray, utts: Sequence[str], what: str) -> None:
    bad = ~np.isfinite(values.reshape(len(utts), -1)).all(axis=1)
    if bad.any():
        names = [u for u, b in zip(utts, bad, strict=True) if b]
        raise NonFiniteOutputError(
            f"{what} is NaN or Inf for {len(names)} utterance(s), first: {', '.join(names[:5])}"
        )


class EmbeddingEngine:
    """Embeds utterances as the reference 6 rows: the full utterance + five 3 s segments.

    Full utterances differ in length and the models normalise features over time, so zero-padding would
    change their embeddings: they are batched only with utterances of exactly the same length. Segments all
    have the same length and are batched freely across utterances.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        segment_batch: int = 32,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.segment_batch = segment_batch
        self.autocast_dtype = autocast_dtype

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        if self.autocast_dtype is not None:
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
                out = self.model(x)
        else:
            out = self.model(x)
        return out.float().cpu().numpy()

    def embed(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """A (6, D) float32 array per waveform: row 0 the full utterance, rows 1-5 the segments."""
        full: list[np.ndarray | None] = [None] * len(wavs)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(wavs):
            by_length.setdefault(len(w), []).append(i)
        for indices in by_length.values():
            for start in range(0, len(indices), self.segment_batch):
                group = indices[start : start + self.segment_batch]
                out = self._forward(np.stack([wavs[i] for i in group]))
                for i, row in zip(group, out, strict=True):
                    full[i] = row
        segments = np.concatenate([embedding_segments(w) for w in wavs])
        seg_out = np.concatenate(
            [
                self._forward(segments[s : s + self.segment_batch])
                for s in range(0, len(segments), self.segment_batch)
            ]
        )
        n_seg = seg_out.shape[0] // len(wavs)
        return [
            np.concatenate([full[i][None], seg_out[i * n_seg : (i + 1) * n_seg]]).astype(np.float32)
            for i in range(len(wavs))
        ]


class CountermeasureEngine:
    """AASIST-style CM on the first 64,600 samples (tiled when shorter); returns logits (B, 2)."""

    def __init__(self, model: nn.Module, device: torch.device, num_samples: int = CM_SAMPLES) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.num_samples = num_samples

    @torch.inference_mode()
    def logits(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        x = np.stack([cm_input(w, self.num_samples) for w in wavs]).astype(np.float32)
        out = self.model(torch.from_numpy(x).to(self.device))
        return out.float().cpu().numpy()


def fingerprint(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def items_fingerprint(items: Sequence[tuple[str, str]]) -> str:
    return fingerprint(*(f"{u} {p}" for u, p in items))


@dataclass(frozen=True)
class ChunkPlan:
    """A sorted item list cut into fixed chunks, stored under ``chunk_dir`` and guarded by ``key``."""

    items: list[tuple[str, str]]
    chunk_dir: Path
    chunk_size: int
    key: str

    def chunks(self) -> list[list[tuple[str, str]]]:
        return [self.items[i : i + self.chunk_size] for i in range(0, len(self.items), self.chunk_size)]

    def prepare(self) -> None:
        """Create the chunk dir, discarding chunks made from other inputs."""
        stamp = self.chunk_dir / "FINGERPRINT"
        if self.chunk_dir.exists():
            old = stamp.read_text().strip() if stamp.exists() else ""
            if old != self.key:
                log.warning("inputs changed since %s was written: discarding its chunks", self.chunk_dir)
                shutil.rmtree(self.chunk_dir)
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        if not stamp.exists():
            atomic_write_text(stamp, self.key + "\n")


def _run_chunks(
    plan: ChunkPlan,
    index_suffix: str,
    process: Callable[[list[tuple[str, str]], Path], str],
    desc: str,
    batch_size: int,
    num_workers: int,
    compute: Callable[[list[np.ndarray]], list],
) -> list[Path]:
    """Run ``compute`` over every unfinished chunk; ``process`` writes a chunk's data, returns its index."""
    plan.prepare()
    todo, indexes = [], []
    for n, chunk in enumerate(plan.chunks()):
        index = plan.chunk_dir / f"{n:05d}{index_suffix}"
        indexes.append(index)
        if not index.exists():
            todo.append((n, chunk, index))
    done_utts = len(plan.items) - sum(len(c) for _, c, _ in todo)
    if done_utts:
        log.info("%s: resuming, %d of %d utterances already done", desc, done_utts, len(plan.items))
    with tqdm(total=len(plan.items), initial=done_utts, desc=desc, unit="utt", dynamic_ncols=True) as bar:
        for n, chunk, index in todo:
            results: list = []
            for batch in iterate_audio(chunk, batch_size, num_workers):
                results.extend(compute([w for _, w in batch]))
                bar.update(len(batch))
            text = process(
                [(u, r) for (u, _), r in zip(chunk, results, strict=True)], plan.chunk_dir / f"{n:05d}"
            )
            atomic_write_text(index, text)
    return indexes


def extract_embeddings(
    engine: EmbeddingEngine,
    items: Sequence[tuple[str, str]],
    out_dir: str | Path,
    model_key: str,
    batch_size: int = 8,
    num_workers: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    inputs: dict | None = None,
) -> Path:
    """Embed every (utt, path) of ``items`` into ``out_dir/xvector.scp`` (kaldi ark/scp, (6, D) per utt).

    ``model_key`` identifies the model (conf + checkpoint); with the item list it forms the fingerprint that
    decides whether finished chunks can be reused. ``inputs`` (see :func:`sasv.provenance.stage_inputs`) is
    recorded in the completion marker ``xvector.done`` for later stages to check. Returns ``xvector.scp``.
    """
    out_dir = Path(out_dir)
    items = sorted(items)
    key = fingerprint(model_key, items_fingerprint(items))
    scp = out_dir / "xvector.scp"
    done = out_dir / "xvector.done"
    if scp.exists() and done.exists() and json.loads(done.read_text()).get("fingerprint") == key:
        log.info("%s is complete for these inputs: skipping", scp)
        return scp

    def write_chunk(rows: list[tuple[str, np.ndarray]], stem: Path) -> str:
        utts = [u for u, _ in rows]
        _check_finite(np.stack([r for _, r in rows]), utts, "embedding")
        ark = stem.with_suffix(".ark")
        tmp_scp = stem.with_suffix(".scp.tmp")
        kaldiio.save_ark(str(ark), dict(rows), scp=str(tmp_scp))
        text = tmp_scp.read_text()
        tmp_scp.unlink()
        return text

    plan = ChunkPlan(items, out_dir / "chunks", chunk_size, key)
    indexes = _run_chunks(
        plan, ".scp", write_chunk, f"embed {out_dir}", batch_size, num_workers, engine.embed
    )
    merged = "".join(p.read_text() for p in indexes)
    if merged.count("\n") != len(items):
        raise RuntimeError(
            f"{out_dir}: {merged.count(chr(10))} embeddings written for {len(items)} utterances"
        )
    atomic_write_text(scp, merged)
    _write_marker(done, key, len(items), inputs)
    return scp


def score_countermeasure(
    engine: CountermeasureEngine,
    items: Sequence[tuple[str, str]],
    out_path: str | Path,
    model_key: str,
    batch_size: int = 16,
    num_workers: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    inputs: dict | None = None,
) -> Path:
    """Write ``UTT logit_spoof logit_bonafide p_bonafide`` lines for every item to ``out_path``.

    Resumes and records ``inputs`` in ``<out_path>.done`` like :func:`extract_embeddings`.
    """
    out_path = Path(out_path)
    items = sorted(items)
    key = fingerprint(model_key, items_fingerprint(items))
    done = out_path.with_name(out_path.name + ".done")
    if out_path.exists() and done.exists() and json.loads(done.read_text()).get("fingerprint") == key:
        log.info("%s is complete for these inputs: skipping", out_path)
        return out_path

    def write_chunk(rows: list[tuple[str, np.ndarray]], stem: Path) -> str:
        utts = [u for u, _ in rows]
        logits = np.stack([r for _, r in rows])
        _check_finite(logits, utts, "CM logits")
        prob = bona_fide_probability(logits)
        lines = zip(utts, logits.tolist(), prob.tolist(), strict=True)
        return "".join(f"{u} {lg[0]!r} {lg[1]!r} {p!r}\n" for u, lg, p in lines)

    plan = ChunkPlan(items, out_path.parent / f".{out_path.name}.chunks", chunk_size, key)
    indexes = _run_chunks(
        plan, ".txt", write_chunk, f"CM {out_path}", batch_size, num_workers, lambda w: list(engine.logits(w))
    )
    atomic_write_text(out_path, "".join(p.read_text() for p in indexes))
    _write_marker(done, key, len(items), inputs)
    return out_path


def _write_marker(path: Path, key: str, num_utts: int, inputs: dict | None) -> None:
    record = {"fingerprint": key, "num_utts": num_utts, "inputs": inputs or {}}
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def read_embeddings(scp: str | Path) -> dict[str, np.ndarray]:
    """utt -> (rows, D) float32 from a kaldi scp (loads everything: fine for LA's ~10^5 x 6 x 256)."""
    return {utt: np.asarray(mat, dtype=np.float32) for utt, mat in kaldiio.load_scp_sequential(str(scp))}


def read_cm_scores(path: str | Path) -> dict[str, float]:
    """utt -> P(bona fide) from a ``cm_scores.txt``; malformed lines name file and line."""
    scores: dict[str, float] = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 4:
                raise ValueError(f"{path}:{n}: expected 'UTT logit_spoof logit_bonafide p_bonafide'")
            try:
                p = float(fields[3])
            except ValueError:
                raise ValueError(f"{path}:{n}: P(bona fide) {fields[3]!r} is not a number") from None
            if not np.isfinite(p):
                raise ValueError(f"{path}:{n}: P(bona fide) of {fields[0]} is {p}")
            if fields[0] in scores:
                raise ValueError(f"{path}:{n}: utterance {fields[0]} scored twice")
            scores[fields[0]] = p
    return scores
