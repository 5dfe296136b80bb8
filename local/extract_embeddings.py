#!/usr/bin/env python3
"""Stage 2: speaker embeddings (full utterance + five 3 s segments) for every utterance of data dirs.

Writes exp/<asv>/embeddings/<set>/xvector.{scp,done} (+ chunks/*.ark) and exp/<asv>/embeddings/model.json.
A re-run skips finished sets and chunks; changed inputs (conf, checkpoint, wav.scp) are redone.
With --nj N, N processes share the work (one per GPU when there are several); this process holds the lock
and merges their chunks. Speed and thread settings: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sasv.cli import run_cli  # noqa: E402
from sasv.conf import load_conf, load_model  # noqa: E402
from sasv.datadir import read_wav_scp  # noqa: E402
from sasv.extract import (  # noqa: E402
    AUTOCAST_DTYPES,
    DEFAULT_CHUNK_SIZE,
    EmbeddingEngine,
    EngineSpec,
    JobOptions,
    default_num_workers,
    extract_embeddings,
    job_devices,
    resolve_device,
)
from sasv.locking import exclusive_lock  # noqa: E402
from sasv.provenance import RANDOM_INIT_NOTE, model_key, stage_inputs, write_model_record  # noqa: E402

log = logging.getLogger("extract_embeddings")


def auto_int(value: str) -> int | None:
    """An int option that also takes 'auto' (None: chosen from the device)."""
    return None if value == "auto" else int(value)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf", required=True, help="ASV model conf, e.g. conf/asv/ecapa_tdnn.yaml")
    p.add_argument("--data_dirs", nargs="+", required=True, help="Kaldi data dirs with wav.scp")
    p.add_argument("--exp_dir", default="exp", help="experiment root (default: exp)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument(
        "--batch_size",
        type=int,
        default=None,
        help="waveforms per forward (default: conf on GPU, by model and threads on CPU)",
    )
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
    p.add_argument(
        "--autocast",
        default="none",
        choices=sorted(AUTOCAST_DTYPES),
        help="mixed precision for the model (GPU; drifts from fp32, see docs); default: none",
    )
    p.add_argument("--allow_random_init", action="store_true", help="run without a checkpoint (demo)")
    args = p.parse_args()

    conf = load_conf(args.conf)
    if conf.kind != "asv":
        raise SystemExit(f"ERROR: {args.conf} is a {conf.kind} conf, expected an ASV model conf")
    if args.nj < 1:
        raise SystemExit(f"ERROR: --nj must be at least 1, got {args.nj}")
    loaded = load_model(conf, allow_random_init=args.allow_random_init)
    if not loaded.pretrained:
        log.warning("%s: %s", conf.name, RANDOM_INIT_NOTE)
    device = resolve_device(args.device)
    options = {
        # None on CPU: the engine picks by model and by the threads of the process (or job) it runs in
        "segment_batch": args.batch_size or (None if device.type == "cpu" else conf.batch_size),
        "autocast_dtype": AUTOCAST_DTYPES[args.autocast],
        "cpu_kernels": args.cpu_kernels,
    }
    jobs = JobOptions(args.nj, job_devices(device, args.nj), args.threads or None)
    if args.threads and args.nj == 1:
        torch.set_num_threads(args.threads)
    num_workers = default_num_workers(device, args.nj) if args.num_workers is None else args.num_workers
    out_root = Path(args.exp_dir) / conf.name / "embeddings"
    out_root.mkdir(parents=True, exist_ok=True)
    write_model_record(loaded, out_root / "model.json")
    # mixed precision changes the numbers, so it is part of what identifies the outputs
    key = model_key(loaded) + f" autocast={args.autocast}"
    checkpoint_sha256 = loaded.checkpoint_sha256
    engine: EmbeddingEngine | EngineSpec
    if args.nj > 1:  # each job builds its own model; this process only needs the key and the record
        engine = EngineSpec(conf, args.allow_random_init, options)
        del loaded
    else:
        engine = EmbeddingEngine(loaded.model, device, **options)
    for data_dir in map(Path, args.data_dirs):
        items = sorted(read_wav_scp(data_dir / "wav.scp").items())
        inputs = stage_inputs(conf, checkpoint_sha256, {"wav.scp": data_dir / "wav.scp"})
        log.info(
            "%s: embedding %d utterances of %s on %s (%d job(s), %d decoding worker(s) each)",
            conf.name, len(items), data_dir, device, args.nj, num_workers,
        )  # fmt: skip
        out_dir = out_root / data_dir.name
        with exclusive_lock(out_dir, "embeddings"):
            scp = extract_embeddings(
                engine,
                items,
                out_dir,
                key,
                num_workers=num_workers,
                chunk_size=args.chunk_size,
                inputs=inputs,
                jobs=jobs,
            )
        log.info("wrote %s", scp)
    return 0


if __name__ == "__main__":
    run_cli(main)
