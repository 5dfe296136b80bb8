"""Training examples (sasv.train.data): every utterance once per epoch over the ranks, reproducible crops."""

from __future__ import annotations

import numpy as np
import pytest

from sasv.corpora.datadir import DataDirError
from sasv.train.data import CropDataset, TrainList, epoch_order, example_rng, random_crop


@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
def test_each_item_once_per_epoch_over_the_ranks(world_size: int) -> None:
    for epoch in (0, 1):
        parts = [epoch_order(37, epoch, seed=5, rank=r, world_size=world_size) for r in range(world_size)]
        drawn = np.concatenate(parts)
        assert sorted(drawn.tolist()) == list(range(37))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert not np.array_equal(epoch_order(37, 0, 5), epoch_order(37, 1, 5)), "a new order every epoch"
    assert np.array_equal(epoch_order(37, 1, 5), epoch_order(37, 1, 5)), "a function of seed and epoch"


def test_crops_are_reproducible_and_wrap_short_audio() -> None:
    wav = np.arange(100, dtype=np.float32)
    a = random_crop(wav, 30, example_rng(1, 2, 3))
    assert np.array_equal(a, random_crop(wav, 30, example_rng(1, 2, 3)))
    assert a.shape == (30,) and np.array_equal(np.diff(a), np.ones(29))
    short = random_crop(wav[:10], 25, example_rng(0, 0, 0))
    assert short.shape == (25,) and set(short.tolist()) <= set(range(10))


def test_train_list_and_dataset(train_dir) -> None:
    train = TrainList.from_data_dir(train_dir)
    assert len(train) == 36 and len(train.classes) == 6 and train.classes == sorted(train.classes)
    ds = CropDataset(train, 16000, seed=4)
    ds.set_epoch(2)
    x, y = ds[5]
    assert x.shape == (16000,) and x.dtype == np.float32 and y == train.labels[5]
    assert np.array_equal(x, ds[5][0])
    ds.set_epoch(3)
    assert not np.array_equal(x, ds[5][0]), "another crop in another epoch"


def test_a_single_speaker_cannot_be_trained(tmp_path) -> None:
    (tmp_path / "wav.scp").write_text("u1 /a.flac\nu2 /b.flac\n")
    (tmp_path / "utt2spk").write_text("u1 s1\nu2 s1\n")
    with pytest.raises(DataDirError, match="1 class"):
        TrainList.from_data_dir(tmp_path)


def test_speed_perturbation_makes_new_speakers(train_dir) -> None:
    from sasv.train.data import SPEEDS, change_speed

    train = TrainList.from_data_dir(train_dir)
    ds = CropDataset(train, 16000, seed=2, speed_perturb=True)
    assert ds.num_classes == 3 * len(train.classes)
    seen = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        x, y = ds[0]
        assert x.shape == (16000,) and y % len(train.classes) == train.labels[0]
        seen.add(y // len(train.classes))
    assert seen == {0, 1, 2}, "every speed is drawn"
    wav = np.sin(np.arange(16000) / 5).astype(np.float32)
    assert change_speed(wav, 0) is wav
    for index in (1, 2):  # 0.9x: longer, 1.1x: shorter
        speed, up, down = SPEEDS[index]
        assert len(change_speed(wav, index)) == -(-16000 * up // down)
        assert abs(len(change_speed(wav, index)) - 16000 / speed) <= 1


def test_augmenting_the_utterance_before_the_crop(train_dir) -> None:
    """``augment_before_crop``: the augmentation sees the whole utterance and draws first, the crop comes
    from its output (RawBoost as TakHemlata/SSL_Anti-spoofing applies it); by default it sees the crop."""
    from sasv.audio import read_audio

    train = TrainList.from_data_dir(train_dir)
    seen: list[int] = []

    def augment(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        seen.append(wav.shape[0])
        return wav + np.float32(rng.uniform(1.0, 2.0))

    whole = read_audio(train.paths[3])
    assert whole.shape[0] != 8000
    for before in (False, True):
        seen.clear()
        ds = CropDataset(train, 8000, seed=4, augment=augment, augment_before_crop=before)
        ds.set_epoch(1)
        x, _ = ds[3]
        rng = example_rng(4, 1, 3)
        if before:
            expected = random_crop(whole + np.float32(rng.uniform(1.0, 2.0)), 8000, rng)
        else:
            expected = random_crop(whole, 8000, rng) + np.float32(rng.uniform(1.0, 2.0))
        assert seen == [whole.shape[0] if before else 8000]
        np.testing.assert_array_equal(x, expected)
