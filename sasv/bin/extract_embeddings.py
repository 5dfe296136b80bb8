"""Stage 2: speaker embeddings (full utterance + five 3 s segments) for every utterance of data dirs.

Writes exp/<asv>/embeddings/<set>/xvector.{scp,done} (+ chunks/*.ark) and exp/<asv>/embeddings/model.json.
A re-run skips finished sets and chunks; changed inputs (conf, checkpoint, wav.scp) are redone.
With --nj N, N processes share the work (one per GPU when there are several); this process holds the lock
and merges their chunks. Speed and thread settings: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sasv.bin.options import model_stage_main
from sasv.cli import run_cli


def main(argv: Sequence[str] | None = None) -> int:
    return model_stage_main("asv", "sasv extract_embeddings", __doc__, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
