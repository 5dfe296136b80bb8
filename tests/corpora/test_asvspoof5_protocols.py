"""ASVspoof 5 protocol readers (:mod:`sasv.corpora.asvspoof5_protocols`) on hand-written files in the real
formats of both naming eras: the release's (10-column metadata, 5-column Track 2 trials) and the challenge
phases' (6-column metadata, 3-column trials whose attacks come from the metadata)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sasv.corpora.asvspoof5_protocols import read_enrollment, read_metadata, read_trials
from sasv.corpora.protocols import ProtocolError, Trial

RELEASE_METADATA = """\
D_0062 D_0000000001 F - - - - bonafide bonafide -
D_0062 D_0000000002 F mp3 3 77 AC1 A11 spoof -
D_0755 D_0000000003 M - - - - A14 spoof -
"""
PHASE_METADATA = """\
T_4850 T_0000000000 F - A05 spoof
T_4850 T_0000000001 F - bonafide bonafide
"""
RELEASE_TRIALS = """\
D_0062 D_0000000001 F bonafide target
D_0062 D_0000000003 F A14 spoof
D_0755 D_0000000001 M bonafide nontarget
"""
PHASE_TRIALS = """\
D_0062 D_0000000001 target
D_0062 D_0000000003 spoof
D_0755 D_0000000001 nontarget
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_release_metadata_with_and_without_header(tmp_path) -> None:
    plain = read_metadata(_write(tmp_path, "a.tsv", RELEASE_METADATA))
    header = "SPEAKER_ID FLAC_FILE_NAME GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG ATTACK_LABEL KEY TMP\n"
    assert read_metadata(_write(tmp_path, "b.tsv", header + RELEASE_METADATA)) == plain
    assert [(e.utt, e.codec, e.attack, e.label) for e in plain] == [
        ("D_0000000001", "-", "bonafide", "bonafide"),
        ("D_0000000002", "mp3", "A11", "spoof"),
        ("D_0000000003", "-", "A14", "spoof"),
    ]


def test_phase_metadata(tmp_path) -> None:
    entries = read_metadata(_write(tmp_path, "ASVspoof5.train.metadata.txt", PHASE_METADATA))
    assert [(e.spk, e.utt, e.attack, e.label) for e in entries] == [
        ("T_4850", "T_0000000000", "A05", "spoof"),
        ("T_4850", "T_0000000001", "bonafide", "bonafide"),
    ]


def test_both_trial_eras_give_the_same_trials(tmp_path) -> None:
    release = read_trials(_write(tmp_path, "ASVspoof5.dev.track_2.trial.tsv", RELEASE_TRIALS))
    assert release == [
        Trial("D_0062", "D_0000000001", "bonafide", "target"),
        Trial("D_0062", "D_0000000003", "A14", "spoof"),
        Trial("D_0755", "D_0000000001", "bonafide", "nontarget"),
    ]
    attacks = {e.utt: e.attack for e in read_metadata(_write(tmp_path, "m.tsv", RELEASE_METADATA))}
    assert read_trials(_write(tmp_path, "ASVspoof5.dev.trial.txt", PHASE_TRIALS), attacks) == release
    with pytest.raises(ProtocolError, match="needs the set's metadata"):
        read_trials(tmp_path / "ASVspoof5.dev.trial.txt")


def test_enrolment_with_fewer_than_three_files(tmp_path) -> None:
    text = (
        "TARGET_SPEAKER_ID FLAC_FILE_NAME\n"
        "D_0062 D_A0000000316,D_A0000000725,D_A0000000343\nD_0755 D_A0000000001\n"
    )
    assert read_enrollment(_write(tmp_path, "e.tsv", text)) == {
        "D_0062": ["D_A0000000316", "D_A0000000725", "D_A0000000343"],
        "D_0755": ["D_A0000000001"],
    }


@pytest.mark.parametrize(
    "reader, text, message",
    [
        (read_metadata, "D_1 D_2 F - - - - A11 fake -\n", "unknown key 'fake'"),
        (read_metadata, "D_1 D_2 F - - - - bonafide spoof -\n", "spoof line with attack 'bonafide'"),
        (read_metadata, "D_1 D_2 F - - - - A11 spoof\n", "expected 10 or 6 fields"),
        (
            read_metadata,
            RELEASE_METADATA + RELEASE_METADATA.splitlines()[0] + "\n",
            "1 duplicated utterances",
        ),
        (read_trials, "D_1 D_2 F bonafide impostor\n", "unknown key 'impostor'"),
        (read_trials, "D_1 D_2 F A11 target\n", "bona fide line with attack 'A11'"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, reader, text: str, message: str) -> None:
    path = _write(tmp_path, "p.tsv", text)
    with pytest.raises(ProtocolError) as e:
        reader(path)
    assert message in str(e.value) and str(path) in str(e.value)
