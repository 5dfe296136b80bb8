"""``sasv exp_path QUERY ...``: one path or name of the exp/ layout, for the shell stages
(:mod:`sasv.exp_layout` owns the layout: the scripts ask it instead of recomputing paths)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sasv.cli import ArgumentParser, run_cli
from sasv.exp_layout import DEFAULT_SCORE_RULE, ExpLayout, variant
from sasv.models.conf import load_conf


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv exp_path", description=__doc__)
    sub = p.add_subparsers(dest="query", required=True)
    for query, what in (
        ("system_dir", "the folder of a scored system"),
        ("system_name", "a system's name (its folder relative to --exp_dir)"),
    ):
        q = sub.add_parser(query, help=what)
        q.add_argument("--exp_dir", default="exp")
        q.add_argument("--asv_conf", required=True)
        q.add_argument("--cm_conf", required=True)
        q.add_argument("--norm", required=True)
        q.add_argument("--score_norm", default="none")
        q.add_argument("--fusion", default=DEFAULT_SCORE_RULE)
    q = sub.add_parser("train_dir", help="the folder of a model trained from a conf")
    q.add_argument("--exp_dir", default="exp")
    q.add_argument("--conf", required=True, help="the model conf that was trained")
    q.add_argument("--name", default=None, help="the trained model's name, if given to the trainer")
    q = sub.add_parser("fusion_dir", help="the folder of the learned fusion of one variant")
    q.add_argument("--exp_dir", default="exp")
    q.add_argument("--norm", required=True)
    q.add_argument("--score_norm", default="none")
    q.add_argument("--fusion", default=DEFAULT_SCORE_RULE, help="the fixed rule of the systems it fuses")
    args = p.parse_args(argv)
    layout = ExpLayout(args.exp_dir)
    if args.query == "train_dir":
        print(layout.train_dir(args.name or layout.trained_name(load_conf(args.conf).name)))
        return 0
    name = variant(args.norm, args.score_norm, args.fusion)
    if args.query == "fusion_dir":
        print(layout.fusion_dir(name))
        return 0
    asv, cm = load_conf(args.asv_conf).name, load_conf(args.cm_conf).name
    print(
        layout.system_dir(asv, cm, name) if args.query == "system_dir" else layout.system_name(asv, cm, name)
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
