import json
import subprocess

import numpy as np
import pytest

from sasv.metrics.eer import sasv_eers
from sasv.scoring.learned_fusion import FusionModel
from sasv.scoring.score_files import read_score_file, read_submission_scores, write_score_file
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


def _record(system: str, cm_sha: str | None, trials_sha: str = "1" * 64) -> dict:
    asv = system.split("/")[0]
    dev = {"dir": f"/data/{trials_sha[:1]}/dev", "sha256": {"trials": trials_sha, "enroll": "e" * 64}}
    return {
        "system": system, "asv": asv, "cm": "aasist", "variant": "l2norm", "fusion": "product",
        "models": [
            {"name": asv, "kind": "asv", "checkpoint_sha256": asv * 8, "conf_sha256": "c" * 64,
             "embedding_dtype": "float32"},
            {"name": "aasist", "kind": "cm", "checkpoint_sha256": cm_sha, "conf_sha256": "d" * 64},
        ],
        "data": {"dev": dev},
    }  # fmt: skip


A, B = SYSTEMS


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (_record(B, "b" * 64),
         f"model aasist: checkpoint aaaaaaaaaaaa in {A}; checkpoint bbbbbbbbbbbb in {B}"),
        (_record(B, None), f"model aasist: checkpoint aaaaaaaaaaaa in {A}; random weights in {B}"),
        (_record(B, "a" * 64, "2" * 64),
         f"dev data: trials 111111111111 in {A} (/data/1/dev); trials 222222222222 in {B} (/data/2/dev)"),
    ],
)  # fmt: skip
def test_inputs_whose_records_disagree_are_refused(exp, second, message):
    """The score files hold the same trials, but the records say the CM was another checkpoint in each
    input (re-run under one name between the two scorings), or the dev set other data: the fusion of such
    inputs is no fusion of one system's parts; refused in one line, before anything is written."""
    (exp / "exp" / A / "results.json").write_text(json.dumps(_record(A, "a" * 64)))
    (exp / "exp" / B / "results.json").write_text(json.dumps(second))
    proc = run("--exp_dir", "exp", "--systems", *SYSTEMS, "--out", "exp/fusion/x", cwd=exp)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"ERROR: exp: the systems to fuse were not made from the same inputs: {message}; re-score the stale "
        "system(s) (run_test stage 1) so that they share them"
    )
    assert not (exp / "exp" / "fusion" / "x").exists()
    (exp / "exp" / B / "results.json").write_text(json.dumps(_record(B, "a" * 64)))
    proc = run("--exp_dir", "exp", "--systems", *SYSTEMS, "--out", "exp/fusion/x", cwd=exp)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((exp / "exp" / "fusion" / "x" / "results.json").read_text())
    assert [m["name"] for m in record["models"]] == ["ecapa", "aasist", "resnet"]
    assert record["data"] == _record(A, "a" * 64)["data"]
