"""sasv.train.validate: several models validated on one set decode it once, with the same numbers."""

from __future__ import annotations

import pytest
import torch

from sasv.models.conf import build_from_conf, parse_conf
from sasv.train import validate
from sasv.train.validate import AudioCache, validation_eer, validation_trials
from tests.tiny_confs import TINY_ECAPA


def _models(n: int) -> list[torch.nn.Module]:
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        models.append(build_from_conf(parse_conf(TINY_ECAPA)))
    return models


def test_a_shared_cache_decodes_the_set_once_and_changes_no_eer(train_dir, monkeypatch) -> None:
    dev = train_dir.parent / "dev"
    decoded: list[str] = []
    real_read = validate.read_audio
    monkeypatch.setattr(validate, "read_audio", lambda path: decoded.append(path) or real_read(path))
    models = _models(3)
    fresh = [validation_eer(m, dev) for m in models]
    utterances = len(validation_trials(dev)[1])
    assert len(decoded) == 3 * utterances
    decoded.clear()
    audio = AudioCache(validation_trials(dev)[1])
    shared = [validation_eer(m, dev, audio=audio) for m in models]
    assert shared == fresh and len(set(fresh)) > 1, "the same EERs, of models that differ"
    assert len(decoded) == utterances == audio.decoded, "each utterance decoded once for three models"


def test_beyond_its_bound_the_cache_decodes_again(train_dir) -> None:
    dev = train_dir.parent / "dev"
    wav_scp = validation_trials(dev)[1]
    one = AudioCache(wav_scp).read(next(iter(wav_scp)))
    audio = AudioCache(wav_scp, limit_bytes=one.nbytes)  # room for one utterance
    for model in _models(2):
        validation_eer(model, dev, audio=audio)
    assert len(audio.kept) == 1 and audio.decoded == 2 * len(wav_scp) - 1


def test_a_cache_of_another_set_is_refused(train_dir) -> None:
    dev = train_dir.parent / "dev"
    other = {u: path + ".other" for u, path in validation_trials(dev)[1].items()}
    with pytest.raises(ValueError, match="holds another wav.scp"):
        validation_eer(_models(1)[0], dev, audio=AudioCache(other))
