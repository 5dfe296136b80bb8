from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sasv.datadir import (
    CmEntry,
    DataDir,
    DataDirError,
    ProtocolError,
    Trial,
    count_trial_keys,
    read_cm_protocol,
    read_enrollment,
    read_enrollments,
    read_sasv_trials,
    read_spk2utt,
    read_trials,
    read_utt2spk,
    read_wav_scp,
    true_speakers,
    validate_datadir,
    write_spk2utt,
    write_trials,
    write_utt2spk,
    write_wav_scp,
)

REAL_COUNTS = {
    "dev": {"target": 1484, "nontarget": 5768, "spoof": 22296},
    "eval": {"target": 5370, "nontarget": 33327, "spoof": 63882},
}


def _write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode())
    return path


# ------------------------------------------------------------------------------------ real protocols


@pytest.mark.parametrize("split", ["dev", "eval"])
def test_real_sasv_trials_counts(real_protocols, split):
    trials = read_sasv_trials(real_protocols / f"ASVspoof2019.LA.asv.{split}.gi.trl.txt")
    assert count_trial_keys(trials) == REAL_COUNTS[split]
    assert all((t.key == "spoof") == (t.attack != "bonafide") for t in trials)


def test_real_eval_enrolment_lists(real_protocols):
    female = read_enrollment(real_protocols / "ASVspoof2019.LA.asv.eval.female.trn.txt")
    male = read_enrollment(real_protocols / "ASVspoof2019.LA.asv.eval.male.trn.txt")
    assert (len(female), len(male)) == (27, 21)
    merged = read_enrollments(
        [real_protocols / f"ASVspoof2019.LA.asv.eval.{g}.trn.txt" for g in ("female", "male")]
    )
    assert len(merged) == 48 and sum(map(len, merged.values())) == 696
    assert all(u.startswith("LA_E_A") for utts in merged.values() for u in utts)
    trials = read_sasv_trials(real_protocols / "ASVspoof2019.LA.asv.eval.gi.trl.txt")
    assert {t.spk for t in trials} == set(merged)


@pytest.mark.parametrize(
    ("name", "bonafide", "spoof"),
    [("train.trn", 2580, 22800), ("dev.trl", 2548, 22296), ("eval.trl", 7355, 63882)],
)
def test_real_cm_protocols(real_protocols, name, bonafide, spoof):
    entries = read_cm_protocol(real_protocols / f"ASVspoof2019.LA.cm.{name}.txt")
    labels = [e.label for e in entries]
    assert (labels.count("bonafide"), labels.count("spoof")) == (bonafide, spoof)
    assert all((e.attack == "-") == (e.label == "bonafide") for e in entries)


@pytest.mark.parametrize("split", ["dev", "eval"])
def test_real_test_speakers_come_from_cm(real_protocols, split):
    trials = read_sasv_trials(real_protocols / f"ASVspoof2019.LA.asv.{split}.gi.trl.txt")
    cm = read_cm_protocol(real_protocols / f"ASVspoof2019.LA.cm.{split}.trl.txt")
    speakers = true_speakers(trials, cm)
    assert set(speakers) == {t.utt for t in trials}
    # a nontarget trial's claimed speaker is never the one speaking
    assert all(speakers[t.utt] != t.spk for t in trials if t.key == "nontarget")
    assert all(speakers[t.utt] == t.spk for t in trials if t.key != "nontarget")


# ------------------------------------------------------------------------------------ protocol parsing

TRIALS = """LA_0001 LA_D_1000001 bonafide target
LA_0001 LA_D_1000002 bonafide nontarget
LA_0001 LA_D_1000003 A01 spoof
"""


