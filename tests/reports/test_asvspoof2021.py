"""The ASVspoof 2021 metrics of one subset and their tables: the trials of the subset only, every one scored,
conditions outside the package's lists said so; the table names the checkpoint and shows the published row
(the numbers themselves: tests/metrics/test_asvspoof2021_tables_parity.py, tests/bin/...)."""

from __future__ import annotations

import pytest

from sasv.corpora.asvspoof2021 import AsvTrial
from sasv.reports.asvspoof2021 import (
    PUBLISHED,
    EvaluationError,
    condition_results,
    results_table,
    system_cell,
)

UTT2SPF = {"a": "bonafide", "b": "spoof", "c": "bonafide", "d": "spoof", "e": "spoof"}
CONDITIONS = {
    "utt2subset": {"a": "eval", "b": "eval", "c": "eval", "d": "progress", "e": "eval"},
    "utt2codec": {"a": "none", "b": "none", "c": "alaw", "d": "alaw", "e": "amr"},
    "utt2attack": {"a": "bonafide", "b": "A07", "c": "bonafide", "d": "A08", "e": "A99"},
}
SCORES = {"a": 1.0, "b": 0.0, "c": 2.0, "d": 3.0, "e": 1.5}
ASV = [
    AsvTrial("s", "t1", "none", "bonafide", "target", "eval", 2.0),
    AsvTrial("s", "t2", "none", "bonafide", "nontarget", "eval", -2.0),
    AsvTrial("s", "t3", "none", "A07", "spoof", "eval", 1.0),
]


def test_one_subset_and_its_counts() -> None:
    results = condition_results("LA", SCORES, UTT2SPF, CONDITIONS, ASV, "eval")
    assert results["subset"] == "eval"
    assert results["counts"] == {
        "bonafide": {"pooled": 2, "none": 1, "alaw": 1},
        "spoof": {"pooled": 2, "none": 1, "amr": 1},
    }
    # d (progress) is left out: bona fide 1.0, 2.0 vs spoofs 0.0, 1.5
    assert results["pooled"]["eer"] == 0.5
    assert results["unlisted"] == {"rows": ["A99"], "columns": ["amr"]}
    table = results["table"]
    assert table["rows"][-1] == table["columns"][-1] == "pooled"
    assert table["column_tags"][:2] == ["C1", "C2"] and table["row_tags"][-1] == "Pooled"
    assert table["eer"][0][0] == 0.0  # A07 in none: 1.0 vs 0.0
    # the only ASV trials are of codec none: no t-DCF elsewhere, but the pooled cells have them all
    assert table["min_t_dcf"][0][0] is not None and table["min_t_dcf"][0][1] is None
    assert results["pooled"]["min_t_dcf"] is not None


def test_unscored_trials_and_empty_subsets_are_errors() -> None:
    with pytest.raises(EvaluationError, match=r"no score for 1 of the 4 eval trials: \['e'\]"):
        condition_results(
            "LA", {k: v for k, v in SCORES.items() if k != "e"}, UTT2SPF, CONDITIONS, ASV, "eval"
        )
    with pytest.raises(
        EvaluationError, match=r"no trial of the 'hidden' subset \(the data has: eval, progress\)"
    ):
        condition_results("LA", SCORES, UTT2SPF, CONDITIONS, ASV, "hidden")


def record(system: dict | None, note: str | None = None) -> dict:
    return {
        "title": "ASVspoof 2021 LA",
        "track": "LA",
        "cm_scores": "exp/aasist/scores/la2021_eval/cm_scores.txt",
        "cm_score": "logit_bonafide",
        "system": system,
        "published": vars(PUBLISHED["LA"]),
        "note": note,
        "results": condition_results("LA", SCORES, UTT2SPF, CONDITIONS, ASV, "eval"),
    }


def test_the_table_names_the_checkpoint_beside_the_published_row() -> None:
    sha = "0123456789abcdef"
    system = {
        "name": "aasist",
        "checkpoint": "pretrained/AASIST.pth",
        "checkpoint_sha256": sha,
        "pretrained": True,
    }
    md = results_table(record(system))
    assert md.startswith("### ASVspoof 2021 LA, eval subset: aasist\n")
    assert "| aasist (this run) | pretrained/AASIST.pth (sha256 0123456789ab) | 50.00 |" in md
    assert "| SSL-AASIST (wav2vec 2.0 XLS-R + AASIST), published | LA_model.pth | 0.82 | 0.2066 |" in md
    assert "Conditions the package's tables do not list (counted in the pooled cells only): amr, A99" in md
    assert "| bona fide trials | 1 | 1 | 0 | 0 | 0 | 0 | 0 | 2 |" in md
    assert "#### min t-DCF per attack x condition" in md
    md = results_table(record(None, note="RANDOM"))
    assert "| exp/aasist/scores/la2021_eval/cm_scores.txt (this run) | unknown (no model record" in md
    assert "**RANDOM**" in md


def test_system_cell() -> None:
    assert system_cell({"name": "x", "pretrained": False}) == "x: RANDOMLY INITIALISED (no checkpoint)"
    assert system_cell({"name": "x", "checkpoint": "a.pth", "pretrained": True}) == "a.pth"
    assert system_cell(None).startswith("unknown")
