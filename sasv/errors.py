"""The recipe's error contract: expected failures are :class:`SasvError`, everything else is a bug.

An expected failure is caused by the user's input or by the state of earlier outputs (bad audio, a malformed
list, a conf that does not fit its checkpoint, a stage output made from other inputs, a locked dir). Its
message names the file and the problem, and every command-line tool reports it as the single line
``ERROR: <file>: <problem>`` with exit status 1 (:func:`sasv.cli.run_cli`); parallel jobs relay it to their
parent under the same class (:func:`error_class`). Each module owns its own subclass, which also derives
from the builtin exception a caller would naturally catch (``ValueError`` for malformed input, ...).

Kept free of torch and numpy: the lightest tools import it.
"""

from __future__ import annotations


class SasvError(Exception):
    """An expected failure; ``str(error)`` is the whole user-facing message, starting with the file."""


class MissingInputError(SasvError, FileNotFoundError):
    """A file a stage reads is absent: an earlier stage has not been run (the message says which)."""


class StaleOutputError(SasvError, RuntimeError):
    """A stage's outputs were made from inputs that have changed since."""


def error_class(name: str) -> type[SasvError] | None:
    """The :class:`SasvError` subclass called ``name`` among those imported so far (for job relays)."""
    pending: list[type[SasvError]] = [SasvError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def one_line(message: str) -> str:
    """A message as one line: its lines joined with '; ' (a key listing becomes one long line)."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())
