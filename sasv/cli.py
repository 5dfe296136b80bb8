"""The conventions every command-line tool of the recipe shares (the ``sasv <tool>`` commands).

* :func:`run_cli` is the one runner: logging and the error contract of :mod:`sasv.errors`:
  an expected failure is one line ``ERROR: <file>: <problem>`` and exit status 1; an OSError (disk full,
  read-only dir, a missing file) is one line naming the path, exit 1; Ctrl-C is one line and exit 130. A
  traceback is reserved for bugs (or ``SASV_DEBUG=1``, which re-raises everything). Under a stage script
  (``SASV_INTERRUPT_REPORTER`` set by ``utils/log.sh``) Ctrl-C is exit 130 without the line: the script
  prints it once, whatever it was running when interrupted (a tool, ``curl``, a job command).
* :class:`ArgumentParser`: options are spelled ``--some_name`` (like the shell stages' options) and also
  accept ``--some-name``; booleans are ``--flag true|false`` (:func:`str2bool`), nothing else; counts are
  checked when parsed (:func:`positive_int`, :func:`non_negative_int`, :func:`auto_int`); an option error
  is one line ``ERROR: <tool>: <problem>``, exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from sasv.errors import SasvError, one_line

INTERRUPTED_EXIT = 130
INTERRUPTED_LINE = "ERROR: interrupted (Ctrl-C); re-run the same command to resume"
# set by utils/log.sh: the stage script (this pid) prints the interruption line itself
INTERRUPT_REPORTER_ENV = "SASV_INTERRUPT_REPORTER"


def str2bool(value: str | bool) -> bool:
    """The one spelling of a boolean option: ``true`` or ``false`` (as the shell stages pass them)."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _whole_number(value: str, minimum: int, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}a whole number >= {minimum}, got {value!r}")
    return number


def positive_int(value: str) -> int:
    """A count of at least 1 (jobs, chunk size): refused here, in one line, not deep in torch."""
    return _whole_number(value, 1, "")


def non_negative_int(value: str) -> int:
    """A count of at least 0 where 0 means 'the default' (``--threads 0``: the cores divided by the jobs);
    a negative value reached ``torch.set_num_threads`` and ended in a traceback."""
    return _whole_number(value, 0, "")


def auto_int(value: str) -> int | None:
    """A count of at least 0 that also takes 'auto' (None: chosen from the device), e.g. ``--num_workers``
    (a negative value reached the DataLoader and ended in a traceback)."""
    return None if value == "auto" else _whole_number(value, 0, "auto or ")


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

    def error(self, message: str) -> NoReturn:
        """An option error is one line, ``ERROR: <tool>: <problem>``, like every other expected error (not the
        usage text, which is --help's, of a tool the user may not have called by hand: the stage scripts
        call them); exit status 2, argparse's for a usage error."""
        message = re.sub(
            r"^argument ([^/:\s]+)(?:/[^:\s]+)+:", r"argument \1:", one_line(message)
        )  # no alias
        self.exit(2, f"ERROR: {self.prog}: {message} (see {self.prog} --help)\n")


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
    """Run a tool's ``main(argv)`` under the error contract; returns the exit status (see the module doc).

    The stage script's ``SASV_INTERRUPT_REPORTER`` is taken out of the environment: a tool's own tasks and
    jobs (job logs of their own) print their interruption as usual. A Ctrl-C is remembered when it comes:
    Python drops a KeyboardInterrupt raised inside a finaliser (``__del__``, e.g. a closing sound file) with
    an "Exception ignored" traceback, and the tool would then finish as if nothing had happened, exit 0.
    """
    script_reports_interrupt = bool(os.environ.pop(INTERRUPT_REPORTER_ENV, ""))
    setup_logging()
    with _remembered_interrupts() as received:
        try:
            status = main(argv) or 0
        except (SasvError, OSError) as e:
            if os.environ.get("SASV_DEBUG"):
                raise
            print(error_line(e), file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            if os.environ.get("SASV_DEBUG"):
                raise
            received.append(True)
        if not received:
            return status
        if not script_reports_interrupt:
            print(INTERRUPTED_LINE, file=sys.stderr)
        return INTERRUPTED_EXIT


@contextlib.contextmanager
def _remembered_interrupts() -> Iterator[list[bool]]:
    """A list that becomes non-empty when a KeyboardInterrupt is dropped by a finaliser: Python reports
    those through ``sys.unraisablehook`` (an "Exception ignored" traceback) and carries on, so the hook notes
    it and stays quiet (it is reported once, as the ERROR line). Signal handling itself is left as Python
    sets it (a handler of our own would also reach the tool's forked workers)."""
    received: list[bool] = []
    previous_hook = sys.unraisablehook

    def unraisable(info: Any) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt):
            received.append(True)
        else:
            previous_hook(info)

    sys.unraisablehook = unraisable
    try:
        yield received
    finally:
        sys.unraisablehook = previous_hook
