"""Kaldi lists of the training augmentation corpora: MUSAN noise, music and speech, and the simulated RIRs.

Reads, as the corpora unpack (openslr.org 17 and 28):
  <musan_root>/{noise,music,speech}/<source>/*.wav                             --musan_root: the musan/ folder
  <rirs_root>/simulated_rirs/{smallroom,mediumroom,largeroom}/Room*/*.wav     --rirs_root: RIRS_NOISES/

Writes <out>/musan/{noise,music,speech}/wav.scp and <out>/rirs/wav.scp (``ID /abs/path.wav``, sorted; the id
is the path under the list's folder without .wav, '/' -> '-'), which sasv.train.augment reads. The real RIRs
and point-source noises of RIRS_NOISES are not used, as in the reference recipes. Every folder is scanned
before anything is written, so a failed run leaves earlier lists as they were.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from sasv.cli import ArgumentParser, run_cli
from sasv.datadir import DataDirError, write_wav_scp
from sasv.protocols import offenders

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


def build(musan_root: Path, rirs_root: Path) -> dict[str, dict[str, str]]:
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


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv prepare_augmentation", description=__doc__)
    p.add_argument("--musan_root", required=True, help="the musan/ folder (holds noise/ music/ speech/)")
    p.add_argument("--rirs_root", required=True, help="the RIRS_NOISES/ folder (holds simulated_rirs/)")
    p.add_argument("--out", default="data", help="root of the lists (default: data)")
    args = p.parse_args(argv)

    lists = build(Path(args.musan_root), Path(args.rirs_root))
    for name, wav_scp in lists.items():
        out = Path(args.out) / name / "wav.scp"
        write_wav_scp(out, wav_scp)
        print(f"{name}: {len(wav_scp)} files -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
