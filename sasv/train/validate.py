"""Validation of trained models with the recipe's own inference: a speaker model's SV-EER on a trial list,
a countermeasure's CM-EER (and its other Track 1 metrics) on a data dir labelled bona fide / spoof.

Embeddings are computed exactly as stage 2 computes them (:class:`~sasv.engines.EmbeddingEngine`: the full
utterance plus five 3 s segments), each row L2-normalised and averaged (the ``l2norm`` variant); a speaker
is the mean of its enrolment rows; trials are scored by cosine; the EER is the SASV challenge's
(:func:`sasv.metrics.compute_eer`). Two trial formats are read:

* a SASV/LA data dir (``trials`` ``SPK UTT ATTACK KEY`` with ``enroll``): target vs nontarget trials;
* VoxCeleb-style pairs (``trials`` ``ENROL_UTT TEST_UTT target|nontarget``, e.g. the cleaned Vox1-O list,
  each enrolment utterance its own speaker model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from sasv.audio import read_audio
from sasv.cm_metrics import asvspoof_eer, track1_metrics
from sasv.datadir import DataDirError, read_utt2spk, read_wav_scp
from sasv.engines import CountermeasureEngine, EmbeddingEngine, default_model_batch
from sasv.metrics import compute_eer
from sasv.protocols import read_lines
from sasv.scoring import speaker_model, utterance_vector

NORM = "l2norm"


def read_pair_trials(path: Path) -> list[tuple[list[str], str, bool]]:
    """(enrolment utterances, test utterance, is target) per trial of either format (see the module doc)."""
    lines = read_lines(path)
    fields = [line.split() for _, line in lines]
    if all(len(f) == 3 for f in fields):
        bad = [n for (n, _), f in zip(lines, fields, strict=True) if f[2] not in ("target", "nontarget")]
        if bad:
            raise DataDirError(f"{path}:{bad[0]}: expected 'ENROL_UTT TEST_UTT target|nontarget'")
        return [([e], t, k == "target") for e, t, k in fields]
    enroll_path = path.parent / "enroll"
    if not all(len(f) == 4 for f in fields) or not enroll_path.is_file():
        raise DataDirError(f"{path}: neither pair trials (3 fields) nor SASV trials (4 fields, with enroll)")
    enroll = {line.split()[0]: line.split()[1:] for _, line in read_lines(enroll_path)}
    return [(enroll[s], u, k == "target") for s, u, _, k in fields if k in ("target", "nontarget")]


def validation_eer(model: nn.Module, data_dir: str | Path, device: torch.device | None = None) -> float:
    """SV-EER (a fraction) of ``model`` on the trials of ``data_dir`` (wav.scp + trials: see the module)."""
    data_dir = Path(data_dir)
    device = device or torch.device("cpu")
    trials = read_pair_trials(data_dir / "trials")
    wav_scp = read_wav_scp(data_dir / "wav.scp")
    needed = sorted({u for enrol, test, _ in trials for u in (*enrol, test)})
    missing = [u for u in needed if u not in wav_scp]
    if missing:
        raise DataDirError(f"{data_dir / 'wav.scp'}: {len(missing)} trial utterances missing: {missing[:3]}")
    was_training = model.training
    engine = EmbeddingEngine(model, device, default_model_batch(device, 16, model), cpu_kernels="torch")
    try:
        rows = {u: engine.compute([read_audio(wav_scp[u])])[0] for u in needed}
    finally:
        model.train(was_training)
    scores, keys = [], []
    for enrol, test, is_target in trials:
        a = speaker_model([rows[u] for u in enrol], NORM)
        b = utterance_vector(rows[test], NORM)
        scores.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
        keys.append(is_target)
    scores_arr, keys_arr = np.asarray(scores), np.asarray(keys)
    return compute_eer(scores_arr[keys_arr], scores_arr[~keys_arr])


def validation_cm_log_odds(
    model: nn.Module, data_dir: str | Path, device: torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The CM's log-odds ``logit[1] - logit[0]`` of every utterance of ``data_dir`` (``wav.scp`` +
    ``utt2spf`` bonafide|spoof), each scored as stage 3 scores it
    (:class:`~sasv.engines.CountermeasureEngine`: the first 64,600 samples), and whether it is bona fide.
    The log-odds rank as the recipe's CM score softmax(logits)[1] does, without its saturation at 1.0 that
    would tie confident utterances, and are what CLLR and actDCF read as LLRs."""
    data_dir = Path(data_dir)
    device = device or torch.device("cpu")
    wav_scp = read_wav_scp(data_dir / "wav.scp")
    labels = read_utt2spk(data_dir / "utt2spf")
    utts = sorted(wav_scp)
    unknown = sorted({labels.get(u, "(none)") for u in utts} - {"bonafide", "spoof"})
    if unknown:
        raise DataDirError(f"{data_dir / 'utt2spf'}: label {unknown[0]!r}; expected bonafide or spoof")
    was_training = model.training
    engine = CountermeasureEngine(model, device, default_model_batch(device, 16, model), cpu_kernels="torch")
    try:
        logits = np.concatenate([engine.compute([read_audio(wav_scp[u])]) for u in utts])
    finally:
        model.train(was_training)
    log_odds = logits[:, 1].astype(np.float64) - logits[:, 0]
    return log_odds, np.array([labels[u] == "bonafide" for u in utts])


def validation_cm_eer(model: nn.Module, data_dir: str | Path, device: torch.device | None = None) -> float:
    """CM-EER (a fraction) of ``model`` on ``data_dir`` (:func:`validation_cm_log_odds`), the ASVspoof
    scorers' EER (:func:`sasv.cm_metrics.asvspoof_eer`), as clovaai/aasist's published CM-EERs are."""
    log_odds, bonafide = validation_cm_log_odds(model, data_dir, device)
    return asvspoof_eer(log_odds[bonafide], log_odds[~bonafide])


def validation_cm_metrics(
    model: nn.Module, data_dir: str | Path, device: torch.device | None = None
) -> dict[str, float | None]:
    """All four of ASVspoof 5 Track 1's CM metrics of ``model`` on ``data_dir`` (minDCF, EER, CLLR and
    actDCF of its log-odds, :func:`sasv.cm_metrics.track1_metrics`); ``eer`` is
    :func:`validation_cm_eer`'s."""
    log_odds, bonafide = validation_cm_log_odds(model, data_dir, device)
    return track1_metrics(log_odds[bonafide], log_odds[~bonafide])
