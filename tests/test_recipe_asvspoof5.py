"""End to end on ASVspoof 5: the mini corpus in the release layout through every stage of the recipe
(`run_spk_ebd_extract.sh --corpus asvspoof5 --root ...`, then `run_test_l2norm.sh`), with tiny models."""

from __future__ import annotations

import json
from pathlib import Path

from sasv.corpora.asvspoof5 import ASVspoof5Layout
from sasv.corpora.asvspoof5_protocols import read_metadata, read_trials
from sasv.corpora.protocols import read_sasv_trials
from tests.conftest import run_recipe, tool
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA, write_tiny_conf


def test_every_stage_runs_on_the_asvspoof5_layout(tmp_path) -> None:
    run_recipe([*tool("make_mini_corpus"), "--corpus", "asvspoof5", "--out", str(tmp_path / "corpus"),
          "--seed", "4", "--speakers", "2", "--bonafide_per_spk", "4", "--enroll_per_spk", "1",
          "--attacks", "2"])  # fmt: skip
    confs = ["--asv_conf", str(write_tiny_conf(tmp_path, TINY_ECAPA)), "--cm_conf",
             str(write_tiny_conf(tmp_path, TINY_AASIST))]  # fmt: skip
    dirs = ["--data_dir", str(tmp_path / "data"), "--exp_dir", str(tmp_path / "exp")]
    root = tmp_path / "corpus" / "ASVspoof5"
    out = run_recipe(["bash", "run_spk_ebd_extract.sh", "--corpus", "asvspoof5", "--root", str(root), *dirs,
                      *confs, "--device", "cpu", "--allow_random_init", "true"])  # fmt: skip
    assert "not the release's dev set: trials" in out  # the counts are compared with the release's
    for split in ("dev", "eval"):
        expected = read_trials(ASVspoof5Layout(root).protocol("trials", split))
        assert sorted(read_sasv_trials(tmp_path / "data" / split / "trials")) == sorted(expected)
    run_recipe(["bash", "run_test_l2norm.sh", *dirs, *confs])
    results = json.loads(
        (tmp_path / "exp" / "tiny_ecapa" / "tiny_aasist" / "l2norm" / "results.json").read_text()
    )
    assert set(results["results"]) >= {"dev", "eval"}
    assert results["results"]["eval"]["counts"]["spoof"] == sum(t.key == "spoof" for t in expected)
    check_official_metrics(tmp_path / "exp", results)


