"""The Kaldi-style data dirs built from the ASVspoof 2019 LA / SASV 2022 protocols
(:mod:`sasv.corpora.protocols`).

Data dir ``data/<set>/``: ``wav.scp`` (``UTT /abs/path.flac``), ``utt2spk`` (``UTT SPK``), ``enroll``
(``SPK utt1 utt2 ...``, spk2utt style), ``trials`` (``SPK UTT ATTACK KEY``), optionally ``spk2utt``. Every
file is sorted in C (byte) order, as ``LC_ALL=C sort`` would, and written atomically.

Every stage after data preparation trusts these lists, so they are read as strictly as the protocols (the
same line rules, see :mod:`sasv.corpora.protocols`): a malformed line or a duplicated id is an error naming
the file and line, and :func:`validate_datadir` also checks that the lists are sorted and agree with each
other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sasv.corpora.protocols import (
    CM_LABELS,
    ProtocolError,
    Trial,
    check_duplicates,
    count_trial_keys,
    offenders,
    read_lines,
    read_sasv_trials,
    read_spk_lists,
)
from sasv.fileio import atomic_write_text


class DataDirError(ProtocolError):
    """The files of a data dir disagree with each other, or are not sorted."""


# ----------------------------------------------------------------------------------------------- reading


def _read_pairs(path: str | Path, layout: str, rest_is_one_field: bool) -> dict[str, str]:
    path = Path(path)
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    dups: list[tuple[object, int]] = []
    for n, line in read_lines(path):
        fields = line.strip().split(maxsplit=1) if rest_is_one_field else line.split()
        if len(fields) != 2:
            raise ProtocolError(f"{path}:{n}: expected '{layout}', got {line.strip()!r}")
        key, value = fields
        if key in seen:
            dups.append((key, n))
            continue
        seen[key] = n
        out[key] = value
    check_duplicates(path, "keys", seen, dups)
    return out


def read_wav_scp(path: str | Path) -> dict[str, str]:
    """``wav.scp``: utterance -> audio path (the rest of the line, so a path may contain spaces)."""
    return _read_pairs(path, "UTT PATH", rest_is_one_field=True)


def read_utt2spk(path: str | Path) -> dict[str, str]:
    """``utt2spk``: utterance -> speaker."""
    return _read_pairs(path, "UTT SPK", rest_is_one_field=False)


def read_utt2value(path: str | Path) -> dict[str, str]:
    """``utt2<x>`` (``utt2spf``, ``utt2codec``, ...): utterance -> value."""
    what = Path(path).name.removeprefix("utt2").upper()
    return _read_pairs(path, f"UTT {what}", rest_is_one_field=False)


def read_spk2utt(path: str | Path) -> dict[str, list[str]]:
    """``enroll`` or ``spk2utt``: speaker -> utterances."""
    path = Path(path)

    def parsed() -> Iterable[tuple[int, str, str, list[str]]]:
        for n, line in read_lines(path):
            fields = line.split()
            if len(fields) < 2:
                raise ProtocolError(f"{path}:{n}: expected 'SPK utt1 utt2 ...', got {line.strip()!r}")
            yield n, fields[0], line.strip(), fields[1:]

    return read_spk_lists(path, parsed())


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


def write_utt2spf(path: str | Path, utt2spf: Mapping[str, str]) -> None:
    """``utt2spf`` (ESPnet's name): ``UTT bonafide|spoof``, the countermeasure's label per utterance."""
    bad = sorted(u for u, label in utt2spf.items() if label not in ("bonafide", "spoof"))
    if bad:
        raise ProtocolError(f"utterance {bad[0]}: CM label {utt2spf[bad[0]]!r} is neither bonafide nor spoof")
    _write_sorted(path, (f"{_token(u, 'utterance id')} {label}" for u, label in utt2spf.items()))


def write_utt2value(path: str | Path, utt2value: Mapping[str, str]) -> None:
    """``utt2<x>``: ``UTT VALUE``, one condition of each utterance (a codec, an attack, a subset); the value
    is named after the file in errors (``codec`` of ``utt2codec``)."""
    what = Path(path).name.removeprefix("utt2")
    _write_sorted(path, (f"{_token(u, 'utterance id')} {_token(v, what)}" for u, v in utt2value.items()))


def write_utt2codec(path: str | Path, utt2codec: Mapping[str, str]) -> None:
    """``utt2codec``: ``UTT CODEC``, the codec condition of each test utterance (ASVspoof 5's metadata;
    ``-`` uncoded; ASVspoof 2021's codec or compression), what the per-codec tables group by."""
    write_utt2value(path, utt2codec)


def write_spk2utt(path: str | Path, spk2utt: Mapping[str, Iterable[str]]) -> None:
    """``enroll`` or ``spk2utt``; the utterances of a line are sorted too."""
    lines = []
    for spk, utts in spk2utt.items():
        utts = sorted(_token(u, "utterance id") for u in utts)
        if not utts:
            raise ProtocolError(f"speaker {spk} has no utterances")
        lines.append(" ".join([_token(spk, "speaker id"), *utts]))
    _write_sorted(path, lines)


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
    utt2codec: dict[str, str] | None = None  # ASVspoof 5: the codec condition of each test utterance

    @classmethod
    def load(cls, path: str | Path) -> DataDir:
        path = Path(path)
        if not path.is_dir():
            raise DataDirError(f"{path}: data dir does not exist")
        missing = [f for f in _REQUIRED if not (path / f).is_file()]
        if missing:
            raise DataDirError(f"{path}: missing {', '.join(missing)} (run stage 1, sasv prepare_la)")
        spk2utt = read_spk2utt(path / "spk2utt") if (path / "spk2utt").is_file() else None
        utt2codec = read_utt2spk(path / "utt2codec") if (path / "utt2codec").is_file() else None
        return cls(
            wav_scp=read_wav_scp(path / "wav.scp"),
            utt2spk=read_utt2spk(path / "utt2spk"),
            enroll=read_spk2utt(path / "enroll"),
            trials=read_sasv_trials(path / "trials"),
            spk2utt=spk2utt,
            utt2codec=utt2codec,
        )

    def write(self, path: str | Path) -> None:
        """Write every list sorted and atomically; ``spk2utt`` is derived from ``utt2spk`` when not set."""
        path = Path(path)
        write_wav_scp(path / "wav.scp", self.wav_scp)
        write_utt2spk(path / "utt2spk", self.utt2spk)
        write_spk2utt(path / "spk2utt", self.spk2utt or spk2utt_from_utt2spk(self.utt2spk))
        write_spk2utt(path / "enroll", self.enroll)
        write_trials(path / "trials", self.trials)
        if self.utt2codec is not None:
            write_utt2codec(path / "utt2codec", self.utt2codec)

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
        if self.utt2codec is not None:
            report(
                (u for u in test_utts if u not in self.utt2codec), "trial utterances missing from utt2codec"
            )
            report((u for u in self.utt2codec if u not in wav), "utt2codec utterances missing from wav.scp")
        if check_files:
            report(
                (f"{u} -> {p}" for u, p in wav.items() if not Path(p).is_file()), "audio files do not exist"
            )
        return out


def _unsorted(path: Path) -> list[int]:
    """Line numbers that come before their predecessor in C order."""
    lines = read_lines(path)
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
    for name in (*_REQUIRED, "spk2utt", "utt2codec"):
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


# -------------------------------------------------------------------------------------------- CM data dirs

CM_DATA_DIR_FILES = ("wav.scp", "utt2spk", "utt2spf")


@dataclass
class CmDataDir:
    """The lists of a CM data dir: every utterance of ``wav.scp`` labelled ``bonafide`` or ``spoof`` in
    ``utt2spf`` (``sasv prepare_la --cm_sets``, ``sasv prepare_asvspoof2021``), and the ``utt2<x>``
    condition files asked for (file name -> utterance -> value)."""

    wav_scp: dict[str, str]
    utt2spk: dict[str, str]
    utt2spf: dict[str, str]
    conditions: dict[str, dict[str, str]]


def is_cm_datadir(path: str | Path) -> bool:
    """A data dir of CM-labelled utterances without SASV trials: stage 3 scores every utterance of it."""
    path = Path(path)
    return (path / "utt2spf").is_file() and not (path / "trials").is_file()


def validate_cm_datadir(path: str | Path, conditions: Sequence[str] = ()) -> CmDataDir:
    """Load a CM data dir and check it: every list parses and is sorted in C order, ``utt2spk``,
    ``utt2spf`` and each of ``conditions`` cover exactly the utterances of ``wav.scp``, and every label is
    ``bonafide`` or ``spoof``. Raises :class:`DataDirError` listing every problem found."""
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"{path}: data dir does not exist")
    names = (*CM_DATA_DIR_FILES, *conditions)
    missing = [f for f in names if not (path / f).is_file()]
    if missing:
        raise DataDirError(f"{path}: missing {', '.join(missing)} (run stage 1)")
    problems: list[str] = []

    def report(items: Iterable[str], what: str) -> None:
        unique = sorted(set(items))
        if unique:
            problems.append(f"{len(unique)} {what}: {offenders(unique)}")

    for name in names:
        bad = _unsorted(path / name)
        if bad:
            problems.append(
                f"{name} is not sorted (LC_ALL=C sort) at {len(bad)} lines: "
                f"{offenders([f'line {n}' for n in bad])}"
            )
    wav_scp = read_wav_scp(path / "wav.scp")
    lists = {name: read_utt2value(path / name) for name in names[1:]}
    for name, mapping in lists.items():
        report((u for u in wav_scp if u not in mapping), f"wav.scp utterances missing from {name}")
        report((u for u in mapping if u not in wav_scp), f"{name} utterances missing from wav.scp")
    utt2spf = lists["utt2spf"]
    report(
        (f"{u} ({v})" for u, v in utt2spf.items() if v not in CM_LABELS), "labels other than bonafide|spoof"
    )
    if problems:
        raise DataDirError(f"{path}: {'; '.join(problems)}")
    return CmDataDir(wav_scp, lists["utt2spk"], utt2spf, {name: lists[name] for name in conditions})
