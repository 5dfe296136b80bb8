"""Every ASVspoof 5 metric of both tracks against the organisers' evaluation package, run
(tests/fixtures/README.md).

The cases (``tests/oracles/asvspoof5_cases.py``) are regenerated from their seeds, checked byte for byte
against the files the package read (sha256), then scored by the recipe's readers and metrics; each number
must equal the package's to 1e-9. They cover ties across classes, a CM score shared by an utterance's
trials, nearly empty classes, and sizes where the package's coarse-then-fine t-EER search applies, one of
them (``accelerated_mixture``) a case where that search ends elsewhere than the exhaustive one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sasv.bin import compute_metrics
from sasv.metrics.cm import TRACK1_METRICS, track1_breakdown
from sasv.metrics.tandem import t_eer
from sasv.reports.records import track1_record, track2_breakdown, track2_record
from sasv.scoring.track1_files import read_track1
from sasv.scoring.track2_files import read_track2
from tests.oracles import asvspoof5_cases as cases

FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "asvspoof5_package.json").read_text()
)
TOLERANCE = 1e-9


def _checked(paths: tuple[Path, ...], recorded: dict) -> None:
    for path in paths:
        assert cases.sha256(path) == recorded["files"][path.name], (
            f"{path.name} differs from the file the package scored: the generator drifted "
            "(numpy's random stream?); record the fixture again (tests/fixtures/README.md)"
        )


def _close(got: float | None, expected) -> None:
    if isinstance(expected, dict):  # the package raised: it has no number here
        assert got is None, f"the package gives no number ({expected['error']}), the recipe gives {got}"
    else:
        assert got is not None and abs(got - expected) <= TOLERANCE, (got, expected)


@pytest.mark.parametrize("name", sorted(FIXTURE["track2"]))
def test_track2_metrics_equal_the_package(name: str, tmp_path: Path) -> None:
    recorded = FIXTURE["track2"][name]
    scores, keys = cases.write_track2_case(cases.TRACK2_CASES[name], tmp_path)
    single = cases.write_track2_single(cases.TRACK2_CASES[name], tmp_path)
    _checked((scores, keys, single), recorded)
    record = track2_record(read_track2(scores, keys))
    for metric in ("min_a_dcf", "min_t_dcf", "t_eer"):
        _close(record[metric], recorded["t2_tandem"][metric])
    single_record = track2_record(read_track2(single, keys))
    _close(single_record["min_a_dcf"], recorded["t2_single_min_a_dcf"])
    assert single_record["min_t_dcf"] is None and single_record["t_eer"] is None


@pytest.mark.parametrize("name", sorted(FIXTURE["track2"]))
def test_exhaustive_t_eer_equals_the_package_s_compute_teer(name: str, tmp_path: Path) -> None:
    scores, keys = cases.write_track2_case(cases.TRACK2_CASES[name], tmp_path)
    trials = read_track2(scores, keys)
    by_key = [trials.asv_label == k for k in cases.KEY_ORDER]
    value = t_eer(*(trials.asv[m] for m in by_key), *(trials.cm[m] for m in by_key), accelerated=False)
    _close(None if value is None else 100.0 * value, FIXTURE["track2"][name]["t_eer_exhaustive"])


def test_the_accelerated_search_is_the_package_s_not_the_exhaustive_one() -> None:
    """The fixture holds a case where the two differ: equal to one of them is not luck."""
    recorded = FIXTURE["track2"]["accelerated_mixture"]
    assert abs(recorded["t2_tandem"]["t_eer"] - recorded["t_eer_exhaustive"]) > 1.0


def test_compute_metrics_prints_the_package_s_numbers(tmp_path: Path, capsys) -> None:
    recorded = FIXTURE["track2"]["accelerated_ties"]
    scores, keys = cases.write_track2_case(cases.TRACK2_CASES["accelerated_ties"], tmp_path)
    assert compute_metrics.main([str(scores), "--keys", str(keys)]) == 0
    printed = json.loads(capsys.readouterr().out)
    for metric in ("min_a_dcf", "min_t_dcf", "t_eer"):
        _close(printed[metric], recorded["t2_tandem"][metric])


# ------------------------------------------------------------------------------------------------ Track 1


@pytest.mark.parametrize("name", sorted(FIXTURE["track1"]))
def test_track1_metrics_equal_the_package(name: str, tmp_path: Path) -> None:
    recorded = FIXTURE["track1"][name]
    scores, keys, full_keys = cases.write_track1_case(cases.TRACK1_CASES[name], tmp_path)
    _checked((scores, keys, full_keys), recorded)
    record = track1_record(read_track1(scores, keys))
    for metric in TRACK1_METRICS:
        expected = recorded["t1"][metric] * (100.0 if metric == "eer" else 1.0)
        _close(record[metric], expected)
    assert "breakdown" not in record


@pytest.mark.parametrize("name", sorted(FIXTURE["track1"]))
def test_track1_breakdown_equals_evaluation_full(name: str, tmp_path: Path) -> None:
    """Per attack x codec (pooled row and column first), as ``evaluation_full.py --m t1`` tabulates."""
    recorded = FIXTURE["track1"][name]["t1_full"]
    scores, _, full_keys = cases.write_track1_case(cases.TRACK1_CASES[name], tmp_path)
    trials = read_track1(scores, full_keys)
    table = track1_breakdown(trials.score, trials.is_bonafide, trials.attack, trials.codec)
    assert table["attacks"] == recorded["attacks"] and table["codecs"] == recorded["codecs"]
    for metric in TRACK1_METRICS:
        for got_row, expected_row in zip(table[metric], recorded[metric], strict=True):
            for got, expected in zip(got_row, expected_row, strict=True):
                _close(got, {"error": "empty cell"} if expected is None else expected)


def test_compute_metrics_track1_prints_the_package_s_numbers(tmp_path: Path, capsys) -> None:
    recorded = FIXTURE["track1"]["ties"]
    scores, _, full_keys = cases.write_track1_case(cases.TRACK1_CASES["ties"], tmp_path)
    assert compute_metrics.main([str(scores), "--keys", str(full_keys), "--track", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for metric in TRACK1_METRICS:
        _close(printed[metric], recorded["t1"][metric] * (100.0 if metric == "eer" else 1.0))
    assert printed["breakdown"]["attacks"] == recorded["t1_full"]["attacks"]
    _close(printed["breakdown"]["eer"][1][1], 100.0 * recorded["t1_full"]["eer"][1][1])
    assert printed["counts"] == {"bonafide": 120, "spoof": 300, "total": 420}


@pytest.mark.parametrize("name", sorted(FIXTURE["track2"]))
def test_track2_breakdown_equals_evaluation_full(name: str, tmp_path: Path) -> None:
    """a-DCF, t-DCF and t-EER per attack x codec, as ``evaluation_full.py --m t2_tandem`` tabulates."""
    recorded = FIXTURE["track2"][name]["t2_full"]
    case = cases.TRACK2_CASES[name]
    scores, keys = cases.write_track2_case(case, tmp_path)
    full_keys = cases.write_track2_full_keys(case, tmp_path)
    _checked((full_keys,), FIXTURE["track2"][name])
    trials = read_track2(scores, keys)
    meta = {tuple(line.split()[:2]): line.split()[4:6] for line in full_keys.read_text().splitlines()[1:]}
    attack, codec = (
        np.array([meta[s, f][i] for s, f in zip(trials.spk, trials.filename, strict=True)]) for i in (0, 1)
    )
    table = track2_breakdown(trials.asv, trials.cm, trials.sasv, trials.asv_label, attack, codec)
    assert table["attacks"] == recorded["attacks"] and table["codecs"] == recorded["codecs"]
    for metric in ("min_a_dcf", "min_t_dcf", "t_eer"):
        scale = 100.0 if metric == "t_eer" else 1.0
        for got_row, expected_row in zip(table[metric], recorded[metric], strict=True):
            for got, expected in zip(got_row, expected_row, strict=True):
                got = None if got is None else scale * got
                _close(got, {"error": "empty cell"} if expected is None else expected)
