"""Plumbing shared by the model stages (stage 2 embeddings, stage 3 CM scores): options and model set-up.

Both stages take the same device, job, thread and resume options and prepare a model the same way; only
the engine and the outputs differ, so those stay in local/extract_embeddings.py and local/score_cm.py.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from sasv.conf import LoadedModel, ModelConf, load_conf, load_model
from sasv.extract import DEFAULT_CHUNK_SIZE, JobOptions, default_num_workers, job_devices, resolve_device
from sasv.provenance import RANDOM_INIT_NOTE, write_model_record

log = logging.getLogger(__name__)


def auto_int(value: str) -> int | None:
    """An int option that also takes 'auto' (None: chosen from the device)."""
    return None if value == "auto" else int(value)


def add_model_stage_args(p: argparse.ArgumentParser, conf_help: str, data_help: str, batch_help: str) -> None:
    p.add_argument("--conf", required=True, help=conf_help)
    p.add_argument("--data_dirs", nargs="+", required=True, help=data_help)
    p.add_argument("--exp_dir", default="exp", help="experiment root (default: exp)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--batch_size", type=int, default=None, help=batch_help)
    p.add_argument(
        "--num_workers",
        type=auto_int,
        default="auto",
        help="audio decoding workers per job (default auto: 0 on CPU, a few per GPU job)",
    )
    p.add_argument("--nj", type=int, default=1, help="parallel jobs (processes; one per GPU if several)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op threads per job (default 0: OMP_NUM_THREADS or all cores, divided by --nj)",
    )
    p.add_argument(
        "--cpu_kernels",
        default="onednn",
        choices=["onednn", "torch"],
        help="CPU only: route 1x1 convs and linear layers to oneDNN (default) or keep torch's choice",
    )
    p.add_argument(
        "--chunk_size", type=int, default=DEFAULT_CHUNK_SIZE, help="utterances per resumable chunk"
    )
    p.add_argument("--allow_random_init", action="store_true", help="run without a checkpoint (demo)")


@dataclass
class ModelStage:
    conf: ModelConf
    loaded: LoadedModel
    device: torch.device
    jobs: JobOptions
    num_workers: int
    out_root: Path


def setup_model_stage(args: argparse.Namespace, kind: str, out_subdir: str) -> ModelStage:
    """Load the conf's model (kind checked), resolve device, jobs, threads and decoding workers, and write
    ``exp/<name>/<out_subdir>/model.json`` so later stages know where the weights came from."""
    conf = load_conf(args.conf)
    if conf.kind != kind:
        raise SystemExit(f"ERROR: {args.conf} is a {conf.kind} conf, expected a {kind.upper()} model conf")
    if args.nj < 1:
        raise SystemExit(f"ERROR: --nj must be at least 1, got {args.nj}")
    loaded = load_model(conf, allow_random_init=args.allow_random_init)
    if not loaded.pretrained:
        log.warning("%s: %s", conf.name, RANDOM_INIT_NOTE)
    device = resolve_device(args.device)
    jobs = JobOptions(args.nj, job_devices(device, args.nj), args.threads or None)
    if args.threads and args.nj == 1:
        torch.set_num_threads(args.threads)
    num_workers = default_num_workers(device, args.nj) if args.num_workers is None else args.num_workers
    out_root = Path(args.exp_dir) / conf.name / out_subdir
    out_root.mkdir(parents=True, exist_ok=True)
    write_model_record(loaded, out_root / "model.json")
    return ModelStage(conf, loaded, device, jobs, num_workers, out_root)
