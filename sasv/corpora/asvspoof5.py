"""Where things are in an ASVspoof 5 tree, and how many of them the release has.

The release unpacks into one folder: ``flac_T/``, ``flac_D/``, ``flac_E_eval/`` (16 kHz FLAC, ``<name>.flac``)
and the protocol files, either beside them or in ``ASVspoof5_protocols/``. Protocol names differ between the
release and the challenge phases (:mod:`sasv.corpora.asvspoof5_protocols`); :class:`ASVspoof5Layout` finds
whichever is there, preferring the release's. :data:`RELEASE_COUNTS` are the published sizes of the Track 2
lists, which stage 1 compares with what it read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sasv.corpora.la import check_split
from sasv.corpora.protocols import ProtocolError

SPLITS: tuple[str, ...] = ("train", "dev", "eval")
TRACK2_SPLITS: tuple[str, ...] = ("dev", "eval")
AUDIO_DIRS = {"train": "flac_T", "dev": "flac_D", "eval": "flac_E_eval"}
PROTOCOL_DIRS = (".", "ASVspoof5_protocols")


@dataclass(frozen=True)
class Track2Counts:
    trials: int
    speakers: int
    enrolment_files: int


# The published Track 2 list sizes (ASVspoof 5 release, 2024).
RELEASE_COUNTS = {
    "dev": Track2Counts(trials=282_456, speakers=398, enrolment_files=1_184),
    "eval": Track2Counts(trials=834_536, speakers=367, enrolment_files=1_098),
}

_NAMES = {
    # what: split -> candidate file names, release first
    "metadata": lambda s: [f"ASVspoof5.{s}.tsv", f"ASVspoof5.{s}.track_1.tsv", f"ASVspoof5.{s}.metadata.txt"],
    "trials": lambda s: [f"ASVspoof5.{s}.track_2.trial.tsv", f"ASVspoof5.{s}.trial.txt"],
    "enrollment": lambda s: [f"ASVspoof5.{s}.track_2.enroll.tsv", f"ASVspoof5.{s}.enroll.txt"],
}


def _check(split: str, allowed: tuple[str, ...]) -> str:
    return check_split(split, allowed, "ASVspoof 5 split")


@dataclass(frozen=True)
class ASVspoof5Layout:
    """Paths in an ASVspoof 5 release folder ``root``."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    def audio_dir(self, split: str) -> Path:
        return self.root / AUDIO_DIRS[_check(split, SPLITS)]

    def audio(self, split: str, name: str) -> Path:
        return self.audio_dir(split) / f"{name}.flac"

    def candidates(self, what: str, split: str) -> list[Path]:
        """Where a protocol file may be, in the order they are tried (release names first)."""
        names = _NAMES[what](_check(split, SPLITS if what == "metadata" else TRACK2_SPLITS))
        return [self.root / folder / name for name in names for folder in PROTOCOL_DIRS]

    def protocol(self, what: str, split: str) -> Path:
        """The ``metadata``, ``trials`` or ``enrollment`` file of ``split``: the first that exists."""
        found = [p for p in self.candidates(what, split) if p.is_file()]
        if not found:
            tried = ", ".join(p.name for p in self.candidates(what, split)[:: len(PROTOCOL_DIRS)])
            raise ProtocolError(
                f"{self.root}: no ASVspoof 5 {split} {what} file ({tried}, beside flac_* or in "
                f"{PROTOCOL_DIRS[1]}/)"
            )
        return found[0]


def compare_counts(split: str, got: Track2Counts) -> list[str]:
    """The differences between what a Track 2 split holds and the release's published sizes (empty when
    it is the full release split)."""
    expected = RELEASE_COUNTS[_check(split, TRACK2_SPLITS)]
    return [
        f"{field.replace('_', ' ')} {getattr(got, field):,} (release: {getattr(expected, field):,})"
        for field in ("trials", "speakers", "enrolment_files")
        if getattr(got, field) != getattr(expected, field)
    ]
