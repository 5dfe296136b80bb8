"""local/setup_env.sh with a fake venv (python and pip stand-ins) and a fake nvidia-smi: a torch index URL
replaces a torch already in the venv once, and a GPU that torch cannot use is reported."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

FAKE_PYTHON = """#!/usr/bin/env bash
here="$(dirname "$0")/.."
case "$*" in
  *cuda.is_available*) [ -f "${here}/cuda_torch" ] ;;
  *torch.__version__*) echo 2.13.0+cpu ;;
  *"import torch"*) [ -f "${here}/torch_installed" ] ;;
esac
"""
FAKE_PIP = """#!/usr/bin/env bash
here="$(dirname "$0")/.."
echo "$*" >> "${here}/pip.log"
touch "${here}/torch_installed"
"""


@pytest.fixture
def venv(tmp_path) -> Path:
    """A venv with a CPU torch already installed (as a login node leaves it)."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", FAKE_PYTHON), ("pip", FAKE_PIP)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "venv" / "torch_installed").touch()
    smi = tmp_path / "smi"
    smi.mkdir()
    (smi / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)'\n")
    (smi / "nvidia-smi").chmod(0o755)
    return tmp_path / "venv"


def setup_env(venv: Path, *args: str, gpu: bool = True) -> subprocess.CompletedProcess:
    path = os.environ["PATH"]
    env = {**os.environ, "SASV_VENV": str(venv), "PATH": f"{venv.parent / 'smi'}:{path}" if gpu else path}
    env.pop("SASV_TORCH_INDEX_URL", None)
    return subprocess.run(
        ["bash", str(REPO_ROOT / "local" / "setup_env.sh"), *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def pip_calls(venv: Path) -> list[str]:
    log = venv / "pip.log"
    return log.read_text().splitlines() if log.exists() else []


def test_an_index_url_replaces_the_venvs_torch_once(venv) -> None:
    url = "https://download.pytorch.org/whl/cu128"
    run = setup_env(venv, "--torch-index-url", url)
    assert run.returncode == 0, run.stderr
    assert pip_calls(venv)[0] == f"install -q --force-reinstall --index-url {url} torch==2.13.0"
    (venv / "cuda_torch").touch()  # what the reinstall gave
    n = len(pip_calls(venv))
    again = setup_env(venv, "--torch-index-url", url)
    assert again.returncode == 0 and len(pip_calls(venv)) == n  # idempotent
    assert "WARNING" not in again.stderr


def test_a_gpu_this_torch_cannot_use_is_reported(venv) -> None:
    run = setup_env(venv)
    assert run.returncode == 0, run.stderr
    assert not any("torch" in call for call in pip_calls(venv))  # kept: no index URL asked for
    assert "nvidia-smi sees 1 GPU(s), but the venv's torch (2.13.0+cpu) cannot use them" in run.stderr
    assert "--torch-index-url" in run.stderr
    assert "WARNING" not in setup_env(venv, gpu=False).stderr


def test_an_unknown_option_is_one_line() -> None:
    run = subprocess.run(
        ["bash", str(REPO_ROOT / "local" / "setup_env.sh"), "--cuda"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2 and run.stderr.startswith("ERROR: setup_env: unknown option --cuda")
