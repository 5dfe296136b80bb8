"""ASVspoof 2019 LA / SASV 2022 protocol files, as distributed, and their strict readers.

  SASV trial list   ``SPK UTT bonafide|Axx target|nontarget|spoof``
  enrolment list    ``SPK utt1,utt2,...``
  CM protocol       ``SPK UTT - -|Axx bonafide|spoof``

Also the one definition of the trial keys (``TARGET``, ``NONTARGET``, ``SPOOF``, ``KEYS``) shared by the
metrics and scoring, and the strict line reader that the data-dir lists (:mod:`sasv.corpora.datadir`) use too.

Everything downstream trusts these lists, so the readers are strict: a malformed line, an unknown key or a
duplicated id is an error naming the file and line rather than a silently skipped trial that would shift
an EER. Windows line endings and blank lines at the end of a file are tolerated, because they are what
hand-edited or re-downloaded copies typically pick up.

Kept free of torch and numpy: the lightest tools import it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from sasv.errors import SasvError

TARGET = "target"
NONTARGET = "nontarget"
SPOOF = "spoof"
KEYS: tuple[str, str, str] = (TARGET, NONTARGET, SPOOF)
BONAFIDE = "bonafide"
CM_LABELS = ("bonafide", "spoof")
_ATTACK = re.compile(r"A\d\d")
_SHOW = 5  # offenders named in an error message


class ProtocolError(SasvError, ValueError):
    """A protocol or data-dir list is missing, malformed or inconsistent; the message names file and line."""


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


def read_lines(path: str | Path) -> list[tuple[int, str]]:
    """(line number, line) of every line, CR stripped, a UTF-8 byte-order mark ignored; trailing blank lines
    dropped, inner ones refused."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProtocolError(f"{path}: file does not exist") from None
    except OSError as e:
        raise ProtocolError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Windows editors write one) is not data
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


def line_fields(path: Path, n: int, line: str, count: int, layout: str) -> list[str]:
    """Line ``n`` of ``path`` split on whitespace, refused unless it has ``count`` fields (``layout`` names
    them in the error)."""
    fields = line.split()
    if len(fields) != count:
        raise ProtocolError(
            f"{path}:{n}: expected {count} fields '{layout}', got {len(fields)}: {line.strip()!r}"
        )
    return fields


def check_duplicates(path: Path, what: str, first_seen: dict, dups: list[tuple[object, int]]) -> None:
    if dups:
        named = [f"{k if isinstance(k, str) else ' '.join(k)} (lines {first_seen[k]}, {n})" for k, n in dups]
        raise ProtocolError(f"{path}: {len(dups)} duplicated {what}: {offenders(named)}")


class UniqueKeys:
    """The first line of every key of a list, and the lines that repeat one (reported together, by
    :meth:`check`, once the whole file is read)."""

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = path, what
        self.first: dict[object, int] = {}
        self.dups: list[tuple[object, int]] = []

    def add(self, key: object, n: int) -> None:
        if key in self.first:
            self.dups.append((key, n))
        else:
            self.first[key] = n

    def check(self) -> None:
        check_duplicates(self.path, self.what, self.first, self.dups)


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
    unique = UniqueKeys(path, "trials")
    for n, line in read_lines(path):
        spk, utt, attack, key = line_fields(path, n, line, 4, "SPK UTT ATTACK KEY")
        if key not in KEYS:
            raise ProtocolError(f"{path}:{n}: unknown key {key!r}; expected one of {', '.join(KEYS)}")
        _check_attack(path, n, attack, BONAFIDE)
        if (key == "spoof") != (attack != BONAFIDE):
            raise ProtocolError(
                f"{path}:{n}: key {key!r} does not fit attack {attack!r} (spoof trials name an attack id, "
                f"target and nontarget trials are {BONAFIDE!r})"
            )
        unique.add((spk, utt), n)
        trials.append(Trial(spk, utt, attack, key))
    unique.check()
    return trials


def read_spk_lists(path: Path, lines: Iterable[tuple[int, str, str, list[str]]]) -> dict[str, list[str]]:
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
    check_duplicates(path, "speakers", spk_line, spk_dups)
    check_duplicates(path, "utterances", utt_line, utt_dups)
    return out


