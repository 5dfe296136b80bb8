"""``sasv training_downloads [corpus ...]``: one line per file to download for the training corpora (VoxCeleb,
MUSAN, RIRS_NOISES), with its URL (the environment's mirrors applied), md5 and where it unpacks; what
``local/download_train_corpora.sh`` (stage 0 of run_train_asv.sh) reads. The records are
:mod:`sasv.corpora.train_downloads`'. Torch-free."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.train_downloads import CORPORA, DEFAULT_CORPORA, manifest


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv training_downloads", description=__doc__)
    p.add_argument(
        "corpora", nargs="*", metavar="corpus",
        help=f"{' | '.join(CORPORA)} (default: {' '.join(DEFAULT_CORPORA)})",
    )  # fmt: skip
    args = p.parse_args(argv)
    print("\n".join(manifest(args.corpora or DEFAULT_CORPORA)))  # a ManifestError is run_cli's one line
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
