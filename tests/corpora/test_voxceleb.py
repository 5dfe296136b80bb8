"""VoxCeleb layouts, ids and download records; the synthetic trees look like the real ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sasv.corpora.voxceleb import (
    DOWNLOADS,
    VERI_TEST2,
    VOX2_DEV,
    VoxCeleb1Layout,
    VoxCeleb2Layout,
    scan_tree,
    speaker_of,
    trial_utt,
)
from sasv.corpora.voxceleb_mini import MiniVoxCelebError, make_mini_voxceleb


def test_ids_and_trial_paths():
    assert trial_utt("id10270/x6uYqmx31kE/00001.wav") == "id10270/x6uYqmx31kE/00001"
    assert speaker_of("id10270/x6uYqmx31kE/00001") == "id10270"
    bad_paths = [
        "id10270/x6uYqmx31kE/00001",
        "id1027/x6uYqmx31kE/00001.wav",
        "id10270/x6u/1.wav",
        "/id10270/x6uYqmx31kE/00001.wav",
        "id10270/x6uY qmx31kE/00001.wav",
        "wav/id10270/a/00001.wav",
    ]
    for bad in bad_paths:
        assert trial_utt(bad) is None, bad


def test_scan_passes_over_what_is_not_an_utterance(tmp_path):
    video = tmp_path / "wav" / "id10270" / "x6uYqmx31kE"
    video.mkdir(parents=True)
    for name in ("00001.wav", "00002.wav", ".00003.wav.tmp.wav", "notes.txt", "00004.flac"):
        (video / name).write_bytes(b"")
    (tmp_path / "wav" / "README").write_text("")
    (tmp_path / "wav" / "speaker").mkdir()
    found = scan_tree(tmp_path / "wav", ".wav")
    assert sorted(found) == ["id10270/x6uYqmx31kE/00001", "id10270/x6uYqmx31kE/00002"]
    assert all(p.is_absolute() and p.is_file() for p in found.values())


def test_vox1_in_one_wav_folder_or_wespeakers_dev_and_test(tmp_path):
    layout = VoxCeleb1Layout(tmp_path)
    assert layout.wav_dirs() == [] and layout.scan() == {}
    for part, spk in (("dev", "id10001"), ("test", "id10270")):
        (tmp_path / part / "wav" / spk / "abcdefghijk").mkdir(parents=True)
        (tmp_path / part / "wav" / spk / "abcdefghijk" / "00001.wav").write_bytes(b"")
    assert sorted(speaker_of(u) for u in layout.scan()) == ["id10001", "id10270"]
    vox2 = VoxCeleb2Layout(Path("/corpus/vox2"))
    assert vox2.m4a_path("id00012/abc/00001") == Path("/corpus/vox2/dev/aac/id00012/abc/00001.m4a")
    assert vox2.default_convert_dir == Path("/corpus/vox2/dev/flac")


def test_download_records_are_complete():
    for d in DOWNLOADS:
        assert re.fullmatch(r"[0-9a-f]{32}", d.md5), d.name
        assert d.parts and all(
            u.startswith("https://") and re.fullmatch(r"[0-9a-f]{32}", m) for u, m in d.parts
        )
        assert d.md5 in d.sentence() and d.parts[0][0] in d.sentence()
    assert (
        len(VOX2_DEV.parts) == 8 and "vox2_dev_aac_partah, cat them into vox2_aac.zip" in VOX2_DEV.sentence()
    )
    assert VERI_TEST2.sentence().endswith("and pass it as --trials")


def test_mini_voxceleb_is_deterministic_real_aac_and_ours_to_replace(tmp_path):
    av = pytest.importorskip("av")
    a = make_mini_voxceleb(tmp_path / "a", seed=3, speakers=2, videos=1, utts=2)
    make_mini_voxceleb(tmp_path / "b", seed=3, speakers=2, videos=1, utts=2)

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert sorted(VoxCeleb1Layout(a.vox1_root).scan()) == sorted(a.vox1_utts)
    assert sorted(VoxCeleb2Layout(a.vox2_root).scan()) == sorted(a.vox2_utts)
    assert all(speaker_of(u) >= "id10270" for u in a.vox1_utts) and all(
        speaker_of(u) < "id10000" for u in a.vox2_utts
    )
    with av.open(str(VoxCeleb2Layout(a.vox2_root).m4a_path(a.vox2_utts[0]))) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.rate, stream.codec_context.layout.nb_channels) == (
            "aac",
            16000,
            1,
        )
    assert make_mini_voxceleb(tmp_path / "a", seed=4, speakers=2, videos=1, utts=2).vox1_utts != a.vox1_utts

    (tmp_path / "c" / "voxceleb1").mkdir(parents=True)
    with pytest.raises(MiniVoxCelebError, match="exists and is not a mini VoxCeleb"):
        make_mini_voxceleb(tmp_path / "c")
