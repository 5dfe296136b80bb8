"""ASVspoof 5 (SASV 2024) protocol files, in both naming eras, and their strict readers.

The release (``ASVspoof5_protocols``) names and formats, all space separated despite the ``.tsv`` suffix:

  ``ASVspoof5.{train,dev,eval}[.track_1].tsv``   ``SPEAKER_ID FLAC_FILE_NAME GENDER CODEC CODEC_Q CODEC_SEED
                                                  ATTACK_TAG ATTACK_LABEL KEY TMP`` (KEY: bonafide | spoof)
  ``ASVspoof5.{dev,eval}.track_2.trial.tsv``     ``TARGET_SPEAKER_ID FLAC_FILE_NAME TARGET_GENDER ATTACK_LABEL
                                                  ASV_KEY`` (claimed speaker first; target|nontarget|spoof)
  ``ASVspoof5.{dev,eval}.track_2.enroll.tsv``    ``TARGET_SPEAKER_ID file1,file2,...``

The challenge phases used other names, which other toolkits still read: ``ASVspoof5.train.metadata.txt``
(``SPEAKER FILE GENDER CODEC ATTACK KEY``), ``ASVspoof5.dev.trial.txt`` (``SPEAKER FILE KEY``, no attack
column: a spoof's attack comes from the metadata) and ``ASVspoof5.dev.enroll.txt``. Both eras are read into
the same records as LA's (:class:`~sasv.corpora.protocols.Trial`), so everything after stage 1 is
corpus-independent. A release file may start with its header line (``SPEAKER_ID ...``), which is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from sasv.corpora.protocols import (
    BONAFIDE,
    CM_LABELS,
    KEYS,
    SPOOF,
    ProtocolError,
    Trial,
    UniqueKeys,
    read_lines,
    read_spk_lists,
)

_ATTACK = re.compile(r"A\d\d")


class Asv5Entry(NamedTuple):
    """One utterance of a metadata (CM) protocol."""

    spk: str
    utt: str
    gender: str
    codec: str  # "-" when uncoded
    attack: str  # "bonafide" or the attack id (A01 ... A32)
    label: str  # bonafide | spoof


def _fields(path: Path, n: int, line: str, counts: tuple[int, ...], layout: str) -> list[str]:
    fields = line.split()
    if len(fields) not in counts:
        expected = " or ".join(map(str, counts))
        raise ProtocolError(
            f"{path}:{n}: expected {expected} fields '{layout}', got {len(fields)}: {line.strip()!r}"
        )
    return fields


def _is_header(fields: list[str]) -> bool:
    return fields[0] in ("SPEAKER_ID", "TARGET_SPEAKER_ID", "speaker")


def _attack_of(path: Path, n: int, attack: str, label: str) -> str:
    """The attack of a line as the recipe writes it: ``bonafide`` for bona fide speech, else ``Axx``."""
    if label == BONAFIDE:
        if attack not in ("bonafide", "-"):
            raise ProtocolError(f"{path}:{n}: bona fide line with attack {attack!r}")
        return BONAFIDE
    if not _ATTACK.fullmatch(attack):
        raise ProtocolError(f"{path}:{n}: spoof line with attack {attack!r}; expected A01 ... A32")
    return attack


METADATA_LAYOUTS = {
    10: "SPEAKER_ID FLAC_FILE_NAME GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG ATTACK_LABEL KEY TMP",
    6: "SPEAKER FILE GENDER CODEC ATTACK KEY",
}


def read_metadata(path: str | Path) -> list[Asv5Entry]:
    """A metadata (CM) protocol of either era, in file order: who speaks, bona fide or which attack."""
    path = Path(path)
    entries: list[Asv5Entry] = []
    unique = UniqueKeys(path, "utterances")
    for n, line in read_lines(path):
        fields = _fields(path, n, line, tuple(METADATA_LAYOUTS), METADATA_LAYOUTS[10])
        if n == 1 and _is_header(fields):
            continue
        if len(fields) == 10:
            spk, utt, gender, codec, _, _, _, attack, label, _ = fields
        else:
            spk, utt, gender, codec, attack, label = fields
        if label not in CM_LABELS:
            raise ProtocolError(f"{path}:{n}: unknown key {label!r}; expected one of {', '.join(CM_LABELS)}")
        attack = _attack_of(path, n, attack, label)
        unique.add(utt, n)
        entries.append(Asv5Entry(spk, utt, gender, codec, attack, label))
    unique.check()
    return entries


def read_trials(path: str | Path, attacks: Mapping[str, str] | None = None) -> list[Trial]:
    """A Track 2 trial list of either era, in file order, as :class:`~sasv.corpora.protocols.Trial` records.

    The release's lists name the attack; a phase-era list (``SPEAKER FILE KEY``) does not, so its spoof
    trials take theirs from ``attacks`` (utterance -> attack, from the set's metadata), which it needs.
    """
    path = Path(path)
    trials: list[Trial] = []
    unique = UniqueKeys(path, "trials")
    for n, line in read_lines(path):
        fields = _fields(
            path, n, line, (5, 3), "TARGET_SPEAKER_ID FLAC_FILE_NAME TARGET_GENDER ATTACK_LABEL ASV_KEY"
        )
        if n == 1 and _is_header(fields):
            continue
        spk, utt, key = fields[0], fields[1], fields[-1]
        if key not in KEYS:
            raise ProtocolError(f"{path}:{n}: unknown key {key!r}; expected one of {', '.join(KEYS)}")
        if len(fields) == 5:
            attack = fields[3]
        elif key != SPOOF:
            attack = BONAFIDE
        elif attacks is None:
            raise ProtocolError(
                f"{path}:{n}: a phase-era trial list needs the set's metadata for the attacks"
            )
        elif utt not in attacks:
            raise ProtocolError(f"{path}:{n}: spoof trial {utt} is not in the set's metadata")
        else:
            attack = attacks[utt]
        attack = _attack_of(path, n, attack, BONAFIDE if key != SPOOF else SPOOF)
        unique.add((spk, utt), n)
        trials.append(Trial(spk, utt, attack, key))
    unique.check()
    return trials


def read_enrollment(path: str | Path) -> dict[str, list[str]]:
    """A Track 2 enrolment list of either era (``SPEAKER file1,file2,...``, optional header): speaker ->
    enrolment files, in file order. Some ASVspoof 5 speakers have fewer than three files."""
    path = Path(path)

    def parsed() -> Iterable[tuple[int, str, str, list[str]]]:
        for n, line in read_lines(path):
            fields = _fields(path, n, line, (2,), "TARGET_SPEAKER_ID file1,file2,...")
            if n == 1 and _is_header(fields):
                continue
            yield n, fields[0], fields[1], fields[1].split(",")

    return read_spk_lists(path, parsed())
