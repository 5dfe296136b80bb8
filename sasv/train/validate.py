"""Validation of trained models with the recipe's own inference: a speaker model's SV-EER on a trial list,
a countermeasure's CM-EER (and its other Track 1 metrics) on a data dir labelled bona fide / spoof.

Embeddings are computed exactly as stage 2 computes them (:class:`~sasv.extraction.engines.EmbeddingEngine`:
the full utterance plus five 3 s segments), each row L2-normalised and averaged (the ``l2norm`` variant); a
speaker is the mean of its enrolment rows; trials are scored by cosine; the EER is the SASV challenge's
(:func:`sasv.metrics.eer.compute_eer`). Two trial formats are read:

* a SASV/LA data dir (``trials`` ``SPK UTT ATTACK KEY`` with ``enroll``): target vs nontarget trials;
* VoxCeleb-style pairs (``trials`` ``ENROL_UTT TEST_UTT target|nontarget``, e.g. the cleaned Vox1-O list,
  each enrolment utterance its own speaker model).

Utterances are read and scored in batches of :data:`VALIDATION_BATCH` (one at a time, ASVspoof 5 dev's
~141,000 utterances kept a GPU mostly idle for longer than NCCL waits). Under torchrun the batches are dealt
round-robin to the ranks (:class:`~sasv.train.collectives.Collectives`) and the rows gathered back in
order; the batches are cut the same way whatever the number of ranks, so every utterance is computed in
the same batch and the scores are exactly those of one process.

Validating several models on one set (``sasv train_asv`` scores every averaged epoch and the exported
model on Vox1-O) decodes it once: an :class:`AudioCache` keeps the decoded waveforms up to a memory bound
(Vox1-O's 4,708 utterances are about 2.5 GB as float32) and decodes again only beyond it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sasv.audio import read_audio
from sasv.corpora.datadir import DataDirError, read_utt2spk, read_wav_scp
from sasv.corpora.protocols import read_lines
from sasv.extraction.engines import CountermeasureEngine, EmbeddingEngine, default_model_batch
from sasv.metrics.cm import asvspoof_eer, track1_metrics
from sasv.metrics.eer import compute_eer
from sasv.scoring.cosine import speaker_model, utterance_vector
from sasv.train.collectives import Collectives

NORM = "l2norm"
VALIDATION_BATCH = 64
"""Utterances read and handed to the engine at once (the engine cuts its own model batches from them)."""
AUDIO_CACHE_BYTES = 4 << 30
"""What an :class:`AudioCache` keeps by default: Vox1-O whole, with room to spare on a training node."""


class AudioCache:
    """Decoded waveforms of a ``wav.scp``, kept while their total stays within ``limit_bytes`` (the
    utterances beyond it are decoded again at every read): several models validated on one set decode it
    once. ``decoded`` counts the files decoded (for the logs and the tests)."""

    def __init__(self, wav_scp: dict[str, str], limit_bytes: int = AUDIO_CACHE_BYTES) -> None:
        self.wav_scp = wav_scp
        self.limit_bytes = limit_bytes
        self.kept: dict[str, np.ndarray] = {}
        self.kept_bytes = 0
        self.decoded = 0

    def read(self, utt: str) -> np.ndarray:
        """The waveform of ``utt`` (:func:`sasv.audio.read_audio`), from memory when it was kept."""
        if utt in self.kept:
            return self.kept[utt]
        audio = read_audio(self.wav_scp[utt])
        self.decoded += 1
        if self.kept_bytes + audio.nbytes <= self.limit_bytes:
            self.kept[utt] = audio
            self.kept_bytes += audio.nbytes
        return audio


def sharded_rows(
    num_items: int,
    compute: Callable[[range], np.ndarray],
    device: torch.device,
    collectives: Collectives | None = None,
    batch: int | None = None,
) -> np.ndarray:
    """``compute`` over items ``0 .. num_items - 1`` (a range of item indices -> one row block per item)
    in batches of ``batch`` (default: :data:`VALIDATION_BATCH` as it is when called), batch ``i`` on rank
    ``i % world_size``; every rank gets all the rows, in item order. The batches do not depend on the
    number of ranks: each item's rows are computed with the same companions, so the result is bit-identical
    to one process's."""
    collectives = collectives or Collectives(device)
    batch = batch or VALIDATION_BATCH
    batches = [range(i, min(i + batch, num_items)) for i in range(0, num_items, batch)]
    mine = batches[collectives.rank :: collectives.world_size]
    blocks = [compute(b) for b in mine]
    if not collectives.distributed:
        return np.concatenate(blocks) if blocks else compute(range(0))
    local = np.concatenate(blocks) if blocks else compute(range(0))  # a rank with no batch: an empty block
    gathered = [g.cpu().numpy() for g in collectives.all_gather_rows(torch.from_numpy(local).to(device))]
    ordered, taken = [], [0] * collectives.world_size
    for i, b in enumerate(batches):
        r = i % collectives.world_size
        ordered.append(gathered[r][taken[r] : taken[r] + len(b)])
        taken[r] += len(b)
    return np.concatenate(ordered)


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
    unenrolled = sorted({s for s, _, _, k in fields if k in ("target", "nontarget") and s not in enroll})
    if unenrolled:
        raise DataDirError(
            f"{enroll_path}: {len(unenrolled)} trial speaker(s) without enrolment: {unenrolled[:3]}"
        )
    return [(enroll[s], u, k == "target") for s, u, _, k in fields if k in ("target", "nontarget")]


