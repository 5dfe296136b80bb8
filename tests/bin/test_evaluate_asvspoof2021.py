"""``sasv evaluate_asvspoof2021`` end to end on the mini corpora: make_mini_corpus -> prepare_asvspoof2021 ->
CM scores built so that the metrics can be worked out by hand from the keys (read here by plain splitting,
not by the recipe's readers) -> the tool's results.json and results.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sasv.__main__ import main as sasv_main
from sasv.metrics.tandem import ASVSPOOF5_TANDEM_COST, asv_error_rates, t_dcf_weights

K_FLIPPED = 2  # eval spoofs of the alaw condition that score above every bona fide trial


def sasv(*argv: str | Path) -> int:
    return sasv_main([str(a) for a in argv])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("asvspoof2021")
    for corpus in ("asvspoof2021_la", "asvspoof2021_df"):
        assert sasv("make_mini_corpus", "--corpus", corpus, "--out", work / "corpus", "--speakers", "2",
                    "--bonafide_per_spk", "14", "--spoof_per_attack", "4", "--attacks", "3") == 0  # fmt: skip
    for track in ("LA", "DF"):
        root = work / "corpus" / f"ASVspoof2021_{track}"
        assert (
            sasv("prepare_asvspoof2021", "--root", root, "--out", work / "data", "--audio_check", "false")
            == 0
        )
    return work


def key_rows(data: Path, track: str) -> list[list[str]]:
    return [line.split() for line in (data / "corpus" / f"ASVspoof2021_{track}" / "keys" / track / "CM" /
                                      "trial_metadata.txt").read_text().splitlines()]  # fmt: skip


def write_scores(path: Path, rows: list[list[str]], flipped: set[str]) -> None:
    """logit_bonafide 3 for bona fide, -3 for spoofs, 4 for the flipped spoofs; logit_spoof 8 and -8, so that
    P(bona fide) ranks every spoof above every bona fide trial."""
    lines = []
    for row in rows:
        utt, bonafide = row[1], row[5] == "bonafide"
        logit = 3.0 if bonafide else 4.0 if utt in flipped else -3.0
        other = 8.0 if bonafide else -8.0
        lines.append(f"{utt} {other!r} {logit!r} {1 / (1 + math.exp(other - logit))!r}")
    path.write_text("".join(line + "\n" for line in sorted(lines)))


def eer_with_flipped(n_bonafide: int, n_spoof: int, k: int) -> float:
    """The ASVspoof EER when k spoofs score above every bona fide trial, the rest below: the DET's points
    after the low spoofs are (j / n_bonafide, k / n_spoof), j = 0 ... n_bonafide; the nearest is taken."""
    j = min(range(n_bonafide + 1), key=lambda j: abs(j / n_bonafide - k / n_spoof))
    return (j / n_bonafide + k / n_spoof) / 2


def test_la_eval_metrics_by_hand(data, tmp_path) -> None:
    rows = key_rows(data, "LA")
    evaluated = [r for r in rows if r[7] == "eval"]
    alaw_spoofs = [r[1] for r in evaluated if r[2] == "alaw" and r[5] == "spoof"]
    assert len(alaw_spoofs) > K_FLIPPED
    write_scores(tmp_path / "cm_scores.txt", rows, set(alaw_spoofs[:K_FLIPPED]))
    out = tmp_path / "out"
    argv = ["evaluate_asvspoof2021", "--cm_scores", tmp_path / "cm_scores.txt", "--data",
            data / "data" / "la2021_eval", "--out", out]  # fmt: skip
    assert sasv(*argv) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["benchmark"] == "asvspoof2021_la" and record["cm_score"] == "logit_bonafide"
    assert record["system"] is None, "scores made elsewhere: no model record, no marker"
    results = record["results"]
    n_bonafide = sum(r[5] == "bonafide" for r in evaluated)
    n_spoof = len(evaluated) - n_bonafide
    assert (
        results["counts"]["bonafide"]["pooled"] == n_bonafide
        and results["counts"]["spoof"]["pooled"] == n_spoof
    )
    assert results["pooled"]["eer"] == pytest.approx(
        eer_with_flipped(n_bonafide, n_spoof, K_FLIPPED), abs=1e-12
    )
    # the t-DCF with the keys' ASV scores of the eval subset: the best CM threshold passes the flipped spoofs
    # (Pmiss_cm 0, Pfa_cm k / n) or rejects everything (Pmiss_cm 1, Pfa_cm 0)
    asv = [line.split() for line in (data / "corpus" / "ASVspoof2021_LA" / "keys" / "LA" / "ASV" /
                                     "trial_metadata.txt").read_text().splitlines()]  # fmt: skip
    score = dict(
        ((s, t), float(v))
        for s, t, v in map(
            str.split,
            (data / "corpus" / "ASVspoof2021_LA" / "keys/LA/ASV/ASVTorch_Kaldi/score.txt")
            .read_text()
            .splitlines(),
        )
    )
    by_key = {k: np.array([score[r[0], r[1]] for r in asv if r[5] == k and r[7] == "eval"])
              for k in ("target", "nontarget", "spoof")}  # fmt: skip
    c0, c1, c2 = t_dcf_weights(*asv_error_rates(by_key["target"], by_key["nontarget"], by_key["spoof"]))
    expected = min(c0 + c2 * K_FLIPPED / n_spoof, c0 + c1) / (c0 + min(c1, c2))
    assert results["pooled"]["min_t_dcf"] == pytest.approx(expected, abs=1e-12)
    assert ASVSPOOF5_TANDEM_COST.p_spoof == 0.05
    # per condition: every codec but alaw separates perfectly
    table = results["table"]
    assert table["column_tags"] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "Pooled"]
    pooled_row = table["eer"][-1]
    for j, codec in enumerate(table["columns"][:-1]):
        n_b = sum(r[2] == codec and r[5] == "bonafide" for r in evaluated)
        n_s = sum(r[2] == codec and r[5] == "spoof" for r in evaluated)
        if not (n_b and n_s):
            assert pooled_row[j] is None
        elif codec == "alaw":
            assert pooled_row[j] == pytest.approx(eer_with_flipped(n_b, n_s, K_FLIPPED), abs=1e-12)
        else:
            assert pooled_row[j] == 0.0
    md = (out / "results.md").read_text()
    assert "| SSL-AASIST (wav2vec 2.0 XLS-R + AASIST), published | LA_model.pth | 0.82 | 0.2066 |" in md
    assert f"| {100 * results['pooled']['eer']:.2f} | {results['pooled']['min_t_dcf']:.4f} |" in md
    assert "`logit_bonafide`" in md and "batch_out[:, 1]" in md and "unknown (no model record" in md


def test_the_score_column_and_the_package_s_score_format(data, tmp_path) -> None:
    rows = key_rows(data, "LA")
    write_scores(tmp_path / "cm_scores.txt", rows, set())
    la = data / "data" / "la2021_eval"

    def pooled(scores: Path, *extra: str) -> dict:
        out = tmp_path / "out" / "_".join((scores.name, *extra))
        assert sasv("evaluate_asvspoof2021", "--cm_scores", scores, "--data", la, "--out", out, *extra) == 0
        return json.loads((out / "results.json").read_text())

    by_logit = pooled(tmp_path / "cm_scores.txt")
    assert by_logit["results"]["pooled"]["eer"] == 0.0
    by_p = pooled(tmp_path / "cm_scores.txt", "--score", "p_bonafide")  # ranks spoofs above bona fide here
    assert by_p["cm_score"] == "p_bonafide" and by_p["results"]["pooled"]["eer"] == 1.0
    # 'TRIAL SCORE' lines (the package's, SSL_Anti-spoofing's files) of the same logits: the same numbers
    two = tmp_path / "score.txt"
    two.write_text(
        "".join(f"{u} {b}\n" for u, _, b, _ in map(str.split, (tmp_path / "cm_scores.txt").open()))
    )
    record = pooled(two)
    assert record["cm_score"] == "score" and record["results"] == by_logit["results"]
    progress = pooled(tmp_path / "cm_scores.txt", "--subset", "progress")["results"]
    assert progress["subset"] == "progress"
    assert progress["counts"]["bonafide"]["pooled"] == sum(
        r[7] == "progress" and r[5] == "bonafide" for r in rows
    )


def test_df_has_eers_only(data, tmp_path) -> None:
    rows = key_rows(data, "DF")
    write_scores(tmp_path / "cm_scores.txt", rows, set())
    out = tmp_path / "out"
    argv = ["evaluate_asvspoof2021", "--cm_scores", tmp_path / "cm_scores.txt", "--data",
            data / "data" / "df2021_eval", "--out", out, "--track", "DF"]  # fmt: skip
    assert sasv(*argv) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["track"] == "DF" and record["results"]["pooled"] == {"eer": 0.0}
    assert "min_t_dcf" not in record["results"]["table"]
    assert record["results"]["table"]["row_tags"][:2] == ["Traditional", "Wav.Concat."]
    md = (out / "results.md").read_text()
    assert "| SSL-AASIST (wav2vec 2.0 XLS-R + AASIST), published | Best_LA_model_for_DF.pth | 2.85 |" in md
    assert "min t-DCF |" not in md and "EER (%) per vocoder type x condition" in md
