"""Score lists and their files (sasv.scoring.score_files): exact round trips, strict readers, atomic
writes."""

import os

import numpy as np
import pytest

from sasv.scoring import score_files
from sasv.scoring.cosine import fuse_scores
from sasv.scoring.score_files import (
    ScoreFileError,
    TrialScores,
    read_score_file,
    read_submission_keys,
    read_submission_scores,
    write_score_file,
    write_submission_file,
)


def _random_trials(n=200, seed=4):
    rng = np.random.default_rng(seed)
    keys = np.array(["target", "nontarget", "spoof"])[rng.integers(0, 3, n)]
    attack = np.where(keys == "spoof", "A13", "bonafide")
    asv = rng.standard_normal(n).astype(np.float32).astype(np.float64)
    asv[:4] = [1e-300, -5e-324, 1.0 / 3.0, 123456789.123456789]
    cm = rng.random(n)
    return TrialScores(
        spk=[f"LA_{i % 7:04d}" for i in range(n)],
        utt=[f"LA_E_{i:07d}" for i in range(n)],
        attack=attack,
        key=keys,
        asv=asv,
        cm=cm,
        fused=fuse_scores(asv, cm),
    )


def test_score_file_round_trip_is_exact(tmp_path):
    trials = _random_trials()
    path = tmp_path / "sub" / "scores.txt"
    write_score_file(path, trials)
    back = read_score_file(path)
    for name in ("spk", "utt", "attack", "key", "asv", "cm", "fused"):
        assert np.array_equal(getattr(back, name), getattr(trials, name)), name
    assert len(back) == 200
    first = path.read_text().splitlines()[0].split()
    assert len(first) == 7 and first[3] in ("target", "nontarget", "spoof")
    assert os.listdir(path.parent) == ["scores.txt"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_score_file_accepts_rows_and_overwrites(tmp_path):
    path = tmp_path / "scores.txt"
    path.write_text("old content\n")
    write_score_file(path, [("LA_0001", "LA_E_1", "bonafide", "target", 0.5, 0.25, 0.1875)])
    assert path.read_text() == "LA_0001 LA_E_1 bonafide target 0.5 0.25 0.1875\n"
    with pytest.raises(ValueError, match="fused"):
        write_score_file(path, TrialScores(spk=["a"], utt=["b"], attack=["A01"], key=["spoof"], fused=[0.1]))
    with pytest.raises(ValueError, match="whitespace"):
        write_score_file(path, [("LA 0001", "u", "bonafide", "target", 0.5, 0.25, 0.1875)])
    assert path.read_text() == "LA_0001 LA_E_1 bonafide target 0.5 0.25 0.1875\n"


def test_submission_round_trip_and_crlf(tmp_path):
    trials = _random_trials(seed=5)
    path = tmp_path / "submission.txt"
    write_submission_file(path, trials)
    back = read_submission_scores(path)
    assert np.array_equal(back.fused, trials.fused) and np.array_equal(back.utt, trials.utt)
    assert back.asv is None and back.cm is None
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"LA_0001 LA_E_1 bonafide target 0.5\r\n\r\nLA_0002\tLA_E_2  A07 spoof -1e-3\r\n")
    back = read_submission_scores(crlf)
    assert back.key.tolist() == ["target", "spoof"] and back.fused.tolist() == [0.5, -0.001]
    assert back.utt.tolist() == ["LA_E_1", "LA_E_2"] and back.attack.tolist() == ["bonafide", "A07"]
    bad_crlf = tmp_path / "bad_crlf.txt"
    bad_crlf.write_bytes(b"LA_0001 LA_E_1 bonafide target 0.5\r\n\r\nLA_0002 LA_E_2 A07 spof 0.1\r\n")
    with pytest.raises(ValueError, match=r"bad_crlf.txt:3: key 'spof'"):
        read_submission_scores(bad_crlf)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("LA_0002 LA_E_2 A07 spoof", "expected 5 fields"),
        ("LA_0002 LA_E_2 A07 spoof 0.1 0.2", "expected 5 fields"),
        ("LA_0002 LA_E_2 A07 spoofed 0.1", "key 'spoofed'"),
        ("LA_0002 LA_E_2 A07 spoof abc", "SCORE 'abc' is not a number"),
        ("LA_0002 LA_E_2 A07 spoof nan", "must be finite"),
    ],
)
@pytest.mark.parametrize("reader", [read_submission_scores, read_submission_keys])
def test_malformed_submission_lines_name_the_line(tmp_path, bad_line, message, reader):
    """Both readers check every line, also the one that keeps only the key and score columns."""
    path = tmp_path / "bad.txt"
    path.write_text(
        f"LA_0001 LA_E_1 bonafide target 0.5\n\n{bad_line}\nLA_0003 LA_E_3 bonafide nontarget 0.1\n"
    )
    with pytest.raises(ValueError, match=message) as info:
        reader(path)
    assert str(info.value).startswith(f"{path}:3: ")