def _missing_audio(data_dir: Path, wav_scp: dict[str, str], utts: list[str]) -> None:
    """Refuse ``utts`` without an existing audio file: found after training, it would cost the run."""
    absent = [u for u in utts if not Path(wav_scp[u]).is_file()]
    if absent:
        raise DataDirError(
            f"{data_dir / 'wav.scp'}: the audio of {len(absent)} utterance(s) does not exist, first "
            f"{absent[0]}: {wav_scp[absent[0]]}"
        )


def validation_trials(data_dir: str | Path) -> tuple[list[tuple[list[str], str, bool]], dict[str, str]]:
    """The trials of ``data_dir`` (:func:`read_pair_trials`) and the ``wav.scp`` of their utterances, every
    one checked: each trial utterance has audio on disk, and there are target and nontarget trials (an
    EER needs both). ``sasv train_asv`` calls it before the first step, so a bad --valid_set stops the run
    before training, not after it."""
    data_dir = Path(data_dir)
    trials = read_pair_trials(data_dir / "trials")
    wav_scp = read_wav_scp(data_dir / "wav.scp")
    needed = sorted({u for enrol, test, _ in trials for u in (*enrol, test)})
    missing = [u for u in needed if u not in wav_scp]
    if missing:
        raise DataDirError(f"{data_dir / 'wav.scp'}: {len(missing)} trial utterances missing: {missing[:3]}")
    targets = sum(is_target for _, _, is_target in trials)
    if targets == 0 or targets == len(trials):
        absent = "target" if targets == 0 else "nontarget"
        raise DataDirError(
            f"{data_dir / 'trials'}: no {absent} trials ({len(trials)} trials in all); an SV-EER needs "
            f"target and nontarget trials"
        )
    _missing_audio(data_dir, wav_scp, needed)
    return trials, {u: wav_scp[u] for u in needed}


def validation_eer(
    model: nn.Module,
    data_dir: str | Path,
    device: torch.device | None = None,
    collectives: Collectives | None = None,
    audio: AudioCache | None = None,
) -> float:
    """SV-EER (a fraction) of ``model`` on the trials of ``data_dir`` (wav.scp + trials: see the module);
    with ``collectives`` every rank embeds its share (:func:`sharded_rows`) and every rank gets the EER.
    ``audio`` (an :class:`AudioCache` of the set's ``wav.scp``) is shared by the calls that validate several
    models on one set; by default the set is decoded afresh."""
    device = device or torch.device("cpu")
    trials, wav_scp = validation_trials(data_dir)
    if audio is not None and any(audio.wav_scp.get(u) != path for u, path in wav_scp.items()):
        raise ValueError(f"the audio cache given for {data_dir} holds another wav.scp")
    audio = audio or AudioCache(wav_scp, limit_bytes=0)
    needed = sorted(wav_scp)
    was_training = model.training
    engine = EmbeddingEngine(model, device, default_model_batch(device, 16, model), cpu_kernels="torch")

    def embed(items: range) -> np.ndarray:
        rows = engine.compute([audio.read(needed[i]) for i in items])
        return np.stack(rows) if rows else np.zeros((0, 6, engine_dim(model)), np.float32)

    try:
        embedded = sharded_rows(len(needed), embed, device, collectives)
    finally:
        model.train(was_training)
    rows = dict(zip(needed, embedded, strict=True))
    scores, keys = [], []
    for enrol, test, is_target in trials:
        a = speaker_model([rows[u] for u in enrol], NORM)
        b = utterance_vector(rows[test], NORM)
        scores.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
        keys.append(is_target)
    scores_arr, keys_arr = np.asarray(scores), np.asarray(keys)
    return compute_eer(scores_arr[keys_arr], scores_arr[~keys_arr])


