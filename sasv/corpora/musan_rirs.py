"""The training augmentation corpora, MUSAN (noise, music, speech; openslr.org 17) and the simulated RIRs of
RIRS_NOISES (openslr.org 28), as they unpack, and the Kaldi lists of their files (``sasv
prepare_augmentation`` writes them, :mod:`sasv.train.augment` reads them)::

  <musan_root>/{noise,music,speech}/<source>/*.wav
  <rirs_root>/simulated_rirs/{smallroom,mediumroom,largeroom}/Room*/*.wav

The real RIRs and point-source noises of RIRS_NOISES are not used, as in the reference recipes.
"""

from __future__ import annotations

from pathlib import Path

from sasv.corpora.datadir import DataDirError
from sasv.corpora.protocols import offenders

MUSAN_LISTS = ("noise", "music", "speech")
ROOMS = ("smallroom", "mediumroom", "largeroom")


def scan(folder: Path, pattern: str) -> dict[str, str]:
    """id -> absolute path of the files matching ``pattern`` under ``folder`` (the id: relative path,
    without .wav, with '/' -> '-', as wespeaker and Kaldi name MUSAN and RIR entries)."""
    found: dict[str, str] = {}
    root = folder.resolve()
    for path in sorted(root.glob(pattern)):
        if not path.is_file():
            continue
        key = path.relative_to(root).with_suffix("").as_posix().replace("/", "-")
        if key in found:
            raise DataDirError(f"{path}: its id {key} is also the id of {found[key]}")
        found[key] = str(path)
    if not found:
        raise DataDirError(f"{folder}: no {pattern} files")
    return found


def missing_folders(musan_root: Path, rirs_root: Path) -> list[Path]:
    """Every folder of the two layouts that is absent (the roots themselves when they are)."""
    musan = [musan_root / name for name in MUSAN_LISTS] if musan_root.is_dir() else [musan_root]
    rooms = [rirs_root / "simulated_rirs" / room for room in ROOMS] if rirs_root.is_dir() else [rirs_root]
    return [p for p in musan + rooms if not p.is_dir()]


def augmentation_lists(musan_root: Path, rirs_root: Path) -> dict[str, dict[str, str]]:
    """list name (``musan/noise``, ..., ``rirs``) -> its wav.scp entries."""
    missing = missing_folders(musan_root, rirs_root)
    if missing:
        raise DataDirError(
            f"{missing[0]}: augmentation corpus folder does not exist (missing: "
            f"{offenders([str(p) for p in missing])}); --musan_root is the musan/ folder of MUSAN, "
            f"--rirs_root the RIRS_NOISES/ folder"
        )
    lists = {f"musan/{name}": scan(musan_root / name, "*/*.wav") for name in MUSAN_LISTS}
    rirs: dict[str, str] = {}
    for room in ROOMS:  # each room has its own files: scanned one by one, so an empty room is named
        for key, path in scan(rirs_root / "simulated_rirs" / room, "Room*/*.wav").items():
            rirs[f"{room}-{key}"] = path
    lists["rirs"] = rirs
    return lists
