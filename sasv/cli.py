"""Shared plumbing of the local/*.py command-line tools: logging and one-line errors for bad input.

Expected failures (bad audio, lists, confs, checkpoints) are reported as a single ``ERROR:`` line naming the
file and the problem, with exit status 1; a traceback is reserved for bugs (or ``SASV_DEBUG=1``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input, not by a bug. Imported lazily: tools that never touch a model
    (data preparation, metrics) should not pay for importing torch."""
    from sasv.audio import AudioError
    from sasv.corpus import CorpusError
    from sasv.datadir import ProtocolError
    from sasv.locking import LockedError

    errors: list[type[BaseException]] = [
        AudioError,
        CorpusError,
        ProtocolError,
        LockedError,
        FileNotFoundError,
    ]
    if "torch" in sys.modules:
        from sasv.checkpoints import CheckpointError
        from sasv.conf import ConfError
        from sasv.extract import NonFiniteOutputError

        errors += [CheckpointError, ConfError, NonFiniteOutputError]
    return tuple(errors)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )


def configure_threads() -> None:
    """Honour OMP_NUM_THREADS for torch's intra-op pool (torch ignores it once initialised elsewhere)."""
    n = os.environ.get("OMP_NUM_THREADS")
    if n and n.isdigit() and int(n) > 0 and "torch" in sys.modules:
        import torch

        torch.set_num_threads(int(n))


def run_cli(main: Callable[[], int | None]) -> None:
    setup_logging()
    try:
        configure_threads()
        code = main()
    except expected_errors() as e:
        if os.environ.get("SASV_DEBUG"):
            raise
        print(f"ERROR: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code or 0)