def cm_validation_set(data_dir: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """``wav.scp`` and ``utt2spf`` of a CM data dir to score, every utterance checked: in both files,
    labelled ``bonafide`` or ``spoof``, its audio on disk, and both classes there (a CM-EER needs both).
    ``sasv train_cm`` calls it for the dev and eval sets before the first step: a dev set of one class
    would otherwise stop the run after its first epoch."""
    data_dir = Path(data_dir)
    wav_scp = read_wav_scp(data_dir / "wav.scp")
    labels = read_utt2spk(data_dir / "utt2spf")
    utts = sorted(wav_scp)
    unlabelled = [u for u in utts if u not in labels]
    if unlabelled:
        raise DataDirError(
            f"{data_dir / 'utt2spf'}: no label for {len(unlabelled)} utterance(s) of wav.scp: "
            f"{unlabelled[:3]}"
        )
    unheard = sorted(set(labels) - set(wav_scp))
    if unheard:  # they would be left out of the CM-EER without a word
        raise DataDirError(
            f"{data_dir / 'wav.scp'}: no audio for {len(unheard)} utterance(s) of utt2spf, first "
            f"{unheard[:3]}"
        )
    found = {labels[u] for u in utts}
    unknown = sorted(found - {"bonafide", "spoof"})
    if unknown:
        raise DataDirError(f"{data_dir / 'utt2spf'}: label {unknown[0]!r}; expected bonafide or spoof")
    if len(found) < 2:
        raise DataDirError(
            f"{data_dir / 'utt2spf'}: only {''.join(found)} utterances ({len(utts)}); a CM-EER needs "
            f"bona fide and spoofed utterances"
        )
    _missing_audio(data_dir, wav_scp, utts)
    return wav_scp, {u: labels[u] for u in utts}


def engine_dim(model: nn.Module) -> int:
    """The embedding size of ``model`` (for the empty block of a rank without utterances)."""
    return int(getattr(model, "embedding_dim", 0))


def validation_cm_log_odds(
    model: nn.Module,
    data_dir: str | Path,
    device: torch.device | None = None,
    collectives: Collectives | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The CM's log-odds ``logit[1] - logit[0]`` of every utterance of ``data_dir`` (``wav.scp`` +
    ``utt2spf`` bonafide|spoof), each scored as stage 3 scores it
    (:class:`~sasv.extraction.engines.CountermeasureEngine`: the first 64,600 samples), and whether it is bona
    fide. The log-odds rank as the recipe's CM score softmax(logits)[1] does, without its saturation at 1.0
    that would tie confident utterances, and are what CLLR and actDCF read as LLRs. With ``collectives`` every
    rank scores its share (:func:`sharded_rows`) and every rank gets every utterance's log-odds."""
    device = device or torch.device("cpu")
    wav_scp, labels = cm_validation_set(data_dir)
    utts = sorted(wav_scp)
    was_training = model.training
    engine = CountermeasureEngine(model, device, default_model_batch(device, 16, model), cpu_kernels="torch")

    def score(items: range) -> np.ndarray:
        if not items:
            return np.zeros((0, 2), np.float32)
        return engine.compute([read_audio(wav_scp[utts[i]]) for i in items])

    try:
        logits = sharded_rows(len(utts), score, device, collectives)
    finally:
        model.train(was_training)
    log_odds = logits[:, 1].astype(np.float64) - logits[:, 0]
    return log_odds, np.array([labels[u] == "bonafide" for u in utts])


def validation_cm_eer(
    model: nn.Module,
    data_dir: str | Path,
    device: torch.device | None = None,
    collectives: Collectives | None = None,
) -> float:
    """CM-EER (a fraction) of ``model`` on ``data_dir`` (:func:`validation_cm_log_odds`, sharded over the
    ranks of ``collectives``), the ASVspoof scorers' EER (:func:`sasv.metrics.cm.asvspoof_eer`), as
    clovaai/aasist's published CM-EERs are."""
    log_odds, bonafide = validation_cm_log_odds(model, data_dir, device, collectives)
    return asvspoof_eer(log_odds[bonafide], log_odds[~bonafide])


def validation_cm_metrics(
    model: nn.Module, data_dir: str | Path, device: torch.device | None = None
) -> dict[str, float | None]:
    """All four of ASVspoof 5 Track 1's CM metrics of ``model`` on ``data_dir`` (minDCF, EER, CLLR and
    actDCF of its log-odds, :func:`sasv.metrics.cm.track1_metrics`); ``eer`` is
    :func:`validation_cm_eer`'s."""
    log_odds, bonafide = validation_cm_log_odds(model, data_dir, device)
    return track1_metrics(log_odds[bonafide], log_odds[~bonafide])
