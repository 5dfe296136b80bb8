"""Stage 3: countermeasure scores (AASIST logits and P(bona fide)) for the test utterances of trials.

Writes exp/<cm>/scores/<set>/cm_scores.txt (``UTT logit_spoof logit_bonafide p_bonafide``), its completion
marker cm_scores.txt.done, and exp/<cm>/scores/model.json. A re-run skips finished work. --nj N runs N
processes (one per GPU when there are several); this process holds the lock and merges their chunks.
Speed and threads: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sasv.bin.options import model_stage_main
from sasv.cli import run_cli


def main(argv: Sequence[str] | None = None) -> int:
    return model_stage_main("cm", "sasv score_cm", __doc__, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
