"""ASVspoof 5 paths (:mod:`sasv.corpora.asvspoof5`): release names before phase names, beside the audio or in
ASVspoof5_protocols/, and the comparison with the release's published Track 2 sizes."""

from __future__ import annotations

import pytest

from sasv.corpora.asvspoof5 import RELEASE_COUNTS, ASVspoof5Layout, Track2Counts, compare_counts
from sasv.corpora.protocols import ProtocolError


def test_audio_paths(tmp_path) -> None:
    layout = ASVspoof5Layout(tmp_path)
    assert layout.audio("eval", "E_0000000001") == tmp_path / "flac_E_eval" / "E_0000000001.flac"
    assert layout.audio_dir("train") == tmp_path / "flac_T"
    with pytest.raises(ValueError, match="unknown ASVspoof 5 split 'test'"):
        layout.audio_dir("test")


def test_release_names_win_over_phase_names_wherever_they_are(tmp_path) -> None:
    layout = ASVspoof5Layout(tmp_path)
    (tmp_path / "ASVspoof5.dev.trial.txt").write_text("x\n")
    assert layout.protocol("trials", "dev") == tmp_path / "ASVspoof5.dev.trial.txt"
    (tmp_path / "ASVspoof5_protocols").mkdir()
    release = tmp_path / "ASVspoof5_protocols" / "ASVspoof5.dev.track_2.trial.tsv"
    release.write_text("x\n")
    assert layout.protocol("trials", "dev") == release
    (tmp_path / "ASVspoof5.train.metadata.txt").write_text("x\n")
    assert layout.protocol("metadata", "train") == tmp_path / "ASVspoof5.train.metadata.txt"
    with pytest.raises(
        ProtocolError, match="no ASVspoof 5 eval enrollment file .ASVspoof5.eval.track_2.enroll.tsv"
    ):
        layout.protocol("enrollment", "eval")
    with pytest.raises(ValueError, match="unknown ASVspoof 5 split 'train'"):
        layout.protocol("trials", "train")


def test_counts_against_the_release() -> None:
    assert compare_counts("dev", RELEASE_COUNTS["dev"]) == []
    assert compare_counts("eval", Track2Counts(834_536, 366, 1_098)) == ["speakers 366 (release: 367)"]
