from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sasv.corpora.datadir import read_utt2spk, validate_datadir
from sasv.corpora.la import LALayout
from sasv.corpora.la_mini import MiniCorpusConfig, make_mini_corpus
from sasv.corpora.protocols import read_cm_protocol
from sasv.markers import check_prepared_marker
from tests.conftest import tool

REPO = Path(__file__).resolve().parents[2]
COUNTS = "trials target=40 nontarget=120 spoof=24"


@pytest.fixture(scope="module")
def la_root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    make_mini_corpus(out, MiniCorpusConfig(seed=0))
    return out / "LA"


@pytest.fixture
def la_copy(la_root, tmp_path) -> Path:
    """A private copy to break."""
    shutil.copytree(la_root, tmp_path / "LA")
    return tmp_path / "LA"


def prepare(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*tool("prepare_la"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_prepares_valid_data_dirs_and_prints_counts(la_root, tmp_path):
    run = prepare("--la_root", str(la_root), "--out", "data", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"dev: {COUNTS}; 4 enrolled speakers, 76 utterances")
    assert lines[1].startswith(f"eval: {COUNTS}; 4 enrolled speakers, 76 utterances")
    for split in ("dev", "eval"):
        d = tmp_path / "data" / split
        assert sorted(p.name for p in d.iterdir()) == [
            "enroll",
            "prepared.json",
            "spk2utt",
            "trials",
            "utt2spk",
            "wav.scp",
        ]
        data = validate_datadir(d, check_files=True)
        assert all(Path(p).is_absolute() for p in data.wav_scp.values())
        # test speakers are the true ones (CM protocol), enrolment speakers the enrolled ones
        cm = {e.utt: e.spk for e in read_cm_protocol(LALayout(la_root).cm_protocol(split))}
        utt2spk = read_utt2spk(d / "utt2spk")
        assert all(utt2spk[u] == s for u, s in cm.items())
        assert all(utt2spk[u] == s for s, utts in data.enroll.items() for u in utts)
    # idempotent: a second run rewrites the same bytes
    first = _snapshot(tmp_path / "data")
    again = prepare("--la_root", str(la_root), "--out", "data", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == run.stdout
    assert _snapshot(tmp_path / "data") == first


def test_missing_audio_is_a_one_line_error_and_writes_nothing(la_copy, tmp_path):
    flacs = sorted(LALayout(la_copy).audio_dir("eval").glob("LA_E_[0-9]*.flac"))
    for p in flacs[:7]:
        p.unlink()
    run = prepare("--la_root", str(la_copy), "--out", "data", cwd=tmp_path)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "Traceback" not in run.stderr
    assert "7 of 76 audio files referenced by the eval protocols are missing" in errors[0]
    assert flacs[0].name in errors[0] and "(7 in all)" in errors[0]
    assert not (tmp_path / "data").exists()  # dev was fine, but nothing is written before all sets check out


def test_malformed_trial_list_names_file_and_line(la_copy, tmp_path):
    trl = LALayout(la_copy).trial_list("dev")
    lines = trl.read_text().splitlines()
    lines[4] = lines[4].replace("bonafide", "bona-fide")
    trl.write_text("\n".join(lines) + "\n")
    run = prepare("--la_root", str(la_copy), "--out", "data", "--sets", "dev", cwd=tmp_path)
    assert run.returncode == 1
    assert f"ERROR: {trl}:5: unknown attack id 'bona-fide'" in run.stderr


def test_trials_dir_override_and_no_cm_protocol(la_copy, tmp_path):
    layout = LALayout(la_copy)
    trials_dir = tmp_path / "sasv_protocols"
    trials_dir.mkdir()
    shutil.move(layout.trial_list("dev"), trials_dir)
    layout.cm_protocol("dev").unlink()
    args = ["--la_root", str(la_copy), "--out", "data", "--sets", "dev"]
    assert prepare(*args, cwd=tmp_path).returncode == 1  # the trial list is no longer where LA.zip puts it
    run = prepare(*args, "--trials_dir", str(trials_dir), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"dev: {COUNTS}")
    assert "not found: test speakers taken from the trial list" in run.stderr
    assert not (tmp_path / "data" / "eval").exists()
    validate_datadir(tmp_path / "data" / "dev")


def test_missing_la_root_and_enrolment_list(la_copy, tmp_path):
    run = prepare("--la_root", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert run.returncode == 1 and "LA folder does not exist" in run.stderr
    female = LALayout(la_copy).enrollment_list("eval", "female")
    female.unlink()
    run = prepare("--la_root", str(la_copy), "--sets", "eval", cwd=tmp_path)
    assert run.returncode == 1 and f"ERROR: {female}: file does not exist" in run.stderr


def test_cohort_is_train_bona_fide_only(la_root, tmp_path):
    out = prepare(
        "--la_root", str(la_root), "--out", str(tmp_path / "data"), "--cohort", "true", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    cohort = tmp_path / "data" / "train_cohort"
    utt2spk = read_utt2spk(cohort / "utt2spk")
    entries = read_cm_protocol(LALayout(la_root).cm_protocol("train"))
    assert set(utt2spk) == {e.utt for e in entries if e.label == "bonafide"}
    assert all(utt2spk[e.utt] == e.spk for e in entries if e.utt in utt2spk)
    assert "train_cohort:" in out.stdout


def test_cm_data_dirs_label_every_protocol_utterance(la_root, tmp_path):
    """--cm_sets: one data dir per CM protocol, every utterance with its speaker and bonafide|spoof label;
    --sets '' makes only these."""
    out = prepare("--la_root", str(la_root), "--out", str(tmp_path / "data"), "--sets", "",
                  "--cm_sets", "train", "eval", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["cm_eval", "cm_train"]
    for split in ("train", "eval"):
        data = tmp_path / "data" / f"cm_{split}"
        entries = read_cm_protocol(LALayout(la_root).cm_protocol(split))
        labels = dict(line.split() for line in (data / "utt2spf").read_text().splitlines())
        assert labels == {e.utt: e.label for e in entries}
        assert read_utt2spk(data / "utt2spk") == {e.utt: e.spk for e in entries}
        assert check_prepared_marker(data)
        bonafide = sum(e.label == "bonafide" for e in entries)
        assert f"cm_{split}: {bonafide} bona fide + {len(entries) - bonafide} spoofed" in out.stdout
    bad = prepare("--la_root", str(la_root), "--out", str(tmp_path / "x"), "--cm_sets", "test", cwd=tmp_path)
    assert bad.returncode == 2 and "--cm_sets: 'test' is not one of train, dev, eval" in bad.stderr


def test_suspicious_audio_is_listed_or_refused(la_copy, tmp_path):
    """Digital silence and clipping are scored like speech (AASIST called silence bona fide): stage 1 names
    them in a per-set warning and report, or stops with --suspect_audio error."""
    flacs = sorted(LALayout(la_copy).audio_dir("dev").glob("LA_D_*.flac"))
    silent, clipped = flacs[0], flacs[1]
    sf.write(str(silent), np.zeros(16000, dtype=np.float32), 16000, subtype="PCM_16")
    wav, sr = sf.read(str(clipped), dtype="float32")
    sf.write(str(clipped), np.clip(wav * 50, -1.0, 1.0), sr, subtype="PCM_16")
    run = prepare("--la_root", str(la_copy), "--out", "data", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "dev: 2 suspicious audio file(s), scored anyway" in run.stderr
    assert "dev: 2 suspicious audio file(s) listed in data/dev/audio_report.txt" in run.stdout
    report = (tmp_path / "data" / "dev" / "audio_report.txt").read_text().splitlines()
    assert [line.split()[0] for line in report] == [silent.stem, clipped.stem]
    assert report[0].endswith("digital silence (every sample is 0)") and "heavily clipped" in report[1]
    assert not (tmp_path / "data" / "eval" / "audio_report.txt").exists()

    stop = prepare("--la_root", str(la_copy), "--out", "d2", "--suspect_audio", "error", cwd=tmp_path)
    errors = [line for line in stop.stderr.splitlines() if line.startswith("ERROR:")]
    assert stop.returncode == 1 and len(errors) == 1 and "Traceback" not in stop.stderr
    assert errors[0].startswith(f"ERROR: dev: 2 suspicious audio file(s): {silent.stem} (digital silence")
    assert not (tmp_path / "d2").exists()
    skipped = prepare("--la_root", str(la_copy), "--out", "d3", "--audio_check", "false", cwd=tmp_path)
    assert skipped.returncode == 0 and "suspicious audio file" not in skipped.stdout + skipped.stderr


def test_trial_of_an_utterance_missing_from_disk_says_so(la_copy, tmp_path):
    """A trial naming an utterance that exists nowhere is a missing audio file, not a CM-protocol problem."""
    trl = LALayout(la_copy).trial_list("dev")
    trl.write_text(trl.read_text() + "LA_0001 LA_D_9999999 bonafide nontarget\n")
    run = prepare("--la_root", str(la_copy), "--out", "data", cwd=tmp_path)
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR:")]
    assert run.returncode == 1 and len(errors) == 1
    assert "1 of 77 audio files referenced by the dev protocols are missing" in errors[0]
    assert "LA_D_9999999.flac" in errors[0] and "CM protocol" not in errors[0]


def test_cm_protocol_errors_name_the_cm_protocol(la_copy, tmp_path):
    cm = LALayout(la_copy).cm_protocol("dev")
    lines = cm.read_text().splitlines(keepends=True)
    cm.write_text("".join(lines[1:]))
    run = prepare("--la_root", str(la_copy), "--out", "data", cwd=tmp_path)
    assert run.returncode == 1
    assert f"ERROR: {cm}: 1 test utterances of the trials are not in the CM protocol" in run.stderr


def test_a_nontarget_trial_of_the_claimed_speaker_s_own_utterance_is_refused(la_copy, tmp_path):
    """The CM protocol (true speakers) and the trial list both say who speaks a nontarget trial's utterance:
    not the claimed speaker. Was checked for target trials only: a target trial whose key became
    'nontarget' was scored as an impostor trial."""
    trl, cm = LALayout(la_copy).trial_list("dev"), LALayout(la_copy).cm_protocol("dev")
    lines = trl.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith(" target"))
    spk, utt = lines[at].split()[:2]
    lines[at] = lines[at].replace(" target", " nontarget")
    trl.write_text("\n".join(lines) + "\n")
    run = prepare("--la_root", str(la_copy), "--out", "data", "--sets", "dev", cwd=tmp_path)
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert run.returncode == 1 and len(errors) == 1 and "Traceback" not in run.stderr
    assert errors[0] == (
        f"ERROR: {cm}: 1 trials contradict the CM protocol, nontarget trials whose utterance is the claimed "
        f"speaker's in the CM protocol: {spk} {utt} bonafide nontarget vs CM {spk} - bonafide"
    )
    assert not (tmp_path / "data").exists()
