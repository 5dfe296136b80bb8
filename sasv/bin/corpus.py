"""``sasv corpus QUERY``: what the stage scripts need to know about a corpus, from its record in
:mod:`sasv.corpora.registry`, so that they hold no case per corpus (utils/corpus.sh, run_spk_ebd_extract.sh,
run_train_cm.sh ask it; a new corpus is one registry entry and needs no shell):

  names         the registered corpora, ``la | asvspoof5 | ...`` (the scripts' --help)
  check         refuse what a run cannot do with --corpus (an unknown corpus, stage 1 without the --root it
                needs, --download true for a corpus fetched by hand, a stage-1 option of another corpus), then
                print the folder stages 0 and 1 read: --root, else --la_root for a corpus that needs no --root
  prepare_tool  stage 1's tool, run as ``sasv <tool> --root <folder> --out ...`` (sasv/bin/options.py)
  download      stage 0's download script, run as ``<script> <download_dir> <parent of the folder>``; an
                empty line when the corpus is fetched by hand
  title         the benchmark's title (logs)
  sets          the data dirs stage 1 writes, space separated (the scripts' default --sets): dev eval; a
                corpus of one evaluation set (ASVspoof 2021) names its own, la2021_eval
  cm_only       true for a countermeasure benchmark (ASVspoof 2021 LA, DF): no ASV embeddings (stage 2
                skips it), its CM scores are evaluated by stage 4; else false
  cm_evaluation stage 4's tool for a countermeasure benchmark, run as ``sasv <tool> --cm_conf <conf>
                --exp_dir <exp> --data <data dir>``; an empty line for the others

Kept free of torch and numpy: the scripts ask it before every run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.registry import CORPORA, CorpusError, check_options, get_corpus

FIELDS = {
    "prepare_tool": "stage 1's tool (sasv <tool> --root <folder> --out ...)",
    "download": "stage 0's download script ('' when the corpus is fetched by hand)",
    "title": "the benchmark's title",
    "sets": "the data dirs stage 1 writes (space separated)",
    "cm_only": "true for a countermeasure benchmark (no ASV stage), else false",
    "cm_evaluation": "stage 4's tool for a countermeasure benchmark ('' for the others)",
}


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv corpus", description=__doc__)
    sub = p.add_subparsers(dest="query", required=True)
    sub.add_parser("names", help="the registered corpora, 'la | asvspoof5 | ...'")
    q = sub.add_parser("check", help="refuse what the corpus cannot do; print the folder stage 1 reads")
    q.add_argument("--corpus", required=True)
    q.add_argument("--root", default="", help="the scripts' --root ('' when not given)")
    q.add_argument("--la_root", default="", help="the scripts' --la_root: la's folder without --root")
    q.add_bool("--stage1", True, "stage 1 runs (default: true)")
    q.add_bool("--download", False, "stage 0 downloads (default: false)")
    q.add_argument("--caller", default="", help="the script asking, named in the error (default: none)")
    q.add_argument(
        "--set_options", nargs="*", default=[], help="the corpus-specific stage-1 options given (trials_dir)"
    )
    for field, what in FIELDS.items():
        sub.add_parser(field, help=what).add_argument("--corpus", required=True)
    args = p.parse_args(argv)
    if args.query == "names":
        print(" | ".join(CORPORA))
        return 0
    if args.query != "check":
        value = getattr(get_corpus(args.corpus), args.query)
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, tuple):
            value = " ".join(value)
        print(value)
        return 0
    try:
        corpus = get_corpus(args.corpus)
        check_options(corpus, args.root, args.stage1, args.download, tuple(o for o in args.set_options if o))
    except CorpusError as e:  # an option error of the script: it names the script, like its other ones
        raise CorpusError(f"{args.caller}: {e}" if args.caller else str(e)) from None
    print(args.root or ("" if corpus.needs_root else args.la_root))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
