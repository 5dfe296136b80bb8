"""Option groups that several tools share: stage 1's (``prepare_la``, ``prepare_asvspoof5``; its audio check
also ``prepare_asvspoof2021``), the model stages' (``extract_embeddings``, ``score_cm``); the trainers' are
:mod:`sasv.bin.training`'s. Parsing lives in :mod:`sasv.bin` only; what the options drive is the library's."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sasv.cli import ArgumentParser, auto_int, non_negative_int, positive_int
from sasv.corpora.data_prep import CM_PREFIX, COHORT
from sasv.extraction.chunks import DEFAULT_CHUNK_SIZE
from sasv.extraction.engines import AUTOCAST_DTYPES, EMBEDDING_DTYPES, EngineOptions
from sasv.runtime.cpu_kernels import CPU_KERNELS
from sasv.stages.model_stage import KIND_WORDS, run_model_stage


def add_stage1_options(p: ArgumentParser, trial_splits: Sequence[str], cohort_what: str) -> None:
    """The options both stage-1 tools take besides their corpus root."""
    p.add_argument("--out", default="data", help="root of the data dirs (default: data)")
    p.add_argument(
        "--sets",
        nargs="*",
        default=list(trial_splits),
        help=f"SASV sets: {' '.join(trial_splits)} ('': none)",
    )
    p.add_argument("--cm_sets", nargs="*", default=[], help=f"CM data dirs {CM_PREFIX}<set>: train dev eval")
    p.add_bool("--cohort", False, f"also write <out>/{COHORT} ({cohort_what} train bona fide, for AS-norm)")
    add_audio_options(p)


def add_audio_options(p: ArgumentParser) -> None:
    """Stage 1's audio check, which every stage-1 tool takes."""
    p.add_bool("--audio_check", True, "decode every audio file now and list suspicious ones (default: true)")
    p.add_argument(
        "--suspect_audio",
        default="warn",
        choices=["warn", "error"],
        help="silent, near-silent or heavily clipped files: list them (warn, default) or stop (error)",
    )


def parse_stage1_args(
    p: ArgumentParser, argv: Sequence[str] | None, trial_splits: Sequence[str], splits: Sequence[str]
) -> argparse.Namespace:
    args = p.parse_args(argv)
    args.sets = [s for s in args.sets if s]  # --sets '' from a shell variable
    for option, allowed in (("sets", trial_splits), ("cm_sets", splits)):
        bad = [s for s in getattr(args, option) if s not in allowed]
        if bad:
            p.error(f"--{option}: {bad[0]!r} is not one of {', '.join(allowed)}")
    return args


def model_stage_parser(kind: str, prog: str, description: str) -> ArgumentParser:
    """The options of a model stage (the same for both kinds, plus --autocast for ASV models)."""
    model = KIND_WORDS[kind][0]
    p = ArgumentParser(prog=prog, description=description)
    example = "conf/asv/ecapa_tdnn.yaml" if kind == "asv" else "conf/cm/aasist.yaml"
    p.add_argument("--conf", required=True, help=f"{model} model conf, e.g. {example}")
    need = "wav.scp" if kind == "asv" else "wav.scp and trials, or wav.scp and utt2spf (CM data dirs)"
    p.add_argument("--data_dirs", nargs="+", required=True, help=f"Kaldi data dirs with {need}")
    p.add_argument("--exp_dir", default="exp", help="experiment root (default: exp)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument(
        "--model_batch",
        type=positive_int,
        default=None,
        help="waveforms per forward pass (default: conf's batch_size on GPU; by model and threads on CPU)",
    )
    p.add_argument(
        "--num_workers",
        type=auto_int,
        default="auto",
        help="audio decoding workers per job (default auto: 0 on CPU, a few per GPU job)",
    )
    p.add_argument(
        "--nj", type=positive_int, default=1, help="parallel jobs (processes; one per GPU if several)"
    )
    p.add_argument(
        "--cmd",
        default="",
        help="job command the --nj jobs run through, Kaldi style: 'utils/run.sh' or 'utils/slurm.sh --config "
        "conf/slurm.conf [--gpu 1 ...]' (default '': processes of this one)",
    )
    p.add_argument(
        "--threads",
        type=non_negative_int,
        default=0,
        help="intra-op threads per job (default 0: OMP_NUM_THREADS or all cores, divided by --nj)",
    )
    p.add_argument(
        "--cpu_kernels",
        default="onednn",
        choices=CPU_KERNELS,
        help="CPU only: route 1x1 convs and linear layers to oneDNN (default) or keep torch's choice",
    )
    if kind == "asv":
        p.add_argument(
            "--autocast",
            default="none",
            choices=sorted(AUTOCAST_DTYPES),
            help="mixed precision for the model (GPU; drifts from fp32, see docs); default: none",
        )
        p.add_argument(
            "--embedding_dtype",
            default="float32",
            choices=sorted(EMBEDDING_DTYPES),
            help="how embedding rows are stored: float16 halves the arks, rounding them (see "
            "docs/PERFORMANCE.md); default: float32",
        )
    p.add_bool(
        "--compile",
        False,
        "torch.compile the fixed-shape forwards (3 s segments; CM inputs): on CPU 1.1-2x faster for the "
        "2-D models (not ECAPA) after up to a minute of compiling per model and job (docs/PERFORMANCE.md); "
        "rounds differently, so its outputs are kept apart",
    )
    p.add_argument(
        "--chunk_size", type=positive_int, default=DEFAULT_CHUNK_SIZE, help="utterances per resumable chunk"
    )
    p.add_bool("--allow_random_init", False, "run without a checkpoint (demo: the numbers mean nothing)")
    return p


def model_stage_main(kind: str, prog: str, description: str, argv: Sequence[str] | None) -> int:
    """The tool of a model stage: parse its options, run it."""
    args = model_stage_parser(kind, prog, description).parse_args(argv)
    options = EngineOptions(
        device=args.device,
        model_batch=args.model_batch,
        threads=args.threads or None,
        autocast=getattr(args, "autocast", "none"),
        cpu_kernels=args.cpu_kernels,
        embedding_dtype=getattr(args, "embedding_dtype", "float32"),
        compile=args.compile,
    )
    run_model_stage(
        kind, args.conf, args.data_dirs, args.exp_dir, options, args.nj, args.num_workers, args.chunk_size,
        args.allow_random_init, args.cmd,
    )  # fmt: skip
    return 0
