import json
import subprocess

import numpy as np
import pytest

from sasv.fusion import FusionModel
from sasv.metrics import sasv_eers
from sasv.score_files import read_score_file, read_submission_scores, write_score_file
from tests.conftest import tool
from tests.synthetic_scores import EVAL_ATTACKS, make_trials, second_system

SCRIPT = tool("fuse_systems")
SYSTEMS = ("ecapa/aasist/l2norm", "resnet/aasist/l2norm")


def run(*args, cwd):
    return subprocess.run([*SCRIPT, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def exp(tmp_path):
    for set_name, seed, attacks in (("dev", 30, ("A01", "A02", "A03")), ("eval", 40, EVAL_ATTACKS)):
        a = make_trials(seed=seed, attacks=attacks)
        write_score_file(tmp_path / "exp" / SYSTEMS[0] / f"scores_{set_name}.txt", a)
        write_score_file(tmp_path / "exp" / SYSTEMS[1] / f"scores_{set_name}.txt", second_system(a, seed + 1))
    (tmp_path / "exp" / SYSTEMS[0] / "results.json").write_text(
        json.dumps({"cm": "aasist", "note": "RANDOM"})
    )
    return tmp_path


def test_fuse_two_systems(exp):
    proc = run("--exp_dir", "exp", "--systems", *SYSTEMS, "--out", "exp/fusion/both", cwd=exp)
    assert proc.returncode == 0, proc.stderr
    out = exp / "exp" / "fusion" / "both"
    model = FusionModel.load(out / "weights.json")
    assert model.systems == SYSTEMS
    inputs = [read_score_file(exp / "exp" / s / "scores_eval.txt") for s in SYSTEMS]
    fused = read_score_file(out / "scores_eval.txt")
    np.testing.assert_array_equal(fused.fused, model.apply(inputs))
    assert (fused.utt == inputs[0].utt).all() and (fused.key == inputs[0].key).all()
    np.testing.assert_array_equal(read_submission_scores(out / "scores_eval.sasv.txt").fused, fused.fused)

    record = json.loads((out / "results.json").read_text())
    assert record["fusion"] == "logreg" and record["cm"] == "aasist" and record["note"] == "RANDOM"
    assert record["results"]["eval"]["sasv_eer"] == sasv_eers(fused.fused, fused.key)["sasv_eer"]
    assert {"min_a_dcf[paper]", "min_dcf_0.01", "counts"} <= set(record["results"]["dev"])
    product = record["input_results"][f"{SYSTEMS[0]} (product)"]["eval"]["sasv_eer"]
    assert product == sasv_eers(inputs[0].fused, inputs[0].key)["sasv_eer"]

    md = (out / "results.md").read_text()
    assert "RANDOM" in md and "optimistic" in md
    table = md[md.index("| system | fusion |") :].split("\n\n")[0].splitlines()[2:]
    assert "### Fusion both: how sure" in md  # the fusion's intervals follow the table
    assert [r.split("|")[1:3] for r in table] == [
        [f" {s} ", f" {rule} "] for s in SYSTEMS for rule in ("product", "sum")
    ] + [[" both ", " logreg "]]
    assert "| ecapa/aasist/l2norm | cm_logp |" in md


def test_mismatched_trial_order_is_an_error(exp):
    path = exp / "exp" / SYSTEMS[1] / "scores_eval.txt"
    lines = path.read_text().splitlines(keepends=True)
    lines[5], lines[6] = lines[6], lines[5]
    path.write_text("".join(lines))
    proc = run("--exp_dir", "exp", "--systems", *SYSTEMS, "--out", "exp/fusion/x", cwd=exp)
    assert proc.returncode == 1
    assert "ERROR:" in proc.stderr and "differ at trial" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_system_is_an_error(exp):
    proc = run("--exp_dir", "exp", "--systems", SYSTEMS[0], "absent/aasist/nonorm", "--out", "exp/f", cwd=exp)
    assert proc.returncode == 1 and "absent/aasist/nonorm/scores_dev.txt not found" in proc.stderr
