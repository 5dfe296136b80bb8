"""ASVspoof 5 Track 2 submission and key files (:mod:`sasv.scoring.track2_files`) and their metrics
(``sasv compute_metrics --keys``, :func:`sasv.reports.records.track2_record`)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from sasv.corpora.protocols import ProtocolError
from sasv.metrics.detection_costs import A_DCF_COST_MODELS, min_a_dcf
from sasv.metrics.eer import sasv_eers
from sasv.metrics.tandem import min_t_dcf, t_eer
from sasv.scoring.track2_files import read_track2, write_keys, write_submission
from tests.conftest import tool


def _trials(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    keys = np.array(["target", "nontarget", "spoof"])[rng.integers(0, 3, n)]
    cm = rng.normal(size=n) + 2.0 * (keys != "spoof")
    asv = rng.normal(size=n) + 2.0 * (keys == "target") + 1.0 * (keys == "spoof")
    sasv = cm + asv
    names = [(f"E_{i % 7:04d}", f"E_{i:010d}") for i in range(n)]
    return keys, cm, asv, sasv, names


def _write_keys(path, keys, names) -> None:
    lines = ["spk\tfilename\tcm-label\tasv-label"]
    for (spk, name), key in zip(names, keys, strict=True):
        lines.append(f"{spk}\t{name}\t{'spoof' if key == 'spoof' else 'bonafide'}\t{key}")
    path.write_text("\n".join(lines) + "\n")


def test_write_keys_writes_the_organisers_key_format(tmp_path) -> None:
    keys, _, _, _, names = _trials(40, seed=3)
    write_keys(tmp_path / "lib.tsv", [(*n, k) for n, k in zip(names, keys, strict=True)])
    _write_keys(tmp_path / "hand.tsv", keys, names)
    assert (tmp_path / "lib.tsv").read_bytes() == (tmp_path / "hand.tsv").read_bytes()


def test_the_cost_models_by_name() -> None:
    assert A_DCF_COST_MODELS["sasv2024"].normaliser() == pytest.approx(0.595, abs=1e-15)
    assert A_DCF_COST_MODELS["paper"].normaliser() == pytest.approx(0.9, abs=1e-15)


def test_submission_round_trip_and_metrics_of_the_scorer(tmp_path) -> None:
    keys, cm, asv, sasv, names = _trials()
    scores, key_file = tmp_path / "scores.tsv", tmp_path / "keys.tsv"
    write_submission(scores, [(*n, c, a, s) for n, c, a, s in zip(names, cm, asv, sasv, strict=True)])
    assert scores.read_text().splitlines()[0] == "spk\tfilename\tcm-score\tasv-score\tsasv-score"
    _write_keys(key_file, keys, names)
    trials = read_track2(scores, key_file)
    assert np.array_equal(trials.cm, cm) and np.array_equal(trials.sasv, sasv)  # repr: exact round trip
    proc = subprocess.run(
        [*tool("compute_metrics"), str(scores), "--keys", str(key_file)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert list(result)[:3] == ["min_a_dcf", "min_t_dcf", "t_eer"]
    assert result["min_a_dcf"] == min_a_dcf(sasv, keys, A_DCF_COST_MODELS["sasv2024"]).value
    assert result["min_t_dcf"] == min_t_dcf(cm[keys != "spoof"], cm[keys == "spoof"])
    by_key = [(asv[keys == k], cm[keys == k]) for k in ("target", "nontarget", "spoof")]
    assert result["t_eer"] == pytest.approx(
        100 * t_eer(*(a for a, _ in by_key), *(c for _, c in by_key)), abs=1e-12
    )
    assert result["sasv_eer"] == pytest.approx(100 * sasv_eers(sasv, keys)["sasv_eer"], abs=1e-12)
    assert 0 < result["min_t_dcf"] < 1 and 0 < result["t_eer"] < 50


def test_a_single_integrated_system_has_only_the_a_dcf(tmp_path) -> None:
    keys, _, _, sasv, names = _trials(60, seed=1)
    scores, key_file = tmp_path / "s.tsv", tmp_path / "k.tsv"
    write_submission(scores, [(*n, None, None, s) for n, s in zip(names, sasv, strict=True)])
    assert "\t-\t-\t" in scores.read_text()
    _write_keys(key_file, keys, names)
    proc = subprocess.run(
        [*tool("compute_metrics"), str(scores), "--keys", str(key_file)], capture_output=True, text=True
    )
    result = json.loads(proc.stdout)
    assert result["min_t_dcf"] is None and result["t_eer"] is None and result["min_a_dcf"] is not None


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s, k: (s.replace("spk\t", "speaker\t", 1), k), "expected the header"),
        (
            lambda s, k: (s.replace(s.splitlines()[1].split("\t")[2], "abc", 1), k),
            "score 'abc' is not a number",
        ),
        (lambda s, k: (s, k.replace("\tbonafide\t", "\tgenuine\t", 1)), "unknown labels 'genuine'"),
        (lambda s, k: ("\n".join(s.splitlines()[:-1]) + "\n", k), "trial(s) of the keys have no score"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, edit, message: str) -> None:
    keys, cm, asv, sasv, names = _trials(20, seed=2)
    scores, key_file = tmp_path / "s.tsv", tmp_path / "k.tsv"
    write_submission(scores, [(*n, c, a, s) for n, c, a, s in zip(names, cm, asv, sasv, strict=True)])
    _write_keys(key_file, keys, names)
    s_text, k_text = edit(scores.read_text(), key_file.read_text())
    scores.write_text(s_text)
    key_file.write_text(k_text)
    with pytest.raises(ProtocolError) as e:
        read_track2(scores, key_file)
    assert message in str(e.value)
