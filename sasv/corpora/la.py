"""Where things live in an ASVspoof 2019 LA tree (the ``LA/`` folder of LA.zip).

One place for the folder and file names, shared by data preparation, the synthetic mini corpus (which
must look exactly like the real tree) and the download script's instructions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "dev", "eval")
TRIAL_SPLITS = ("dev", "eval")  # the splits with ASV enrolment and SASV trial lists
GENDERS = ("female", "male")
ASV_PROTOCOLS = "ASVspoof2019_LA_asv_protocols"
CM_PROTOCOLS = "ASVspoof2019_LA_cm_protocols"


def check_split(split: str, allowed: tuple[str, ...], what: str = "split") -> str:
    """``split`` if it is one of ``allowed``, else a ValueError naming the choices (every corpus layout)."""
    if split not in allowed:
        raise ValueError(f"unknown {what} {split!r}; expected one of {', '.join(allowed)}")
    return split


@dataclass(frozen=True)
class LALayout:
    """The ``LA/`` folder; ``trials_dir``: where the SASV trial lists are, if not in the asv protocols."""

    root: Path
    trials_dir: Path | None = None

    def audio_dir(self, split: str) -> Path:
        return self.root / f"ASVspoof2019_LA_{check_split(split, SPLITS)}" / "flac"

    def audio_path(self, split: str, utt: str) -> Path:
        return self.audio_dir(split) / f"{utt}.flac"

    @property
    def asv_protocols(self) -> Path:
        return self.root / ASV_PROTOCOLS

    @property
    def cm_protocols(self) -> Path:
        return self.root / CM_PROTOCOLS

    def trial_list(self, split: str) -> Path:
        folder = self.trials_dir if self.trials_dir is not None else self.asv_protocols
        return folder / f"ASVspoof2019.LA.asv.{check_split(split, TRIAL_SPLITS)}.gi.trl.txt"

    def enrollment_list(self, split: str, gender: str) -> Path:
        return (
            self.asv_protocols
            / f"ASVspoof2019.LA.asv.{check_split(split, TRIAL_SPLITS)}.{check_split(gender, GENDERS)}.trn.txt"
        )

    def enrollment_lists(self, split: str) -> tuple[Path, ...]:
        return tuple(self.enrollment_list(split, g) for g in GENDERS)

    def cm_protocol(self, split: str) -> Path:
        kind = "trn" if check_split(split, SPLITS) == "train" else "trl"
        return self.cm_protocols / f"ASVspoof2019.LA.cm.{split}.{kind}.txt"

    def sources(self, split: str) -> list[Path]:
        """The protocol files a data dir of ``split`` is made from (those that exist)."""
        files = [self.trial_list(split), *self.enrollment_lists(split), self.cm_protocol(split)]
        return [f for f in files if f.is_file()]
