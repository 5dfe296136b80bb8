"""ASVspoof 2021 CM score files: the recipe's cm_scores.txt (one column of it) and the package's
``TRIAL SCORE`` lines, told apart by their width; one error naming file and line for a bad line."""

from __future__ import annotations

import pytest

from sasv.corpora.protocols import ProtocolError
from sasv.extraction.outputs import MalformedOutputError
from sasv.scoring.asvspoof2021_files import read_asvspoof2021_scores

CM_SCORES = "LA_E_1 -1.5 2.25 0.9\nLA_E_2 0.5 -0.75 0.2\n"


def test_a_column_of_cm_scores(tmp_path) -> None:
    path = tmp_path / "cm_scores.txt"
    path.write_text(CM_SCORES)
    assert read_asvspoof2021_scores(path) == ({"LA_E_1": 2.25, "LA_E_2": -0.75}, "logit_bonafide")
    assert read_asvspoof2021_scores(path, "p_bonafide") == ({"LA_E_1": 0.9, "LA_E_2": 0.2}, "p_bonafide")
    assert read_asvspoof2021_scores(path, "logit_spoof")[0] == {"LA_E_1": -1.5, "LA_E_2": 0.5}
    path.write_text(CM_SCORES + "LA_E_3 1 2\n")
    with pytest.raises(MalformedOutputError, match=r"cm_scores.txt:3: expected 'UTT logit_spoof"):
        read_asvspoof2021_scores(path)


def test_the_package_s_format(tmp_path) -> None:
    path = tmp_path / "score.txt"
    path.write_text("LA_E_1 3.5\nLA_E_2 -1e-3\n")
    assert read_asvspoof2021_scores(path, "p_bonafide") == ({"LA_E_1": 3.5, "LA_E_2": -0.001}, "score")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("LA_E_1 1 2\n", r":1: expected 'TRIAL SCORE' or 'UTT logit_spoof logit_bonafide p_bonafide'"),
        ("LA_E_1 1\nLA_E_2\n", r":2: expected 'TRIAL SCORE', got 'LA_E_2'"),
        ("LA_E_1 1\nLA_E_2 inf\n", r":2: score 'inf' is not finite"),
        ("LA_E_1 1\nLA_E_2 -\n", r":2: score '-' is not a number"),
        ("LA_E_1 1\nLA_E_1 2\n", r": 1 duplicated trials: LA_E_1 \(lines 1, 2\)"),
    ],
)
def test_bad_lines_are_named(tmp_path, text: str, problem: str) -> None:
    path = tmp_path / "score.txt"
    path.write_text(text)
    with pytest.raises(ProtocolError, match=rf"^{path}{problem}"):
        read_asvspoof2021_scores(path)