def read_enrollment(path: str | Path) -> dict[str, list[str]]:
    """An ASVspoof enrolment list (``SPK utt1,utt2,...``): speaker -> enrolment utterances, in file order."""
    path = Path(path)

    def parsed() -> Iterable[tuple[int, str, str, list[str]]]:
        for n, line in read_lines(path):
            spk, utts = line_fields(path, n, line, 2, "SPK utt1,utt2,...")
            yield n, spk, utts, utts.split(",")

    return read_spk_lists(path, parsed())


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
    unique = UniqueKeys(path, "utterances")
    for n, line in read_lines(path):
        spk, utt, dash, attack, label = line_fields(path, n, line, 5, "SPK UTT - ATTACK LABEL")
        if dash != "-":
            raise ProtocolError(f"{path}:{n}: third field must be '-', got {dash!r}")
        if label not in CM_LABELS:
            raise ProtocolError(
                f"{path}:{n}: unknown label {label!r}; expected one of {', '.join(CM_LABELS)}"
            )
        _check_attack(path, n, attack, "-")
        if (label == "spoof") != (attack != "-"):
            raise ProtocolError(f"{path}:{n}: label {label!r} does not fit attack {attack!r}")
        unique.add(utt, n)
        entries.append(CmEntry(spk, utt, attack, label))
    unique.check()
    return entries


# ----------------------------------------------------------------------------------------------- helpers


def count_trial_keys(trials: Iterable[Trial]) -> dict[str, int]:
    """Trials per key, every key present (zero when absent), in the order target, nontarget, spoof."""
    counts = Counter(t.key for t in trials)
    return {k: counts.get(k, 0) for k in KEYS}


def format_trial_counts(counts: Mapping[str, int]) -> str:
    return " ".join(f"{k}={counts[k]}" for k in KEYS)


def check_trial_attacks(trials: Sequence[Trial], trials_source: str = "the trial list") -> None:
    """Refuse a trial list that gives one test utterance two attack labels (bona fide in one trial, an
    attack in another, or two attacks): an utterance is one recording, bona fide or spoofed once."""
    first: dict[str, Trial] = {}
    bad = []
    for t in trials:
        seen = first.setdefault(t.utt, t)
        if seen.attack != t.attack:
            bad.append(f"{t.utt} ({seen.attack} for {seen.spk} {seen.key}, {t.attack} for {t.spk} {t.key})")
    if bad:
        raise ProtocolError(
            f"{trials_source}: {len(bad)} trials give their test utterance another attack label than an "
            f"earlier trial: {offenders(bad)}"
        )


def check_trials_against_cm(
    trials: Sequence[Trial], cm: Sequence[CmEntry], cm_source: str = "the CM protocol"
) -> None:
    """Refuse trials that contradict the CM protocol about the test utterances it lists (others are not
    checked here), one kind of contradiction per error, each naming the first offenders:

    * a spoof trial of an utterance the CM protocol calls bona fide, or a target/nontarget (bona fide)
      trial of one it calls spoofed;
    * a spoof trial whose attack is not the CM protocol's;
    * a target or spoof trial whose utterance is not the claimed speaker's (a spoof is made of its target);
    * a nontarget trial whose utterance *is* the claimed speaker's (it would be a target trial).

    The CM protocol's speaker column is the true speaker and its label the truth about spoofing: two
    files that disagree on either are from different releases, or one of them is corrupt, and scoring
    either way would count trials under the wrong key.
    """
    by_utt = {e.utt: e for e in cm}
    kinds: dict[str, list[str]] = {
        "spoof trials of utterances that are bona fide in the CM protocol": [],
        "target or nontarget trials of utterances that are spoofed in the CM protocol": [],
        "spoof trials whose attack is not the CM protocol's": [],
        "target or spoof trials whose utterance is not the claimed speaker's in the CM protocol": [],
        "nontarget trials whose utterance is the claimed speaker's in the CM protocol": [],
    }
    bad = list(kinds.values())
    for t in trials:
        e = by_utt.get(t.utt)
        if e is None:
            continue
        shown = f"{t.spk} {t.utt} {t.attack} {t.key} vs CM {e.spk} {e.attack} {e.label}"
        if t.key == SPOOF and e.label == BONAFIDE:
            bad[0].append(shown)
        elif t.key != SPOOF and e.label == SPOOF:
            bad[1].append(shown)
        elif t.key == SPOOF and e.attack != t.attack:
            bad[2].append(shown)
        if t.key != NONTARGET and e.spk != t.spk:
            bad[3].append(shown)
        elif t.key == NONTARGET and e.spk == t.spk:
            bad[4].append(shown)
    for what, found in kinds.items():
        if found:
            raise ProtocolError(
                f"{cm_source}: {len(found)} trials contradict the CM protocol, {what}: {offenders(found)}"
            )


