"""The private single-node Slurm cluster the Slurm tests run against (local/slurm_test_cluster.sh): real
munged, slurmctld and slurmd, started as root under a temp dir and stopped by their pids. Where it cannot
start (not root, packages missing), every test here skips with the reason."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "local" / "slurm_test_cluster.sh"
DAEMONS = ("munged", "slurmctld", "slurmd")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> Iterator[tuple[dict[str, str], Path]]:
    """(environment with SLURM_CONF, the cluster's folder) of a running cluster."""
    if os.geteuid() != 0:
        pytest.skip("the Slurm test cluster needs root to start its daemons")
    missing = [t for t in (*DAEMONS, "mungekey", "sbatch", "srun") if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"Slurm test cluster: {', '.join(missing)} not installed (apt-get install slurm-wlm munge)"
        )
    folder = tmp_path_factory.mktemp("slurm")
    start = subprocess.run(
        ["bash", str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert start.returncode == 0, start.stderr
    env = dict(os.environ, SLURM_CONF=start.stdout.strip().split("=", 1)[1])
    pids = [(folder / "run" / f"{name}.pid").read_text().strip() for name in DAEMONS]
    try:
        yield env, folder
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], capture_output=True, timeout=60)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids), "a daemon survived stop"


def test_a_job_array_runs_every_task(slurm, tmp_path) -> None:
    env, _ = slurm
    out = subprocess.run(
        ["sbatch", "--wait", "--array=1-3", "-o", str(tmp_path / "task.%a"),
         "--wrap", "echo task $SLURM_ARRAY_TASK_ID"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert [(tmp_path / f"task.{i}").read_text().strip() for i in (1, 2, 3)] == ["task 1", "task 2", "task 3"]


def test_srun_starts_one_process_per_task(slurm) -> None:
    env, _ = slurm
    cmd = ["srun", "-n2", "sh", "-c", "echo $SLURM_PROCID"]
    out = subprocess.run(cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == ["0", "1"]


def test_stop_only_touches_its_own_cluster(tmp_path_factory, slurm) -> None:
    """`stop` on another folder leaves this cluster's daemons running: it stops by the pids of its own
    folder, never by name (the fixture checks that this cluster's own stop ends all three)."""
    folder = tmp_path_factory.mktemp("slurm_stop")
    env, first = slurm
    pids_before = {n: (first / "run" / f"{n}.pid").read_text().strip() for n in DAEMONS}
    subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], check=True, capture_output=True, timeout=60)
    assert all(Path(f"/proc/{pid}").exists() for pid in pids_before.values()), "stop touched another cluster"
