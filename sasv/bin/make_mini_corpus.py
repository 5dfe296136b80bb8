"""Write a small synthetic corpus in the exact ASVspoof 2019 LA layout (audio + all protocol files).

It lets the whole recipe (data preparation, embeddings, CM scores, scoring, metrics) run in seconds without
the 7 GB corpus. The voices are synthetic, the numbers it produces mean nothing about real systems.

  sasv make_mini_corpus --out downloads/mini --seed 0
  sasv prepare_la --la_root downloads/mini/LA --out data

The same arguments give byte-identical files. An earlier mini corpus at --out is replaced; any other
existing LA/ folder there is refused.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sasv.cli import ArgumentParser, run_cli
from sasv.mini_corpus import MiniCorpusConfig, make_mini_corpus, summarize

log = logging.getLogger("make_mini_corpus")


def main(argv: Sequence[str] | None = None) -> int:
    d = MiniCorpusConfig()
    p = ArgumentParser(prog="sasv make_mini_corpus", description=__doc__)
    p.add_argument("--out", required=True, help="output folder; the corpus is written to OUT/LA")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default: {d.seed})")
    p.add_argument("--speakers", type=int, default=d.speakers, help=f"per dev/eval split ({d.speakers})")
    p.add_argument(
        "--train_speakers",
        type=int,
        default=d.train_speakers,
        help=f"train speakers ({d.train_speakers})",
    )
    p.add_argument(
        "--enroll_per_spk",
        type=int,
        default=d.enroll_per_spk,
        help=f"enrolment utterances per speaker ({d.enroll_per_spk})",
    )
    p.add_argument(
        "--bonafide_per_spk",
        type=int,
        default=d.bonafide_per_spk,
        help=f"bona fide test utterances per speaker ({d.bonafide_per_spk})",
    )
    p.add_argument(
        "--spoof_per_attack",
        type=int,
        default=d.spoof_per_attack,
        help=f"spoofed test utterances per speaker and attack ({d.spoof_per_attack})",
    )
    p.add_argument("--attacks", type=int, default=d.attacks, help=f"attack ids per split, 1-6 ({d.attacks})")
    p.add_argument(
        "--train_utts_per_spk",
        type=int,
        default=d.train_utts_per_spk,
        help=f"bona fide train utterances per speaker ({d.train_utts_per_spk})",
    )
    args = p.parse_args(argv)
    config = MiniCorpusConfig(
        seed=args.seed,
        speakers=args.speakers,
        train_speakers=args.train_speakers,
        enroll_per_spk=args.enroll_per_spk,
        bonafide_per_spk=args.bonafide_per_spk,
        spoof_per_attack=args.spoof_per_attack,
        attacks=args.attacks,
        train_utts_per_spk=args.train_utts_per_spk,
    )
    start = time.perf_counter()
    plan = make_mini_corpus(args.out, config)
    log.info("wrote %s in %.1f s", Path(args.out) / "LA", time.perf_counter() - start)
    print(summarize(plan))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
