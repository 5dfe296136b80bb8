"""run_demo.sh at reduced size: it trains a small ASV model and a small AASIST with the recipe's training
stages, and the trained systems are far better than the same architectures untrained, on the same corpus.

Reduced: 16 train speakers instead of 24 and 16 ASV epochs instead of 24; the CM gets 12 epochs instead of 8,
the same number of training steps as in the demo (a small AASIST needs about 150 steps of 16 crops before
it picks up the spoofing trace).

What it measured when written (seed 0, this machine): trained ASV x trained CM, eval SASV-EER 21.3 % and
SPF-EER 11.1 %; untrained x untrained, 38.9 % and 58.3 %. The margins asserted (SASV-EER at least 10
points lower, SPF-EER at least 25 points lower) are safe: an eval EER here moves in steps of 1/36 = 2.8
points (36 target and 36 spoof trials), so they leave two (SASV) and eight (SPF) such steps for float
rounding on other CPUs to move a trained model, while untrained models cannot come near: an untrained CM
does not see the spoofing trace (its SPF-EER stays near chance) and an untrained speaker model stays above
30 % SASV-EER on this corpus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

SASV_MARGIN = 0.10
SPF_MARGIN = 0.25


def _reduced(conf: str, folder: Path, **changes: int) -> Path:
    raw = yaml.safe_load((REPO_ROOT / conf).read_text())
    path = folder / Path(conf).name
    path.write_text(yaml.safe_dump({**raw, **changes}))
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, OMP_NUM_THREADS="1", SASV_VENV=str(Path(sys.executable).parents[1]))
    cmd = ["bash", "run_demo.sh", "--corpus_dir", str(work / "corpus"), "--data_dir", str(work / "data"),
           "--exp_dir", str(work / "exp"), "--train_speakers", "16",
           "--asv_train_conf", str(_reduced("conf/demo/train_asv.yaml", work, epochs=16)),
           "--cm_train_conf", str(_reduced("conf/demo/train_cm.yaml", work, epochs=12))]  # fmt: skip
    out = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "run_demo: finished in" in out.stdout
    return work / "exp"


def _eval(exp: Path, asv: str, cm: str) -> dict:
    return json.loads((exp / asv / cm / "l2norm" / "results.json").read_text())["results"]["eval"]


def test_trained_systems_are_far_better_than_untrained_ones(demo) -> None:
    trained = _eval(demo, "resnet_small_trained", "aasist_small_trained")
    untrained = _eval(demo, "resnet_small", "aasist_small")
    summary = (demo / "summary.md").read_text()
    assert trained["sasv_eer"] <= untrained["sasv_eer"] - SASV_MARGIN, (trained, untrained, summary)
    assert trained["spf_eer"] <= untrained["spf_eer"] - SPF_MARGIN, (trained, untrained, summary)
    assert trained["sasv_eer"] > 0 and trained["cm_eer"] > 0, "the corpus must not be trivially easy"


def test_each_trained_model_helps_on_its_own(demo) -> None:
    """Training the CM lowers the SPF-EER with either speaker model; training the speaker model lowers the
    SV-EER with the untrained CM (whose score barely depends on the utterance)."""
    assert (
        _eval(demo, "resnet_small", "aasist_small_trained")["spf_eer"]
        < _eval(demo, "resnet_small", "aasist_small")["spf_eer"] - SPF_MARGIN
    )
    assert (
        _eval(demo, "resnet_small_trained", "aasist_small")["sv_eer"]
        < _eval(demo, "resnet_small", "aasist_small")["sv_eer"] - 0.1
    )


def test_tables_say_which_weights_were_trained_on_what(demo) -> None:
    summary = (demo / "summary.md").read_text()
    assert "- resnet_small: RANDOMLY INITIALISED (no checkpoint)" in summary
    assert "- resnet_small_trained: trained on " in summary and "train_cohort" in summary
    assert "- aasist_small_trained: trained on " in summary and "cm_train" in summary
    results = (demo / "RESULTS.md").read_text()
    assert "| resnet_small_trained | asv | trained on " in results
    training = demo / "train" / "aasist_small_trained"
    assert "| this run: aasist_small_trained |" in (training / "results.md").read_text()
