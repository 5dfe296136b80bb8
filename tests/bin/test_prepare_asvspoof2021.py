"""``sasv prepare_asvspoof2021``: both tracks' eval sets from one folder in the release layout, as CM data
dirs with their conditions (and LA's ASV trials), sorted, marked with their benchmark; the sets whose key
is there by default; no train or dev set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sasv.__main__ import main as sasv_main
from sasv.corpora.asvspoof2021 import ASVspoof2021Layout, read_asv_scores, read_asv_trials, read_cm_key
from sasv.corpora.datadir import read_utt2value, validate_cm_datadir
from sasv.markers import PREPARED_MARKER, check_prepared_marker


def sasv(*argv: str | Path) -> int:
    return sasv_main([str(a) for a in argv])


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The two mini corpora in one folder, as the release unpacks: eval audio of both, keys/LA, keys/DF."""
    work = tmp_path_factory.mktemp("release")
    for corpus in ("asvspoof2021_la", "asvspoof2021_df"):
        args = ["--speakers", "2", "--bonafide_per_spk", "3", "--attacks", "2", "--seed", "5"]
        assert sasv("make_mini_corpus", "--corpus", corpus, "--out", work / "mini", *args) == 0
        tree = work / "mini" / ("ASVspoof2021_LA" if corpus.endswith("la") else "ASVspoof2021_DF")
        shutil.copytree(
            tree, work / "ASVspoof2021", dirs_exist_ok=True, ignore=shutil.ignore_patterns(".mini*")
        )
    return work / "ASVspoof2021"


def test_both_sets_by_default(root, tmp_path, capsys) -> None:
    assert sasv("prepare_asvspoof2021", "--root", root, "--out", tmp_path / "data") == 0
    out = capsys.readouterr().out.splitlines()
    counts = "14 trials (6 bona fide, 8 spoofed; eval 10, progress 4)"
    assert out[0].startswith(f"la2021_eval: {counts}; ASV trials: 6 target, 6 nontarget, 8 spoof -> ")
    assert out[1].startswith(f"df2021_eval: {counts} -> ")
    layout = ASVspoof2021Layout(root)
    for set_name, track, files in (
        ("la2021_eval", "LA", {"utt2transmission", "asv_scores"}),
        ("df2021_eval", "DF", {"utt2vocoder"}),
    ):
        d = tmp_path / "data" / set_name
        common = {"wav.scp", "utt2spk", "spk2utt", "utt2spf", "utt2codec", "utt2attack", "utt2subset"}
        assert {p.name for p in d.iterdir()} == common | files | {PREPARED_MARKER}
        marker = json.loads((d / PREPARED_MARKER).read_text())
        assert marker["benchmark"] == f"asvspoof2021_{track.lower()}" and check_prepared_marker(d)
        assert set(marker["sources"]) >= {str(layout.cm_key(track).resolve())}
        trials = read_cm_key(layout.cm_key(track), track)
        data = validate_cm_datadir(d, ("utt2codec", "utt2attack", "utt2subset"))
        assert data.utt2spf == {t.utt: t.label for t in trials}
        assert data.wav_scp == {t.utt: str(layout.audio(track, t.utt).resolve()) for t in trials}
        assert read_utt2value(d / "utt2subset") == {t.utt: t.subset for t in trials}
        assert read_utt2value(d / "utt2attack") == {t.utt: t.attack for t in trials}
    asv = read_asv_trials(layout.asv_key(), layout.asv_scores())
    assert read_asv_scores(tmp_path / "data" / "la2021_eval" / "asv_scores") == sorted(asv)


def test_one_set(root, tmp_path, capsys) -> None:
    argv = ["prepare_asvspoof2021", "--root", root, "--out", tmp_path / "data", "--sets", "df2021_eval",
            "--audio_check", "false"]  # fmt: skip
    assert sasv(*argv) == 0
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["df2021_eval"]
    assert "df2021_eval: 14 trials" in capsys.readouterr().out
