"""The Slurm backend (:mod:`sasv.jobs.slurm`, ``utils/slurm.sh``): the Kaldi-style config, the batch script,
and real job arrays on the private test cluster (skipped with the reason where it cannot start)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sasv.jobs.commands import parse_job_command, task_exit_code
from sasv.jobs.slurm import SlurmConfig, SlurmConfigError, batch_script
from tests.conftest import REPO_ROOT, default_sigint

SLURM_SH = str(REPO_ROOT / "utils" / "slurm.sh")


def _config(tmp_path: Path, text: str) -> SlurmConfig:
    path = tmp_path / "slurm.conf"
    path.write_text(text)
    return SlurmConfig.read(path)


def test_config_maps_options_exact_rules_before_wildcards(tmp_path) -> None:
    config = _config(
        tmp_path,
        "command sbatch --export=ALL -p cpu  # comment\n"
        "option gpu=0\noption gpu=* -p gpu --gres=gpu:$0\noption mem=* --mem $0\ndefault gpu=0\n",
    )
    assert config.command == ["sbatch", "--export=ALL", "-p", "cpu"]
    assert config.sbatch_options({}) == []  # the default gpu=0 adds nothing
    assert config.sbatch_options({"gpu": "2", "mem": "4G"}) == ["-p", "gpu", "--gres=gpu:2", "--mem", "4G"]
    assert config.sbatch_options({"max_jobs_run": "2"}) == []  # the array throttle, not an sbatch option


def test_config_errors_name_the_file_and_line(tmp_path) -> None:
    with pytest.raises(SlurmConfigError, match=r"slurm.conf:2: expected 'command"):
        _config(tmp_path, "command sbatch\nopshun mem=* --mem $0\n")
    config = _config(tmp_path, "command sbatch\n")
    with pytest.raises(SlurmConfigError, match=r"slurm.conf: no rule for --num-threads 4"):
        config.sbatch_options({"num_threads": "4"})
    with pytest.raises(SlurmConfigError, match="Slurm config not found"):
        SlurmConfig.read(tmp_path / "absent.conf")


def test_shipped_config_maps_what_the_stages_pass() -> None:
    config = SlurmConfig.read(REPO_ROOT / "conf" / "slurm.conf")
    assert config.sbatch_options({"num_threads": "4", "gpu": "2", "mem": "8G", "num_nodes": "2"}) == [
        "--gres=gpu:2", "--cpus-per-task", "4", "--mem", "8G", "--nodes", "2", "--ntasks-per-node", "1",
    ]  # fmt: skip
    assert config.sbatch_options({"gpu": "0"}) == []


def test_batch_script_runs_one_task_with_its_number(tmp_path) -> None:
    """The generated script, run by bash as an array task would be: the task number replaces JOB in the
    command and the log, and the log ends with the command's code."""
    job = parse_job_command(
        ["JOB=1:3", str(tmp_path / "x.JOB.log"), "echo", "it is JOB", "&&", "exit", "JOB"]
    )
    script = tmp_path / "task.sh"
    script.write_text(batch_script(job))
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="2", SLURM_JOB_ID="7")
    assert subprocess.run(["bash", str(script)], env=env).returncode == 2
    lines = (tmp_path / "x.2.log").read_text().splitlines()
    assert lines[0] == "# echo 'it is 2' && exit 2" and lines[2] == "it is 2"
    assert task_exit_code(tmp_path / "x.2.log") == 2
    assert "srun" not in batch_script(job)
    assert "srun --nodes=" in batch_script(parse_job_command(["--num-nodes", "2", "l.log", "true"]))


# ------------------------------------------------------------------------------------- on a real cluster


