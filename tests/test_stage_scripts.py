"""The shell stages as a user meets them: --help, option errors, what the log records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

USER_SCRIPTS = [
    "run_spk_ebd_extract.sh",
    "run_test_nonorm.sh",
    "run_test_l2norm.sh",
    "run_demo.sh",
    "run_train_asv.sh",
    "run_train_cm.sh",
    "local/download_la.sh",
    "local/download_train_corpora.sh",
    "local/download_pretrained.sh",
]


def run(*cmd: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", SASV_VENV=str(Path(sys.executable).parents[1]))
    return subprocess.run(["bash", *cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("script", USER_SCRIPTS)
def test_every_script_has_help_under_its_own_name(script: str) -> None:
    out = run(script, "--help")
    assert out.returncode == 0, out.stderr
    usage = next(line for line in out.stdout.splitlines() if "Usage" in line)
    assert Path(script).name in usage and "local/run_test.sh" not in usage


@pytest.mark.parametrize(
    "cmd, message",
    [
        (["run_test_l2norm.sh", "--stage", "3", "--stop_stage", "2"], "--stage 3 is after --stop_stage 2"),
        (
            ["run_spk_ebd_extract.sh", "--stage", "4", "--stop_stage", "3"],
            "--stage 4 is after --stop_stage 3",
        ),
        (
            ["run_spk_ebd_extract.sh", "--download", "true"],
            "--download true runs in stage 0, which --stage 1",
        ),
        (["run_test_nonorm.sh", "--bogus", "1"], "run_test_nonorm.sh: unknown option --bogus"),
        (["run_spk_ebd_extract.sh", "--corpus", "asvspoof5"], "--corpus asvspoof5 needs --root"),
        (["run_spk_ebd_extract.sh", "--corpus", "vox"], "--corpus must be la or asvspoof5, got 'vox'"),
        (["run_train_cm.sh", "--corpus", "asvspoof5"], "--corpus asvspoof5 needs --root"),
    ],
)
def test_options_that_would_do_nothing_are_errors(cmd: list[str], message: str, tmp_path) -> None:
    out = run(*cmd, "--exp_dir", str(tmp_path / "exp")) if "--bogus" not in cmd else run(*cmd)
    assert out.returncode == 1 and message in out.stderr
    assert not (tmp_path / "exp").exists(), "nothing is started, not even a log"


def test_log_records_every_option_and_runs_never_share_a_log(tmp_path) -> None:
    common = ["--stage", "3", "--exp_dir", str(tmp_path / "exp"), "--data_dir", str(tmp_path / "mydata")]
    for _ in range(2):
        out = run("run_test_nonorm.sh", *common, "--asv_conf", "conf/asv/ecapa_tdnn.yaml")
        assert out.returncode == 0, out.stderr + out.stdout
    logs = sorted((tmp_path / "exp" / "logs").glob("run_test_nonorm.*.log"))
    assert len(logs) == 2, "two runs in the same second get two logs"
    first = logs[0].read_text().splitlines()[0]
    for option in ("--stage '3'", "--stop_stage '3'", "--norm 'nonorm'", "--fusion 'product'",
                   f"--exp_dir '{tmp_path / 'exp'}'", "--asv_conf 'conf/asv/ecapa_tdnn.yaml'"):  # fmt: skip
        assert option in first, first
    # the summary's hints repeat this run's --data_dir and --exp_dir
    summary = (tmp_path / "exp" / "summary.md").read_text()
    assert f"--data_dir {tmp_path / 'mydata'} --exp_dir {tmp_path / 'exp'}" in summary


@pytest.mark.parametrize(
    "backend, extract_cmd",
    [("local", ""), ("run", "utils/run.sh"), ("slurm", "utils/slurm.sh --config conf/slurm.conf")],
)
def test_cmd_sh_picks_the_job_commands_of_every_script(backend: str, extract_cmd: str) -> None:
    """cmd.sh is the one place a run switches backend: the scripts' --cmd defaults come from it."""
    env = dict(os.environ, SASV_CMD_BACKEND=backend, SASV_VENV=str(Path(sys.executable).parents[1]))
    for script, default in (("run_spk_ebd_extract.sh", extract_cmd), ("run_train_cm.sh", extract_cmd)):
        out = subprocess.run(
            ["bash", script, "--help"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0 and f"('{default}';" in out.stdout, out.stdout
    out = subprocess.run(
        ["bash", "run_test_l2norm.sh", "--help"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert "('';" in out.stdout, "the test stages stay in the terminal with every backend"


def test_an_unknown_backend_is_an_error() -> None:
    env = dict(os.environ, SASV_CMD_BACKEND="sge")
    out = subprocess.run(
        ["bash", "run_spk_ebd_extract.sh", "--help"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 1 and "cmd.sh: unknown cmd_backend 'sge' (local, run or slurm)" in out.stderr


def test_torchrun_task_usage_and_bad_process_count() -> None:
    script = str(REPO_ROOT / "utils" / "torchrun_task.sh")
    out = subprocess.run([script], capture_output=True, text=True)
    assert out.returncode == 1 and "One node's share of a training run" in out.stderr
    out = subprocess.run([script, "two", "-m", "sasv"], capture_output=True, text=True)
    assert out.returncode == 1 and "NPROC must be a positive integer, got 'two'" in out.stderr
