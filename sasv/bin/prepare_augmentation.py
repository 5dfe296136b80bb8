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
from sasv.corpora.datadir import write_wav_scp
from sasv.corpora.musan_rirs import augmentation_lists


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv prepare_augmentation", description=__doc__)
    p.add_argument("--musan_root", required=True, help="the musan/ folder (holds noise/ music/ speech/)")
    p.add_argument("--rirs_root", required=True, help="the RIRS_NOISES/ folder (holds simulated_rirs/)")
    p.add_argument("--out", default="data", help="root of the lists (default: data)")
    args = p.parse_args(argv)

    lists = augmentation_lists(Path(args.musan_root), Path(args.rirs_root))
    for name, wav_scp in lists.items():
        out = Path(args.out) / name / "wav.scp"
        write_wav_scp(out, wav_scp)
        print(f"{name}: {len(wav_scp)} files -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
