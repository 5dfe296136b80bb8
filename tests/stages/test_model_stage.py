"""Which utterances a model stage processes (``stage_items``): all of wav.scp for embeddings, the trials'
test utterances for CM scores, and every utterance of a CM data dir (utt2spf, no trials: ASVspoof 2021's
eval sets), checked first."""

from __future__ import annotations

import pytest

from sasv.corpora.datadir import DataDirError, write_utt2spf, write_utt2spk, write_wav_scp
from sasv.stages.model_stage import stage_items


def test_a_cm_data_dir_is_scored_whole(tmp_path) -> None:
    labels = {"LA_E_2": "bonafide", "LA_E_1": "spoof"}
    write_wav_scp(tmp_path / "wav.scp", {u: f"/audio/{u}.flac" for u in labels})
    write_utt2spk(tmp_path / "utt2spk", {u: "LA_0001" for u in labels})
    write_utt2spf(tmp_path / "utt2spf", labels)
    items, lists = stage_items("cm", tmp_path)
    assert items == [("LA_E_1", "/audio/LA_E_1.flac"), ("LA_E_2", "/audio/LA_E_2.flac")]
    assert lists == {"wav.scp": tmp_path / "wav.scp"}
    (tmp_path / "utt2spf").write_text("LA_E_1 spoof\n")
    with pytest.raises(DataDirError, match="1 wav.scp utterances missing from utt2spf: LA_E_2"):
        stage_items("cm", tmp_path)
    (tmp_path / "utt2spf").unlink()  # neither trials nor utt2spf: a trial dir missing its lists
    with pytest.raises(DataDirError, match="missing enroll, trials"):
        stage_items("cm", tmp_path)