def test_empty_files_and_short_score_file_lines(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no trials"):
        read_submission_scores(empty)
    short = tmp_path / "short.txt"
    short.write_text("LA_0001 LA_E_1 bonafide target 0.5\n")
    with pytest.raises(ValueError, match=r":1: expected 7 fields 'spk utt attack key asv cm fused'"):
        read_score_file(short)


def test_trial_scores_validation():
    with pytest.raises(ValueError, match="differ in length"):
        TrialScores(spk=["a", "b"], utt=["u"], attack=["A01"], key=["spoof"], fused=[0.1])
    with pytest.raises(ValueError, match="not one of"):
        TrialScores(spk=["a"], utt=["u"], attack=["A01"], key=["bonafide"], fused=[0.1])


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "scores.txt"
    write_score_file(path, _random_trials(n=10))
    before = path.read_bytes()
    calls = {"n": 0}

    def failing(value):
        calls["n"] += 1
        if calls["n"] > 20:
            raise RuntimeError("disk full")
        return repr(float(value))

    monkeypatch.setattr(score_files, "_format_float", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_score_file(path, _random_trials(n=50, seed=9))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["scores.txt"]


def test_byte_order_mark_in_score_files(tmp_path):
    trials = _random_trials(n=5)
    path = tmp_path / "scores.txt"
    write_score_file(path, trials)
    path.write_text("\ufeff" + path.read_text(), encoding="utf-8")
    assert list(read_score_file(path).spk) == list(trials.spk)


def _read_whole_file(path, n_columns):
    """The pre-block reader's semantics, line by line: (columns of the non-blank lines)."""
    with open(path, encoding="utf-8-sig") as handle:
        rows = [line.split() for line in handle.read().split("\n")]
    rows = [row for row in rows if row]
    assert all(len(row) == n_columns for row in rows)
    return [list(column) for column in zip(*rows, strict=True)]


@pytest.mark.parametrize("block_chars", [1, 7, 40, 41, 64, 1 << 21])
def test_blocks_read_the_same_trials_as_one_pass(tmp_path, monkeypatch, block_chars):
    """Blocks of any size (smaller than a line, ending inside a CRLF, at a line end) give every trial once,
    in order; numbers are exact; a line without a final newline is kept."""
    monkeypatch.setattr(score_files, "_READ_BLOCK_CHARS", block_chars)
    lines = [f"LA_{i % 7:04d} LA_E_{i:07d} {'A07' if i % 3 else '-'} {score_files.KEYS[i % 3]} {i / 7!r}"
             for i in range(60)]  # fmt: skip
    lines[10] = "\t" + lines[10].replace(" ", " \x0b ") + "  "  # other ASCII whitespace str.split splits at
    text = "\r\n".join(lines[:30]) + "\r\n\n\r" + "\n".join(lines[30:])  # CRLF, blank, CR, no last \n
    path = tmp_path / "sub.txt"
    path.write_bytes(text.encode())
    back = read_submission_scores(path)
    expected = _read_whole_file(path, 5)
    assert len(back) == 60
    for got, want in zip((back.spk, back.utt, back.attack, back.key), expected[:4], strict=True):
        assert got.tolist() == want
    assert back.fused.tolist() == [i / 7 for i in range(60)]
    fused, codes = read_submission_keys(path)
    assert fused.tolist() == back.fused.tolist() and codes.dtype == np.int8
    assert codes.tolist() == [i % 3 for i in range(60)] and np.array_equal(codes, back.codes)


@pytest.mark.parametrize("block_chars", [16, 100, 1 << 21])
def test_errors_in_later_blocks_name_the_right_line(tmp_path, monkeypatch, block_chars):
    monkeypatch.setattr(score_files, "_READ_BLOCK_CHARS", block_chars)
    good = "LA_0001 LA_E_1 bonafide target 0.5\n"
    for bad, message in (
        ("LA_0002 LA_E_2 A07 spoof", "expected 5 fields"),
        ("LA_0002 LA_E_2 A07 spoofed 0.1", "key 'spoofed'"),
        ("LA_0002 LA_E_2 A07 spoof inf", "must be finite"),
        ("LA_0002 LA_E_2 A07\u2003spoof 0.1 0.3", "expected 5 fields"),  # non-ASCII whitespace splits too
    ):
        path = tmp_path / "bad.txt"
        path.write_text(good * 20 + "\n" + good * 5 + bad + "\n" + good * 3, encoding="utf-8")
        with pytest.raises(ValueError, match=message) as info:
            read_submission_scores(path)
        assert str(info.value).startswith(f"{path}:27: "), str(info.value)


def test_fields_per_line_matches_str_split_on_any_whitespace():
    rng = np.random.default_rng(0)
    # every ASCII whitespace and the characters either side of its ranges (\x08, \x0e, \x1b, !)
    alphabet = list(" \t\r\x0b\x0c\x1c\x1d\x1e\x1fab\n\x08\x0e\x1b!")
    for _ in range(2000):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 30))))
        expected = [len(line.split()) for line in text.split("\n")]
        assert score_files._fields_per_line(text).tolist() == expected, repr(text)
    assert score_files._fields_per_line("a\u00a0b\nc").tolist() == [2, 1]  # non-ASCII: the per-line split


