"""The shell stages as a user meets them: --help, option errors, what the log records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
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
    "local/slurm_test_cluster.sh",
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
        (["run_spk_ebd_extract.sh", "--corpus", "vox"], "--corpus must be la"),
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


# ------------------------------------------------------------------------------------------------ Ctrl-C

INTERRUPTED = "ERROR: interrupted (Ctrl-C); re-run the same command to resume"


def _start_in_own_group(cmd: list[str], **env: str) -> subprocess.Popen:
    """A script as a terminal starts it: its own process group (Ctrl-C reaches every process in it: the
    script, its tools and the log's tee), SIGINT at its default even when the tests run in the background."""
    from tests.conftest import default_sigint

    full_env = dict(os.environ, OMP_NUM_THREADS="1", SASV_VENV=str(Path(sys.executable).parents[1]), **env)
    return subprocess.Popen(
        ["bash", *cmd], cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True, preexec_fn=default_sigint,
    )  # fmt: skip


def _ctrl_c(proc: subprocess.Popen, ready: Callable[[], bool]) -> tuple[str, int]:
    """Wait until ``ready()``, send SIGINT to the script's process group; (terminal output, exit status)."""
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the script never got to the slow step"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return out + err, proc.returncode


def _reader_is_waiting(fifo: Path, keep: list[int]) -> bool:
    """Whether a process is blocked in read() on the FIFO. Its open() returns once the test opens the
    writing end (kept open: the reader then blocks until the test interrupts it); a SIGINT sent between
    that open() and the read() is taken by Python's handler while no syscall is there to interrupt, and the
    read then blocks for good (CI saw it), so the test waits until the reader sleeps in the pipe's read."""
    if not keep:
        try:
            keep.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return False
    return any(wchan.endswith("pipe_read") for wchan in _fifo_readers_wchan(fifo))


def _fifo_readers_wchan(fifo: Path) -> list[str]:
    """The kernel wait channel of each other process holding ``fifo`` open."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) == str(fifo) for fd in (proc / "fd").iterdir()):
                found.append((proc / "wchan").read_text())
        except OSError:
            continue
    return found


def _one_interrupted_line(terminal: str, status: int, logs: list[Path]) -> None:
    assert status == 130, terminal
    assert [ln for ln in terminal.splitlines() if "ERROR:" in ln] == [INTERRUPTED], terminal
    assert "Traceback" not in terminal
    assert len(logs) == 1, logs
    log = logs[0].read_text()
    assert [ln for ln in log.splitlines() if "ERROR:" in ln] == [INTERRUPTED], log


def test_ctrl_c_in_a_python_tool_is_one_line_in_terminal_and_log_and_exit_130(tmp_path) -> None:
    """Ctrl-C while stage 2's tool runs (here: blocked reading a wav.scp that is a FIFO): the tool's
    interruption is one line in the terminal and in the log (the log's tee survives the SIGINT), exit 130."""
    from tests.tiny_confs import TINY_ECAPA, write_tiny_conf

    conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    data = tmp_path / "data" / "dev"
    data.mkdir(parents=True)
    os.mkfifo(data / "wav.scp")
    keep: list[int] = []
    proc = _start_in_own_group(
        ["run_spk_ebd_extract.sh", "--stage", "2", "--stop_stage", "2", "--sets", "dev", "--data_dir",
         str(tmp_path / "data"), "--exp_dir", str(tmp_path / "exp"), "--asv_conf", str(conf),
         "--device", "cpu", "--allow_random_init", "true"]
    )  # fmt: skip
    try:
        terminal, status = _ctrl_c(proc, lambda: _reader_is_waiting(data / "wav.scp", keep))
    finally:
        for fd in keep:
            os.close(fd)
    _one_interrupted_line(
        terminal, status, list((tmp_path / "exp" / "logs").glob("run_spk_ebd_extract.*.log"))
    )


def test_ctrl_c_in_a_job_command_is_one_line_in_terminal_and_log_and_exit_130(tmp_path) -> None:
    """Ctrl-C while a step of run_test runs through a job command that is not Python (it dies of the
    SIGINT, printing nothing): the script says it, in terminal and log, and exits 130."""
    started = tmp_path / "started"
    slow = tmp_path / "slow_cmd.sh"
    slow.write_text(f"#!/usr/bin/env bash\ntouch {started}\nsleep 100\n")
    slow.chmod(0o755)
    proc = _start_in_own_group(
        ["run_test_nonorm.sh", "--stop_stage", "1", "--sets", "dev", "--exp_dir", str(tmp_path / "exp"),
         "--data_dir", str(tmp_path / "data"), "--cmd", str(slow)]
    )  # fmt: skip
    terminal, status = _ctrl_c(proc, started.exists)
    _one_interrupted_line(terminal, status, list((tmp_path / "exp" / "logs").glob("run_test_nonorm.*.log")))


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--threads", "-1", "argument --threads: expected a whole number >= 0, got '-1'"),
        ("--num_workers", "-2", "argument --num_workers: expected auto or a whole number >= 0, got '-2'"),
        ("--nj", "0", "argument --nj: expected a whole number >= 1, got '0'"),
    ],
)
def test_negative_counts_are_one_error_line(tmp_path, option: str, value: str, message: str) -> None:
    """--threads -1, --num_workers -2 reached torch (set_num_threads, the DataLoader) and ended in
    tracebacks; the tools' option parsing refuses them in one ERROR line."""
    import numpy as np
    import soundfile as sf

    from tests.tiny_confs import TINY_ECAPA, write_tiny_conf

    data = tmp_path / "data" / "dev"
    data.mkdir(parents=True)
    sf.write(str(tmp_path / "u1.flac"), np.zeros(16000, dtype=np.float32) + 0.01, 16000)
    (data / "wav.scp").write_text(f"u1 {tmp_path / 'u1.flac'}\n")
    conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    out = run("run_spk_ebd_extract.sh", "--stage", "2", "--stop_stage", "2", "--sets", "dev", "--data_dir",
              str(tmp_path / "data"), "--exp_dir", str(tmp_path / "exp"), "--asv_conf", str(conf), "--device",
              "cpu", "--allow_random_init", "true", option, value)  # fmt: skip
    terminal = out.stdout + out.stderr
    assert out.returncode != 0 and "Traceback" not in terminal, terminal
    errors = [line for line in terminal.splitlines() if "ERROR:" in line or "error:" in line]
    assert errors == [f"ERROR: sasv extract_embeddings: {message} (see sasv extract_embeddings --help)"], (
        terminal
    )


def test_every_script_with_a_shebang_is_executable() -> None:
    """A script meant to be run (#! line) has its executable bit, on disk and in git (local/mutation_report.py
    had neither: `local/mutation_report.py` said Permission denied)."""
    scripts = [p for d in ("", "local", "utils") for p in sorted((REPO_ROOT / d).glob("*"))
               if p.is_file() and p.read_bytes()[:2] == b"#!"]  # fmt: skip
    assert REPO_ROOT / "local" / "mutation_report.py" in scripts
    assert [p.name for p in scripts if not os.access(p, os.X_OK)] == []
    listed = subprocess.run(
        ["git", "ls-files", "-s", *map(str, scripts)], cwd=REPO_ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    modes = {line.split("\t")[1]: line.split()[0] for line in listed.stdout.splitlines()}
    assert [path for path, mode in modes.items() if mode != "100755"] == []
