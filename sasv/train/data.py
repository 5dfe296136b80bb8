"""Training examples for speaker models: random fixed-length crops of a Kaldi data dir, labelled by speaker.

Everything random is a function of (seed, epoch, utterance index): the epoch's order, which rank draws an
utterance, and where its crop starts. Nothing depends on which DataLoader worker, or which process of a
multi-process run, handles an example, so a run is reproducible, and a run resumed from an epoch
checkpoint continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly
from torch.utils.data import Dataset

from sasv.audio import cm_input, read_audio
from sasv.corpora.datadir import DataDirError, read_utt2spk, read_wav_scp


@dataclass(frozen=True)
class TrainList:
    """Utterances of a training data dir (sorted ids) and their class labels (classes sorted, 0..C-1):
    speakers (``utt2spk``) for a speaker classifier, or the fixed ``classes`` of another label file
    (``utt2spf``: spoof, bona fide) for a countermeasure."""

    utts: list[str]
    paths: list[str]
    labels: list[int]
    classes: list[str]

    @classmethod
    def from_data_dir(
        cls, data_dir: str | Path, label_file: str = "utt2spk", classes: Sequence[str] | None = None
    ) -> TrainList:
        data_dir = Path(data_dir)
        wav_scp = read_wav_scp(data_dir / "wav.scp")
        utt2label = read_utt2spk(data_dir / label_file)
        missing = sorted(set(wav_scp) - set(utt2label))
        if missing:
            raise DataDirError(
                f"{data_dir}/{label_file}: no label for {len(missing)} utterance(s): {missing[:5]}"
            )
        # a labelled utterance without audio would be left out silently, and with all of its speaker's
        # utterances the speaker (a class) would vanish from the classifier
        unheard = sorted(set(utt2label) - set(wav_scp))
        if unheard:
            gone = sorted({utt2label[u] for u in unheard} - {utt2label[u] for u in wav_scp if u in utt2label})
            what = {"utt2spk": "speaker", "utt2spf": "class"}.get(label_file, "label")
            raise DataDirError(
                f"{data_dir}/wav.scp: no audio for {len(unheard)} utterance(s) of {label_file}, first "
                f"{unheard[:5]}; {len(gone)} {what}(s) would lose every utterance"
                + (f" ({', '.join(gone[:5])})" if gone else "")
            )
        utts = sorted(wav_scp)
        found = sorted({utt2label[u] for u in utts})
        if classes is None:
            classes = found
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DataDirError(
                f"{data_dir}/{label_file}: unknown label {unknown[0]!r}; expected one of {', '.join(classes)}"
            )
        if len(found) < 2:
            raise DataDirError(
                f"{data_dir}/{label_file}: {len(found)} class(es) ({', '.join(found)}); a classifier needs 2"
            )
        index = {c: i for i, c in enumerate(classes)}
        return cls(utts, [wav_scp[u] for u in utts], [index[utt2label[u]] for u in utts], list(classes))

    def __len__(self) -> int:
        return len(self.utts)

    def fingerprint(self) -> str:
        """sha256 of every utterance id with its label: a resumed run must train on the same list."""
        pairs = zip(self.utts, self.labels, strict=True)
        text = "".join(f"{u} {self.classes[label]}\n" for u, label in pairs)
        return hashlib.sha256(text.encode()).hexdigest()


def example_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one example in one epoch (independent of worker and rank)."""
    return np.random.default_rng([seed, epoch, index])


def random_crop(wav: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` consecutive samples starting at a random offset; a shorter waveform is first extended
    by periodic wrap, as the embedding protocol extends short utterances
    (:func:`sasv.audio.embedding_segments`)."""
    if wav.shape[0] < samples:
        wav = np.pad(wav, (0, samples - wav.shape[0]), mode="wrap")
    start = int(rng.integers(0, wav.shape[0] - samples + 1))
    return wav[start : start + samples]


def epoch_order(num_items: int, epoch: int, seed: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
    """This rank's item indices for ``epoch``: a seeded permutation dealt round-robin over the ranks, so
    across ranks every item is drawn exactly once per epoch."""
    order = np.random.default_rng([seed, epoch, 1 << 20]).permutation(num_items)
    return order[rank::world_size]


# speed perturbation (Ko et al. 2015, as in wespeaker): 0.9x and 1.1x speed give new speakers (a changed
# speed moves the formants), labels S..2S-1 and 2S..3S-1; (up, down) resampling factors of each speed
SPEEDS: tuple[tuple[float, int, int], ...] = ((1.0, 1, 1), (0.9, 10, 9), (1.1, 10, 11))


def change_speed(wav: np.ndarray, speed_index: int) -> np.ndarray:
    """The waveform at ``SPEEDS[speed_index]`` times its speed (resampled: pitch and tempo together)."""
    _, up, down = SPEEDS[speed_index]
    if up == down:
        return wav
    return resample_poly(wav, up, down).astype(np.float32)


class CropDataset(Dataset):
    """(index) -> (crop float32 (samples,), speaker label); ``set_epoch`` picks the epoch's crops.

    With ``speed_perturb`` each example is played at one of :data:`SPEEDS`, drawn first from its stream, and
    labelled as a speaker of its own per speed (``num_classes`` is then three times the speakers).
    ``augment(crop, rng)`` (e.g. :class:`sasv.train.augment.Augmenter`) draws from the example's stream
    after the crop, so crops are the same with or without augmentation. With ``augment_before_crop`` it
    gets the whole utterance instead and draws before the crop (as TakHemlata/SSL_Anti-spoofing applies
    RawBoost), so the crop is taken from the augmented utterance, at another offset. With ``crop_at_start``
    every crop is the utterance's first ``crop_samples`` (tiled when shorter: :func:`sasv.audio.cm_input`),
    the same each epoch, as TakHemlata/SSL_Anti-spoofing trains (its ``pad``) and every CM scores.
    """

    def __init__(
        self,
        train: TrainList,
        crop_samples: int,
        seed: int,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        speed_perturb: bool = False,
        augment_before_crop: bool = False,
        crop_at_start: bool = False,
    ) -> None:
        self.train, self.crop_samples, self.seed, self.augment = train, crop_samples, seed, augment
        self.speed_perturb = speed_perturb
        self.augment_before_crop = augment_before_crop
        self.crop_at_start = crop_at_start
        self.epoch = 0

    @property
    def num_classes(self) -> int:
        return len(self.train.classes) * (len(SPEEDS) if self.speed_perturb else 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.train)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        wav = read_audio(self.train.paths[index])
        rng = example_rng(self.seed, self.epoch, index)
        label = self.train.labels[index]
        if self.speed_perturb:
            speed = int(rng.integers(len(SPEEDS)))
            wav = change_speed(wav, speed)
            label += speed * len(self.train.classes)
        if self.augment is not None and self.augment_before_crop:
            wav = self.augment(wav, rng)
        if self.crop_at_start:
            crop = cm_input(wav, self.crop_samples)
        else:
            crop = random_crop(wav, self.crop_samples, rng)
        if self.augment is not None and not self.augment_before_crop:
            crop = self.augment(crop, rng)
        return crop.astype(np.float32, copy=False), label
