"""Safe, strict loading of the public checkpoint formats.

A checkpoint is untrusted input: it is only ever unpickled with ``weights_only=True``. Each public format
(TaoRuijie's ECAPA-TDNN container, voxceleb_trainer's SpeakerNet, clovaai's AASIST, ...) is described by a
:class:`~sasv.models.checkpoint_formats.CheckpointFormat` that says which keys belong to the model and how
they are renamed onto this package's modules; everything else must be a known extra (a loss head) or the load
fails loudly.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from sasv.fileio import sha256_file
from sasv.models.checkpoint_formats import (
    FORMATS,
    CheckpointError,
    CheckpointFormat,
    get_format,
    register_format,
)

__all__ = [
    "FORMATS",
    "CheckpointError",
    "CheckpointFormat",
    "check_state_dict_fits",
    "get_format",
    "load_checkpoint_into",
    "load_contents_into",
    "map_checkpoint_keys",
    "read_checkpoint",
    "register_format",
]


def read_checkpoint(path: str | Path, how_to_obtain: str = "", config_objects: bool = False) -> dict:
    """Unpickle a checkpoint safely (``weights_only=True``) with errors that name the file and the cause;
    with ``config_objects``, a fairseq checkpoint's config objects through the restricted unpickler of
    :mod:`sasv.models.fairseq_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        hint = f" {how_to_obtain}" if how_to_obtain else ""
        raise CheckpointError(f"checkpoint {path} does not exist.{hint}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): an interrupted download?")
    if config_objects:
        from sasv.models.fairseq_checkpoint import read_fairseq_checkpoint

        return read_fairseq_checkpoint(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"checkpoint {path} was refused by safe loading (weights_only=True): it contains objects "
            f"other than tensors and plain containers, and unpickling it could run arbitrary code. "
            f"Only load such a file if you trust its source, and re-save its state dict. ({e})"
        ) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt and cannot be read: {e}") from e
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict")
    return dict(obj)


def map_checkpoint_keys(obj: Mapping, fmt: CheckpointFormat, source: str = "checkpoint") -> dict:
    """Select, strip and rename the model's keys of a loaded checkpoint according to ``fmt``."""
    state = obj
    if fmt.nested_key is not None:
        if fmt.nested_key not in obj or not isinstance(obj[fmt.nested_key], Mapping):
            raise CheckpointError(
                f"{source}: format {fmt.name!r} expects the state dict under key {fmt.nested_key!r}, "
                f"found top-level keys {sorted(obj)[:8]}"
            )
        state = obj[fmt.nested_key]
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if any(key.startswith(p) for p in fmt.ignored_prefixes):
            continue
        if fmt.model_prefix:
            if not key.startswith(fmt.model_prefix):
                raise CheckpointError(
                    f"{source}: key {key!r} has neither the model prefix {fmt.model_prefix!r} nor a known "
                    f"extra prefix {fmt.ignored_prefixes} of format {fmt.name!r}: wrong format or file?"
                )
            key = key[len(fmt.model_prefix) :]
        for old, new in fmt.renames:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: entry {key!r} is a {type(value).__name__}, not a tensor")
        mapped[key] = value
    if not mapped:
        raise CheckpointError(f"{source}: no model weights found for format {fmt.name!r}")
    return mapped


def check_state_dict_fits(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise a :class:`CheckpointError` listing missing, unexpected and mis-shaped keys, if any."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or mis_shaped):
        return

    def show(items: list[str]) -> str:
        head = ", ".join(items[:10])
        return head + (f", ... ({len(items)} in all)" if len(items) > 10 else "")

    parts = [f"{source} does not fit {type(model).__name__} (wrong architecture or conf arguments?)"]
    if missing:
        parts.append(f"missing keys: {show(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {show(unexpected)}")
    if mis_shaped:
        parts.append(f"shape mismatches: {show(mis_shaped)}")
    raise CheckpointError("\n  ".join(parts))


def load_checkpoint_into(
    model: nn.Module,
    path: str | Path,
    format_name: str,
    expected_sha256: str | None = None,
    how_to_obtain: str = "",
) -> str:
    """Strictly load ``path`` into ``model``; verify sha256 when given. Returns the file's sha256."""
    path = Path(path)
    fmt = get_format(format_name)
    obj = read_checkpoint(path, how_to_obtain, fmt.config_objects)
    return load_contents_into(model, obj, path, fmt, expected_sha256, how_to_obtain)


def load_contents_into(
    model: nn.Module,
    obj: Mapping,
    path: Path,
    fmt: CheckpointFormat,
    expected_sha256: str | None = None,
    how_to_obtain: str = "",
) -> str:
    """The second half of :func:`load_checkpoint_into`, for a caller that also reads the rest of the file
    (a fairseq checkpoint's cfg): verify ``path``'s sha256, map ``obj``'s keys, load strictly."""
    digest = sha256_file(path)
    if expected_sha256 and digest != expected_sha256.lower():
        raise CheckpointError(
            f"checkpoint {path} has sha256 {digest}, expected {expected_sha256}: a different or corrupt "
            f"file. {how_to_obtain}".rstrip()
        )
    state = map_checkpoint_keys(obj, fmt, source=f"checkpoint {path}")
    check_state_dict_fits(model, state, source=f"checkpoint {path}")
    model.load_state_dict(state, strict=True)
    return digest
