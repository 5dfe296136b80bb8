"""The private single-node Slurm cluster the Slurm tests run against (local/slurm_test_cluster.sh): real
munged, slurmctld and slurmd, started as root under a temp dir and stopped by their pids. Where it cannot
start (not root, packages missing), every test here skips with the reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import SLURM_CLUSTER_SCRIPT, SLURM_DAEMONS


def test_a_job_array_runs_every_task(slurm_cluster, tmp_path) -> None:
    env, _ = slurm_cluster
    out = subprocess.run(
        ["sbatch", "--wait", "--array=1-3", "-o", str(tmp_path / "task.%a"),
         "--wrap", "echo task $SLURM_ARRAY_TASK_ID"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert [(tmp_path / f"task.{i}").read_text().strip() for i in (1, 2, 3)] == ["task 1", "task 2", "task 3"]


def test_srun_starts_one_process_per_task(slurm_cluster) -> None:
    env, _ = slurm_cluster
    cmd = ["srun", "-n2", "sh", "-c", "echo $SLURM_PROCID"]
    out = subprocess.run(cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == ["0", "1"]


def test_stop_only_touches_its_own_cluster(tmp_path_factory, slurm_cluster) -> None:
    """`stop` on another folder leaves this cluster's daemons running: it stops by the pids of its own
    folder, never by name (the fixture checks that this cluster's own stop ends all three)."""
    folder = tmp_path_factory.mktemp("slurm_stop")
    env, first = slurm_cluster
    pids_before = {n: (first / "run" / f"{n}.pid").read_text().strip() for n in SLURM_DAEMONS}
    stop = ["bash", str(SLURM_CLUSTER_SCRIPT), "stop", str(folder)]
    subprocess.run(stop, check=True, capture_output=True, timeout=60)
    assert all(Path(f"/proc/{pid}").exists() for pid in pids_before.values()), "stop touched another cluster"


def test_a_second_cluster_on_the_machine_takes_other_ports(tmp_path_factory, slurm_cluster) -> None:
    """Two test runs on one machine (two CI jobs, a developer's run beside CI) must not fight over ports."""
    env, first = slurm_cluster
    folder = tmp_path_factory.mktemp("slurm_second")
    start = subprocess.run(
        ["bash", str(SLURM_CLUSTER_SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120
    )
    try:
        assert start.returncode == 0, start.stderr
        ports = [
            {
                line.split("=")[0]: line.split("=")[1]
                for line in (f / "etc" / "slurm.conf").read_text().splitlines()
                if line.startswith(("SlurmctldPort=", "SlurmdPort="))
            }  # fmt: skip
            for f in (first, folder)
        ]
        assert set(ports[0].values()).isdisjoint(ports[1].values()), ports
    finally:
        stop = ["bash", str(SLURM_CLUSTER_SCRIPT), "stop", str(folder)]
        subprocess.run(stop, capture_output=True, timeout=60)
