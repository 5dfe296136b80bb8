"""Write a small synthetic corpus in the exact ASVspoof 2019 LA layout (audio + all protocol files), or with
``--corpus asvspoof5`` in the ASVspoof 5 release layout (OUT/ASVspoof5: flac_T/D/E_eval and the .tsv lists),
with ``--corpus asvspoof2021_la`` / ``asvspoof2021_df`` an ASVspoof 2021 evaluation set and its keys
(OUT/ASVspoof2021_LA, OUT/ASVspoof2021_DF: the eval split's test utterances).

It lets the whole recipe (data preparation, embeddings, CM scores, scoring, metrics) run in seconds without
the 7 GB corpus. The voices are synthetic, the numbers it produces mean nothing about real systems.

  sasv make_mini_corpus --out downloads/mini --seed 0
  sasv prepare_la --la_root downloads/mini/LA --out data

The same arguments give byte-identical files. An earlier mini corpus at --out is replaced; any other
existing LA/ folder there is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Sequence

from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.la_mini import MiniCorpusConfig, plan_corpus, summarize
from sasv.corpora.registry import CORPORA, DEFAULT_CORPUS

log = logging.getLogger("make_mini_corpus")


# one option per MiniCorpusConfig field (all ints): its help text
OPTION_HELP = {
    "seed": "random seed",
    "speakers": "speakers per dev/eval split",
    "train_speakers": "train speakers",
    "enroll_per_spk": "enrolment utterances per speaker",
    "bonafide_per_spk": "bona fide test utterances per speaker",
    "spoof_per_attack": "spoofed test utterances per speaker and attack",
    "attacks": "attack ids per split, 1-6",
    "train_utts_per_spk": "bona fide train utterances per speaker",
}


def main(argv: Sequence[str] | None = None) -> int:
    defaults = MiniCorpusConfig()
    p = ArgumentParser(prog="sasv make_mini_corpus", description=__doc__)
    p.add_argument(
        "--out", required=True, help="output folder; the corpus is written to OUT/LA (OUT/ASVspoof5, ...)"
    )
    p.add_argument(
        "--corpus",
        choices=sorted(CORPORA),
        default=DEFAULT_CORPUS,
        help=f"the layout to write ({DEFAULT_CORPUS})",
    )
    for field in dataclasses.fields(MiniCorpusConfig):
        default = getattr(defaults, field.name)
        p.add_argument(
            f"--{field.name}", type=int, default=default, help=f"{OPTION_HELP[field.name]} ({default})"
        )
    args = p.parse_args(argv)
    config = MiniCorpusConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(MiniCorpusConfig)})
    start = time.perf_counter()
    plan = plan_corpus(config)
    layout = CORPORA[args.corpus].mini_corpus_writer()(plan, args.out)
    log.info("wrote %s in %.1f s", layout.root, time.perf_counter() - start)
    print(summarize(plan))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
