"""ASVspoof 2021 LA and DF per-condition EER and min t-DCF (the package's main.py tables) against the
evaluation package's own output on generated keys, read as the recipe reads them: the keys through
``sasv.corpora.asvspoof2021``'s readers, the conditions as stage 1 writes them, the metrics through
``sasv.reports.asvspoof2021.condition_results`` (``tests/fixtures/asvspoof2021_tables.json``, recorded by
``tests/oracles/record_asvspoof2021_tables.py``: the numbers, never the package's code). The fixture also
holds what SSL_Anti-spoofing's evaluate_2021_{LA,DF}.py gave on the same files: the same pooled numbers."""

from __future__ import annotations

import json
import math
import sys

import pytest

from sasv.corpora.asvspoof2021 import (
    TRACK_INFO,
    ASVspoof2021Layout,
    conditions_of,
    read_asv_trials,
    read_cm_key,
    track_info,
)
from sasv.metrics.tandem import ASVSPOOF5_TANDEM_COST
from sasv.reports.asvspoof2021 import POOLED_TAG, condition_results
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "oracles"))
import asvspoof2021_cases as cases  # noqa: E402

FIXTURE = json.loads((REPO_ROOT / "tests" / "fixtures" / "asvspoof2021_tables.json").read_text())
TOLERANCE = 1e-9
# the package's factor columns -> the data-dir files stage 1 writes them to
FILES = {"attack": "utt2attack", "codec": "utt2codec", "vocoder": "utt2vocoder", "compr": "utt2codec"}


def test_the_tables_are_the_package_s() -> None:
    """Rows, columns and their tags in config.py's order, the cost model config.py's."""
    for track, factors in FIXTURE["factors"].items():
        info = TRACK_INFO[track]
        for ours, theirs in ((info.rows, factors["rows"]), (info.columns, factors["columns"])):
            assert ours.file == FILES[theirs["column"]]
            assert [*ours.values, factors["pooled"]] == theirs["values"]
            assert [*ours.tags, POOLED_TAG] == theirs["tags"]
    cost = ASVSPOOF5_TANDEM_COST
    assert FIXTURE["cost_model"] == {
        "Pspoof": cost.p_spoof, "Ptar": cost.p_target, "Pnon": cost.p_nontarget,
        "Cmiss": cost.c_miss, "Cfa": cost.c_fa, "Cfa_spoof": cost.c_fa_spoof,
    }  # fmt: skip


def assert_grid(ours: list[list[float | None]], theirs: list[list[float | None]], what: str) -> None:
    assert len(ours) == len(theirs) and all(len(a) == len(b) for a, b in zip(ours, theirs, strict=True))
    for i, (row, expected) in enumerate(zip(ours, theirs, strict=True)):
        for j, (value, package) in enumerate(zip(row, expected, strict=True)):
            if package is None:
                assert value is None, f"{what}[{i}][{j}]: {value}, the package has NaN"
            else:
                assert value is not None and math.isclose(value, package, rel_tol=0, abs_tol=TOLERANCE), (
                    f"{what}[{i}][{j}]: {value} vs the package's {package}"
                )


@pytest.mark.parametrize("case", cases.KEY_CASES, ids=lambda c: c.name)
def test_tables_equal_the_package_s(case: cases.KeyCase, tmp_path) -> None:
    expected = FIXTURE["cases"][case.name]
    assert cases.write_key_case(case, tmp_path) == expected["files"], "the generator drifted"
    layout = ASVspoof2021Layout(tmp_path)
    trials = read_cm_key(layout.cm_key(case.track), case.track)
    conditions = conditions_of(trials, case.track)
    utt2spf = {t.utt: t.label for t in trials}
    scores = {t: float(s) for t, s in map(str.split, (tmp_path / "score.txt").read_text().splitlines())}
    asv = read_asv_trials(layout.asv_key(), layout.asv_scores()) if track_info(case.track).tandem else None
    for subset in cases.TABLE_SUBSETS:
        package, ssl = expected[subset]["package"], expected[subset]["ssl"]
        results = condition_results(case.track, scores, utt2spf, conditions, asv, subset)
        table = results["table"]
        assert_grid(table["eer"], package["eer"], f"{subset} EER")
        if case.track == "LA":
            assert_grid(table["min_t_dcf"], package["min_tdcf"], f"{subset} min t-DCF")
            assert results["pooled"]["min_t_dcf"] == pytest.approx(ssl["min_tdcf"], abs=TOLERANCE)
        else:
            assert "min_t_dcf" not in table and all(v is None for row in package["min_tdcf"] for v in row)
        assert results["pooled"]["eer"] == pytest.approx(ssl["eer"], abs=TOLERANCE)
        assert expected[subset]["ssl_equals_package"], "SSL_Anti-spoofing's scripts and the package agree"
