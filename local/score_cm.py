#!/usr/bin/env python3
"""Stage 3: countermeasure scores (AASIST logits and P(bona fide)) for the test utterances of trials.

Writes exp/<cm>/scores/<set>/cm_scores.txt (``UTT logit_spoof logit_bonafide p_bonafide``) and
exp/<cm>/scores/model.json. A re-run skips finished work.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sasv.cli import run_cli  # noqa: E402
from sasv.conf import load_conf, load_model  # noqa: E402
from sasv.datadir import validate_datadir  # noqa: E402
from sasv.extract import (  # noqa: E402
    DEFAULT_CHUNK_SIZE,
    CountermeasureEngine,
    resolve_device,
    score_countermeasure,
)
from sasv.locking import exclusive_lock  # noqa: E402
from sasv.provenance import RANDOM_INIT_NOTE, model_key, stage_inputs, write_model_record  # noqa: E402

log = logging.getLogger("score_cm")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf", required=True, help="CM model conf, e.g. conf/cm/aasist.yaml")
    p.add_argument("--data_dirs", nargs="+", required=True, help="Kaldi data dirs with wav.scp and trials")
    p.add_argument("--exp_dir", default="exp", help="experiment root (default: exp)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--batch_size", type=int, default=None, help="utterances per forward (default: conf)")
    p.add_argument("--num_workers", type=int, default=0, help="audio decoding workers (default: 0)")
    p.add_argument(
        "--chunk_size", type=int, default=DEFAULT_CHUNK_SIZE, help="utterances per resumable chunk"
    )
    p.add_argument("--allow_random_init", action="store_true", help="run without a checkpoint (demo)")
    args = p.parse_args()

    conf = load_conf(args.conf)
    if conf.kind != "cm":
        raise SystemExit(f"ERROR: {args.conf} is a {conf.kind} conf, expected a CM model conf")
    loaded = load_model(conf, allow_random_init=args.allow_random_init)
    if not loaded.pretrained:
        log.warning("%s: %s", conf.name, RANDOM_INIT_NOTE)
    device = resolve_device(args.device)
    engine = CountermeasureEngine(loaded.model, device)
    out_root = Path(args.exp_dir) / conf.name / "scores"
    out_root.mkdir(parents=True, exist_ok=True)
    write_model_record(loaded, out_root / "model.json")
    key = model_key(loaded)
    for data_dir in map(Path, args.data_dirs):
        data = validate_datadir(data_dir)
        test_utts = sorted({t.utt for t in data.trials})
        items = [(u, data.wav_scp[u]) for u in test_utts]
        lists = {"wav.scp": data_dir / "wav.scp", "trials": data_dir / "trials"}
        inputs = stage_inputs(conf, loaded.checkpoint_sha256, lists)
        log.info("%s: scoring %d test utterances of %s on %s", conf.name, len(items), data_dir, device)
        with exclusive_lock(out_root / data_dir.name, "CM scores"):
            out = score_countermeasure(
                engine,
                items,
                out_root / data_dir.name / "cm_scores.txt",
                key,
                batch_size=args.batch_size or conf.batch_size,
                num_workers=args.num_workers,
                chunk_size=args.chunk_size,
                inputs=inputs,
            )
        log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    run_cli(main)
