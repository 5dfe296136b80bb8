"""bench/scale.py measures the right things: its synthetic set scores the same streamed or loaded, its
float16 arks hold the float32 rows rounded, and its memory figures come from the measured process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import scale  # noqa: E402

SMALL = {"utts": 3_000, "trials": 4_000, "speakers": 20, "enrol_utts": 58}


def _score(folder: Path, in_memory: bool = False) -> tuple[float, dict]:
    _, peak, text = scale.run_measured(
        [scale.__file__, "score_child", "--work", str(folder), *(["--in_memory"] if in_memory else [])]
    )
    return peak, json.loads(text.strip().splitlines()[-1])


def test_synthetic_set_scores_the_same_streamed_or_loaded_and_float16_is_rounded(tmp_path):
    for dtype in ("float32", "float16"):
        (tmp_path / dtype).mkdir()
        scale.make_scale_set(tmp_path / dtype, 64, dtype, seed=3, sizes=SMALL)
    peak, streamed = _score(tmp_path / "float32")
    _, loaded = _score(tmp_path / "float32", in_memory=True)
    streamed.pop("seconds"), loaded.pop("seconds")
    assert streamed == loaded
    assert streamed["counts"]["total"] == SMALL["trials"] and streamed["n_enrol"] == SMALL["enrol_utts"]
    assert 0.005 < streamed["sv_eer"] < 0.3  # speaker structure: neither perfect nor chance
    assert 20 < peak < 2000  # MiB of the child itself (a fork's inherited high-water mark would be more)
    _score(tmp_path / "float16")
    asv32 = np.load(tmp_path / "float32" / "asv_xvector.npy")
    asv16 = np.load(tmp_path / "float16" / "asv_xvector.npy")
    assert 0 < np.abs(asv16 - asv32).max() < 5e-3
    arks = {d: sum(p.stat().st_size for p in (tmp_path / d).glob("*.ark")) for d in ("float32", "float16")}
    assert arks["float16"] < 0.6 * arks["float32"]


def test_metrics_rows_compare_the_tool_with_the_sklearn_reader():
    rows = scale.metrics_rows(3_000, repeats=1)
    assert rows[0].startswith("| `sasv compute_metrics`") and rows[1].startswith("| plain sklearn")
    recipe, reference = (
        np.array(part.split(")")[0].split(", "), dtype=float)
        for part in rows[-1].split("recipe (")[1].split("sklearn (")
    )
    np.testing.assert_allclose(recipe, reference, atol=0.5)  # EER definitions differ by one trial's step


@pytest.mark.parametrize("module", [True, False])
def test_run_measured_reports_the_childs_own_peak(tmp_path, module):
    script = tmp_path / "grow.py"
    script.write_text("import numpy as np\nx = np.ones(64 * 2**20 // 8)\nprint('done')\n")
    args = ["-m", "json.tool", "--help"] if module else [str(script)]
    _, peak, out = scale.run_measured(args)
    if module:
        assert peak < 60 and "usage" in out.lower()
    else:
        assert out.strip() == "done" and peak > 64
