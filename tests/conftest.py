"""Shared fixtures. Golden parity data is read from ../shared/golden (override: SASV_GOLDEN_DIR)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


# Test files that use the Slurm test cluster: run_tests.sh runs them on one pytest-xdist worker, which then
# starts one cluster, and no two of their jobs compete for its two CPUs (checked at collection below).
SLURM_TEST_FILES = frozenset(
    {
        "tests/jobs/test_slurm.py",
        "tests/jobs/test_slurm_cluster.py",
        "tests/jobs/test_submitted.py",
        "tests/train/test_cm.py",
    }
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadfile`` (run_tests.sh) with the Slurm test files as one unit: each test file's tests run
    on one worker (its module fixtures, e.g. a whole demo run, are built once), the Slurm files together."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndSlurm(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "slurm" if path in SLURM_TEST_FILES else path

    return FilesAndSlurm(config, log)


# The longest test files (a demo run of minutes, the recipe end to end, training): collected first, so the
# workers start them first and the short files fill the gaps (started last, the demo alone was the tail).
# run_tests.sh passes --no-loadscope-reorder: xdist would otherwise reorder the files by test count.
LONG_TEST_FILES = (
    "tests/test_demo.py",
    "tests/test_recipe_e2e.py",
    "tests/test_gpu_check.py",
    "tests/train/test_asv.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long files and the Slurm files first (a stable sort: order within a file is kept); every test
    file that uses the Slurm cluster must be listed in ``SLURM_TEST_FILES``."""
    for item in items:
        path = item.path.relative_to(REPO_ROOT).as_posix()
        if "slurm_cluster" in getattr(item, "fixturenames", ()) and path not in SLURM_TEST_FILES:
            raise pytest.UsageError(f"{path} uses the slurm_cluster fixture: add it to SLURM_TEST_FILES")

    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(REPO_ROOT).as_posix()
        if path in LONG_TEST_FILES:
            return LONG_TEST_FILES.index(path)
        return len(LONG_TEST_FILES) if path in SLURM_TEST_FILES else len(LONG_TEST_FILES) + 1

    items.sort(key=rank)


def tool(name: str) -> list[str]:
    """The command line of a ``sasv <tool>`` command, run by this interpreter."""
    return [sys.executable, "-m", "sasv", name]


def run_recipe(cmd: list[str], cwd: Path = REPO_ROOT, timeout: float = 900) -> str:
    """Run a recipe script or tool as a user would (one thread, this interpreter's venv); its output, stdout
    then stderr, after asserting that it succeeded."""
    env = dict(os.environ, OMP_NUM_THREADS="1", SASV_VENV=str(Path(sys.executable).parents[1]))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-4000:]}"
    return out


def golden_root() -> Path:
    return Path(os.environ.get("SASV_GOLDEN_DIR", REPO_ROOT.parent / "shared" / "golden"))


def protocols_root() -> Path:
    return Path(
        os.environ.get("SASV_PROTOCOLS_DIR", REPO_ROOT.parent / "shared" / "protocols" / "ASVspoof2019_LA")
    )


@pytest.fixture
def golden():
    """Return a function name -> Path of ``golden/<name>``, skipping the test when it is absent."""

    def get(name: str) -> Path:
        path = golden_root() / name
        if not path.exists():
            pytest.skip(f"golden fixture {path} not found (set SASV_GOLDEN_DIR to the shared/golden folder)")
        return path

    return get


@pytest.fixture
def real_protocols() -> Path:
    path = protocols_root()
    if not path.exists():
        pytest.skip(f"ASVspoof 2019 LA protocols {path} not found (set SASV_PROTOCOLS_DIR)")
    return path


# Log-mel front-end parity with the golden features (max|diff| / max|ref|). The golden README suggests 1e-5,
# which holds on the AMD Zen 5 machines the fixtures were made on (< 1e-5); an Intel Xeon with AVX-512 and
# AMX (2026-12-07) gives 1.1e-5 to 1.6e-5 for the same code (its kernels sum in another order). 3e-5 is
# float32 noise on log-mels either way; a wrong window, filterbank or log floor is off by 1e-2 or more.
FEATURE_TOL = 3e-5


