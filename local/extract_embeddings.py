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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sasv.cli import run_cli  # noqa: E402
from sasv.datadir import read_wav_scp  # noqa: E402
from sasv.extract import (  # noqa: E402
    AUTOCAST_DTYPES,
    EmbeddingEngine,
    EngineSpec,
    extract_embeddings,
)
from sasv.locking import exclusive_lock  # noqa: E402
from sasv.provenance import model_key, stage_inputs  # noqa: E402
from sasv.stage import add_model_stage_args, setup_model_stage  # noqa: E402

log = logging.getLogger("extract_embeddings")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_stage_args(
        p,
        "ASV model conf, e.g. conf/asv/ecapa_tdnn.yaml",
        "Kaldi data dirs with wav.scp",
        "waveforms per forward (default: conf on GPU, by model and threads on CPU)",
    )
    p.add_argument(
        "--autocast",
        default="none",
        choices=sorted(AUTOCAST_DTYPES),
        help="mixed precision for the model (GPU; drifts from fp32, see docs); default: none",
    )
    args = p.parse_args()

    stage = setup_model_stage(args, "asv", "embeddings")
    conf, loaded, device = stage.conf, stage.loaded, stage.device
    jobs, num_workers, out_root = stage.jobs, stage.num_workers, stage.out_root
    del stage  # with --nj the model is dropped below; no reference may keep it alive
    options = {
        # None on CPU: the engine picks by model and by the threads of the process (or job) it runs in
        "segment_batch": args.batch_size or (None if device.type == "cpu" else conf.batch_size),
        "autocast_dtype": AUTOCAST_DTYPES[args.autocast],
        "cpu_kernels": args.cpu_kernels,
    }
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
