"""The exp/ layout: one owner of every path and system name, and names that cannot collide."""

from __future__ import annotations

import pytest

from sasv.exp_layout import (
    RESULTS_RECORD,
    ExpLayout,
    LayoutError,
    check_model_name,
    cm_scores_output,
    embeddings_output,
    score_file,
    submission_file,
    system_file,
    variant,
)


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
    assert (
        layout.cm_benchmark_dir("aasist", "asvspoof2021_la", "eval")
        == tmp_path / "aasist" / "asvspoof2021_la_eval"
    )


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
    others = [tmp_path / "a" / "embeddings" / "dev", layout.cm_benchmark_dir("c", "asvspoof2021_la", "eval")]
    for folder in [*wanted, *others]:
        folder.mkdir(parents=True)
        (folder / "results.json").write_text("{}")
    assert layout.results_records() == sorted(f / "results.json" for f in wanted)


def test_a_systems_files_are_named_here(tmp_path) -> None:
    """Every tool that writes or reads a system's score files asks the layout (score_trials, fuse_systems,
    analyse_system, compare_systems): one spelling of each name."""
    assert score_file(tmp_path, "dev") == tmp_path / "scores_dev.txt"
    assert submission_file(tmp_path, "eval") == tmp_path / "scores_eval.sasv.txt"
    assert system_file(tmp_path, "track2_scores", "eval") == tmp_path / "scores_eval.track2.tsv"
    assert RESULTS_RECORD == "results.json"
