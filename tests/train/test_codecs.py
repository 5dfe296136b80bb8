"""Codec augmentation: every codec PyAV encodes comes back aligned, at the input's length; the draws follow
the example's generator; the training conf's block is checked; the CM crops go through it after RawBoost."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sasv.train.codecs import CODECS, MAX_DELAY, CodecAugment, code, encoder_available
from sasv.train.confs import CmTrainConf

pytest.importorskip("av")


def _speech_like(n: int = 32000, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone with a little noise, on the 16-bit grid."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    f0 = 150 * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    wav = sum(0.25 / k * np.sin(k * phase) for k in (1, 2, 3, 4)) + 0.01 * rng.standard_normal(n)
    return (np.round(wav * 32768) / 32768).astype(np.float32)


@pytest.mark.parametrize("name", list(CODECS))
def test_every_codec_round_trips_aligned_at_the_inputs_length(name: str) -> None:
    wav = _speech_like()
    codec = CODECS[name]
    if not encoder_available(codec):
        pytest.skip(f"this PyAV build has no {codec.encoder} encoder")
    for rate in codec.bit_rates or (None,):
        out = code(wav, codec, rate)
        assert out.shape == wav.shape and out.dtype == np.float32
        assert not np.array_equal(out, wav), "lossy"
        # realigned: the best lag against the input is 0, and the coded copy follows it closely
        lags = [
            np.dot(out[MAX_DELAY:-MAX_DELAY], wav[MAX_DELAY + d : len(wav) - MAX_DELAY + d])
            for d in range(-3, 4)
        ]
        assert int(np.argmax(lags)) - 3 in (-1, 0, 1), (name, rate, lags)
        assert np.corrcoef(out, wav)[0, 1] > 0.6, (name, rate)


def test_draws_follow_the_examples_generator() -> None:
    wav = _speech_like(16000)
    augment = CodecAugment(["mp3", "mulaw", "opus"], probability=0.5)
    first = [augment(wav, np.random.default_rng(seed)) for seed in range(8)]
    again = [augment(wav, np.random.default_rng(seed)) for seed in range(8)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    coded = sum(not np.array_equal(a, wav) for a in first)
    assert 0 < coded < 8, "some crops coded, some not"
    with pytest.raises(ValueError, match="speex"):
        CodecAugment(["speex"], 0.5)


def test_a_codec_without_an_encoder_is_refused_by_name(monkeypatch) -> None:
    import av

    real = av.codec.Codec

    def codec(name: str, mode: str = "r"):
        if name == "libmp3lame":
            raise av.codec.codec.UnknownCodecError(name)
        return real(name, mode)

    monkeypatch.setattr(av.codec, "Codec", codec)
    with pytest.raises(ValueError, match="codecs mp3: .* no encoder for libmp3lame"):
        CodecAugment(["mp3", "mulaw"], 0.5)


def test_the_training_conf_checks_its_block() -> None:
    conf = CmTrainConf(codec_augmentation={"codecs": ["mp3", "amr_nb"], "probability": 0.5})
    assert conf.codec_augmentation["codecs"] == ["mp3", "amr_nb"]  # names are checked, encoders at training
    for bad, words in (
        ({"codecs": ["encodec"], "probability": 0.5}, "codecs: a list of"),
        ({"codecs": ["mp3"], "probability": 0}, "probability: in"),
        ({"codecs": ["mp3"]}, "exactly the keys"),
    ):
        with pytest.raises(ValueError, match=words):
            dataclasses.replace(conf, codec_augmentation=bad)


def test_cm_crops_are_coded_after_rawboost(train_dir) -> None:
    from sasv.train.cm import cm_train_list, crop_dataset

    train_list = cm_train_list(train_dir.parent / "cm_train")
    base = CmTrainConf(crop_samples=16000, seed=2, rawboost=3)
    coded = dataclasses.replace(base, codec_augmentation={"codecs": ["mulaw"], "probability": 1.0})
    plain_crops = crop_dataset(base, train_list)
    coded_crops = crop_dataset(coded, train_list)
    for i in range(3):
        boosted, label = plain_crops[i]
        got, same_label = coded_crops[i]
        assert label == same_label
        np.testing.assert_array_equal(got, code(boosted, CODECS["mulaw"]))
