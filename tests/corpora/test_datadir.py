from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sasv.corpora.datadir import (
    DataDir,
    DataDirError,
    is_cm_datadir,
    read_spk2utt,
    read_utt2spk,
    read_utt2value,
    read_wav_scp,
    validate_cm_datadir,
    validate_datadir,
    write_spk2utt,
    write_trials,
    write_utt2spf,
    write_utt2spk,
    write_utt2value,
    write_wav_scp,
)
from sasv.corpora.protocols import ProtocolError, Trial, read_sasv_trials


def _write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode())
    return path


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
    assert read_sasv_trials(tmp_path / "trials") == [Trial("s", "u1", "A01", "spoof")]
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


def test_utt2codec_round_trip_and_coverage(tmp_path):
    """ASVspoof 5's optional ``utt2codec``: written sorted, read back; every trial utterance needs a codec."""
    import dataclasses

    data = dataclasses.replace(_datadir(), utt2codec={"LA_E_3": "C01", "LA_E_1": "-", "LA_E_2": "C02"})
    data.write(tmp_path / "d")
    assert (tmp_path / "d" / "utt2codec").read_text() == "LA_E_1 -\nLA_E_2 C02\nLA_E_3 C01\n"
    assert validate_datadir(tmp_path / "d").utt2codec == data.utt2codec
    _write(tmp_path / "d" / "utt2codec", "LA_E_1 -\nLA_E_2 C02\n")
    with pytest.raises(DataDirError, match="1 trial utterances missing from utt2codec: LA_E_3"):
        validate_datadir(tmp_path / "d")
    _write(tmp_path / "d" / "utt2codec", "LA_E_2 C02\nLA_E_1 -\nLA_E_3 C01\n")
    with pytest.raises(DataDirError, match="utt2codec is not sorted"):
        validate_datadir(tmp_path / "d")
    assert validate_datadir(_datadir().write(tmp_path / "e") or tmp_path / "e").utt2codec is None


# ------------------------------------------------------------------------------------ CM data dirs


def _cm_dir(path: Path) -> Path:
    utts = {"LA_E_2": "bonafide", "LA_E_1": "spoof", "LA_E_10": "spoof"}
    path.mkdir()
    write_wav_scp(path / "wav.scp", {u: f"/corpus/{u}.flac" for u in utts})
    write_utt2spk(path / "utt2spk", {u: "LA_0001" for u in utts})
    write_utt2spf(path / "utt2spf", utts)
    write_utt2value(path / "utt2codec", {"LA_E_2": "none", "LA_E_1": "alaw", "LA_E_10": "gsm"})
    return path


def test_a_cm_data_dir_is_validated(tmp_path):
    d = _cm_dir(tmp_path / "cm")
    assert is_cm_datadir(d) and not is_cm_datadir(tmp_path)
    data = validate_cm_datadir(d, ("utt2codec",))
    assert list(data.wav_scp) == ["LA_E_1", "LA_E_10", "LA_E_2"], "C order"
    assert data.utt2spf["LA_E_2"] == "bonafide" and data.conditions == {
        "utt2codec": read_utt2value(d / "utt2codec")
    }
    assert validate_cm_datadir(d).conditions == {}
    with pytest.raises(DataDirError, match=rf"^{d}: missing utt2attack \(run stage 1\)$"):
        validate_cm_datadir(d, ("utt2attack",))
    (d / "utt2codec").write_text("LA_E_2 none\nLA_E_1 alaw\nLA_E_9 gsm\n")
    (d / "utt2spf").write_text((d / "utt2spf").read_text().replace("LA_E_2 bonafide", "LA_E_2 human"))
    with pytest.raises(DataDirError) as err:
        validate_cm_datadir(d, ("utt2codec",))
    message = str(err.value)
    assert "utt2codec is not sorted (LC_ALL=C sort) at 1 lines: line 2" in message
    assert "1 wav.scp utterances missing from utt2codec: LA_E_10" in message
    assert "1 utt2codec utterances missing from wav.scp: LA_E_9" in message
    assert "1 labels other than bonafide|spoof: LA_E_2 (human)" in message


def test_utt2value_names_the_value_in_errors(tmp_path):
    with pytest.raises(ProtocolError, match="subset 'an eval' is empty or contains whitespace"):
        write_utt2value(tmp_path / "utt2subset", {"LA_E_1": "an eval"})
    _write(tmp_path / "utt2vocoder", "LA_E_1 a b\n")
    with pytest.raises(ProtocolError, match=r"utt2vocoder:1: expected 'UTT VOCODER'"):
        read_utt2value(tmp_path / "utt2vocoder")
