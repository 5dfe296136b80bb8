"""The conventions every command-line tool of the recipe shares (the ``sasv <tool>`` commands).

* :func:`run_cli` is the one runner: logging and the error contract of :mod:`sasv.errors`:
  an expected failure is one line ``ERROR: <file>: <problem>`` and exit status 1; an OSError (disk full,
  read-only dir, a missing file) is one line naming the path, exit 1; Ctrl-C is one line and exit 130. A
  traceback is reserved for bugs (or ``SASV_DEBUG=1``, which re-raises everything).
* :class:`ArgumentParser`: options are spelled ``--some_name`` (like the shell stages' options) and also
  accept ``--some-name``; booleans are ``--flag true|false`` (:func:`str2bool`), nothing else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sasv.errors import SasvError, one_line

INTERRUPTED_EXIT = 130


def str2bool(value: str | bool) -> bool:
    """The one spelling of a boolean option: ``true`` or ``false`` (as the shell stages pass them)."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def auto_int(value: str) -> int | None:
    """An int option that also takes 'auto' (None: chosen from the device)."""
    return None if value == "auto" else int(value)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the recipe's conventions: the docstring as description, ``--a_b`` also as ``--a-b``."""

    def __init__(self, prog: str | None = None, description: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(prog=prog, description=description, **kwargs)

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:  # type: ignore[override]
        aliases = [n.replace("_", "-") for n in names if n.startswith("--") and "_" in n]
        aliases = [a for a in aliases if a not in names]
        return super().add_argument(*names, *aliases, **kwargs)

    def add_bool(self, name: str, default: bool, help: str) -> None:  # noqa: A002 (argparse's word)
        """A ``--name true|false`` option."""
        self.add_argument(name, type=str2bool, default=default, metavar="true|false", help=help)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )


def error_line(error: BaseException) -> str:
    """The one line a tool prints for an expected failure (``ERROR: <file>: <problem>``)."""
    if isinstance(error, SasvError) or not isinstance(error, OSError):
        return f"ERROR: {one_line(str(error))}"
    where = error.filename if error.filename is not None else "(no file)"
    problem = error.strerror or one_line(str(error)) or type(error).__name__
    return f"ERROR: {where}: {problem}"


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a tool's ``main(argv)`` under the error contract; returns the exit status (see the module doc)."""
    setup_logging()
    try:
        return main(argv) or 0
    except (SasvError, OSError) as e:
        if os.environ.get("SASV_DEBUG"):
            raise
        print(error_line(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if os.environ.get("SASV_DEBUG"):
            raise
        print("ERROR: interrupted (Ctrl-C); re-run the same command to resume", file=sys.stderr)
        return INTERRUPTED_EXIT
