"""Kaldi-style job commands (:mod:`sasv.jobs.commands`): parsing, quoting, and the local backend
``utils/run.sh`` (real processes, real logs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sasv.jobs.commands import JobCommandError, TasksFailedError, parse_job_command, run_local, task_exit_code
from tests.conftest import REPO_ROOT

RUN_SH = str(REPO_ROOT / "utils" / "run.sh")


def test_parse_reads_options_task_range_log_and_command() -> None:
    job = parse_job_command(
        ["--mem", "4G", "--num-threads", "2", "--max_jobs_run=3", "JOB=2:4", "log/x.JOB.log", "echo", "JOB"]
    )
    assert job.options == {"mem": "4G", "num_threads": "2", "max_jobs_run": "3"}
    assert (job.variable, list(job.tasks), job.log, job.command) == (
        "JOB",
        [2, 3, 4],
        "log/x.JOB.log",
        ["echo", "JOB"],
    )
    assert job.for_task(job.log, 3) == "log/x.3.log"
    single = parse_job_command(["log/one.log", "true"])
    assert (single.variable, list(single.tasks)) == (None, [1])
    assert list(parse_job_command(["TASK=5", "l.TASK", "true"]).tasks) == [5]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["JOB=1:3", "log.JOB"], "expected [--opt value ...]"),
        (["JOB=3:1", "log.JOB", "true"], "1 <= first <= last"),
        (["JOB=1:3", "log.txt", "true"], "must contain JOB"),
        (["--mem"], "--mem: missing its value"),
    ],
)
def test_parse_errors_name_the_problem(argv: list[str], message: str) -> None:
    with pytest.raises(JobCommandError) as e:
        parse_job_command(argv)
    assert message in str(e.value)


def test_tasks_run_with_their_number_and_log_like_kaldi(tmp_path) -> None:
    job = parse_job_command(
        ["JOB=1:3", str(tmp_path / "log" / "x.JOB.log"), "echo", "task JOB of a b", "|", "tr", "a-z", "A-Z"]
    )
    run_local(job)
    for task in (1, 2, 3):
        text = (tmp_path / "log" / f"x.{task}.log").read_text().splitlines()
        assert text[0] == f"# echo 'task {task} of a b' | tr a-z A-Z"  # quoted word, raw pipe
        assert text[2] == f"TASK {task} OF A B"
        assert text[-1].startswith("# Ended (code 0)")
        assert task_exit_code(tmp_path / "log" / f"x.{task}.log") == 0


def test_a_failed_task_is_named_and_the_others_finish(tmp_path) -> None:
    job = parse_job_command(
        ["JOB=1:3", str(tmp_path / "x.JOB.log"), "test", "JOB", "!=", "2", "&&", "echo", "ok"]
    )
    with pytest.raises(TasksFailedError) as e:
        run_local(job)
    assert f"{tmp_path / 'x.*.log'}: 1 / 3 task(s)" in str(e.value)
    assert "(JOB 2)" in str(e.value) and str(tmp_path / "x.2.log") in str(e.value)
    assert [task_exit_code(tmp_path / f"x.{t}.log") for t in (1, 2, 3)] == [0, 1, 0]
    assert job.failed_tasks() == [2]


def test_max_jobs_run_keeps_tasks_from_overlapping(tmp_path) -> None:
    """Each task holds a directory 'lock' for 0.5 s; one at a time they all get it, all at once they
    cannot."""
    hold = f"mkdir {tmp_path / 'held'} && sleep 0.5 && rmdir {tmp_path / 'held'}"
    run_local(
        parse_job_command(["--max-jobs-run", "1", "JOB=1:3", str(tmp_path / "a.JOB"), "bash", "-c", hold])
    )
    with pytest.raises(TasksFailedError):
        run_local(parse_job_command(["JOB=1:3", str(tmp_path / "b.JOB"), "bash", "-c", hold]))


def test_threads_per_task(tmp_path, monkeypatch) -> None:
    run_local(
        parse_job_command(
            ["--num-threads", "5", str(tmp_path / "a.log"), "bash", "-c", "echo $OMP_NUM_THREADS"]
        )
    )
    assert (tmp_path / "a.log").read_text().splitlines()[2] == "5"
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the ceiling, shared by the tasks that run at once
    run_local(parse_job_command(["JOB=1:2", str(tmp_path / "b.JOB"), "bash", "-c", "echo $OMP_NUM_THREADS"]))
    assert (tmp_path / "b.1").read_text().splitlines()[2] == "2"


def test_run_sh_is_a_command_line_with_one_error_line(tmp_path) -> None:
    env = dict(os.environ, SASV_VENV=str(Path(sys.executable).parents[1]))
    ok = subprocess.run(
        [RUN_SH, "JOB=1:2", str(tmp_path / "x.JOB.log"), "echo", "JOB"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "x.2.log").read_text().splitlines()[2] == "2"
    bad = subprocess.run(
        [RUN_SH, "JOB=1:2", str(tmp_path / "y.JOB.log"), "false"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        f"ERROR: {tmp_path / 'y.*.log'}: 2 / 2 task(s) of utils/run.sh failed (JOB 1, 2); "
        f"first log: {tmp_path / 'y.1.log'}"
    ]
    usage = subprocess.run([RUN_SH, "--help"], env=env, capture_output=True, text=True)
    assert usage.returncode == 0 and "usage: utils/run.sh" in usage.stdout
