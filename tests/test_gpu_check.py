"""local/gpu_check.sh on the CPU (DEV=cpu): every row present, ok or skipped with a reason, exit 0; and a row
made to fail through its test hook (GPU_CHECK_FAIL) is FAILED, the exit status nonzero, and the rows after it
still run. The GPU rows themselves run where a GPU is lent (`local/gpu_check.sh`, docs/PERFORMANCE.md)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

SCRIPT = REPO_ROOT / "local" / "gpu_check.sh"
FAMILIES = ("ecapa_tdnn", "se_resnet34", "se_res2net50", "res2next50", "wavlm_ecapa")
ROWS = [
    "corpus",
    "pytest_gpu",
    *(f"extract_{f}_{p}" for f in FAMILIES for p in ("fp32", "bf16")),
    "cm_nj1",
    "cm_nj2",
    "cm_compile",
    *(f"train_{k}_{p}" for k in ("asv", "cm") for p in ("fp32", "bf16", "fp16")),
    "probe_wavlm_tiny",
    "probe_ecapa_tdnn",
    "bench",
]
# on the CPU these have no meaning (or, compile, cost a minute): skipped, each with its reason
SKIPPED_ON_CPU = {
    "pytest_gpu": "no CUDA device",
    **{f"extract_{f}_fp32": "the reference itself" for f in FAMILIES},
    "cm_compile": "--cpu_compile true",
    **{f"train_{k}_{p}": "GPU" for k in ("asv", "cm") for p in ("bf16", "fp16")},
    "probe_wavlm_tiny": "the device is the CPU",
    "probe_ecapa_tdnn": "the device is the CPU",
}


def run_check(out: Path, *options: str, fail: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, DEV="cpu", OMP_NUM_THREADS="1", GPU_CHECK_FAIL=fail)
    return subprocess.run(
        ["bash", str(SCRIPT), "--out", str(out), *options],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def table_rows(out: Path) -> dict[str, dict[str, str]]:
    """The rows of <out>/gpu_check.md by check name (every column kept)."""
    lines = (out / "gpu_check.md").read_text().splitlines()
    header_at = lines.index("| check | device | status | seconds | key figure(s) | log |")
    rows = {}
    for line in lines[header_at + 2 :]:
        if not line.startswith("|"):
            break
        name, device, status, seconds, key, log = (c.strip() for c in line.strip("|").split("|"))
        assert name not in rows, f"row {name} twice"
        rows[name] = {"device": device, "status": status, "seconds": seconds, "key": key, "log": log}
    return rows


def test_cpu_run_has_every_row_ok_or_skipped_with_its_reason(tmp_path) -> None:
    out = tmp_path / "out dir"  # a space: every path is quoted
    run = run_check(out)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    rows = table_rows(out)
    assert list(rows) == ROWS
    assert run.stdout.rstrip().endswith("0 check(s) FAILED.")  # the table is printed at the end
    for name, row in rows.items():
        assert row["device"].startswith("cpu"), (name, row)
        assert Path(row["log"]).is_file(), (name, row)
        float(row["seconds"])
        if name in SKIPPED_ON_CPU:
            assert row["status"] == "skipped", (name, row)
            assert SKIPPED_ON_CPU[name] in row["key"], (name, row)
        else:
            assert row["status"] == "ok", (name, row, Path(row["log"]).read_text()[-2000:])
    # key figures that say the check compared something
    assert "max rel diff" in rows["extract_wavlm_ecapa_bf16"]["key"]
    assert "max rel diff 0.00e+00" in rows["cm_nj2"]["key"]  # 2 jobs on the CPU: the same bits
    assert rows["train_asv_fp32"]["key"].startswith(
        "1 process (CPU smoke; 2-rank gloo: tests/train); epochs 2"
    )
    assert "utt/s" in rows["bench"]["key"]


def test_a_failed_row_fails_the_run_and_later_rows_still_run(tmp_path) -> None:
    out = tmp_path / "out"
    run = run_check(out, "--steps", "pytest cm", fail="pytest_gpu cm_nj1")
    assert run.returncode != 0
    rows = table_rows(out)
    assert list(rows) == ["corpus", "pytest_gpu", "cm_nj1", "cm_nj2", "cm_compile"]
    for name in ("pytest_gpu", "cm_nj1"):
        assert rows[name]["status"] == "FAILED"
        assert "GPU_CHECK_FAIL" in rows[name]["key"]
    # after the failures: cm_nj2 computed its own --nj 1 reference and compared with it
    assert rows["cm_nj2"]["status"] == "ok", rows["cm_nj2"]
    assert "vs --nj 1" in rows["cm_nj2"]["key"]
    assert rows["cm_compile"]["status"] == "skipped"
    assert run.stdout.rstrip().endswith("2 check(s) FAILED.")
