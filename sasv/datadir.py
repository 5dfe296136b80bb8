"""ASVspoof 2019 LA / SASV 2022 protocol files and the Kaldi-style data dirs built from them.

Protocols (as distributed):
  SASV trial list   ``SPK UTT bonafide|Axx target|nontarget|spoof``
  enrolment list    ``SPK utt1,utt2,...``
  CM protocol       ``SPK UTT - -|Axx bonafide|spoof``

Data dir ``data/<set>/``: ``wav.scp`` (``UTT /abs/path.flac``), ``utt2spk`` (``UTT SPK``), ``enroll``
(``SPK utt1 utt2 ...``, spk2utt style), ``trials`` (``SPK UTT ATTACK KEY``), optionally ``spk2utt``. Every
file is sorted in C (byte) order, as ``LC_ALL=C sort`` would, and written atomically.

Everything downstream trusts these lists, so the readers are strict: a malformed line, an unknown key or a
duplicated id is an error naming the file and line rather than a silently skipped trial that would shift
an EER. Windows line endings and blank lines at the end of a file are tolerated, because they are what
hand-edited or re-downloaded copies typically pick up.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sasv.fileio import atomic_write_text

KEYS = ("target", "nontarget", "spoof")
BONAFIDE = "bonafide"
CM_LABELS = ("bonafide", "spoof")
_ATTACK = re.compile(r"A\d\d")
_SHOW = 5  # offenders named in an error message


class ProtocolError(ValueError):
    """A protocol or data-dir list is missing, malformed or inconsistent; the message names file and line."""


class DataDirError(ProtocolError):
    """The files of a data dir disagree with each other, or are not sorted."""


class Trial(NamedTuple):
    spk: str
    utt: str
    attack: str  # "bonafide" or an attack id (A01 ... A19)
    key: str  # target | nontarget | spoof


class CmEntry(NamedTuple):
    spk: str
    utt: str
    attack: str  # "-" for bona fide speech, else the attack id
    label: str  # bonafide | spoof


def offenders(items: Sequence[object], limit: int = _SHOW) -> str:
    """The first ``limit`` items and their count: enough to find the problem, short enough to read."""
    shown = ", ".join(str(i) for i in items[:limit])
    return f"{shown}, ... ({len(items)} in all)" if len(items) > limit else shown


# ----------------------------------------------------------------------------------------------- reading


def _read_lines(path: str | Path) -> list[tuple[int, str]]:
    """(line number, line) of every line, CR stripped; trailing blank lines dropped, inner ones refused."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProtocolError(f"{path}: file does not exist") from None
    except OSError as e:
        raise ProtocolError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ProtocolError(f"{path}:{line}: not UTF-8 text") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ProtocolError(f"{path}: file is empty")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            raise ProtocolError(f"{path}:{n}: blank line inside the file (truncated or concatenated?)")
    return list(enumerate(lines, 1))


def _split(path: Path, n: int, line: str, count: int, layout: str) -> list[str]:
    fields = line.split()
    if len(fields) != count:
        raise ProtocolError(
            f"{path}:{n}: expected {count} fields '{layout}', got {len(fields)}: {line.strip()!r}"
        )
    return fields


def _check_duplicates(path: Path, what: str, first_seen: dict, dups: list[tuple[object, int]]) -> None:
    if dups:
        named = [f"{k if isinstance(k, str) else ' '.join(k)} (lines {first_seen[k]}, {n})" for k, n in dups]
        raise ProtocolError(f"{path}: {len(dups)} duplicated {what}: {offenders(named)}")


def _check_attack(path: Path, n: int, attack: str, allowed: str) -> None:
    if attack != allowed and not _ATTACK.fullmatch(attack):
        raise ProtocolError(f"{path}:{n}: unknown attack id {attack!r}; expected '{allowed}' or A01 ... A19")