def test_crlf_and_trailing_blank_lines(tmp_path):
    plain = read_sasv_trials(_write(tmp_path / "a.txt", TRIALS))
    crlf = read_sasv_trials(_write(tmp_path / "b.txt", TRIALS + "\n\n", newline="\r\n"))
    assert (
        plain
        == crlf
        == [
            Trial("LA_0001", "LA_D_1000001", "bonafide", "target"),
            Trial("LA_0001", "LA_D_1000002", "bonafide", "nontarget"),
            Trial("LA_0001", "LA_D_1000003", "A01", "spoof"),
        ]
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("LA_0001 LA_D_1000009 bonafide", "expected 4 fields"),
        ("LA_0001 LA_D_1000009 bonafide target extra", "expected 4 fields"),
        ("LA_0001 LA_D_1000009 bonafide impostor", "unknown key 'impostor'"),
        ("LA_0001 LA_D_1000009 A01 target", "does not fit attack"),
        ("LA_0001 LA_D_1000009 bonafide spoof", "does not fit attack"),
        ("LA_0001 LA_D_1000009 B01 spoof", "unknown attack id 'B01'"),
    ],
)
def test_malformed_trial_line_names_file_and_line(tmp_path, line, message):
    path = _write(tmp_path / "trl.txt", TRIALS + line + "\n")
    with pytest.raises(ProtocolError, match=message) as e:
        read_sasv_trials(path)
    assert f"{path}:4:" in str(e.value)


def test_blank_line_inside_is_refused(tmp_path):
    path = _write(tmp_path / "trl.txt", TRIALS.replace("target\n", "target\n\n", 1))
    with pytest.raises(ProtocolError, match=rf"{path}:2: blank line"):
        read_sasv_trials(path)


def test_duplicated_trials_name_both_lines(tmp_path):
    path = _write(tmp_path / "trl.txt", TRIALS + "LA_0001 LA_D_1000001 bonafide target\n")
    with pytest.raises(ProtocolError, match=r"1 duplicated trials: LA_0001 LA_D_1000001 \(lines 1, 4\)"):
        read_sasv_trials(path)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(ProtocolError, match="file is empty"):
        read_sasv_trials(_write(tmp_path / "empty.txt", "\n\n"))
    with pytest.raises(ProtocolError, match="does not exist"):
        read_cm_protocol(tmp_path / "nope.txt")


def test_not_utf8_names_line(tmp_path):
    path = tmp_path / "bin.txt"
    path.write_bytes(TRIALS.encode() + b"LA_0001 \xff\xfe bonafide target\n")
    with pytest.raises(ProtocolError, match=rf"{path}:4: not UTF-8"):
        read_sasv_trials(path)


def test_enrollment_errors(tmp_path):
    ok = _write(tmp_path / "ok.txt", "LA_0001 LA_E_A1,LA_E_A2\nLA_0002 LA_E_A3\n", newline="\r\n")
    assert read_enrollment(ok) == {"LA_0001": ["LA_E_A1", "LA_E_A2"], "LA_0002": ["LA_E_A3"]}
    bad = {
        "LA_0001 LA_E_A1,,LA_E_A2\n": r":1: empty utterance id",
        "LA_0001 LA_E_A1 LA_E_A2\n": r":1: expected 2 fields",
        "LA_0001 LA_E_A1\nLA_0001 LA_E_A2\n": r"duplicated speakers: LA_0001 \(lines 1, 2\)",
        "LA_0001 LA_E_A1\nLA_0002 LA_E_A1\n": r"duplicated utterances: LA_E_A1 \(lines 1, 2\)",
    }
    for i, (text, message) in enumerate(bad.items()):
        with pytest.raises(ProtocolError, match=message):
            read_enrollment(_write(tmp_path / f"bad{i}.txt", text))


def test_enrollments_merge_refuses_overlap(tmp_path):
    female = _write(tmp_path / "f.txt", "LA_0001 LA_E_A1\n")
    male = _write(tmp_path / "m.txt", "LA_0001 LA_E_A2\n")
    with pytest.raises(ProtocolError, match="enrolled in both"):
        read_enrollments([female, male])
    male = _write(tmp_path / "m.txt", "LA_0002 LA_E_A1\n")
    with pytest.raises(ProtocolError, match="also enrol another speaker"):
        read_enrollments([female, male])