@pytest.mark.parametrize("block_chars", [16, 1 << 21])
@pytest.mark.parametrize("reader", [read_submission_scores, read_submission_keys, read_score_file])
def test_a_trial_listed_twice_is_refused_naming_both_lines(tmp_path, monkeypatch, block_chars, reader):
    """A repeated line would count twice in every metric (and read_submission_keys, which keeps no ids,
    must still see it); one trial with two scores leaves the metric to whichever a reader keeps."""
    monkeypatch.setattr(score_files, "_READ_BLOCK_CHARS", block_chars)
    extra = " 0.25 0.5" if reader is read_score_file else ""
    lines = [
        f"LA_{i % 3:04d} LA_E_{i:07d} bonafide {('target', 'nontarget')[i % 2]}{extra} 0.{i}"
        for i in range(8)
    ]
    path = tmp_path / "scores.txt"
    path.write_text("\n".join([*lines, lines[2]]) + "\n")
    with pytest.raises(ScoreFileError) as info:
        reader(path)
    assert str(info.value) == (
        f"{path}:9: trial LA_0002 LA_E_0000002 is listed twice (lines 3, 9): a repeated line would count "
        "twice in every metric"
    )
    path.write_text("\n".join([*lines[:5], lines[2][:-1] + "7", *lines[5:]]) + "\n")
    with pytest.raises(ScoreFileError) as info:
        reader(path)
    column = "fused" if reader is read_score_file else "SCORE"
    assert str(info.value) == (
        f"{path}:6: trial LA_0002 LA_E_0000002 is listed twice (lines 3, 6) with different {column} "
        "(0.2, 0.7): a trial has one score"
    )
    # the same utterance for another claimed speaker is another trial
    path.write_text("\n".join([*lines, lines[2].replace("LA_0002", "LA_0009")]) + "\n")
    assert len(reader(path)[0] if reader is read_submission_keys else reader(path)) == 9


def test_hash_collisions_are_not_mistaken_for_repeated_trials(tmp_path, monkeypatch):
    """Trials are compared by a 64-bit hash first; equal hashes of different trials are read back and
    accepted."""
    monkeypatch.setattr(score_files, "_trial_hashes", lambda spk, utt: np.zeros(len(spk), dtype=np.int64))
    trials = _random_trials(n=50)
    path = tmp_path / "sub.txt"
    write_submission_file(path, trials)
    assert read_submission_scores(path).utt.tolist() == trials.utt.tolist()
    path.write_text(path.read_text() + path.read_text().splitlines(keepends=True)[7])
    with pytest.raises(
        ScoreFileError, match=r"sub.txt:51: trial LA_0000 LA_E_0000007 is listed twice \(lines 8, 51\)"
    ):
        read_submission_keys(path)