def read_sasv_trials(path: str | Path) -> list[Trial]:
    """A SASV trial list (``SPK UTT bonafide|Axx target|nontarget|spoof``), in file order.

    ``spoof`` trials must name an attack and target/nontarget trials ``bonafide``: a list where the two
    columns disagree is corrupt, and scoring it would count a spoof as a bona fide nontarget.
    """
    path = Path(path)
    trials: list[Trial] = []
    seen: dict[tuple[str, str], int] = {}
    dups: list[tuple[object, int]] = []
    for n, line in _read_lines(path):
        spk, utt, attack, key = _split(path, n, line, 4, "SPK UTT ATTACK KEY")
        if key not in KEYS:
            raise ProtocolError(f"{path}:{n}: unknown key {key!r}; expected one of {', '.join(KEYS)}")
        _check_attack(path, n, attack, BONAFIDE)
        if (key == "spoof") != (attack != BONAFIDE):
            raise ProtocolError(
                f"{path}:{n}: key {key!r} does not fit attack {attack!r} (spoof trials name an attack id, "
                f"target and nontarget trials are {BONAFIDE!r})"
            )
        if (spk, utt) in seen:
            dups.append(((spk, utt), n))
        else:
            seen[(spk, utt)] = n
        trials.append(Trial(spk, utt, attack, key))
    _check_duplicates(path, "trials", seen, dups)
    return trials


# A data dir's ``trials`` file has the SASV trial list's format and rules.
read_trials = read_sasv_trials


def _read_spk_lists(path: Path, lines: Iterable[tuple[int, str, str, list[str]]]) -> dict[str, list[str]]:
    """Speaker -> utterances, refusing a speaker listed twice or an utterance given to two speakers."""
    out: dict[str, list[str]] = {}
    spk_line: dict[str, int] = {}
    utt_line: dict[str, int] = {}
    spk_dups: list[tuple[object, int]] = []
    utt_dups: list[tuple[object, int]] = []
    for n, spk, raw, utts in lines:
        if any(not u for u in utts):
            raise ProtocolError(f"{path}:{n}: empty utterance id in {raw!r} (stray separator?)")
        if spk in spk_line:
            spk_dups.append((spk, n))
            continue
        spk_line[spk] = n
        for u in utts:
            if u in utt_line:
                utt_dups.append((u, n))
            else:
                utt_line[u] = n
        out[spk] = utts
    _check_duplicates(path, "speakers", spk_line, spk_dups)
    _check_duplicates(path, "utterances", utt_line, utt_dups)
    return out


def read_enrollment(path: str | Path) -> dict[str, list[str]]:
    """An ASVspoof enrolment list (``SPK utt1,utt2,...``): speaker -> enrolment utterances, in file order."""
    path = Path(path)

    def parsed() -> Iterable[tuple[int, str, str, list[str]]]:
        for n, line in _read_lines(path):
            spk, utts = _split(path, n, line, 2, "SPK utt1,utt2,...")
            yield n, spk, utts, utts.split(",")

    return _read_spk_lists(path, parsed())


def read_enrollments(paths: Iterable[str | Path]) -> dict[str, list[str]]:
    """Enrolment lists (the female and the male one) merged; a speaker or utterance in two is an error."""
    merged: dict[str, list[str]] = {}
    spk_src: dict[str, Path] = {}
    utt_src: dict[str, Path] = {}
    for path in map(Path, paths):
        for spk, utts in read_enrollment(path).items():
            if spk in spk_src:
                raise ProtocolError(f"speaker {spk} is enrolled in both {spk_src[spk]} and {path}")
            clash = [u for u in utts if u in utt_src]
            if clash:
                raise ProtocolError(
                    f"{path}: enrolment utterances of {spk} also enrol another speaker in "
                    f"{utt_src[clash[0]]}: {offenders(clash)}"
                )
            spk_src[spk] = path
            utt_src.update(dict.fromkeys(utts, path))
            merged[spk] = utts
    return merged


