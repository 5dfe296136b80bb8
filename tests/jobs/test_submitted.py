"""Stages 2 and 3 through a job command (:mod:`sasv.jobs.submitted`): ``--cmd utils/run.sh`` (real processes)
and ``utils/slurm.sh`` (a real Slurm cluster, skipped with the reason where it cannot start).

What must hold: the outputs equal a run without a job command bit for bit; a failed task is reported with
its log and the log's error; the re-run computes only the unfinished chunks; a task refuses a conf that
changed since the tasks were written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from sasv.__main__ import main as sasv_main
from sasv.extraction.outputs import read_embeddings
from sasv.jobs.submitted import TasksFileError, run_task
from tests.conftest import REPO_ROOT, tool
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA, write_tiny_conf

CHUNK = "4"  # 26 dev utterances: 7 chunks, so --nj 3 gives tasks of 3, 2 and 2 chunks


def sasv(*argv: str | Path) -> int:
    return sasv_main([str(a) for a in argv])


def stage_args(kind: str, work: Path, exp: Path, *extra: str | Path) -> list[str | Path]:
    tool_name, conf = ("extract_embeddings", "tiny_ecapa") if kind == "asv" else ("score_cm", "tiny_aasist")
    return [tool_name, "--conf", work / f"{conf}.yaml", "--data_dirs", work / "data" / "dev",
            "--exp_dir", exp, "--device", "cpu", "--allow_random_init", "true", "--chunk_size", CHUNK,
            "--threads", "1", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A mini corpus, its dev data dir, and both stages run without a job command (the reference)."""
    w = tmp_path_factory.mktemp("submitted")
    write_tiny_conf(w, TINY_ECAPA)
    write_tiny_conf(w, TINY_AASIST)
    assert sasv("make_mini_corpus", "--out", w / "corpus", "--seed", "7", "--speakers", "2",
                "--bonafide_per_spk", "5", "--enroll_per_spk", "2") == 0  # fmt: skip
    assert sasv("prepare_la", "--la_root", w / "corpus" / "LA", "--out", w / "data", "--sets", "dev") == 0
    for kind in ("asv", "cm"):
        assert sasv(*stage_args(kind, w, w / "ref")) == 0
    return w


def same_outputs(exp: Path, ref: Path) -> None:
    """Embeddings equal bit for bit (and their scp, but for the exp root in the ark paths), CM scores equal
    byte for byte."""
    emb = Path("tiny_ecapa/embeddings/dev/xvector.scp")
    a, b = read_embeddings(ref / emb), read_embeddings(exp / emb)
    assert list(a) == list(b)
    assert all(np.array_equal(a[u], b[u]) for u in a)
    assert (exp / emb).read_text().replace(str(exp), "EXP") == (ref / emb).read_text().replace(
        str(ref), "EXP"
    )
    cm = Path("tiny_aasist/scores/dev/cm_scores.txt")
    assert (exp / cm).read_bytes() == (ref / cm).read_bytes()


def chunk_stamps(exp: Path) -> dict[str, int]:
    chunks = exp / "tiny_ecapa" / "embeddings" / "dev" / "chunks"
    return {p.name: p.stat().st_mtime_ns for p in chunks.glob("0*")}


def test_run_sh_tasks_write_what_one_process_writes(work, tmp_path) -> None:
    exp = tmp_path / "exp"
    for kind in ("asv", "cm"):
        assert sasv(*stage_args(kind, work, exp, "--nj", "3", "--cmd", "utils/run.sh")) == 0
    same_outputs(exp, work / "ref")
    logs = sorted(p.name for p in (exp / "tiny_ecapa" / "embeddings" / "dev" / "log").glob("*.log"))
    assert logs == ["embeddings.1.log", "embeddings.2.log", "embeddings.3.log"]
    assert (
        "task 2 of 3: 2 chunk(s), 8 utterances"
        in (exp / "tiny_ecapa/embeddings/dev/log/embeddings.2.log").read_text()
    )


