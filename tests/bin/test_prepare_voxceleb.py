"""sasv prepare_voxceleb on a synthetic VoxCeleb tree whose VoxCeleb2 part is real AAC (.m4a)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sasv.__main__ import main as sasv_main
from sasv.audio import read_audio
from sasv.bin.prepare_voxceleb import decode_aac
from sasv.corpora.datadir import read_spk2utt, read_utt2spk, read_wav_scp, spk2utt_from_utt2spk
from sasv.corpora.voxceleb import VOX1_TEST, speaker_of
from sasv.corpora.voxceleb_mini import MiniVoxCeleb, make_mini_voxceleb

pytest.importorskip("av", reason="VoxCeleb2 is AAC: pip install av (in the dev extras)")

LISTS = ["prepared.json", "spk2utt", "utt2spk", "wav.scp"]


@pytest.fixture(scope="module")
def vox(tmp_path_factory) -> MiniVoxCeleb:
    return make_mini_voxceleb(tmp_path_factory.mktemp("vox"), seed=0, speakers=3, videos=2, utts=2)


def prepare(capsys, vox: MiniVoxCeleb, tmp: Path, *extra: str | Path, trials: Path | None = None):
    """Run the tool in-process; (exit status, stdout, the ERROR lines of stderr)."""
    argv = ["prepare_voxceleb", "--vox1_root", vox.vox1_root, "--vox2_root", vox.vox2_root, "--trials",
            trials or vox.trials, "--out", tmp / "data", "--convert_dir", tmp / "flac", *extra]  # fmt: skip
    code = sasv_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, [line for line in err.splitlines() if line.startswith("ERROR:")]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_data_dirs_are_sorted_and_consistent(vox, tmp_path, capsys):
    code, out, errors = prepare(capsys, vox, tmp_path, "--nj", "2")
    assert code == 0 and not errors
    train, valid = tmp_path / "data" / "voxceleb2_dev", tmp_path / "data" / "voxceleb1"
    assert out.splitlines() == [
        f"voxceleb2_dev: 3 speakers, 12 utterances (12 converted now) -> {train}",
        f"voxceleb1: 3 speakers, 12 utterances; trials target=12 nontarget=12 -> {valid}",
    ]
    assert sorted(p.name for p in train.iterdir()) == LISTS
    assert sorted(p.name for p in valid.iterdir()) == sorted([*LISTS, "trials"])
    for d, utts in ((train, vox.vox2_utts), (valid, vox.vox1_utts)):
        for name in ("wav.scp", "utt2spk", "spk2utt"):
            assert lines(d / name) == sorted(lines(d / name)), f"{d / name} is not C-sorted"
        wav_scp, utt2spk = read_wav_scp(d / "wav.scp"), read_utt2spk(d / "utt2spk")
        assert sorted(wav_scp) == sorted(utt2spk) == sorted(utts)
        assert all(spk == u.split("/")[0] == speaker_of(u) for u, spk in utt2spk.items())
        assert read_spk2utt(d / "spk2utt") == spk2utt_from_utt2spk(utt2spk)
        for path in wav_scp.values():
            assert Path(path).is_absolute()
            assert 16000 <= read_audio(path).size <= 2.5 * 16000 + 2048  # 16 kHz mono, AAC padding at most
    assert all(
        p.endswith(".flac") and str(tmp_path / "flac") in p for p in read_wav_scp(train / "wav.scp").values()
    )

    trials = lines(valid / "trials")
    assert trials == sorted(trials)
    wav1 = read_wav_scp(valid / "wav.scp")
    given = {}
    for row in lines(vox.trials):
        label, enrol, test = row.split()
        given[enrol.removesuffix(".wav"), test.removesuffix(".wav")] = (
            "target" if label == "1" else "nontarget"
        )
    parsed = {}
    for row in trials:
        enrol, test, key = row.split()
        assert enrol in wav1 and test in wav1
        assert (key == "target") == (speaker_of(enrol) == speaker_of(test))
        parsed[enrol, test] = key
    assert parsed == given


def test_rerun_converts_nothing_and_rewrites_identical_bytes(vox, tmp_path, capsys):
    assert prepare(capsys, vox, tmp_path, "--nj", "1")[0] == 0
    first = snapshot(tmp_path)
    code, out, _ = prepare(capsys, vox, tmp_path, "--nj", "2")
    assert code == 0 and "(0 converted now)" in out
    again = snapshot(tmp_path)
    flacs = [k for k in first if k.startswith("flac/")]
    assert len(flacs) == 12 and all(again[k] == first[k] for k in flacs), (
        "a finished file was converted again"
    )
    assert {k: v[0] for k, v in again.items()} == {k: v[0] for k, v in first.items()}

    # resume: a missing conversion and one whose .m4a is newer are redone, nothing else
    gone, stale = sorted(vox.vox2_utts)[:2]
    (tmp_path / "flac" / f"{gone}.flac").unlink()
    m4a = vox.vox2_root / "dev" / "aac" / f"{stale}.m4a"
    st = m4a.stat()
    os.utime(m4a, ns=(st.st_atime_ns, first[f"flac/{stale}.flac"][1] + 10**9))
    try:
        code, out, _ = prepare(capsys, vox, tmp_path)
    finally:
        os.utime(m4a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert code == 0 and "(2 converted now)" in out
    assert {k: v[0] for k, v in snapshot(tmp_path).items()} == {k: v[0] for k, v in first.items()}


def _trials_with(vox: MiniVoxCeleb, tmp: Path, n: int, row: str | None) -> Path:
    """A copy of the trial list with line ``n`` replaced by ``row`` (appended when n is past the end)."""
    rows = lines(vox.trials)
    rows[n - 1 : n] = [row] if row is not None else []
    out = tmp / "veri_test2.txt"
    out.write_text("".join(r + "\n" for r in rows))
    return out


@pytest.mark.parametrize(
    "n, row, message",
    [
        (3, "1 id10290/AAAAAAAAAAA/00009.wav {u0}.wav", "id10290/AAAAAAAAAAA/00009.wav is not on disk"),
        (2, "1 {u0}.wav", "expected '1|0 idXXXXX/<video>/<nnnnn>.wav ...'"),
        (2, "2 {u0}.wav {u1}.wav", "expected '1|0"),
        (4, "1 {u0}.flac {u1}.wav", "'{u0}.flac' is not a VoxCeleb1 path"),
        (5, "0 {u0}.wav {u1}.wav", "label 0 (nontarget) contradicts the speakers"),
        (25, "{first}", "the trial of line 1 again"),
    ],
    ids=["not-on-disk", "two-fields", "bad-label", "bad-path", "wrong-label", "duplicate"],
)
def test_bad_trial_lines_are_one_line_naming_file_and_line(vox, tmp_path, capsys, n, row, message):
    u0, u1 = sorted(vox.vox1_utts)[:2]  # the same speaker and video
    names = {"u0": u0, "u1": u1, "first": lines(vox.trials)[0]}
    trials = _trials_with(vox, tmp_path, n, row.format(**names))
    code, _, errors = prepare(capsys, vox, tmp_path, trials=trials)
    assert code == 1 and len(errors) == 1
    assert errors[0].startswith(f"ERROR: {trials}:{n}: ") and message.format(**names) in errors[0], errors[0]
    assert not (tmp_path / "data").exists() and not (tmp_path / "flac").exists()
    if "not on disk" in message:
        assert VOX1_TEST.md5 in errors[0]  # and says where to get the audio


def test_missing_inputs_and_leaked_speakers(vox, tmp_path, capsys):
    missing = [
        ("--vox1_root", tmp_path / "v1", f"{tmp_path / 'v1' / 'wav'}: VoxCeleb1 folder does not exist; get "),
        ("--vox2_root", tmp_path / "v2", f"{tmp_path / 'v2' / 'dev' / 'aac'}: VoxCeleb2 dev folder does not"),
        ("--trials", tmp_path / "t.txt", f"{tmp_path / 't.txt'}: trial list does not exist; get https://"),
    ]
    for option, path, message in missing:
        code, _, errors = prepare(capsys, vox, tmp_path, option, path)  # the later option wins
        assert code == 1 and len(errors) == 1 and errors[0].startswith(f"ERROR: {message}"), errors

    # a validation speaker who is also a training speaker would flatter the EER
    vox1 = tmp_path / "vox1"
    shutil.copytree(vox.vox1_root, vox1)
    spk2 = speaker_of(vox.vox2_utts[0])
    shutil.copytree(vox1 / "wav" / speaker_of(vox.vox1_utts[0]), vox1 / "wav" / spk2)
    utt = next(u for u in vox.vox1_utts if speaker_of(u) == speaker_of(vox.vox1_utts[0]))
    trials = _trials_with(vox, tmp_path, 99, f"0 {spk2}/{utt.split('/', 1)[1]}.wav {vox.vox1_utts[-1]}.wav")
    code, _, errors = prepare(capsys, vox, tmp_path, "--vox1_root", vox1, trials=trials)
    assert code == 1 and len(errors) == 1
    assert f"{trials}: 1 trial speakers are also VoxCeleb2 dev (training) speakers: {spk2}" in errors[0]


def test_corrupt_aac_names_the_file_and_a_rerun_resumes(vox, tmp_path, capsys):
    vox2 = tmp_path / "vox2"
    shutil.copytree(vox.vox2_root, vox2)
    bad = vox2 / "dev" / "aac" / f"{sorted(vox.vox2_utts)[5]}.m4a"
    good = bad.read_bytes()
    bad.write_bytes(good[: len(good) // 3])
    code, _, errors = prepare(capsys, vox, tmp_path, "--vox2_root", vox2, "--nj", "2")
    assert code == 1 and len(errors) == 1
    assert errors[0].startswith(f"ERROR: {bad}: cannot decode AAC"), errors
    assert not (tmp_path / "data").exists()
    assert not list((tmp_path / "flac").rglob(".*")), "no half-written conversion is left behind"
    bad.write_bytes(good)
    code, out, _ = prepare(capsys, vox, tmp_path, "--vox2_root", vox2, "--nj", "2")
    assert code == 0, out
    assert decode_aac(bad).size == read_audio(tmp_path / "flac" / f"{sorted(vox.vox2_utts)[5]}.flac").size