def test_cm_protocol_errors(tmp_path):
    head = "LA_0001 LA_T_1 - - bonafide\nLA_0001 LA_T_2 - A01 spoof\n"
    assert len(read_cm_protocol(_write(tmp_path / "ok.txt", head))) == 2
    bad = {
        "LA_0001 LA_T_3 x - bonafide\n": "third field must be '-'",
        "LA_0001 LA_T_3 - - genuine\n": "unknown label 'genuine'",
        "LA_0001 LA_T_3 - A02 bonafide\n": "does not fit attack",
        "LA_0001 LA_T_3 - - spoof\n": "does not fit attack",
        "LA_0002 LA_T_1 - - bonafide\n": r"duplicated utterances: LA_T_1 \(lines 1, 3\)",
    }
    for i, (line, message) in enumerate(bad.items()):
        path = _write(tmp_path / f"bad{i}.txt", head + line)
        with pytest.raises(ProtocolError, match=message):
            read_cm_protocol(path)


def test_true_speakers_without_and_against_cm():
    trials = [
        Trial("A", "u1", "bonafide", "target"),
        Trial("B", "u1", "bonafide", "nontarget"),
        Trial("B", "u2", "bonafide", "nontarget"),
        Trial("A", "u3", "A01", "spoof"),
    ]
    assert true_speakers(trials) == {"u1": "A", "u2": "u2", "u3": "A"}
    cm = [
        CmEntry("A", "u1", "-", "bonafide"),
        CmEntry("C", "u2", "-", "bonafide"),
        CmEntry("A", "u3", "A01", "spoof"),
    ]
    assert true_speakers(trials, cm) == {"u1": "A", "u2": "C", "u3": "A"}
    with pytest.raises(ProtocolError, match="not in the CM protocol: u3"):
        true_speakers(trials, cm[:2])
    with pytest.raises(ProtocolError, match="contradict the CM protocol"):
        true_speakers(trials, [*cm[:2], CmEntry("C", "u3", "A01", "spoof")])


# ------------------------------------------------------------------------------------ data dirs


def _datadir() -> DataDir:
    utts = {"LA_E_A2": "S1", "LA_E_A1": "S1", "LA_E_A3": "S2", "LA_E_2": "S1", "LA_E_1": "S2", "LA_E_3": "S1"}
    return DataDir(
        wav_scp={u: f"/corpus/{u}.flac" for u in utts},
        utt2spk=utts,
        enroll={"S2": ["LA_E_A3"], "S1": ["LA_E_A2", "LA_E_A1"]},
        trials=[
            Trial("S2", "LA_E_1", "bonafide", "target"),
            Trial("S1", "LA_E_2", "bonafide", "target"),
            Trial("S1", "LA_E_1", "bonafide", "nontarget"),
            Trial("S1", "LA_E_3", "A07", "spoof"),
        ],
    )


def test_datadir_roundtrip_sorted(tmp_path):
    data = _datadir()
    data.write(tmp_path / "d")
    loaded = validate_datadir(tmp_path / "d")
    assert loaded.trial_counts() == {"target": 2, "nontarget": 1, "spoof": 1}
    assert (tmp_path / "d" / "enroll").read_text() == "S1 LA_E_A1 LA_E_A2\nS2 LA_E_A3\n"
    assert (tmp_path / "d" / "trials").read_text().splitlines()[0] == "S1 LA_E_1 bonafide nontarget"
    assert loaded.spk2utt == {"S1": ["LA_E_2", "LA_E_3", "LA_E_A1", "LA_E_A2"], "S2": ["LA_E_1", "LA_E_A3"]}
    assert set(loaded.wav_scp) == set(data.wav_scp)


def test_writers_use_c_byte_order(tmp_path):
    """Upper case before '_' before lower case, and a prefix first: what LC_ALL=C sort gives."""
    ids = ["b", "B", "_x", "a_1", "a", "A_2", "aa", "Z"]
    write_utt2spk(tmp_path / "utt2spk", {u: "s" for u in ids})
    lines = (tmp_path / "utt2spk").read_text().splitlines()
    assert lines == sorted(lines, key=lambda s: s.encode())
    assert [line.split()[0] for line in lines] == ["A_2", "B", "Z", "_x", "a", "a_1", "aa", "b"]
    sort = shutil.which("sort")
    if sort:
        out = subprocess.run(
            [sort],
            input="\n".join(reversed(lines)) + "\n",
            capture_output=True,
            text=True,
            env={"LC_ALL": "C"},
        )
        assert out.stdout.splitlines() == lines