def test_a_failed_task_is_reported_with_its_log_and_rerun_alone(work, tmp_path, capsys) -> None:
    """One unreadable file in chunk 1 (task 2's): the stage fails naming task 2's log and the task's own
    error; with the file back, the re-run computes that chunk only."""
    data = tmp_path / "data"
    shutil.copytree(work / "data", data)
    wav_scp = data / "dev" / "wav.scp"
    lines = sorted(wav_scp.read_text().splitlines())
    utt, path = lines[4].split()  # the first utterance of chunk 1 (sorted lists, chunks of 4)
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio" * 50)
    wav_scp.write_text(wav_scp.read_text().replace(path, str(broken)))
    (data / "dev" / "prepared.json").unlink()  # the data dir as it is now (the stages' documented way)
    exp = tmp_path / "exp"
    argv = [a if a != work / "data" / "dev" else data / "dev" for a in stage_args("asv", work, exp)]
    assert sasv(*argv, "--nj", "3", "--cmd", "utils/run.sh") == 1
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if line.startswith("ERROR:")]) == 1, err
    task_log = exp / "tiny_ecapa" / "embeddings" / "dev" / "log" / "embeddings.2.log"
    assert f"ERROR: {task_log}: task(s) 2 of 3 did not finish (ERROR: {broken}: cannot decode audio" in err
    before = chunk_stamps(exp)
    assert len([n for n in before if n.endswith(".scp")]) == 5, "tasks 1 and 3 finished their chunks"
    shutil.copy(path, broken)  # the same audio again, under the broken name
    assert sasv(*argv, "--nj", "3", "--cmd", "utils/run.sh") == 0
    after = chunk_stamps(exp)
    assert {n: t for n, t in after.items() if n in before} == before, "finished chunks were not redone"
    assert len(after) - len(before) == 4, "the re-run wrote task 2's two chunks (an ark and an scp each)"
    scp = exp / "tiny_ecapa" / "embeddings" / "dev" / "xvector.scp"
    a, b = (
        read_embeddings(scp),
        read_embeddings(work / "ref" / "tiny_ecapa" / "embeddings" / "dev" / "xvector.scp"),
    )
    assert list(a) == list(b) and all(np.array_equal(a[u], b[u]) for u in a)


def test_a_task_refuses_a_conf_changed_since_submission(work, tmp_path) -> None:
    exp = tmp_path / "exp"
    conf = tmp_path / "tiny_ecapa.yaml"
    shutil.copy(work / "tiny_ecapa.yaml", conf)
    argv = [a if a != work / "tiny_ecapa.yaml" else conf for a in stage_args("asv", work, exp)]
    # a job command that runs no task: the tasks file stays, for run_task to be called by hand
    assert sasv(*argv, "--nj", "2", "--cmd", "false") == 1
    tasks = exp / "tiny_ecapa" / "embeddings" / "dev" / "chunks" / "tasks.json"
    raw = yaml.safe_load(conf.read_text())
    conf.write_text(yaml.safe_dump({**raw, "args": {"C": 8}}))
    with pytest.raises(TasksFileError, match="the conf or its checkpoint changed"):
        run_task(tasks, 1)
    with pytest.raises(TasksFileError, match="task 3 asked for, the file has tasks 1..2"):
        run_task(tasks, 3)


# ------------------------------------------------------------------------------------- on a real cluster


