#!/usr/bin/env python3
"""Stage 2: speaker embeddings (full utterance + five 3 s segments) for every utterance of data dirs.

Writes exp/<asv>/embeddings/<set>/xvector.{scp,done} (+ chunks/*.ark) and exp/<asv>/embeddings/model.json.
A re-run skips finished sets and chunks; changed inputs (conf, checkpoint, wav.scp) are redone.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sasv.cli import run_cli  # noqa: E402
from sasv.conf import load_conf, load_model  # noqa: E402
from sasv.datadir import read_wav_scp  # noqa: E402
from sasv.extract import (  # noqa: E402
    AUTOCAST_DTYPES,
    DEFAULT_CHUNK_SIZE,
    EmbeddingEngine,
    extract_embeddings,
    resolve_device,
)
from sasv.locking import exclusive_lock  # noqa: E402
from sasv.provenance import RANDOM_INIT_NOTE, model_key, stage_inputs, write_model_record  # noqa: E402

log = logging.getLogger("extract_embeddings")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf", required=True, help="ASV model conf, e.g. conf/asv/ecapa_tdnn.yaml")
    p.add_argument("--data_dirs", nargs="+", required=True, help="Kaldi data dirs with wav.scp")
    p.add_argument("--exp_dir", default="exp", help="experiment root (default: exp)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--batch_size", type=int, default=None, help="segments per forward (default: conf)")
    p.add_argument("--num_workers", type=int, default=0, help="audio decoding workers (default: 0)")
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
    loaded = load_model(conf, allow_random_init=args.allow_random_init)
    if not loaded.pretrained:
        log.warning("%s: %s", conf.name, RANDOM_INIT_NOTE)
    device = resolve_device(args.device)
    engine = EmbeddingEngine(
        loaded.model,
        device,
        segment_batch=args.batch_size or conf.batch_size,
        autocast_dtype=AUTOCAST_DTYPES[args.autocast],
    )
    out_root = Path(args.exp_dir) / conf.name / "embeddings"
    out_root.mkdir(parents=True, exist_ok=True)
    write_model_record(loaded, out_root / "model.json")
    # mixed precision changes the numbers, so it is part of what identifies the outputs
    key = model_key(loaded) + f" autocast={args.autocast}"
    for data_dir in map(Path, args.data_dirs):
        items = sorted(read_wav_scp(data_dir / "wav.scp").items())
        inputs = stage_inputs(conf, loaded.checkpoint_sha256, {"wav.scp": data_dir / "wav.scp"})
        log.info("%s: embedding %d utterances of %s on %s", conf.name, len(items), data_dir, device)
        out_dir = out_root / data_dir.name
        with exclusive_lock(out_dir, "embeddings"):
            scp = extract_embeddings(
                engine,
                items,
                out_dir,
                key,
                batch_size=8,
                num_workers=args.num_workers,
                chunk_size=args.chunk_size,
                inputs=inputs,
            )
        log.info("wrote %s", scp)
    return 0


if __name__ == "__main__":
    run_cli(main)
