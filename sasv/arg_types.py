"""Values read from a conf, checked against the type hints of the code that takes them.

A model conf's ``args`` go to an architecture's constructor and its ``frontend`` to
:class:`~sasv.models.frontend.LogMelFrontend`; their type hints are the schema (one source of truth, no second
description to keep in step, no extra dependency such as pydantic). :func:`check_arguments` refuses
unknown keys and values of the wrong type with the key's name, before anything is built: ``"16"`` where an
int belongs is an error naming ``args.C``, not a torch error deep inside a layer.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def describe(hint: Any) -> str:
    """A type hint as a reader would write it: ``int``, ``Sequence[int]``, ``float | None``."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return "null" if hint is type(None) else hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "").replace("NoneType", "null")


def matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value (None, bool, int, float, str, list, dict) fits ``hint``. Forms of hint this
    does not know are accepted (the constructor then checks them)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    container = origin or hint
    if container in (list, tuple, Sequence):
        if not isinstance(value, list | tuple):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args, strict=True))
        return not args or all(matches(v, args[0]) for v in value)
    if container in (dict, Mapping):
        return isinstance(value, dict) and (not args or all(matches(v, args[1]) for v in value.values()))
    return True


def check_arguments(function: Callable[..., Any], values: Mapping[str, Any], where: str) -> None:
    """Raise ValueError naming ``<where>.<key>`` for a key ``function`` does not take or a value of the
    wrong type (``where`` is e.g. ``args`` or ``frontend``)."""
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function)
    allowed = [n for n, p in signature.parameters.items() if n != "self" and p.kind is not p.VAR_KEYWORD]
    for key, value in values.items():
        if key not in allowed:
            raise ValueError(f"{where}.{key}: unknown key; allowed: {', '.join(allowed)}")
        hint = hints.get(key, inspect.Parameter.empty)
        if not matches(value, hint):
            raise ValueError(f"{where}.{key}: expected {describe(hint)}, got {value!r}")
