#!/usr/bin/env python3
"""Stage 3: countermeasure scores (AASIST logits and P(bona fide)) for the test utterances of trials.

Writes exp/<cm>/scores/<set>/cm_scores.txt (``UTT logit_spoof logit_bonafide p_bonafide``) and
exp/<cm>/scores/model.json. A re-run skips finished work. --nj N runs N processes (one per GPU when there are
several); this process holds the lock and merges their chunks. Speed and threads: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sasv.cli import run_cli  # noqa: E402
from sasv.datadir import validate_datadir  # noqa: E402
from sasv.extract import (  # noqa: E402
    CountermeasureEngine,
    EngineSpec,
    default_batch_size,
    score_countermeasure,
)
from sasv.locking import exclusive_lock  # noqa: E402
from sasv.provenance import model_key, stage_inputs  # noqa: E402
from sasv.stage import add_model_stage_args, setup_model_stage  # noqa: E402

log = logging.getLogger("score_cm")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_stage_args(
        p,
        "CM model conf, e.g. conf/cm/aasist.yaml",
        "Kaldi data dirs with wav.scp and trials",
        "utterances per forward (default: conf on GPU, by model on CPU)",
    )
    args = p.parse_args()

    stage = setup_model_stage(args, "cm", "scores")
    conf, loaded, device = stage.conf, stage.loaded, stage.device
    jobs, num_workers, out_root = stage.jobs, stage.num_workers, stage.out_root
    del stage  # with --nj the model is dropped below; no reference may keep it alive
    options = {
        "batch_size": args.batch_size or default_batch_size(device, conf.batch_size, loaded.model),
        "cpu_kernels": args.cpu_kernels,
    }
    key = model_key(loaded)
    checkpoint_sha256 = loaded.checkpoint_sha256
    engine: CountermeasureEngine | EngineSpec
    if args.nj > 1:  # each job builds its own model; this process only needs the key and the record
        engine = EngineSpec(conf, args.allow_random_init, options)
        del loaded
    else:
        engine = CountermeasureEngine(loaded.model, device, **options)
    for data_dir in map(Path, args.data_dirs):
        data = validate_datadir(data_dir)
        test_utts = sorted({t.utt for t in data.trials})
        items = [(u, data.wav_scp[u]) for u in test_utts]
        lists = {"wav.scp": data_dir / "wav.scp", "trials": data_dir / "trials"}
        inputs = stage_inputs(conf, checkpoint_sha256, lists)
        log.info("%s: scoring %d test utterances of %s on %s", conf.name, len(items), data_dir, device)
        with exclusive_lock(out_root / data_dir.name, "CM scores"):
            out = score_countermeasure(
                engine,
                items,
                out_root / data_dir.name / "cm_scores.txt",
                key,
                num_workers=num_workers,
                chunk_size=args.chunk_size,
                inputs=inputs,
                jobs=jobs,
            )
        log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    run_cli(main)