def read_cm_protocol(path: str | Path) -> list[CmEntry]:
    """An ASVspoof 2019 LA CM protocol (``SPK UTT - -|Axx bonafide|spoof``), in file order."""
    path = Path(path)
    entries: list[CmEntry] = []
    seen: dict[str, int] = {}
    dups: list[tuple[object, int]] = []
    for n, line in _read_lines(path):
        spk, utt, dash, attack, label = _split(path, n, line, 5, "SPK UTT - ATTACK LABEL")
        if dash != "-":
            raise ProtocolError(f"{path}:{n}: third field must be '-', got {dash!r}")
        if label not in CM_LABELS:
            raise ProtocolError(
                f"{path}:{n}: unknown label {label!r}; expected one of {', '.join(CM_LABELS)}"
            )
        _check_attack(path, n, attack, "-")
        if (label == "spoof") != (attack != "-"):
            raise ProtocolError(f"{path}:{n}: label {label!r} does not fit attack {attack!r}")
        if utt in seen:
            dups.append((utt, n))
        else:
            seen[utt] = n
        entries.append(CmEntry(spk, utt, attack, label))
    _check_duplicates(path, "utterances", seen, dups)
    return entries


def _read_pairs(path: str | Path, layout: str, rest_is_one_field: bool) -> dict[str, str]:
    path = Path(path)
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    dups: list[tuple[object, int]] = []
    for n, line in _read_lines(path):
        fields = line.strip().split(maxsplit=1) if rest_is_one_field else line.split()
        if len(fields) != 2:
            raise ProtocolError(f"{path}:{n}: expected '{layout}', got {line.strip()!r}")
        key, value = fields
        if key in seen:
            dups.append((key, n))
            continue
        seen[key] = n
        out[key] = value
    _check_duplicates(path, "keys", seen, dups)
    return out


def read_wav_scp(path: str | Path) -> dict[str, str]:
    """``wav.scp``: utterance -> audio path (the rest of the line, so a path may contain spaces)."""
    return _read_pairs(path, "UTT PATH", rest_is_one_field=True)


def read_utt2spk(path: str | Path) -> dict[str, str]:
    """``utt2spk``: utterance -> speaker."""
    return _read_pairs(path, "UTT SPK", rest_is_one_field=False)


def read_spk2utt(path: str | Path) -> dict[str, list[str]]:
    """``enroll`` or ``spk2utt``: speaker -> utterances."""
    path = Path(path)

    def parsed() -> Iterable[tuple[int, str, str, list[str]]]:
        for n, line in _read_lines(path):
            fields = line.split()
            if len(fields) < 2:
                raise ProtocolError(f"{path}:{n}: expected 'SPK utt1 utt2 ...', got {line.strip()!r}")
            yield n, fields[0], line.strip(), fields[1:]

    return _read_spk_lists(path, parsed())


read_enroll = read_spk2utt


# ----------------------------------------------------------------------------------------------- writing