def _slurm_run(env: dict[str, str], argv: list[str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_stages_2_and_3_on_slurm_equal_the_local_run(work, slurm_cluster, tmp_path) -> None:
    """run_spk_ebd_extract.sh with cmd.sh's slurm backend (conf/slurm.conf) and --nj 3: each stage is one
    job array of 3 tasks, and the outputs are the local run's bit for bit."""
    env, _ = slurm_cluster
    exp = tmp_path / "exp"
    argv = ["bash", "run_spk_ebd_extract.sh", "--stage", "2", "--sets", "dev", "--data_dir",
            str(work / "data"), "--exp_dir", str(exp), "--asv_conf", str(work / "tiny_ecapa.yaml"),
            "--cm_conf", str(work / "tiny_aasist.yaml"), "--device", "cpu", "--allow_random_init", "true",
            "--nj", "3"]  # fmt: skip
    proc = _slurm_run(dict(env, SASV_CMD_BACKEND="slurm"), [*argv, "--chunk_size", CHUNK, "--threads", "1"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--cmd 'utils/slurm.sh --config conf/slurm.conf'" in proc.stdout
    assert proc.stdout.count("3 task(s) through utils/slurm.sh") == 2, "one array of 3 tasks per stage"
    same_outputs(exp, work / "ref")
    for kind_dir, name in (
        ("tiny_ecapa/embeddings/dev", "embeddings"),
        ("tiny_aasist/scores/dev", "cm_scores"),
    ):
        q = exp / kind_dir / "log" / "q"
        assert sorted(p.name for p in q.iterdir()) == [f"{name}.{t}.out" for t in (1, 2, 3)] + [f"{name}.sh"]


def test_a_task_cancelled_with_scancel_is_rerun_alone(work, slurm_cluster, tmp_path) -> None:
    """Task 2 of 3 is held (a wrapper of utils/slurm.sh makes it sleep first) and cancelled with scancel
    while it runs; the stage fails naming its log; the re-run submits one task for its chunks and leaves
    the other tasks' chunks untouched; the result is the local run's."""
    env, _ = slurm_cluster
    wrapper = tmp_path / "hold_task2.py"
    wrapper.write_text(
        "import os, sys\n"
        "args = sys.argv[1:]\n"
        "i = 0\n"
        "while args[i].startswith('--'):\n"
        "    i += 2\n"
        "hold = ['bash', '-c', 'if [ \"$0\" = 2 ]; then sleep 600; fi; exec \"$@\"', 'JOB']\n"
        f"slurm_sh = {str(REPO_ROOT / 'utils' / 'slurm.sh')!r}\n"
        "os.execv(slurm_sh, [slurm_sh, *args[:i + 2], *hold, *args[i + 2:]])\n"
    )
    exp = tmp_path / "exp"
    argv = [str(a) for a in stage_args("asv", work, exp, "--nj", "3")]
    held = [*tool(argv[0]), *argv[1:], "--cmd", f"{sys.executable} {wrapper} --config conf/slurm.conf"]
    proc = subprocess.Popen(
        held, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    logs = exp / "tiny_ecapa" / "embeddings" / "dev" / "log"
    deadline = time.monotonic() + 300
    while not (all("# Ended (code 0)" in _read(logs / f"embeddings.{t}.log") for t in (1, 3))
               and (logs / "embeddings.2.log").exists()):  # fmt: skip
        assert proc.poll() is None and time.monotonic() < deadline, "the tasks did not get there"
        time.sleep(0.2)
    queue = _slurm_run(env, ["squeue", "-h", "-o", "%i"]).stdout.split()
    task2 = [j for j in queue if j.endswith("_2")]
    assert len(task2) == 1, queue
    assert _slurm_run(env, ["scancel", task2[0]]).returncode == 0
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert f"ERROR: {logs / 'embeddings.2.log'}: task(s) 2 of 3 did not finish (killed or cancelled" in err, (
        err
    )
    before = chunk_stamps(exp)
    rerun = _slurm_run(env, [*tool(argv[0]), *argv[1:], "--cmd", "utils/slurm.sh --config conf/slurm.conf"])
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (
        "re-running task(s) 2..2 of 3" in rerun.stderr and "1 task(s) through utils/slurm.sh" in rerun.stderr
    )
    after = chunk_stamps(exp)
    assert {n: t for n, t in after.items() if n in before} == before
    assert len(after) - len(before) == 4, "task 2's two chunks (ark + scp each), nothing else"
    assert "task 2 of 3: 2 chunk(s)" in (logs / "embeddings.2.log").read_text()
    a = read_embeddings(exp / "tiny_ecapa" / "embeddings" / "dev" / "xvector.scp")
    b = read_embeddings(work / "ref" / "tiny_ecapa" / "embeddings" / "dev" / "xvector.scp")
    assert list(a) == list(b) and all(np.array_equal(a[u], b[u]) for u in a)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_compute_chunks_refuses_a_foreign_tasks_file(tmp_path) -> None:
    bad = tmp_path / "tasks.json"
    bad.write_text('{"version": 99}')
    with pytest.raises(TasksFileError, match="not a tasks file of this recipe"):
        run_task(bad, 1)
    assert os.path.exists(bad)
