"""``sasv <tool> [options]`` (or ``python -m sasv <tool>``): the recipe's command-line tools.

Each tool is a module of :mod:`sasv.bin` with a ``main(argv)``; this dispatcher runs it under the error
contract of :func:`sasv.cli.run_cli`. The shell stages call ``python -m sasv <tool>``, which works with or
without the package installed (path.sh puts the recipe on PYTHONPATH).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# tool -> what it does (the modules are imported only when run: data tools never import torch)
TOOLS: dict[str, str] = {
    "make_mini_corpus": "write a synthetic corpus in the exact ASVspoof 2019 LA layout",
    "prepare_la": "stage 1: Kaldi data dirs from an LA tree",
    "prepare_asvspoof5": "stage 1: the same data dirs from an ASVspoof 5 release folder (Track 2 lists)",
    "prepare_asvspoof2021": "stage 1: CM data dirs of the ASVspoof 2021 LA and DF eval sets and their keys",
    "corpus": "what the shell stages ask about a corpus (its checks, stage-1 tool, download; the registry)",
    "prepare_voxceleb": "Kaldi data dirs from VoxCeleb (vox2 dev training, Vox1-O trials; AAC -> FLAC once)",
    "prepare_augmentation": "Kaldi lists of MUSAN and RIRS_NOISES for training augmentation",
    "extract_embeddings": "stage 2: ASV embeddings (full utterance + five 3 s segments)",
    "score_cm": "stage 3: CM scores (AASIST P(bona fide))",
    "evaluate_asvspoof2021": "stage 4: ASVspoof 2021 LA/DF EER and min t-DCF of CM scores, per condition",
    "compute_chunks": "one task of stage 2 or 3 run through a job command (--cmd): its chunks of tasks.json",
    "exp_path": "one path or name of the exp/ layout (what the shell stages ask instead of building paths)",
    "run_jobs": "a Kaldi-style job command: what utils/run.sh and utils/slurm.sh run (JOB=1:N, logs)",
    "training_downloads": "the URLs and md5 of VoxCeleb, MUSAN and RIRS_NOISES (stage 0 of run_train_asv.sh)",
    "score_trials": "run_test stage 1: score one ASV x CM system, EER tables",
    "analyse_system": "run_test stage 1: costs, per-attack EERs and figures of a scored system",
    "fuse_systems": "run_test stage 2: learned logistic-regression fusion of several systems",
    "make_summary": "run_test stage 3: summary table and RESULTS.md",
    "compute_metrics": "SASV EERs and costs of a submission-format score file, as JSON",
    "compare_systems": "is system A better than B beyond the evaluation set's noise? (paired bootstrap)",
    "download_pretrained": "download the confs' checkpoints (mirrors in order, sha256 checked); or --check",
    "train_asv": "train an ASV architecture with AAM-softmax on a data dir; export it with a conf",
    "train_cm": "train a CM (AASIST) on a bona fide/spoof data dir, select on dev; export it with a conf",
}


def usage() -> str:
    width = max(map(len, TOOLS))
    lines = [f"  {name:<{width}}  {what}" for name, what in TOOLS.items()]
    return "usage: sasv <tool> [options]   (sasv <tool> --help for a tool's options)\n\ntools:\n" + "\n".join(
        lines
    )


def main(argv: Sequence[str] | None = None) -> int:
    from sasv.cli import run_cli

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    tool, rest = args[0], args[1:]
    if tool not in TOOLS:
        print(f"sasv: unknown tool {tool!r}\n{usage()}", file=sys.stderr)
        return 2

    def run_tool(argv: Sequence[str] | None) -> int | None:
        # imported under the runner: Ctrl-C while torch loads is one line too
        return importlib.import_module(f"sasv.bin.{tool}").main(argv)

    return run_cli(run_tool, rest)


if __name__ == "__main__":
    sys.exit(main())
