"""The exp/ layout: one owner of every path and system name, and names that cannot collide."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sasv.exp_layout import (
    ExpLayout,
    LayoutError,
    check_model_name,
    cm_scores_output,
    embeddings_output,
    variant,
)
from tests.conftest import REPO_ROOT


def test_paths_of_every_stage(tmp_path) -> None:
    layout = ExpLayout(tmp_path)
    emb = layout.stage_output("ecapa", "asv", "dev")
    assert emb == embeddings_output(tmp_path / "ecapa" / "embeddings" / "dev")
    assert (emb.file.name, emb.chunk_dir.name, emb.marker.name) == ("xvector.scp", "chunks", "xvector.done")
    cm = layout.stage_output("aasist", "cm", "eval")
    assert cm == cm_scores_output(tmp_path / "aasist" / "scores" / "eval" / "cm_scores.txt")
    assert cm.marker.name == "cm_scores.txt.done" and cm.chunk_dir.name == ".cm_scores.txt.chunks"
    assert layout.model_record("ecapa", "asv") == tmp_path / "ecapa" / "embeddings" / "model.json"
    assert layout.system_dir("ecapa", "aasist_l", "l2norm") == tmp_path / "ecapa" / "aasist_l" / "l2norm"
    assert layout.fusion_dir("nonorm_asnorm") == tmp_path / "fusion" / "logreg_nonorm_asnorm"


def test_system_names_split_back_unambiguously() -> None:
    """`<asv>_<cm>` could not tell ecapa_tdnn + aasist_l from ecapa_tdnn_aasist + l; paths can."""
    name = ExpLayout.system_name("ecapa_tdnn", "aasist_l", variant("l2norm", "asnorm"))
    assert name == "ecapa_tdnn/aasist_l/l2norm_asnorm"
    assert name.split("/") == ["ecapa_tdnn", "aasist_l", "l2norm_asnorm"]
    assert variant("nonorm") == "nonorm"


def test_a_fusion_rule_other_than_the_default_has_its_own_system_dir() -> None:
    """--fusion sum after the default product must not overwrite the product system's outputs; the default
    keeps the paths every existing output has."""
    assert variant("nonorm", "none", "product") == "nonorm" and variant("l2norm", "asnorm") == "l2norm_asnorm"
    assert variant("nonorm", "none", "sum") == "nonorm_sum"
    assert variant("l2norm", "asnorm", "sum") == "l2norm_asnorm_sum"
    names = {
        variant(n, s, f) for n in ("nonorm", "l2norm") for s in ("none", "asnorm") for f in ("product", "sum")
    }
    assert len(names) == 8


@pytest.mark.parametrize("name", ["a/b", "", "-x", "a b", "fusion", "logs", "embeddings", "scores"])
def test_names_that_would_break_the_layout_are_refused(name: str) -> None:
    with pytest.raises(LayoutError, match="conf.yaml: name"):
        check_model_name(name, "conf.yaml")


def test_results_records_find_systems_and_fusions_only(tmp_path) -> None:
    layout = ExpLayout(tmp_path)
    wanted = [layout.system_dir("a", "c", "nonorm"), layout.fusion_dir("nonorm")]
    for folder in [*wanted, tmp_path / "a" / "embeddings" / "dev"]:
        folder.mkdir(parents=True)
        (folder / "results.json").write_text("{}")
    assert layout.results_records() == sorted(f / "results.json" for f in wanted)


def test_the_shell_query_prints_what_the_library_computes(tmp_path) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("name: my_asv\nkind: asv\narch: ecapa_tdnn\n")
    cm = REPO_ROOT / "conf" / "cm" / "aasist_l.yaml"
    common = ["--exp_dir", str(tmp_path / "exp"), "--norm", "l2norm", "--score_norm", "asnorm"]
    run = [sys.executable, "-m", "sasv", "exp_path"]
    out = subprocess.run(
        [*run, "system_name", "--asv_conf", str(conf), "--cm_conf", str(cm), *common],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert out == "my_asv/aasist_l/l2norm_asnorm"
    out = subprocess.run(
        [*run, "fusion_dir", *common], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == str(ExpLayout(tmp_path / "exp").fusion_dir("l2norm_asnorm"))
    out = subprocess.run(
        [*run, "system_dir", "--asv_conf", str(conf), "--cm_conf", str(cm), *common, "--fusion", "sum"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert out == str(tmp_path / "exp" / "my_asv" / "aasist_l" / "l2norm_asnorm_sum")
    layout = ExpLayout(tmp_path / "exp")
    for extra, name in (([], "my_asv_trained"), (["--name", "mine"], "mine")):
        out = subprocess.run(
            [*run, "train_dir", "--exp_dir", str(tmp_path / "exp"), "--conf", str(conf), *extra],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert out == str(layout.train_dir(name))
    assert layout.trained_name("my_asv") == "my_asv_trained"