def _token(value: str, what: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ProtocolError(f"{what} {value!r} is empty or contains whitespace: it would corrupt the list")
    return value


def _write_sorted(path: str | Path, lines: Iterable[str]) -> None:
    # Python orders str by code point, which is the byte order of their UTF-8 encoding: LC_ALL=C sort.
    atomic_write_text(path, "".join(line + "\n" for line in sorted(lines)))


def write_wav_scp(path: str | Path, wav_scp: Mapping[str, str | Path]) -> None:
    lines = []
    for utt, audio in wav_scp.items():
        audio = str(audio)
        if not audio.strip() or "\n" in audio or audio != audio.strip():
            raise ProtocolError(f"audio path {audio!r} of {utt} cannot be written to wav.scp")
        lines.append(f"{_token(utt, 'utterance id')} {audio}")
    _write_sorted(path, lines)


def write_utt2spk(path: str | Path, utt2spk: Mapping[str, str]) -> None:
    _write_sorted(
        path, (f"{_token(u, 'utterance id')} {_token(s, 'speaker id')}" for u, s in utt2spk.items())
    )


def write_spk2utt(path: str | Path, spk2utt: Mapping[str, Iterable[str]]) -> None:
    """``enroll`` or ``spk2utt``; the utterances of a line are sorted too."""
    lines = []
    for spk, utts in spk2utt.items():
        utts = sorted(_token(u, "utterance id") for u in utts)
        if not utts:
            raise ProtocolError(f"speaker {spk} has no utterances")
        lines.append(" ".join([_token(spk, "speaker id"), *utts]))
    _write_sorted(path, lines)


write_enroll = write_spk2utt


def write_trials(path: str | Path, trials: Iterable[Trial]) -> None:
    _write_sorted(
        path,
        (
            " ".join((_token(t.spk, "speaker id"), _token(t.utt, "utterance id"), t.attack, t.key))
            for t in trials
        ),
    )


def spk2utt_from_utt2spk(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for utt, spk in sorted(utt2spk.items()):
        out.setdefault(spk, []).append(utt)
    return out


# ----------------------------------------------------------------------------------------------- helpers


def count_trial_keys(trials: Iterable[Trial]) -> dict[str, int]:
    """Trials per key, every key present (zero when absent), in the order target, nontarget, spoof."""
    counts = Counter(t.key for t in trials)
    return {k: counts.get(k, 0) for k in KEYS}


def format_trial_counts(counts: Mapping[str, int]) -> str:
    return " ".join(f"{k}={counts[k]}" for k in KEYS)


def true_speakers(trials: Sequence[Trial], cm: Sequence[CmEntry] | None = None) -> dict[str, str]:
    """The true speaker of every test utterance of ``trials``.

    The trial list names the *claimed* speaker, which for a nontarget trial is not the one speaking; the CM
    protocol's speaker column is the true one, so it is used when given, and then it must cover every test
    utterance and agree with every target and spoof trial (a spoof is a spoof of its target) - otherwise
    the two files are from different releases. Without a CM protocol the claimed speaker of a target or
    spoof trial is used, and an utterance seen only in nontarget trials becomes its own speaker (Kaldi's
    convention for an unknown speaker).
    """
    out: dict[str, str] = {}
    if cm is not None:
        by_utt = {e.utt: e for e in cm}
        missing = sorted({t.utt for t in trials if t.utt not in by_utt})
        if missing:
            raise ProtocolError(
                f"{len(missing)} test utterances are not in the CM protocol: {offenders(missing)}"
            )
        bad = []
        for t in trials:
            e = by_utt[t.utt]
            cm_attack = BONAFIDE if e.attack == "-" else e.attack
            if cm_attack != t.attack or (t.key != "nontarget" and e.spk != t.spk):
                bad.append(f"{t.spk} {t.utt} {t.attack} {t.key} vs CM {e.spk} {e.attack} {e.label}")
            out[t.utt] = e.spk
        if bad:
            raise ProtocolError(f"{len(bad)} trials contradict the CM protocol: {offenders(bad)}")
        return out
    for t in trials:
        if t.key != "nontarget":
            if out.get(t.utt, t.spk) != t.spk:
                raise ProtocolError(f"test utterance {t.utt} is claimed by both {out[t.utt]} and {t.spk}")
            out[t.utt] = t.spk
    for t in trials:
        out.setdefault(t.utt, t.utt)
    return out


# ----------------------------------------------------------------------------------------------- data dirs

_REQUIRED = ("wav.scp", "utt2spk", "enroll", "trials")


@dataclass
class DataDir:
    """The lists of one data dir, in memory."""

    wav_scp: dict[str, str]
    utt2spk: dict[str, str]
    enroll: dict[str, list[str]]
    trials: list[Trial]
    spk2utt: dict[str, list[str]] | None = None

    @classmethod
    def load(cls, path: str | Path) -> DataDir:
        path = Path(path)
        if not path.is_dir():
            raise DataDirError(f"{path}: data dir does not exist")
        missing = [f for f in _REQUIRED if not (path / f).is_file()]
        if missing:
            raise DataDirError(f"{path}: missing {', '.join(missing)} (run stage 1, local/prepare_la.py)")
        spk2utt = read_spk2utt(path / "spk2utt") if (path / "spk2utt").is_file() else None
        return cls(
            wav_scp=read_wav_scp(path / "wav.scp"),
            utt2spk=read_utt2spk(path / "utt2spk"),
            enroll=read_spk2utt(path / "enroll"),
            trials=read_trials(path / "trials"),
            spk2utt=spk2utt,
        )

    def write(self, path: str | Path) -> None:
        """Write every list sorted and atomically; ``spk2utt`` is derived from ``utt2spk`` when not set."""
        path = Path(path)
        write_wav_scp(path / "wav.scp", self.wav_scp)
        write_utt2spk(path / "utt2spk", self.utt2spk)
        write_spk2utt(path / "spk2utt", self.spk2utt or spk2utt_from_utt2spk(self.utt2spk))
        write_spk2utt(path / "enroll", self.enroll)
        write_trials(path / "trials", self.trials)

    def trial_counts(self) -> dict[str, int]:
        return count_trial_keys(self.trials)

    def problems(self, check_files: bool = False) -> list[str]:
        """Every way the lists disagree with each other, each naming its first offenders and their count."""
        out: list[str] = []

        def report(items: Iterable[str], what: str) -> None:
            unique = sorted(set(items))
            if unique:
                out.append(f"{len(unique)} {what}: {offenders(unique)}")

        wav = self.wav_scp
        enrol_utts = {u for utts in self.enroll.values() for u in utts}
        test_utts = {t.utt for t in self.trials}
        report((t.utt for t in self.trials if t.utt not in wav), "trial utterances missing from wav.scp")
        report((t.spk for t in self.trials if t.spk not in self.enroll), "trial speakers missing from enroll")
        report((u for u in enrol_utts if u not in wav), "enrolment utterances missing from wav.scp")
        report(enrol_utts & test_utts, "enrolment utterances also used as test utterances")
        report((u for u in wav if u not in self.utt2spk), "wav.scp utterances missing from utt2spk")
        report((u for u in self.utt2spk if u not in wav), "utt2spk utterances missing from wav.scp")
        report(
            (
                f"{u} ({self.utt2spk[u]} in utt2spk)"
                for spk, utts in self.enroll.items()
                for u in utts
                if u in self.utt2spk and self.utt2spk[u] != spk
            ),
            "enrolment utterances whose utt2spk speaker is not the enrolled one",
        )
        if self.spk2utt is not None:
            derived = spk2utt_from_utt2spk(self.utt2spk)
            given = {s: sorted(u) for s, u in self.spk2utt.items()}
            report(
                (s for s in derived.keys() | given.keys() if derived.get(s) != given.get(s)),
                "speakers whose spk2utt line disagrees with utt2spk",
            )
        if check_files:
            report(
                (f"{u} -> {p}" for u, p in wav.items() if not Path(p).is_file()), "audio files do not exist"
            )
        return out


def _unsorted(path: Path) -> list[int]:
    """Line numbers that come before their predecessor in C order."""
    lines = _read_lines(path)
    return [n for (_, prev), (n, line) in zip(lines, lines[1:], strict=False) if line < prev]


def validate_datadir(path: str | Path, check_files: bool = False) -> DataDir:
    """Load a data dir and check it the way every stage after data preparation relies on it.

    Checked: each list parses (no malformed lines or duplicated ids), is sorted in C order, and the lists
    agree (every trial utterance in wav.scp, every trial speaker enrolled, every enrolment utterance in
    wav.scp, utt2spk covering wav.scp); with ``check_files`` every audio path exists. Raises
    :class:`DataDirError` listing every problem found, each with its first offenders and their count.
    """
    path = Path(path)
    data = DataDir.load(path)
    problems = []
    for name in (*_REQUIRED, "spk2utt"):
        if (path / name).is_file():
            bad = _unsorted(path / name)
            if bad:
                problems.append(
                    f"{name} is not sorted (LC_ALL=C sort) at {len(bad)} lines: "
                    f"{offenders([f'line {n}' for n in bad])}"
                )
    problems += data.problems(check_files=check_files)
    if problems:
        raise DataDirError(f"{path}: {'; '.join(problems)}")
    return data
