"""Interruptions, concurrent runs and stale inputs: stages lose nothing and never mix old and new outputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from sasv.locking import LockedError, exclusive_lock
from sasv.markers import StaleOutputError, check_stage_inputs, stage_inputs
from sasv.models.conf import parse_conf
from tests.conftest import REPO_ROOT, tool
from tests.tiny_confs import TINY_ECAPA, write_tiny_conf


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    work = tmp_path_factory.mktemp("robust")
    corpus = work / "corpus"
    args = ["--speakers", "2", "--bonafide-per-spk", "6", "--enroll-per-spk", "2"]
    for cmd in (
        [*tool("make_mini_corpus"), "--out", str(corpus), "--seed", "11", *args],
        [*tool("prepare_la"), "--la_root", str(corpus / "LA"), "--out", str(work / "data")],
    ):
        subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), check=True, capture_output=True)
    conf = write_tiny_conf(work, TINY_ECAPA)
    return work, conf


def _extract_cmd(work: Path, conf: Path, exp: Path) -> list[str]:
    return [
        *tool("extract_embeddings"), "--conf", str(conf),
        "--data_dirs", str(work / "data" / "dev"), "--exp_dir", str(exp), "--device", "cpu",
        "--chunk_size", "4", "--allow_random_init", "true",
    ]  # fmt: skip


def _load(exp: Path) -> dict[str, np.ndarray]:
    scp = exp / "tiny_ecapa" / "embeddings" / "dev" / "xvector.scp"
    return {u: np.array(m) for u, m in kaldiio.load_scp(str(scp)).items()}


def test_sigkill_then_resume_gives_identical_embeddings(mini):
    work, conf = mini
    reference = work / "exp_reference"
    subprocess.run(
        _extract_cmd(work, conf, reference), cwd=REPO_ROOT, env=_env(), check=True, capture_output=True
    )

    exp = work / "exp_killed"
    chunks = exp / "tiny_ecapa" / "embeddings" / "dev" / "chunks"
    proc = subprocess.Popen(
        _extract_cmd(work, conf, exp),
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while not list(chunks.glob("00001.*.scp")):
        assert proc.poll() is None, "extraction finished before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (chunks.parent / "xvector.scp").exists(), "a killed run must not leave a final index"
    finished = sorted(p.name for p in chunks.glob("*.scp"))

    out = subprocess.run(
        _extract_cmd(work, conf, exp), cwd=REPO_ROOT, env=_env(), check=True, capture_output=True, text=True
    )
    done = int(out.stderr.split("resuming, ")[1].split(" of ")[0])
    assert done == 4 * len(finished), "only the unfinished chunks are redone"
    got, ref = _load(exp), _load(reference)
    assert sorted(got) == sorted(ref)
    for utt in ref:
        assert np.array_equal(got[utt], ref[utt]), f"{utt} differs after resume"


def test_second_run_on_locked_dir_fails_clearly(mini):
    work, conf = mini
    exp = work / "exp_locked"
    with exclusive_lock(exp / "tiny_ecapa" / "embeddings" / "dev"):
        out = subprocess.run(
            _extract_cmd(work, conf, exp), cwd=REPO_ROOT, env=_env(), capture_output=True, text=True
        )
    assert out.returncode == 1
    assert "another run (pid" in out.stderr and "ERROR:" in out.stderr
    assert "Traceback" not in out.stderr


def test_lock_is_exclusive_and_released(tmp_path):
    with (
        exclusive_lock(tmp_path),
        pytest.raises(LockedError, match=str(os.getpid())),
        exclusive_lock(tmp_path),
    ):
        pass
    with exclusive_lock(tmp_path):  # released after the first holder left
        pass


def test_lock_of_killed_holder_is_released(tmp_path):
    code = f"from sasv.locking import exclusive_lock\nimport time\nwith exclusive_lock({str(tmp_path)!r}):\n"
    code += "    print('held', flush=True)\n    time.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(LockedError), exclusive_lock(tmp_path):
        pass
    proc.kill()
    proc.wait()
    with exclusive_lock(tmp_path):
        pass


def _marker(tmp_path: Path, conf_text: str, lists: dict[str, Path]):
    conf_path = tmp_path / "m.yaml"
    conf_path.write_text(conf_text)
    conf = parse_conf({"name": "m", "kind": "asv", "arch": "ecapa_tdnn"}, source=str(conf_path))
    marker = tmp_path / "out" / "xvector.done"
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(json.dumps({"inputs": stage_inputs(conf, None, lists)}))
    return conf, marker


def test_stale_inputs_are_refused(tmp_path):
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text("u1 /a.flac\n")
    conf, marker = _marker(tmp_path, "a: 1\n", {"wav.scp": wav_scp})
    check_stage_inputs(marker, conf, {"wav.scp": wav_scp})  # unchanged: fine

    wav_scp.write_text("u1 /a.flac\nu2 /b.flac\n")
    with pytest.raises(StaleOutputError, match=r"changed: wav.scp"):
        check_stage_inputs(marker, conf, {"wav.scp": wav_scp})
    wav_scp.write_text("u1 /a.flac\n")
    Path(conf.source).write_text("a: 2\n")
    with pytest.raises(StaleOutputError, match=r"changed: conf"):
        check_stage_inputs(marker, conf, {"wav.scp": wav_scp})


def test_missing_marker_is_refused(tmp_path):
    conf, marker = _marker(tmp_path, "a: 1\n", {})
    marker.unlink()
    with pytest.raises(StaleOutputError, match="did not finish"):
        check_stage_inputs(marker, conf, {})


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 4]), "cannot decode"),
        (lambda p: p.write_bytes(b""), "cannot decode"),
        (lambda p: p.write_bytes(b"<html>not audio</html>" * 20), "cannot decode"),
        (lambda p: p.unlink(), "does not exist"),
    ],
    ids=["truncated", "zero-bytes", "non-audio", "missing"],
)
def test_bad_audio_stops_extraction_naming_the_file(mini, damage, message):
    work, conf = mini
    data = work / f"data_bad_{message.replace(' ', '_')}" / "dev"
    data.mkdir(parents=True, exist_ok=True)
    src = work / "data" / "dev"
    for name in ("utt2spk", "enroll", "trials"):
        (data / name).write_text((src / name).read_text())
    lines = (src / "wav.scp").read_text().splitlines()
    utt, path = lines[len(lines) // 2].split()
    bad = data / "bad.flac"
    bad.write_bytes(Path(path).read_bytes())
    damage(bad)
    lines[len(lines) // 2] = f"{utt} {bad}"
    (data / "wav.scp").write_text("\n".join(lines) + "\n")
    cmd = _extract_cmd(work, conf, work / "exp_bad")
    cmd[cmd.index("--data_dirs") + 1] = str(data)
    out = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True)
    assert out.returncode == 1
    assert f"ERROR: {bad}: " in out.stderr and message in out.stderr
    assert "Traceback" not in out.stderr


def test_data_dir_of_a_changed_protocol_is_refused(mini, tmp_path):
    from sasv.markers import StaleOutputError, check_prepared_marker

    work, _ = mini
    data = work / "data" / "dev"
    assert check_prepared_marker(data)  # prepared by stage 1: has a marker, sources unchanged
    marker = json.loads((data / "prepared.json").read_text())
    trial_list = next(p for p in marker["sources"] if p.endswith(".gi.trl.txt"))
    original = Path(trial_list).read_bytes()
    try:
        Path(trial_list).write_bytes(original + b"\n")
        with pytest.raises(StaleOutputError, match="re-run stage 1"):
            check_prepared_marker(data)
    finally:
        Path(trial_list).write_bytes(original)
    assert not check_prepared_marker(tmp_path)  # hand-made data dirs without a marker are allowed


def test_data_dir_edited_after_stage_1_is_refused(mini, tmp_path):
    """A hand-edited trials file (here: its target trials removed) is not scored as if stage 1 made it."""
    from sasv.markers import StaleOutputError, check_prepared_marker

    work, conf = mini
    data = tmp_path / "dev"
    shutil.copytree(work / "data" / "dev", data)
    lines = (data / "trials").read_text().splitlines(keepends=True)
    (data / "trials").write_text("".join(line for line in lines if not line.rstrip().endswith(" target")))
    with pytest.raises(StaleOutputError, match=r"dev: trials changed since stage 1 wrote it"):
        check_prepared_marker(data)
    cmd = [*tool("extract_embeddings"), "--conf", str(conf), "--data_dirs", str(data),
           "--exp_dir", str(tmp_path / "exp"), "--allow_random_init", "true"]  # fmt: skip
    out = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"ERROR: {data}: trials changed since stage 1" in out.stderr
    (data / "prepared.json").unlink()  # the documented way to use an edited data dir as it is
    assert not check_prepared_marker(data)
