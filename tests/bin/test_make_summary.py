"""``sasv make_summary`` (run_test stage 3): the missing-row hints, and tables that say when their rows'
records disagree about a model or a set."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from sasv.bin.make_summary import main as make_summary
from sasv.exp_layout import ExpLayout
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA, write_tiny_conf


def _hints(exp: Path) -> list[str]:
    summary = (exp / "summary.md").read_text()
    return [line for line in summary.split("## Missing rows\n\n", 1)[1].splitlines() if line.startswith("- ")]


def test_missing_row_hints_name_the_cm_conf_and_are_shell_quoted(tmp_path) -> None:
    """The hint is a command to paste: it names the CM conf the row needs (it did not) and quotes every
    path (a conf or data dir with a space broke it)."""
    confs = tmp_path / "my confs"
    confs.mkdir()
    asv, cm = write_tiny_conf(confs, TINY_ECAPA), write_tiny_conf(confs, TINY_AASIST)
    exp, data = tmp_path / "exp", tmp_path / "my data"
    argv = ["--exp_dir", str(exp), "--data_dir", str(data), "--asv_confs", str(asv), "--cm_confs", str(cm)]
    layout = ExpLayout(exp)
    expected_options = [
        "--asv_conf",
        str(asv),
        "--cm_conf",
        str(cm),
        "--data_dir",
        str(data),
        "--exp_dir",
        str(exp),
    ]
    for made, why, command in (
        ([], "no embeddings", ["run_spk_ebd_extract.sh", *expected_options, "--stage", "2"]),
        (
            [("tiny_ecapa", "asv")],
            "no CM scores",
            ["run_spk_ebd_extract.sh", *expected_options, "--stage", "3"],
        ),
        ([("tiny_aasist", "cm")], "not scored", ["run_test_nonorm.sh", *expected_options]),
    ):
        for name, kind in made:
            layout.model_record(name, kind).parent.mkdir(parents=True)
            layout.model_record(name, kind).write_text("{}")
        assert make_summary(argv) == 0
        hint = _hints(exp)[0]
        prefix = f"- tiny_ecapa + tiny_aasist (nonorm): {why}: run "
        assert hint.startswith(prefix), hint
        assert shlex.split(hint[len(prefix) :]) == command
        assert f"'{asv}'" in hint and f"'{data}'" in hint
    assert len(_hints(exp)) == 2 and "(l2norm): not scored: run run_test_l2norm.sh" in _hints(exp)[1]


def _system(exp: Path, asv: str, variant: str, cm_sha: str) -> None:
    folder = exp / asv / "aasist" / variant
    folder.mkdir(parents=True)
    record = {
        "system": f"{asv}/aasist/{variant}", "asv": asv, "cm": "aasist", "norm": variant, "variant": variant,
        "fusion": "product", "benchmark": "la", "metrics": {"a_dcf": ["paper"], "tandem": False},
        "models": [
            {"name": asv, "kind": "asv", "arch": "x", "conf": f"{asv}.yaml", "conf_sha256": "c" * 64,
             "checkpoint": f"{asv}.pt", "checkpoint_sha256": "e" * 64, "pretrained": True, "trained_on": None,
             "embedding_dtype": "float32"},
            {"name": "aasist", "kind": "cm", "arch": "aasist", "conf": "aasist.yaml", "conf_sha256": "d" * 64,
             "checkpoint": "aasist.pt", "checkpoint_sha256": cm_sha, "pretrained": True, "trained_on": None},
        ],
        "results": {"dev": {"sasv_eer": 0.1, "sv_eer": 0.05, "spf_eer": 0.02}},
    }  # fmt: skip
    (folder / "results.json").write_text(json.dumps(record))


def test_a_table_of_two_versions_of_one_model_says_so(tmp_path) -> None:
    """Two rows of one table scored with two checkpoints of the CM named aasist (re-run between the two
    scorings): the table says so, naming the systems; RESULTS.md lists both versions, not the first one
    found under the name."""
    exp = tmp_path / "exp"
    _system(exp, "ecapa", "nonorm", "a" * 64)
    _system(exp, "resnet", "nonorm", "a" * 64)
    assert make_summary(["--exp_dir", str(exp)]) == 0
    assert "Not made from the same inputs" not in (exp / "summary.md").read_text()
    _system(exp, "ecapa", "l2norm", "b" * 64)
    assert make_summary(["--exp_dir", str(exp)]) == 0
    summary = (exp / "summary.md").read_text()
    assert (
        "> **- model aasist: checkpoint aaaaaaaaaaaa in ecapa/aasist/nonorm, resnet/aasist/nonorm; "
        "checkpoint bbbbbbbbbbbb in ecapa/aasist/l2norm**"
    ) in summary
    results = (exp / "RESULTS.md").read_text()
    assert len([line for line in results.splitlines() if line.startswith("| aasist | cm |")]) == 2