def test_a_job_array_with_a_failing_task(slurm_cluster, tmp_path) -> None:
    env, _ = slurm_cluster
    argv = [SLURM_SH, "--config", str(REPO_ROOT / "conf" / "slurm.conf"), "--num-threads", "1", "JOB=1:3",
            str(tmp_path / "log" / "x.JOB.log"), "test", "JOB", "!=", "2", "&&", "hostname"]  # fmt: skip
    out = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "1 / 3 task(s) of Slurm job" in errors[0] and "(JOB 2)" in errors[0], (
        out.stderr
    )
    assert [task_exit_code(tmp_path / "log" / f"x.{t}.log") for t in (1, 2, 3)] == [0, 1, 0]
    assert "(Slurm job " in (tmp_path / "log" / "x.1.log").read_text()
    assert sorted(p.name for p in (tmp_path / "log" / "q").iterdir()) == [
        "x.1.out",
        "x.2.out",
        "x.3.out",
        "x.sh",
    ]


def test_ctrl_c_cancels_the_array(slurm_cluster, tmp_path) -> None:
    env, _ = slurm_cluster
    argv = [SLURM_SH, "--config", str(REPO_ROOT / "conf" / "slurm.conf"), "JOB=1:2",
            str(tmp_path / "ctrlc.JOB.log"), "sleep", "300"]  # fmt: skip
    # SIGINT as a terminal sends it, even where pytest itself was started with SIGINT ignored (`cmd &`)
    proc = subprocess.Popen(
        argv, env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path, preexec_fn=default_sigint
    )
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ctrlc.{t}.log").exists() for t in (1, 2)):
            assert time.monotonic() < deadline and proc.poll() is None, "the tasks did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        queue = ""
        for _ in range(50):  # the cancelled tasks leave the queue
            queue = subprocess.run(
                ["squeue", "-h", "-n", "ctrlc"], env=env, capture_output=True, text=True
            ).stdout
            if not queue.strip():
                break
            time.sleep(0.2)
        assert not queue.strip(), queue
        assert task_exit_code(tmp_path / "ctrlc.1.log") is None  # killed: no end line
    finally:  # never leave two sleeping tasks holding the test cluster's cores
        proc.kill()
        subprocess.run(["scancel", "-n", "ctrlc"], env=env, capture_output=True)


def test_slurm_sh_help_and_a_missing_config_are_one_line(tmp_path) -> None:
    env = dict(os.environ, SASV_VENV=str(Path(sys.executable).parents[1]))
    usage = subprocess.run([SLURM_SH, "--help"], env=env, capture_output=True, text=True)
    assert (
        usage.returncode == 0
        and "usage: utils/slurm.sh" in usage.stdout
        and "conf/slurm.conf" in usage.stdout
    )
    argv = [SLURM_SH, "--config", str(tmp_path / "absent.conf"), str(tmp_path / "x.log"), "true"]
    out = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"ERROR: {tmp_path / 'absent.conf'}: Slurm config not found (copy and edit conf/slurm.conf)"
    ]


def test_training_jobs_ask_for_cpu_cores_and_srun_passes_them_on() -> None:
    """A Slurm training job gets the cores its ranks and their data loaders need (issue 27): the launcher
    asks for --num-threads (conf/slurm.conf: --cpus-per-task) per node, and the sbatch script's srun passes
    the job's --cpus-per-task to its tasks (srun no longer inherits it), else each node trains on 1 core."""
    script = (
        'log() { :; }; cmd="utils/slurm.sh --config conf/slurm.conf"; device=cuda; nnodes=2; '
        "nproc_per_node=4; . utils/torchrun.sh; set_launcher exp/x.log; "
        'printf "%s\\n" "${launch[@]}"'
    )
    env = dict(os.environ, SASV_TRAIN_CPUS_PER_RANK="6")
    out = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    words = out.stdout.split()
    assert out.returncode == 0 and words[words.index("--num-threads") + 1] == "24", out.stdout + out.stderr
    config = SlurmConfig.read(REPO_ROOT / "conf" / "slurm.conf")
    assert "--cpus-per-task" in config.sbatch_options({"num_threads": "24"})
    srun = [line for line in (REPO_ROOT / "local" / "slurm_train.sbatch").read_text().splitlines()
            if line.startswith("srun ")]  # fmt: skip
    assert len(srun) == 1 and '--cpus-per-task="${SLURM_CPUS_PER_TASK' in srun[0]
