"""End to end: the shell stages on a generated mini corpus, checked against an independent recomputation.

Small ASV models (ECAPA-TDNN C=16, a narrow SE-ResNet-34) and AASIST run with random weights, so the test
exercises every stage in seconds; the numbers themselves mean nothing, and the tables must say so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from tests.conftest import REPO_ROOT, run_recipe, tool
from tests.tiny_confs import TINY_ECAPA, TINY_RESNET, write_tiny_conf

pytestmark = pytest.mark.slow

TINY_CONFS = {"tiny_ecapa": {**TINY_ECAPA, "embedding_dim": 192}, "tiny_resnet": TINY_RESNET}


def _official_eer(positive: np.ndarray, negative: np.ndarray) -> float:
    """The SASV 2022 baseline's EER, written out independently of sasv.metrics.eer."""
    labels = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    fpr, tpr, _ = roc_curve(labels, np.concatenate([positive, negative]), pos_label=1)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    work = tmp_path_factory.mktemp("recipe")
    confs = []
    for raw in TINY_CONFS.values():
        confs.append(str(write_tiny_conf(work, raw)))
    run_recipe(
        [*tool("make_mini_corpus"), "--out", str(work / "corpus"), "--seed", "7",
         "--speakers", "2", "--bonafide-per-spk", "5", "--enroll-per-spk", "2"],
    )  # fmt: skip
    common = ["--data_dir", str(work / "data"), "--exp_dir", str(work / "exp"), "--asv_conf", " ".join(confs)]
    logs = {
        "extract": run_recipe(
            [
                "bash",
                "run_spk_ebd_extract.sh",
                *common,
                "--la_root",
                str(work / "corpus" / "LA"),
                "--device",
                "cpu",
                "--allow_random_init",
                "true",
                "--cohort",
                "true",
            ],
        ),  # fmt: skip
        "nonorm": run_recipe(["bash", "run_test_nonorm.sh", *common]),
        "l2norm": run_recipe(["bash", "run_test_l2norm.sh", *common]),
    }
    return work, logs


def test_stage_logs_and_data_dirs(recipe):
    work, logs = recipe
    assert re.search(r"target=\d+ nontarget=\d+ spoof=\d+", logs["extract"])
    for set_name in ("dev", "eval"):
        for f in ("wav.scp", "utt2spk", "enroll", "trials"):
            lines = (work / "data" / set_name / f).read_text().splitlines()
            assert lines == sorted(lines), f"{f} is not sorted"
    assert list((work / "exp" / "logs").glob("run_spk_ebd_extract.*.log"))


def test_embeddings_complete_with_six_rows(recipe):
    work, _ = recipe
    for model, dim in (("tiny_ecapa", 192), ("tiny_resnet", 16)):
        for set_name in ("dev", "eval"):
            wav_scp = (work / "data" / set_name / "wav.scp").read_text().split("\n")
            emb = dict(kaldiio.load_scp(str(work / "exp" / model / "embeddings" / set_name / "xvector.scp")))
            assert len(emb) == len([w for w in wav_scp if w])
            assert all(np.asarray(v).shape == (6, dim) for v in emb.values())


@pytest.mark.parametrize("norm", ["nonorm", "l2norm"])
@pytest.mark.parametrize("model", ["tiny_ecapa", "tiny_resnet"])
def test_tables_agree_with_recomputation_from_score_files(recipe, model, norm):
    work, _ = recipe
    system_dir = work / "exp" / model / "aasist" / norm
    record = json.loads((system_dir / "results.json").read_text())
    summary = (work / "exp" / "summary.md").read_text()
    row = next(line for line in summary.splitlines() if line.startswith(f"| {model} | {norm} |"))
    cells = [c.strip() for c in row.strip("|").split("|")][2:]
    expected_cells = []
    for set_name in ("dev", "eval"):
        lines = [ln.split() for ln in (system_dir / f"scores_{set_name}.txt").read_text().splitlines()]
        key = np.array([ln[3] for ln in lines])
        asv, cm, fused = (np.array([float(ln[i]) for ln in lines]) for i in (4, 5, 6))
        np.testing.assert_allclose(fused, cm * (asv + 1) / 2, rtol=1e-6, atol=1e-7)
        tar = fused[key == "target"]
        eers = {
            "sasv_eer": _official_eer(tar, fused[key != "target"]),
            "sv_eer": _official_eer(tar, fused[key == "nontarget"]),
            "spf_eer": _official_eer(tar, fused[key == "spoof"]),
        }
        for name, value in eers.items():
            assert record["results"][set_name][name] == pytest.approx(value, abs=1e-9)
            expected_cells.append(f"{100 * value:.2f}")
        assert record["results"][set_name]["counts"]["target"] == int((key == "target").sum())
    assert cells[: len(expected_cells)] == expected_cells
    assert "RANDOMLY INITIALISED" in (system_dir / "results.md").read_text()