def check_official_metrics(exp: Path, results: dict) -> None:
    """ASVspoof 5 systems report the official metrics (a-DCF under the sasv2024 cost model, t-DCF, t-EER),
    equal to what `compute_metrics --keys` (the organisers' scorer's computation) makes of the Track 2
    submission and key files the recipe wrote, and the summary leads with them."""
    assert results["benchmark"] == "asvspoof5"
    assert results["metrics"] == {"a_dcf": ["sasv2024"], "tandem": True, "track1": True}
    system = exp / "tiny_ecapa" / "tiny_aasist" / "l2norm"
    for set_name in ("dev", "eval"):
        record = results["results"][set_name]
        assert "min_a_dcf[paper]" not in record
        official = json.loads(
            run_recipe(
                [
                    *tool("compute_metrics"),
                    str(system / f"scores_{set_name}.track2.tsv"),
                    "--keys",
                    str(system / f"keys_{set_name}.track2.tsv"),
                ]
            )  # fmt: skip
        )
        assert official["min_a_dcf"] == record["min_a_dcf[sasv2024]"]
        assert official["min_t_dcf"] == record["min_t_dcf"]
        assert official["t_eer"] == 100.0 * record["t_eer"]
        assert official["sasv_eer"] == 100.0 * record["sasv_eer"]
        track1 = json.loads(
            run_recipe(
                [
                    *tool("compute_metrics"),
                    str(system / f"cm_scores_{set_name}.track1.tsv"),
                    "--keys",
                    str(system / f"cm_keys_{set_name}.track1.tsv"),
                    "--track",
                    "1",
                ]
            )  # fmt: skip
        )
        assert track1["eer"] == 100.0 * record["cm_eer"] and track1["min_dcf"] == record["cm_min_dcf"]
        assert track1["cllr"] == record["cm_cllr"] and track1["act_dcf"] == record["cm_act_dcf"]
        assert track1["counts"]["total"] == len({line.split()[1] for line in _trial_lines(system, set_name)})
    dev, evaluation = results["results"]["dev"], results["results"]["eval"]
    assert dev["act_a_dcf[sasv2024]"] == dev["min_a_dcf[sasv2024]"]  # dev's own threshold
    assert evaluation["act_a_dcf[sasv2024]"] >= evaluation["min_a_dcf[sasv2024]"]
    assert evaluation["actual_costs_threshold_from"] == "dev"
    assert set(evaluation["bootstrap"]["intervals"]) == {
        "sasv_eer",
        "sv_eer",
        "spf_eer",
        "min_a_dcf[sasv2024]",
    }
    analysis = json.loads((system / "analysis.json").read_text())["results"]["eval"]
    assert analysis["bootstrap"] == evaluation["bootstrap"]  # reused, not recomputed differently
    assert analysis["act_a_dcf[sasv2024]"] == evaluation["act_a_dcf[sasv2024]"]
    assert analysis["min_t_dcf"] == results["results"]["eval"]["min_t_dcf"]
    assert analysis["cm_cllr"] == results["results"]["eval"]["cm_cllr"]
    by_attack = analysis["cm_track1_by_attack_codec"]
    assert by_attack["attacks"][0] == "pooled" and len(by_attack["attacks"]) > 1
    assert by_attack["codecs"] == ["pooled", "-", "C01", "C02"]  # the mini corpus's eval codecs (utt2codec)
    track2 = analysis["track2_by_attack_codec"]
    assert track2["codecs"] == by_attack["codecs"] and track2["attacks"] == by_attack["attacks"]
    assert (
        track2["t_eer"][0][0] == analysis["t_eer"]
        and track2["min_a_dcf"][0][0] == analysis["min_a_dcf[sasv2024]"]
    )
    assert by_attack["eer"][0][0] == analysis["cm_eer"]
    assert "the CM's Track 1 metrics per attack" in (system / "analysis.md").read_text()
    assert "| CM minDCF | CM CLLR | CM actDCF |" in (system / "results.md").read_text()
    summary = (exp / "summary.md").read_text()
    assert "How sure: value [low, high]: 95 % bootstrap interval over 1000 resamples" in summary
    low, high = evaluation["bootstrap"]["intervals"]["sasv_eer"]
    assert f"| {100 * evaluation['sasv_eer']:.2f} [{100 * low:.2f}, {100 * high:.2f}] |" in summary
    header = next(line for line in summary.splitlines() if line.startswith("| ASV"))
    assert header.startswith("| ASV model | norm | DEV a-DCF[sasv2024] | DEV t-DCF | DEV t-EER |")


def _trial_lines(system: Path, set_name: str) -> list[str]:
    return (system / f"scores_{set_name}.track2.tsv").read_text().splitlines()[1:]


def test_run_train_cm_stage_1_reads_the_asvspoof5_metadata(tmp_path) -> None:
    """`run_train_cm.sh --corpus asvspoof5`: the CM data dirs come from ASVspoof5.{train,dev,eval}.tsv."""
    run_recipe([*tool("make_mini_corpus"), "--corpus", "asvspoof5", "--out", str(tmp_path / "corpus"),
          "--speakers", "2", "--bonafide_per_spk", "2", "--enroll_per_spk", "1",
          "--attacks", "1"])  # fmt: skip
    root = tmp_path / "corpus" / "ASVspoof5"
    run_recipe(["bash", "run_train_cm.sh", "--corpus", "asvspoof5", "--root", str(root), "--stop_stage", "1",
          "--data_dir", str(tmp_path / "data"), "--exp_dir", str(tmp_path / "exp")])  # fmt: skip
    for split in ("train", "dev", "eval"):
        entries = read_metadata(ASVspoof5Layout(root).protocol("metadata", split))
        lines = (tmp_path / "data" / f"cm_{split}" / "utt2spf").read_text().splitlines()
        utt2spf = dict(line.split() for line in lines)
        assert utt2spf == {e.utt: e.label for e in entries}
