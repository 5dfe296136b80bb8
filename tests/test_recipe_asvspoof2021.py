"""End to end on ASVspoof 2021 LA: the mini corpus in the release layout through run_spk_ebd_extract.sh
(`--corpus asvspoof2021_la --root ...`): stage 1 prepares the CM data dir, stage 2 has nothing to do, stage 3
scores it with a tiny AASIST, stage 4 evaluates the scores and names the model that made them."""

from __future__ import annotations

import json

from sasv.fileio import sha256_file
from tests.conftest import run_recipe, tool
from tests.tiny_confs import TINY_AASIST, write_tiny_conf


def test_stages_1_to_4_on_the_la_layout(tmp_path) -> None:
    run_recipe([*tool("make_mini_corpus"), "--corpus", "asvspoof2021_la", "--out", str(tmp_path / "corpus"),
          "--speakers", "2", "--bonafide_per_spk", "7", "--attacks", "2"])  # fmt: skip
    conf = write_tiny_conf(tmp_path, TINY_AASIST)
    exp = tmp_path / "exp"
    out = run_recipe(["bash", "run_spk_ebd_extract.sh", "--corpus", "asvspoof2021_la", "--root",
                str(tmp_path / "corpus" / "ASVspoof2021_LA"), "--data_dir", str(tmp_path / "data"),
                "--exp_dir", str(exp), "--cm_conf", str(conf), "--device", "cpu", "--allow_random_init",
                "true", "--audio_check", "false"])  # fmt: skip
    assert "--sets 'la2021_eval'" in out, "the corpus's set is the default"
    assert "Stage 2: skipped (ASVspoof 2021 LA judges countermeasures: no ASV embeddings)" in out
    assert "Stage 3: CM scores with" in out
    assert f"Stage 4: ASVspoof 2021 LA metrics of {conf} on {tmp_path / 'data' / 'la2021_eval'}" in out
    assert not (exp / "ecapa_tdnn").exists()
    record = json.loads((exp / "tiny_aasist" / "asvspoof2021_la_eval" / "results.json").read_text())
    assert record["cm_scores"] == str(exp / "tiny_aasist" / "scores" / "la2021_eval" / "cm_scores.txt")
    system = record["system"]
    assert system["name"] == "tiny_aasist" and system["pretrained"] is False
    assert system["conf"] == str(conf) and system["conf_sha256"] == sha256_file(conf)
    assert record["note"].startswith("RANDOMLY INITIALISED")
    results = record["results"]
    assert results["subset"] == "eval" and results["pooled"]["eer"] is not None
    assert results["pooled"]["min_t_dcf"] is not None
    md = (exp / "tiny_aasist" / "asvspoof2021_la_eval" / "results.md").read_text()
    assert "tiny_aasist: RANDOMLY INITIALISED (no checkpoint) |" in md and "| 0.82 | 0.2066 |" in md
