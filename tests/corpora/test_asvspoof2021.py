"""The ASVspoof 2021 layout and key readers: the release's lines as they are (both spellings of a bona fide
attack, ids with dashes, VCC attacks in DF), one error naming file and line for each bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from sasv.corpora.asvspoof2021 import (
    ASV_SCORES,
    TRACK_INFO,
    ASVspoof2021Layout,
    AsvTrial,
    CmTrial,
    conditions_of,
    read_asv_scores,
    read_asv_trials,
    read_cm_key,
    track_info,
    write_asv_scores,
)
from sasv.corpora.protocols import ProtocolError
from sasv.corpora.registry import CORPORA

LA_KEY = (
    "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval\n"
    "LA_0007 LA_E_5013670 none - bonafide bonafide notrim progress\n"
    "LA_0008 LA_E_1000001 opus sin_tx - bonafide trim hidden\n"
)
DF_KEY = (
    "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -\n"
    "TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive Task1 "
    "team20 FF E\n"
    "VCC2TM2 DF_E_2000014 mp3m4a vcc2018 - bonafide notrim eval bonafide - - - -\n"
)
ASV_KEY = (
    "LA_0007-alaw-ita_tx LA_E_5013670-alaw-ita_tx alaw ita_tx bonafide nontarget notrim eval\n"
    "LA_0013-alaw-ita_tx LA2021-LA_E_5658320 alaw ita_tx A07 spoof notrim progress\n"
    "LA_0013-alaw-ita_tx LA_E_5013670-alaw-ita_tx alaw ita_tx - target notrim eval\n"
)
ASV_SCORE = (
    "LA_0013-alaw-ita_tx LA_E_5013670-alaw-ita_tx 2.5\n"
    "LA_0007-alaw-ita_tx LA_E_5013670-alaw-ita_tx -1.25\n"
    "LA_0013-alaw-ita_tx LA2021-LA_E_5658320 0.125\n"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_layout_is_the_package_s(tmp_path) -> None:
    layout = ASVspoof2021Layout(tmp_path)
    assert (
        layout.audio("DF", "DF_E_2000011") == tmp_path / "ASVspoof2021_DF_eval" / "flac" / "DF_E_2000011.flac"
    )
    assert layout.cm_key("LA") == tmp_path / "keys" / "LA" / "CM" / "trial_metadata.txt"
    assert layout.asv_key() == tmp_path / "keys" / "LA" / "ASV" / "trial_metadata.txt"
    # config.py's folder name, else the README's spelling of it
    assert layout.asv_scores() == tmp_path / "keys/LA/ASV/ASVTorch_Kaldi/score.txt"
    write(tmp_path / "keys/LA/ASV/ASVtorch_kaldi/score.txt", ASV_SCORE)
    assert layout.asv_scores() == tmp_path / "keys/LA/ASV/ASVtorch_kaldi/score.txt"
    with pytest.raises(ValueError, match="unknown ASVspoof 2021 track 'PA'"):
        layout.cm_key("PA")


def test_the_registry_names_the_tracks_sets() -> None:
    for track in TRACK_INFO.values():
        corpus = CORPORA[track.benchmark]
        assert corpus.sets == (track.set_name,) and corpus.cm_only
        assert corpus.prepare_tool == "prepare_asvspoof2021"


def test_reads_the_cm_keys_as_released(tmp_path) -> None:
    la = read_cm_key(write(tmp_path / "la.txt", LA_KEY), "LA")
    assert la == [
        CmTrial("LA_0009", "LA_E_9332881", "alaw", "A07", "spoof", "eval", transmission="ita_tx"),
        CmTrial("LA_0007", "LA_E_5013670", "none", "bonafide", "bonafide", "progress", transmission="-"),
        CmTrial("LA_0008", "LA_E_1000001", "opus", "bonafide", "bonafide", "hidden", transmission="sin_tx"),
    ]
    df = read_cm_key(write(tmp_path / "df.txt", DF_KEY), "DF")
    assert [(t.codec, t.attack, t.label, t.subset, t.vocoder) for t in df] == [
        ("nocodec", "A14", "spoof", "progress", "traditional_vocoder"),
        ("low_m4a", "Task1-team20", "spoof", "eval", "neural_vocoder_nonautoregressive"),
        ("mp3m4a", "bonafide", "bonafide", "eval", "bonafide"),
    ]
    conditions = conditions_of(df, "DF")
    assert sorted(conditions) == sorted(TRACK_INFO["DF"].condition_files)
    assert conditions["utt2vocoder"]["DF_E_2000013"] == "neural_vocoder_nonautoregressive"
    assert conditions["utt2codec"]["DF_E_2000014"] == "mp3m4a"
    assert conditions_of(la, "LA")["utt2transmission"] == {
        "LA_E_9332881": "ita_tx", "LA_E_5013670": "-", "LA_E_1000001": "sin_tx"
    }  # fmt: skip


@pytest.mark.parametrize(
    "track, line, problem",
    [
        ("LA", "LA_0009 LA_E_1 alaw ita_tx A07 spoof notrim", "expected 8 fields"),
        ("LA", "LA_0009 LA_E_1 alaw ita_tx A07 fake notrim eval", "unknown key 'fake'"),
        ("LA", "LA_0009 LA_E_1 alaw ita_tx A07 bonafide notrim eval", "bona fide line with attack 'A07'"),
        ("LA", "LA_0009 LA_E_1 alaw ita_tx - spoof notrim eval", "spoof line with attack '-'"),
        ("LA", "LA_0009 LA_E_1 alaw ita_tx Task1 spoof notrim eval", "expected A07 ... A19"),
        (
            "DF",
            "LA_0023 DF_E_1 nocodec asvspoof bonafide spoof notrim eval unknown - - - -",
            "without an attack",
        ),
        ("DF", "LA_0023 DF_E_1 nocodec asvspoof A14 spoof notrim eval", "expected 13 fields"),
    ],
)
def test_a_bad_cm_key_line_is_named(tmp_path, track: str, line: str, problem: str) -> None:
    key = write(tmp_path / "key.txt", (LA_KEY if track == "LA" else DF_KEY) + line + "\n")
    with pytest.raises(ProtocolError, match=rf"^{key}:4: .*{problem}"):
        read_cm_key(key, track)


def test_a_repeated_trial_is_refused(tmp_path) -> None:
    key = write(tmp_path / "key.txt", LA_KEY + LA_KEY.splitlines()[0] + "\n")
    with pytest.raises(ProtocolError, match=r"1 duplicated trials: LA_E_9332881 \(lines 1, 4\)"):
        read_cm_key(key, "LA")


def test_asv_trials_take_the_score_of_their_pair(tmp_path) -> None:
    trials = read_asv_trials(write(tmp_path / "k.txt", ASV_KEY), write(tmp_path / "s.txt", ASV_SCORE))
    spk, bonafide, spoof = "LA_0013-alaw-ita_tx", "LA_E_5013670-alaw-ita_tx", "LA2021-LA_E_5658320"
    assert trials == [
        AsvTrial("LA_0007-alaw-ita_tx", bonafide, "alaw", "bonafide", "nontarget", "eval", -1.25),
        AsvTrial(spk, spoof, "alaw", "A07", "spoof", "progress", 0.125),
        AsvTrial(spk, bonafide, "alaw", "bonafide", "target", "eval", 2.5),
    ]
    # the data dir's asv_scores: sorted, and read back to the same trials and bits
    write_asv_scores(tmp_path / ASV_SCORES, reversed([t._replace(score=0.1 + 0.2) for t in trials]))
    back = read_asv_scores(tmp_path / ASV_SCORES)
    assert back == sorted(t._replace(score=0.1 + 0.2) for t in trials)


@pytest.mark.parametrize(
    "key, scores, problem",
    [
        (ASV_KEY, ASV_SCORE.splitlines()[0] + "\n", r"s.txt: no score for 2 trial\(s\) of .*k.txt"),
        (
            ASV_KEY.splitlines()[0] + "\n",
            ASV_SCORE,
            r"s.txt: 2 scored trial\(s\) are not in .*k.txt: .*line 1",
        ),
        (ASV_KEY, ASV_SCORE.replace("2.5", "nan"), r"s.txt:1: score of .* is nan"),
        (ASV_KEY, ASV_SCORE.replace("2.5", "x"), r"s.txt:1: score 'x' is not a number"),
        (ASV_KEY.replace("nontarget", "impostor"), ASV_SCORE, r"k.txt:1: unknown key 'impostor'"),
        (ASV_KEY, ASV_SCORE + ASV_SCORE.splitlines()[0] + "\n", r"s.txt: 1 duplicated trials"),
    ],
)
def test_asv_key_and_scores_must_agree(tmp_path, key: str, scores: str, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        read_asv_trials(write(tmp_path / "k.txt", key), write(tmp_path / "s.txt", scores))


def test_every_track_lists_the_package_s_conditions() -> None:
    la, df = track_info("LA"), track_info("DF")
    assert la.tandem and not df.tandem
    assert la.columns.tags == tuple(f"C{i}" for i in range(1, 8)) and len(df.columns.values) == 9
    assert la.rows.file == "utt2attack" and df.rows.file == "utt2vocoder"
