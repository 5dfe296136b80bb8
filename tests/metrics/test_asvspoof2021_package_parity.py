"""The ASVspoof 2019/2021 min t-DCF (the ASV fixed at its EER threshold, measured on ASV scores) and CM EER
against the ASVspoof 2021 evaluation package's own outputs on generated cases (``tests/fixtures/
asvspoof2021_package.json``, recorded by ``tests/oracles/record_asvspoof2021.py``: the numbers, never the
package's code)."""

from __future__ import annotations

import json
import sys

import pytest

from sasv.metrics.cm import asvspoof_eer
from sasv.metrics.tandem import ASVSPOOF5_TANDEM_COST, asv_error_rates, min_t_dcf_with_asv_scores
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "oracles"))
import asvspoof2021_cases as cases  # noqa: E402

FIXTURE = json.loads((REPO_ROOT / "tests" / "fixtures" / "asvspoof2021_package.json").read_text())


def test_the_cost_model_is_the_package_s() -> None:
    package = FIXTURE["cost_model"]
    ours = ASVSPOOF5_TANDEM_COST
    assert (ours.p_spoof, ours.p_target, ours.p_nontarget) == (
        package["Pspoof"],
        package["Ptar"],
        package["Pnon"],
    )
    assert (ours.c_miss, ours.c_fa, ours.c_fa_spoof) == (
        package["Cmiss"],
        package["Cfa"],
        package["Cfa_spoof"],
    )


@pytest.mark.parametrize("case", cases.CASES, ids=lambda c: c.name)
def test_metrics_equal_the_package_s(case: cases.Case) -> None:
    expected = FIXTURE["cases"][case.name]
    a = cases.arrays(case)
    assert cases.digest(a) == expected["sha256"], "the generator drifted from the recorded arrays"
    rates = asv_error_rates(a["asv_target"], a["asv_nontarget"], a["asv_spoof"])
    package_rates = expected["asv_rates"]
    if "error" in package_rates or package_rates["pfa_spoof"] is None:
        assert rates is None  # the package divides by zero, or has no spoof rate: no t-DCF
    else:
        assert rates == (package_rates["pfa"], package_rates["pmiss"], package_rates["pfa_spoof"])
    got = min_t_dcf_with_asv_scores(a["cm_bonafide"], a["cm_spoof"], a["asv_target"], a["asv_nontarget"],
                                    a["asv_spoof"])  # fmt: skip
    if expected["tandem"]["min_tdcf"] is None:
        assert got is None
    else:
        assert got == expected["tandem"]["min_tdcf"]  # the same arithmetic: equal to the last bit
    assert asvspoof_eer(a["cm_bonafide"], a["cm_spoof"]) == expected["cm_eer"] == expected["tandem"]["eer"]
