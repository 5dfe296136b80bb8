"""ASVspoof 5 Track 1 CM score and key files (:mod:`sasv.scoring.track1_files`) and ``sasv compute_metrics
--track 1``: the readers' strictness and errors; the numbers are held to the package in
test_asvspoof5_package_parity."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from sasv.corpora.protocols import ProtocolError
from sasv.scoring.track1_files import read_track1
from tests.conftest import tool


def _write(tmp_path, scores: list[str], keys: list[str]):
    s, k = tmp_path / "scores.tsv", tmp_path / "keys.tsv"
    s.write_text("\n".join(["filename\tcm-score", *scores]) + "\n")
    k.write_text("\n".join(["filename\tcm-label", *keys]) + "\n")
    return s, k


def test_the_join_keeps_the_score_file_s_order_and_aliases(tmp_path) -> None:
    s, k = _write(tmp_path, ["E_2\t-1.5", "E_1\t2.25"], ["E_1\tbonafide", "E_2\tspoof"])
    trials = read_track1(s, k)
    assert trials.filename.tolist() == ["E_2", "E_1"] and trials.score.tolist() == [-1.5, 2.25]
    assert trials.is_bonafide.tolist() == [False, True] and trials.attack is None
    k.write_text("trial_anon cm_label attack_anon codec\nE_1 bonafide bonafide C00\nE_2 spoof A07 C01\n")
    full = read_track1(s, k)
    assert full.attack.tolist() == ["A07", "bonafide"] and full.codec.tolist() == ["C01", "C00"]


@pytest.mark.parametrize(
    "scores, keys, message",
    [
        (["E_1\t0.5"], ["E_1\tgenuine"], "keys.tsv:2: unknown label 'genuine'"),
        (["E_1\tabc"], ["E_1\tbonafide"], "scores.tsv:2: score 'abc' is not a number"),
        (["E_1\t-"], ["E_1\tbonafide"], "scores.tsv:2: score '-' is not a number"),
        (["E_1\tnan"], ["E_1\tbonafide"], "scores.tsv:2: score 'nan' is not finite"),
        (["E_1\t0.5", "E_1\t0.6"], ["E_1\tbonafide"], "scores.tsv:3: file E_1 listed twice"),
        (["E_1\t0.5"], ["E_1\tbonafide", "E_1\tspoof"], "keys.tsv:3: file E_1 listed twice"),
        (["E_3\t0.5"], ["E_1\tbonafide"], "scores.tsv:2: file E_3 is not in the keys"),
        (["E_1\t0.5"], ["E_1\tbonafide", "E_2\tspoof"], "1 file(s) of the keys have no score, e.g. E_2"),
        (["E_1\t0.5\t1"], ["E_1\tbonafide"], "scores.tsv:2: expected 2 fields, got 3"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, scores, keys, message: str) -> None:
    s, k = _write(tmp_path, scores, keys)
    with pytest.raises(ProtocolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_track1(s, k)


def test_a_header_without_the_columns_is_refused(tmp_path) -> None:
    s, k = _write(tmp_path, ["E_1\t0.5"], ["E_1\tbonafide"])
    s.write_text("utt\tscore\nE_1\t0.5\n")
    with pytest.raises(ProtocolError, match="scores.tsv:1: the header names no column filename, cm-score"):
        read_track1(s, k)


def test_the_tool_errors_in_one_line_and_needs_keys(tmp_path) -> None:
    s, k = _write(tmp_path, ["E_1\t0.5", "E_2\tx"], ["E_1\tbonafide", "E_2\tspoof"])
    proc = subprocess.run(
        [*tool("compute_metrics"), str(s), "--keys", str(k), "--track", "1"], capture_output=True, text=True
    )
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith(f"ERROR: {s}:3: score 'x' is not a number")
    proc = subprocess.run([*tool("compute_metrics"), str(s), "--track", "1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--track 1 needs --keys" in proc.stderr


def test_an_empty_class_gives_no_numbers(tmp_path) -> None:
    from sasv.reports.records import track1_record

    s, k = _write(tmp_path, ["E_1\t0.5", "E_2\t0.7"], ["E_1\tbonafide", "E_2\tbonafide"])
    record = track1_record(read_track1(s, k))
    assert all(record[m] is None for m in ("min_dcf", "eer", "cllr", "act_dcf"))
    assert record["counts"] == {"bonafide": 2, "spoof": 0, "total": 2}
    assert np.isfinite(read_track1(s, k).score).all()
