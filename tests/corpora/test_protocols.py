from __future__ import annotations

from pathlib import Path

import pytest

from sasv.corpora.protocols import (
    CmEntry,
    ProtocolError,
    Trial,
    count_trial_keys,
    read_cm_protocol,
    read_enrollment,
    read_enrollments,
    read_sasv_trials,
    true_speakers,
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


def test_utf8_byte_order_mark_is_not_part_of_the_first_id(tmp_path):
    """Windows editors save with a BOM; it used to become part of the first speaker id ('\\ufeffLA_0001')."""
    bom = "\ufeff"
    assert read_sasv_trials(_write(tmp_path / "bom.txt", bom + TRIALS)) == read_sasv_trials(
        _write(tmp_path / "plain.txt", TRIALS)
    )
    enrol = read_enrollment(_write(tmp_path / "enrol.txt", bom + "LA_0001 LA_D_1,LA_D_2\n"))
    assert list(enrol) == ["LA_0001"]


# the trials and CM protocol of test_true_speakers_without_and_against_cm, each contradiction one edit away
_TRIALS = [
    Trial("A", "u1", "bonafide", "target"),
    Trial("B", "u1", "bonafide", "nontarget"),
    Trial("B", "u2", "bonafide", "nontarget"),
    Trial("A", "u3", "A01", "spoof"),
]
_CM = [
    CmEntry("A", "u1", "-", "bonafide"),
    CmEntry("C", "u2", "-", "bonafide"),
    CmEntry("A", "u3", "A01", "spoof"),
]


@pytest.mark.parametrize(
    ("trials", "cm", "kind"),
    [
        # the converse of a target trial of another speaker's utterance: a nontarget of the claimed speaker's
        ([*_TRIALS[:2], Trial("C", "u2", "bonafide", "nontarget"), _TRIALS[3]], _CM,
         "nontarget trials whose utterance is the claimed speaker's in the CM protocol: C u2"),
        (_TRIALS, [*_CM[:1], CmEntry("B", "u2", "-", "bonafide"), _CM[2]],
         "nontarget trials whose utterance is the claimed speaker's in the CM protocol: B u2"),
        (_TRIALS, [CmEntry("C", "u1", "-", "bonafide"), *_CM[1:]],
         "target or spoof trials whose utterance is not the claimed speaker's in the CM protocol: A u1"),
        (_TRIALS, [*_CM[:2], CmEntry("A", "u3", "-", "bonafide")],
         "spoof trials of utterances that are bona fide in the CM protocol: A u3 A01 spoof vs CM A - "
         "bonafide"),
        (_TRIALS, [*_CM[:1], CmEntry("C", "u2", "A05", "spoof"), _CM[2]],
         "target or nontarget trials of utterances that are spoofed in the CM protocol: B u2"),
        (_TRIALS, [*_CM[:2], CmEntry("A", "u3", "A02", "spoof")],
         "spoof trials whose attack is not the CM protocol's: A u3 A01 spoof vs CM A A02 spoof"),
    ],
)  # fmt: skip
def test_each_contradiction_of_trials_and_cm_protocol_is_one_clear_error(trials, cm, kind) -> None:
    with pytest.raises(ProtocolError) as info:
        true_speakers(trials, cm, "cm.txt")
    assert str(info.value).startswith("cm.txt: 1 trials contradict the CM protocol, " + kind)


def test_a_trial_list_alone_gives_an_utterance_one_attack_label() -> None:
    """Without a CM protocol the trial list is the only witness: an utterance bona fide in one trial and
    spoofed in another (or of two attacks) contradicts itself."""
    for other in (Trial("B", "u3", "bonafide", "nontarget"), Trial("B", "u3", "A02", "spoof")):
        with pytest.raises(ProtocolError) as info:
            true_speakers([*_TRIALS, other], None, trials_source="trials.txt")
        assert str(info.value) == (
            "trials.txt: 1 trials give their test utterance another attack label than an earlier trial: "
            f"u3 (A01 for A spoof, {other.attack} for B {other.key})"
        )


def test_enrolment_and_trials_agree_with_the_cm_protocol_and_each_other() -> None:
    from sasv.corpora.data_prep import utterance_speakers
    from sasv.corpora.datadir import DataDirError

    sources = {"trials": "trials.txt", "enroll": "enroll.txt", "cm": "cm.txt"}
    enroll = {"A": ["e1"], "B": ["e2"]}
    assert utterance_speakers(_TRIALS, enroll, _CM, sources) == {
        "u1": "A",
        "u2": "C",
        "u3": "A",
        "e1": "A",
        "e2": "B",
    }
    for cm, message in (
        ([*_CM, CmEntry("A", "e1", "A03", "spoof")],
         "1 enrolment utterances are spoofed in the CM protocol: e1 of A"),
        ([*_CM, CmEntry("C", "e2", "-", "bonafide")],
         "1 enrolment utterances are another speaker's in the CM protocol: e2 of B (CM: C)"),
    ):  # fmt: skip
        with pytest.raises(ProtocolError) as info:
            utterance_speakers(_TRIALS, enroll, cm, sources)
        assert str(info.value).startswith(f"cm.txt: {message}")
    # a nontarget trial of the claimed speaker's own enrolment utterance, with or without a CM protocol
    own = [*_TRIALS, Trial("B", "e2", "bonafide", "nontarget")]
    with pytest.raises(ProtocolError) as info:
        utterance_speakers(own, enroll, None, sources)
    assert str(info.value) == (
        "trials.txt (with enroll.txt): 1 nontarget trials test an utterance of the claimed speaker (by "
        "the enrolment or CM lists): B e2"
    )
    with pytest.raises(ProtocolError, match="the claimed speaker's in the CM protocol: B e2"):
        utterance_speakers(own, enroll, [*_CM, CmEntry("B", "e2", "-", "bonafide")], sources)
    # without a CM protocol, an utterance seen only in nontarget trials is its enrolled speaker's
    other = [*_TRIALS, Trial("A", "e2", "bonafide", "nontarget")]
    assert utterance_speakers(other, enroll, None, sources)["e2"] == "B"
    with pytest.raises(DataDirError, match="e1 is an enrolment utterance of A and a test utterance of B"):
        utterance_speakers([*_TRIALS, Trial("B", "e1", "bonafide", "target")], enroll, None, sources)