def check_enrollment_against_cm(
    enroll: Mapping[str, Sequence[str]], cm: Sequence[CmEntry], cm_source: str = "the CM protocol"
) -> None:
    """Refuse enrolment utterances that the CM protocol lists as another speaker's or as spoofed (an
    enrolment is bona fide speech of the enrolled speaker); those it does not list are not checked."""
    by_utt = {e.utt: e for e in cm}
    spoofed, other = [], []
    for spk, utts in enroll.items():
        for u in utts:
            e = by_utt.get(u)
            if e is not None and e.label == SPOOF:
                spoofed.append(f"{u} of {spk} ({e.attack})")
            elif e is not None and e.spk != spk:
                other.append(f"{u} of {spk} (CM: {e.spk})")
    if spoofed:
        raise ProtocolError(
            f"{cm_source}: {len(spoofed)} enrolment utterances are spoofed in the CM protocol: "
            f"{offenders(spoofed)}"
        )
    if other:
        raise ProtocolError(
            f"{cm_source}: {len(other)} enrolment utterances are another speaker's in the CM protocol: "
            f"{offenders(other)}"
        )


def check_nontarget_claims(
    trials: Sequence[Trial], utt2spk: Mapping[str, str], source: str = "the trial list"
) -> None:
    """Refuse nontarget trials whose test utterance is the claimed speaker's by ``utt2spk`` (the true
    speakers with the enrolment lists merged in: e.g. a nontarget trial of the claimed speaker's own
    enrolment utterance), which would be a target trial counted as an impostor."""
    bad = [f"{t.spk} {t.utt}" for t in trials if t.key == NONTARGET and utt2spk.get(t.utt) == t.spk]
    if bad:
        raise ProtocolError(
            f"{source}: {len(bad)} nontarget trials test an utterance of the claimed speaker (by the "
            f"enrolment or CM lists): {offenders(bad)}"
        )


def true_speakers(
    trials: Sequence[Trial],
    cm: Sequence[CmEntry] | None = None,
    cm_source: str = "the CM protocol",
    trials_source: str = "the trial list",
) -> dict[str, str]:
    """The true speaker of every test utterance of ``trials``.

    The trial list names the *claimed* speaker, which for a nontarget trial is not the one speaking; the CM
    protocol's speaker column is the true one, so it is used when given, and then it must cover every test
    utterance and agree with every trial (:func:`check_trials_against_cm`) - otherwise the two files are
    from different releases. Without a CM protocol the claimed speaker of a target or spoof trial is used,
    and an utterance seen only in nontarget trials becomes its own speaker (Kaldi's convention for an
    unknown speaker). Either way a test utterance has one attack label over all its trials
    (:func:`check_trial_attacks`). ``cm_source`` and ``trials_source`` name the files in errors.
    """
    check_trial_attacks(trials, trials_source)
    out: dict[str, str] = {}
    if cm is not None:
        by_utt = {e.utt: e for e in cm}
        missing = sorted({t.utt for t in trials if t.utt not in by_utt})
        if missing:
            raise ProtocolError(
                f"{cm_source}: {len(missing)} test utterances of the trials are not in the CM protocol: "
                f"{offenders(missing)}"
            )
        check_trials_against_cm(trials, cm, cm_source)
        return {t.utt: by_utt[t.utt].spk for t in trials}
    for t in trials:
        if t.key != "nontarget":
            if out.get(t.utt, t.spk) != t.spk:
                raise ProtocolError(
                    f"{trials_source}: test utterance {t.utt} is claimed by both {out[t.utt]} and {t.spk}"
                )
            out[t.utt] = t.spk
    for t in trials:
        out.setdefault(t.utt, t.utt)
    return out