def test_cosine_matches_stored_embeddings(recipe):
    work, _ = recipe
    data = work / "data" / "eval"
    enroll = {ln.split()[0]: ln.split()[1:] for ln in (data / "enroll").read_text().splitlines()}
    emb = {
        u: torch.from_numpy(np.array(m))
        for u, m in kaldiio.load_scp(
            str(work / "exp" / "tiny_ecapa" / "embeddings" / "eval" / "xvector.scp")
        ).items()
    }
    cos = torch.nn.CosineSimilarity(dim=1, eps=1e-6)
    for norm in ("nonorm", "l2norm"):

        def rows(u, norm=norm):
            return torch.nn.functional.normalize(emb[u], dim=1) if norm == "l2norm" else emb[u]

        scores = (work / "exp" / "tiny_ecapa" / "aasist" / norm / "scores_eval.txt").read_text().splitlines()
        for line in scores[:: max(1, len(scores) // 15)]:
            spk, utt, _, _, asv, _, _ = line.split()
            model = torch.cat([rows(u) for u in enroll[spk]]).mean(0, keepdim=True)
            expected = cos(model, rows(utt).mean(0, keepdim=True)).item()
            assert float(asv) == pytest.approx(expected, abs=2e-6)


def test_summary_says_random_weights(recipe):
    work, _ = recipe
    summary = (work / "exp" / "summary.md").read_text()
    assert "RANDOMLY INITIALISED" in summary
    # 4 systems, each in its results table and in the table of its 95 % intervals beside it
    assert summary.count("| tiny_") == 8 and summary.count("How sure: ") == 2


def test_rerun_skips_finished_work(recipe):
    work, _ = recipe
    scp = work / "exp" / "tiny_ecapa" / "embeddings" / "dev" / "xvector.scp"
    before = scp.stat().st_mtime_ns
    out = run_recipe(
        ["bash", "run_spk_ebd_extract.sh", "--stage", "2", "--data_dir", str(work / "data"),
         "--exp_dir", str(work / "exp"), "--asv_conf", str(work / "tiny_ecapa.yaml"), "--device", "cpu",
         "--allow_random_init", "true"],
    )  # fmt: skip
    assert "complete for these inputs: skipping" in out
    assert scp.stat().st_mtime_ns == before


def test_rescoring_is_byte_identical(recipe):
    work, _ = recipe
    outputs = [p for p in sorted((work / "exp").glob("tiny_*/aasist/nonorm/*")) if not p.name.startswith(".")]
    outputs.append(work / "exp" / "summary.md")
    before = {p: p.read_bytes() for p in outputs}
    common = ["--data_dir", str(work / "data"), "--exp_dir", str(work / "exp")]
    confs = " ".join(str(work / f"{n}.yaml") for n in TINY_CONFS)
    run_recipe(["bash", "run_test_nonorm.sh", *common, "--asv_conf", confs])
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path} changed on a re-run"


def test_scoring_refuses_embeddings_of_a_changed_conf(recipe):
    work, _ = recipe
    conf = work / "tiny_ecapa.yaml"
    original = conf.read_text()
    try:
        conf.write_text(original.replace("C: 16", "C: 24"))
        env = dict(os.environ, OMP_NUM_THREADS="1", SASV_VENV=str(Path(sys.executable).parents[1]))
        proc = subprocess.run(
            ["bash", "run_test_l2norm.sh", "--data_dir", str(work / "data"), "--exp_dir", str(work / "exp"),
             "--asv_conf", str(conf)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        conf.write_text(original)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "was made from other inputs than the current ones (changed: conf" in output
    assert "Traceback" not in output, "a stale output is an expected error: one ERROR line, no traceback"
    assert len([line for line in output.splitlines() if "ERROR:" in line]) == 1


def test_asnorm_variant(recipe):
    work, _ = recipe
    common = ["--data_dir", str(work / "data"), "--exp_dir", str(work / "exp")]
    conf = str(work / "tiny_ecapa.yaml")
    run_recipe(["bash", "run_test_l2norm.sh", *common, "--asv_conf", conf, "--score_norm", "asnorm",
                "--top_k", "3", "--stop_stage", "1", "--a_dcf_cost", "paper sasv2024"])  # fmt: skip
    system = work / "exp" / "tiny_ecapa" / "aasist"
    record = json.loads((system / "l2norm_asnorm" / "results.json").read_text())
    assert record["variant"] == "l2norm_asnorm" and record["norm"] == "l2norm" and record["top_k"] == 3
    # LA with both a-DCF cost models (--a_dcf_cost), each in its own named column; no tandem metrics on LA
    assert record["benchmark"] == "la" and record["metrics"] == {
        "a_dcf": ["paper", "sasv2024"],
        "tandem": False,
        "track1": False,
    }
    assert {"min_a_dcf[paper]", "min_a_dcf[sasv2024]"} <= set(record["results"]["eval"])
    assert "min_t_dcf" not in record["results"]["eval"]
    assert "| a-DCF[paper] | a-DCF[sasv2024] |" in (system / "l2norm_asnorm" / "analysis.md").read_text()
    default = json.loads((system / "l2norm" / "results.json").read_text())
    assert (
        default["metrics"]["a_dcf"] == ["paper"] and "min_a_dcf[sasv2024]" not in default["results"]["eval"]
    )
    plain = [ln.split() for ln in (system / "l2norm" / "scores_eval.txt").read_text().splitlines()]
    normed = [ln.split() for ln in (system / "l2norm_asnorm" / "scores_eval.txt").read_text().splitlines()]
    assert [p[:4] for p in plain] == [n[:4] for n in normed]
    asv = np.array([float(n[4]) for n in normed])
    cm = np.array([float(n[5]) for n in normed])
    assert not np.allclose(asv, [float(p[4]) for p in plain])
    np.testing.assert_allclose([float(n[6]) for n in normed], cm / (1 + np.exp(-asv)), rtol=1e-9)


def test_asnorm_top_k_is_checked_and_capped_at_the_cohort(recipe, tmp_path):
    """The default --top_k 300 with the mini corpus's small cohort runs, on the whole cohort, and says so
    (it crashed); --top_k 0, -3 are one ERROR line; 100000 is capped like 300."""
    work, _ = recipe
    exp = tmp_path / "exp"
    shutil.copytree(work / "exp", exp, ignore=shutil.ignore_patterns(".lock", "logs"))
    n_cohort = len((work / "data" / "train_cohort" / "wav.scp").read_text().splitlines())
    assert 2 <= n_cohort < 300
    common = ["--data_dir", str(work / "data"), "--exp_dir", str(exp), "--asv_conf",
              str(work / "tiny_ecapa.yaml"), "--score_norm", "asnorm", "--stop_stage", "1",
              "--bootstrap", "0", "--plots", "false"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", SASV_VENV=str(Path(sys.executable).parents[1]))
    for bad in ("0", "-3"):
        proc = subprocess.run(["bash", "run_test_nonorm.sh", *common, "--top_k", bad], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True)  # fmt: skip
        errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR:" in line]
        assert proc.returncode != 0 and len(errors) == 1, proc.stdout + proc.stderr
        assert f"ERROR: --top_k {bad}: AS-norm averages the K highest cohort scores" in errors[0]
        assert "Traceback" not in proc.stdout + proc.stderr
    system = exp / "tiny_ecapa" / "aasist" / "nonorm_asnorm"
    records = {}
    for top_k in ("300", "100000"):
        out = run_recipe(["bash", "run_test_nonorm.sh", *common, "--top_k", top_k])
        assert f"--top_k {top_k} is more than the {n_cohort} utterances of the cohort" in out
        records[top_k] = json.loads((system / "results.json").read_text())
        assert records[top_k]["top_k"] == n_cohort and records[top_k]["top_k_requested"] == int(top_k)
        assert set(records[top_k]["data"]) == {"dev", "eval", "train_cohort"}  # the cohort is data too
    assert records["300"]["results"] == records["100000"]["results"]


def test_test_stages_through_a_job_command(recipe, tmp_path):
    """run_test_nonorm.sh --cmd utils/run.sh: every step runs as a logged task, and the scored systems
    (recomputed in a copy of exp/ without them) are the terminal run's byte for byte."""
    work, _ = recipe
    exp = tmp_path / "exp"
    shutil.copytree(work / "exp", exp, ignore=shutil.ignore_patterns(".lock", "logs"))
    systems = sorted(exp.glob("tiny_*/aasist/nonorm"))
    assert systems
    for system in systems:
        shutil.rmtree(system)
    confs = " ".join(str(work / f"{n}.yaml") for n in TINY_CONFS)
    out = run_recipe(["bash", "run_test_nonorm.sh", "--data_dir", str(work / "data"), "--exp_dir", str(exp),
                "--asv_conf", confs, "--stop_stage", "1", "--cmd", "utils/run.sh"])  # fmt: skip
    assert "--cmd 'utils/run.sh'" in out
    for system in systems:
        reference = work / "exp" / system.relative_to(exp)
        for name in ("scores_dev.txt", "scores_eval.txt", "results.json", "analysis.json"):
            assert (system / name).read_bytes() == (reference / name).read_bytes(), system / name
    job_logs = sorted(p.name for p in (exp / "logs").glob("run_test_nonorm.*/*.log"))
    assert "score_trials.tiny_ecapa.aasist.nonorm.log" in job_logs, job_logs