def test_readers_of_datadir_files(tmp_path):
    write_wav_scp(tmp_path / "wav.scp", {"u1": "/a dir/u1.flac", "u0": Path("/x/u0.flac")})
    assert read_wav_scp(tmp_path / "wav.scp") == {"u0": "/x/u0.flac", "u1": "/a dir/u1.flac"}
    write_spk2utt(tmp_path / "enroll", {"s": ["u2", "u1"]})
    assert read_spk2utt(tmp_path / "enroll") == {"s": ["u1", "u2"]}
    write_trials(tmp_path / "trials", [Trial("s", "u1", "A01", "spoof")])
    assert read_trials(tmp_path / "trials") == [Trial("s", "u1", "A01", "spoof")]
    with pytest.raises(ProtocolError, match="whitespace"):
        write_utt2spk(tmp_path / "bad", {"u 1": "s"})
    _write(tmp_path / "utt2spk", "u1 s1\nu1 s2\n")
    with pytest.raises(ProtocolError, match=r"duplicated keys: u1 \(lines 1, 2\)"):
        read_utt2spk(tmp_path / "utt2spk")
    _write(tmp_path / "utt2spk", "u1 s1 extra\n")
    with pytest.raises(ProtocolError, match=r"utt2spk:1: expected 'UTT SPK'"):
        read_utt2spk(tmp_path / "utt2spk")


def test_validation_names_first_offenders_and_count(tmp_path):
    data = _datadir()
    extra = [Trial("S1", f"LA_E_9{i}", "bonafide", "nontarget") for i in range(7)]
    data.trials += [*extra, Trial("S9", "LA_E_1", "bonafide", "nontarget")]
    data.enroll["S2"] = ["LA_E_A3", "LA_E_A9"]
    data.write(tmp_path / "d")
    with pytest.raises(DataDirError) as e:
        validate_datadir(tmp_path / "d")
    msg = str(e.value)
    assert (
        "7 trial utterances missing from wav.scp: LA_E_90, LA_E_91, LA_E_92, LA_E_93, LA_E_94, ... (7 in all)"
        in msg
    )
    assert "1 trial speakers missing from enroll: S9" in msg
    assert "1 enrolment utterances missing from wav.scp: LA_E_A9" in msg
    assert "\n" not in msg


def test_validation_catches_unsorted_and_missing_files(tmp_path):
    d = tmp_path / "d"
    _datadir().write(d)
    lines = (d / "wav.scp").read_text().splitlines()
    (d / "wav.scp").write_text("\n".join(reversed(lines)) + "\n")
    with pytest.raises(DataDirError, match=r"wav.scp is not sorted \(LC_ALL=C sort\) at 5 lines: line 2,"):
        validate_datadir(d)
    _datadir().write(d)
    with pytest.raises(DataDirError, match=r"6 audio files do not exist: LA_E_1 -> /corpus/LA_E_1.flac"):
        validate_datadir(d, check_files=True)
    (d / "trials").unlink()
    with pytest.raises(DataDirError, match="missing trials"):
        validate_datadir(d)


def test_validation_cross_checks_utt2spk(tmp_path):
    data = _datadir()
    data.utt2spk = {**data.utt2spk, "LA_E_A1": "S2"}
    del data.utt2spk["LA_E_3"]
    problems = data.problems()
    assert "1 wav.scp utterances missing from utt2spk: LA_E_3" in problems
    assert (
        "1 enrolment utterances whose utt2spk speaker is not the enrolled one: LA_E_A1 (S2 in utt2spk)"
        in problems
    )
    data = _datadir()
    data.trials.append(Trial("S2", "LA_E_A1", "bonafide", "nontarget"))
    assert data.problems() == ["1 enrolment utterances also used as test utterances: LA_E_A1"]
