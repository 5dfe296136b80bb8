"""sasv prepare_augmentation on MUSAN / RIRS_NOISES trees in the real layouts (synthetic audio)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sasv.bin.prepare_augmentation import main as prepare_augmentation
from sasv.cli import run_cli
from sasv.corpora.datadir import read_wav_scp
from sasv.corpora.musan_rirs_mini import SyntheticAugmentationCorpora, make_musan_and_rirs
from tests.conftest import tool

LISTS = ("musan/noise", "musan/music", "musan/speech", "rirs")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> SyntheticAugmentationCorpora:
    return make_musan_and_rirs(tmp_path_factory.mktemp("corpora"), seed=1)


def argv(corpora: SyntheticAugmentationCorpora, out: Path) -> list[str]:
    return ["--musan_root", str(corpora.musan_root), "--rirs_root", str(corpora.rirs_root), "--out", str(out)]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_writes_sorted_lists_of_the_used_parts_and_prints_counts(corpora, tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [*tool("prepare_augmentation"), *argv(corpora, Path("data"))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    counts = {"musan/noise": 4, "musan/music": 4, "musan/speech": 4, "rirs": 12}
    expected = [f"{name}: {n} files -> {Path('data') / name / 'wav.scp'}" for name, n in counts.items()]
    assert run.stdout.splitlines() == expected
    data = tmp_path / "data"
    assert sorted(snapshot(data)) == sorted(f"{name}/wav.scp" for name in LISTS)
    for name in LISTS:
        text = (data / name / "wav.scp").read_text()
        assert text.splitlines() == sorted(text.splitlines())
        wav_scp = read_wav_scp(data / name / "wav.scp")
        assert len(wav_scp) == counts[name]
        assert all(
            Path(p).is_absolute() and Path(p).is_file() and p.endswith(".wav") for p in wav_scp.values()
        )
    noise = read_wav_scp(data / "musan" / "noise" / "wav.scp")
    root = corpora.musan_root.resolve()
    assert noise["free-sound-noise-free-sound-0000"] == str(
        root / "noise/free-sound/noise-free-sound-0000.wav"
    )
    rirs = read_wav_scp(data / "rirs" / "wav.scp")
    room = corpora.rirs_root.resolve() / "simulated_rirs/mediumroom/Room002/Room002-00001.wav"
    assert rirs["mediumroom-Room002-Room002-00001"] == str(room)
    assert not any("real_rirs" in p or "pointsource" in p for p in rirs.values())

    before = snapshot(data)
    assert prepare_augmentation(argv(corpora, data)) == 0
    assert snapshot(data) == before, "a re-run with the same inputs rewrites identical lists"


def test_missing_folders_are_one_line_naming_them_all(corpora, tmp_path, capsys) -> None:
    musan, rirs = tmp_path / "musan", tmp_path / "RIRS_NOISES"
    shutil.copytree(corpora.musan_root, musan)
    shutil.copytree(corpora.rirs_root, rirs)
    shutil.rmtree(musan / "speech")
    shutil.rmtree(rirs / "simulated_rirs" / "mediumroom")
    code = run_cli(prepare_augmentation, ["--musan_root", str(musan), "--rirs_root", str(rirs), "--out",
                                          str(tmp_path / "data")])  # fmt: skip
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert code == 1 and len(errors) == 1, err
    assert errors[0].startswith(f"ERROR: {musan / 'speech'}: augmentation corpus folder does not exist")
    assert str(rirs / "simulated_rirs" / "mediumroom") in errors[0]
    assert not (tmp_path / "data").exists(), "nothing is written when a folder is missing"


def test_a_folder_without_audio_is_named(corpora, tmp_path, capsys) -> None:
    musan, rirs = tmp_path / "musan", tmp_path / "RIRS_NOISES"
    shutil.copytree(corpora.musan_root, musan)
    shutil.copytree(corpora.rirs_root, rirs)
    for wav in (rirs / "simulated_rirs" / "largeroom").rglob("*.wav"):
        wav.unlink()
    code = run_cli(prepare_augmentation, ["--musan_root", str(musan), "--rirs_root", str(rirs), "--out",
                                          str(tmp_path / "data")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and f"ERROR: {(rirs / 'simulated_rirs' / 'largeroom').resolve()}: no Room*/*.wav" in err
    assert not (tmp_path / "data").exists()