def rel_err(actual, expected) -> float:
    """max |actual - expected| / max |expected|, the tolerance measure of shared/golden/README.md."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def make_train_corpus(work: Path, train_speakers: int, utts_per_speaker: int = 6) -> Path:
    """A mini corpus under ``work`` whose LA-train bona fide utterances are prepared as a training data dir
    (the AS-norm cohort dir, ``<work>/data/train_cohort``); its dev set (``<work>/data/dev``) holds other
    speakers, for held-out validation. The CM data dirs ``<work>/data/cm_{train,dev,eval}`` are there too."""
    import subprocess

    from sasv.corpora.la_mini import MiniCorpusConfig, make_mini_corpus

    config = MiniCorpusConfig(seed=5, train_speakers=train_speakers, train_utts_per_spk=utts_per_speaker)
    make_mini_corpus(work / "corpus", config)
    subprocess.run(
        [*tool("prepare_la"), "--la_root", str(work / "corpus" / "LA"), "--out", str(work / "data"),
         "--cohort", "true", "--cm_sets", "train", "dev", "eval", "--audio_check", "false"],
        check=True, capture_output=True,
    )  # fmt: skip
    return work / "data" / "train_cohort"


@pytest.fixture(scope="session")
def train_dir(tmp_path_factory) -> Path:
    """6 synthetic speakers x 6 utterances: enough for a tiny speaker model to learn something in seconds."""
    return make_train_corpus(tmp_path_factory.mktemp("train"), train_speakers=6)


def kill_in_epoch_2_and_rerun(cmd: list[str], first_checkpoint: Path) -> subprocess.CompletedProcess:
    """Start a training command, SIGKILL it once ``first_checkpoint`` (epoch 1's) exists and epoch 2 has
    begun, then run it again to the end; returns the re-run (which must say it resumed)."""
    import signal
    import time

    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not first_checkpoint.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.5)  # into epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming from" in rerun.stderr
    return rerun


SLURM_CLUSTER_SCRIPT = REPO_ROOT / "local" / "slurm_test_cluster.sh"
SLURM_DAEMONS = ("munged", "slurmctld", "slurmd")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> Iterator[tuple[dict[str, str], Path]]:
    """(environment with SLURM_CONF, the cluster's folder) of a private single-node Slurm cluster (real
    munged, slurmctld, slurmd; local/slurm_test_cluster.sh), stopped by pid at the end of the session.
    Skips with the reason where it cannot start (not root, packages missing)."""
    if os.geteuid() != 0:
        pytest.skip("the Slurm test cluster needs root to start its daemons")
    needed = (*SLURM_DAEMONS, "mungekey", "sbatch", "srun", "squeue", "scancel")
    missing = [t for t in needed if not shutil.which(t)]
    if missing:
        pytest.skip(
            f"Slurm test cluster: {', '.join(missing)} not installed (apt-get install slurm-wlm munge)"
        )
    folder = tmp_path_factory.mktemp("slurm")
    start = subprocess.run(
        ["bash", str(SLURM_CLUSTER_SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert start.returncode == 0, start.stderr
    env = dict(
        os.environ,
        SLURM_CONF=start.stdout.strip().split("=", 1)[1],
        SASV_SLURM_POLL="0.5",
        OMP_NUM_THREADS="1",
        SASV_VENV=str(Path(sys.executable).parents[1]),
        # the test node has this machine's cores (2): a training job asking for the default 8 per rank
        # (utils/torchrun.sh) would wait forever for a node that has them
        SASV_TRAIN_CPUS_PER_RANK="1",
    )
    pids = [(folder / "run" / f"{name}.pid").read_text().strip() for name in SLURM_DAEMONS]
    try:
        yield env, folder
    finally:
        stop = ["bash", str(SLURM_CLUSTER_SCRIPT), "stop", str(folder)]
        subprocess.run(stop, capture_output=True, timeout=60)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids), "a Slurm daemon survived stop"


def sbatch_and_wait(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> str:
    """Submit ``argv`` (an sbatch command line) and wait until the job has left the queue, polling every
    0.2 s (``sbatch --wait`` polls at growing intervals: tens of seconds lost per test); returns the job
    id. Whether the job succeeded is for the caller to check in its output."""
    import time

    out = subprocess.run(
        [*argv[:1], "--parsable", *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip().split(";")[0]
    deadline = time.monotonic() + timeout
    while True:
        queue = subprocess.run(["squeue", "-h", "-j", job_id], env=env, capture_output=True, text=True)
        if queue.returncode != 0 or not queue.stdout.strip():
            return job_id
        assert time.monotonic() < deadline, f"Slurm job {job_id} still queued after {timeout} s"
        time.sleep(0.2)


def default_sigint() -> None:
    """``preexec_fn`` of a child that a test interrupts with SIGINT: the default disposition, so Python
    raises KeyboardInterrupt even when the test run inherited SIGINT ignored (started in the background)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
