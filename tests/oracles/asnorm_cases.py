"""Embeddings, a cohort and scored trials for the AS-norm fixture (wespeaker's ``bin/score_norm.py``).

Each case writes the files wespeaker's scoring scripts read:

* ``eval.ark`` / ``eval.scp``: the enrolment models (``spkNN``) and the test utterances (``uttNNNN``) in one
  Kaldi archive, as wespeaker keeps them (its ``--eval_emb_scp``);
* ``cohort.ark`` / ``cohort.scp``: the cohort (``cohNNNN``, its ``--cohort_emb_scp``);
* ``trials`` (``enroll test target|nontarget``, the input of ``bin/score.py``) and ``trials.score``
  (``enroll test score target|nontarget``, the input of ``bin/score_norm.py``) whose scores are the raw
  cosines written as ``repr`` floats, i.e. to the last bit (``bin/score.py`` itself writes 5 decimals);
* with ``mean_vec``, ``mean_vec.npy``: the cohort's mean vector, which wespeaker subtracts from every
  embedding (its ``--mean_vec_path``); the raw cosines are then those of the mean-subtracted vectors.

The archives are written here byte by byte in Kaldi's binary vector format (``DV`` for float64, ``FV`` for
float32), exactly as ``kaldiio.save_ark`` writes them, and the scp files name the archives by their bare
file name, so the files do not depend on the directory and the recorder reads them from inside it.

Embeddings: speaker centroids and utterance noise around a shared offset (so mean subtraction changes the
cosines); each enrolment model is its speaker's centroid plus noise, half of the test utterances come from
the enrolment speakers and the rest from other speakers. ``cohort_repeats`` > 1 repeats every cohort vector,
so the top-K cut goes through runs of equal cosines. This module needs numpy only (no sasv); the fixture
stores each file's sha256, so a generator that drifts fails loudly.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class AsNormCase:
    """``n_trials`` trials (all speaker x test pairs when 0) scored with ``method`` (``asnorm`` with
    ``top_n``, or ``snorm``: the whole cohort) against ``n_cohort`` x ``cohort_repeats`` cohort vectors."""

    seed: int
    n_speakers: int
    n_test: int
    n_cohort: int
    dim: int
    top_n: int
    method: str = "asnorm"
    n_trials: int = 0
    cohort_repeats: int = 1
    mean_vec: bool = False
    dtype: str = "float64"


AS_NORM_CASES: dict[str, AsNormCase] = {
    "small": AsNormCase(seed=4101, n_speakers=4, n_test=12, n_cohort=30, dim=16, top_n=5),
    "few_trials": AsNormCase(seed=4102, n_speakers=1, n_test=2, n_cohort=3, dim=4, top_n=2),
    "snorm": AsNormCase(seed=4103, n_speakers=3, n_test=10, n_cohort=25, dim=8, top_n=25, method="snorm"),
    "cohort_ties": AsNormCase(
        seed=4104, n_speakers=3, n_test=15, n_cohort=20, dim=8, top_n=7, cohort_repeats=3
    ),
    "mean_vec": AsNormCase(
        seed=4105, n_speakers=4, n_test=20, n_cohort=60, dim=32, top_n=10, mean_vec=True, n_trials=50
    ),
    "float32": AsNormCase(seed=4106, n_speakers=4, n_test=20, n_cohort=60, dim=32, top_n=10, dtype="float32"),
    "realistic": AsNormCase(
        seed=4107, n_speakers=6, n_test=80, n_cohort=400, dim=192, top_n=100, mean_vec=True
    ),
}


@dataclass(frozen=True)
class AsNormInputs:
    """The arrays behind a case's files: ``enrol`` (speakers x dim), ``test``, ``cohort`` (as written, in the
    case's dtype), ``mean`` (the subtracted mean, zeros without ``mean_vec``) and the trials as indices,
    in file order, with the raw cosine each trial line carries."""

    enrol: np.ndarray
    test: np.ndarray
    cohort: np.ndarray
    mean: np.ndarray
    spk_idx: np.ndarray
    utt_idx: np.ndarray
    is_target: np.ndarray
    raw: np.ndarray

    def enrol_names(self) -> list[str]:
        return [f"spk{i:02d}" for i in range(self.enrol.shape[0])]

    def test_names(self) -> list[str]:
        return [f"utt{i:04d}" for i in range(self.test.shape[0])]

    def cohort_names(self) -> list[str]:
        return [f"coh{i:04d}" for i in range(self.cohort.shape[0])]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def case_inputs(case: AsNormCase) -> AsNormInputs:
    if case.method not in ("asnorm", "snorm"):
        raise ValueError(f"method must be asnorm or snorm, got {case.method!r}")
    rng = np.random.default_rng(case.seed)
    dtype = np.dtype(case.dtype)
    offset = rng.normal(0.0, 0.7, case.dim)
    centroids = rng.normal(0.0, 1.0, (case.n_speakers, case.dim))
    enrol = offset + centroids + rng.normal(0.0, 0.4, centroids.shape)
    from_enrolled = np.arange(case.n_test) % 2 == 0
    test_spk = rng.integers(0, case.n_speakers, case.n_test)
    others = rng.normal(0.0, 1.0, (case.n_test, case.dim))
    test = offset + np.where(from_enrolled[:, None], centroids[test_spk], others)
    test = test + rng.normal(0.0, 0.6, test.shape)
    cohort = offset + rng.normal(0.0, 1.0, (case.n_cohort, case.dim))
    cohort = np.repeat(cohort, case.cohort_repeats, axis=0)
    enrol, test, cohort = (a.astype(dtype) for a in (enrol, test, cohort))
    mean = cohort.astype(np.float64).mean(axis=0) if case.mean_vec else np.zeros(case.dim)
    spk_all, utt_all = (a.ravel() for a in np.meshgrid(np.arange(case.n_speakers), np.arange(case.n_test)))
    if case.n_trials:
        pick = np.sort(rng.choice(spk_all.size, case.n_trials, replace=False))
        spk_all, utt_all = spk_all[pick], utt_all[pick]
    is_target = from_enrolled[utt_all] & (test_spk[utt_all] == spk_all)
    e = enrol.astype(np.float64) - mean
    t = test.astype(np.float64) - mean
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    raw = np.einsum("ij,ij->i", e[spk_all], t[utt_all])
    return AsNormInputs(enrol, test, cohort, mean, spk_all, utt_all, is_target, raw)


def _write_ark(directory: Path, stem: str, names: list[str], rows: np.ndarray) -> tuple[Path, Path]:
    """Kaldi binary vectors, as ``kaldiio.save_ark(ark, {...}, scp=scp)`` writes them."""
    tag = {np.dtype(np.float64): b"DV ", np.dtype(np.float32): b"FV "}[rows.dtype]
    ark, scp = bytearray(), []
    for name, row in zip(names, rows, strict=True):
        ark += name.encode() + b" "
        scp.append(f"{name} {stem}.ark:{len(ark)}")
        ark += (
            b"\0B"
            + tag
            + b"\4"
            + struct.pack("<i", row.size)
            + row.astype(row.dtype.newbyteorder("<")).tobytes()
        )
    ark_path, scp_path = directory / f"{stem}.ark", directory / f"{stem}.scp"
    ark_path.write_bytes(bytes(ark))
    scp_path.write_text("\n".join(scp) + "\n", encoding="utf-8")
    return ark_path, scp_path


def write_as_norm_case(case: AsNormCase, directory: Path) -> dict[str, Path]:
    """The case's files in ``directory`` by role: ``eval_ark``, ``eval_scp``, ``cohort_ark``, ``cohort_scp``,
    ``trials``, ``trial_scores`` and, with ``mean_vec``, ``mean_vec``."""
    x = case_inputs(case)
    directory.mkdir(parents=True, exist_ok=True)
    names = x.enrol_names() + x.test_names()
    eval_ark, eval_scp = _write_ark(directory, "eval", names, np.concatenate([x.enrol, x.test]))
    cohort_ark, cohort_scp = _write_ark(directory, "cohort", x.cohort_names(), x.cohort)
    enrol_names, test_names = x.enrol_names(), x.test_names()
    trials, scored = [], []
    for s, u, target, raw in zip(x.spk_idx, x.utt_idx, x.is_target, x.raw, strict=True):
        key = "target" if target else "nontarget"
        trials.append(f"{enrol_names[s]} {test_names[u]} {key}")
        scored.append(f"{enrol_names[s]} {test_names[u]} {float(raw)!r} {key}")
    files = {"eval_ark": eval_ark, "eval_scp": eval_scp, "cohort_ark": cohort_ark, "cohort_scp": cohort_scp}
    files["trials"] = directory / "trials"
    files["trials"].write_text("\n".join(trials) + "\n", encoding="utf-8")
    files["trial_scores"] = directory / "trials.score"
    files["trial_scores"].write_text("\n".join(scored) + "\n", encoding="utf-8")
    if case.mean_vec:
        files["mean_vec"] = directory / "mean_vec.npy"
        np.save(files["mean_vec"], x.mean)
    return files
