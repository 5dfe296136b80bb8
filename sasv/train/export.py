"""Write a model in the public checkpoint format its conf loads, plus a conf that points at the file.

A model the recipe trains must be usable exactly like a downloaded one: by a conf whose ``checkpoint.format``
is the public format (TaoRuijie's ECAPA-TDNN container, voxceleb_trainer's SpeakerNet, ...), and by the
original code bases, which know only their own key names. So export is the inverse of
:func:`sasv.models.checkpoints.map_checkpoint_keys`, and every export is checked by running that loader
mapping on it: what is written always loads back strictly, key for key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from torch import nn

from sasv.fileio import atomic_output, atomic_write_text, sha256_file
from sasv.models.checkpoint_formats import CheckpointFormat, get_format
from sasv.models.checkpoints import map_checkpoint_keys
from sasv.models.conf import ModelConf, parse_conf

__all__ = [
    "exported_conf",
    "file_key",
    "save_checkpoint",
    "save_torch_file",
    "state_dict_for_format",
    "write_conf",
]


def _loaded_name(key: str, fmt: CheckpointFormat) -> str:
    """The model key the loader makes of an (already prefix-stripped) file key: the first matching rename."""
    for old, new in fmt.renames:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def file_key(key: str, fmt: CheckpointFormat) -> str:
    """The file key (model prefix included) under which ``fmt``'s loader finds model key ``key``.

    Renames are not injective: a key outside every rename maps to itself, so e.g. UniSpeech's
    ``layer2.conv1.weight`` has the preimages ``layer2.Conv1dReluBn1.conv.weight``,
    ``layer2.Res2Conv1dReluBn.conv1.weight`` (via the ``Res2Conv1dReluBn. -> ''`` rename) and itself. A rename
    says that the public file names its *new* prefix with the *old* one, so the rename with the longest
    matching new prefix (the most specific statement; the first one listed among equally long) decides, and
    only keys that no rename covers keep their name. The choice is then checked against the loader's
    first-match rule, so a shadowed rename or a model key that the loader would rename away is an error
    (the format description is inconsistent), never a file that loads into the wrong parameters.
    """
    covering = [(old, new) for old, new in fmt.renames if key.startswith(new)]
    if covering:
        old, new = max(covering, key=lambda r: len(r[1]))  # max keeps the first of equally long ones
        stripped = old + key[len(new) :]
    else:
        stripped = key
    if _loaded_name(stripped, fmt) != key:
        raise ValueError(
            f"format {fmt.name!r}: model key {key!r} cannot be written: its file key {stripped!r} would be "
            f"loaded as {_loaded_name(stripped, fmt)!r} (a rename shadows another)"
        )
    full = fmt.model_prefix + stripped
    if any(full.startswith(p) for p in fmt.ignored_prefixes):
        raise ValueError(f"format {fmt.name!r}: model key {key!r} -> {full!r}, which the loader ignores")
    return full


def _portable(tensor: torch.Tensor) -> torch.Tensor:
    """Detached, on CPU, contiguous, owning exactly its bytes (torch.save writes a view's whole storage)."""
    t = tensor.detach().to("cpu").contiguous()
    if t.untyped_storage().nbytes() != t.numel() * t.element_size():
        t = t.clone()
    return t


def _unwrapped(model: nn.Module) -> nn.Module:
    """The trained module itself: (Distributed)DataParallel and torch.compile add ``module.`` /
    ``_orig_mod.`` to every key, which no public file has and which would otherwise round-trip unnoticed."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def state_dict_for_format(
    model: nn.Module, fmt_name: str | CheckpointFormat, extra: Mapping[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """``model``'s state dict keyed as the public format ``fmt_name`` stores it (nested when it nests).

    ``extra`` entries (e.g. a trained AAM-softmax weight under the format's loss prefix) are added verbatim
    to the state dict; they must lie under one of the format's ``ignored_prefixes``, because anything else
    would make the strict loader fail or, worse, be read as model weights.
    """
    fmt = fmt_name if isinstance(fmt_name, CheckpointFormat) else get_format(fmt_name)
    own = _unwrapped(model).state_dict()
    # injective: each name is checked to load back as its own key, so two keys cannot share a name
    names = {key: file_key(key, fmt) for key in own}
    state = {names[key]: _portable(value) for key, value in own.items()}
    for name, value in (extra or {}).items():
        if not any(name.startswith(p) for p in fmt.ignored_prefixes):
            raise ValueError(
                f"extra key {name!r} is not under an ignored prefix {fmt.ignored_prefixes} of format "
                f"{fmt.name!r}: the loader would not skip it"
            )
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"extra key {name!r} is a {type(value).__name__}, not a tensor")
        state[name] = _portable(value)
    obj: dict[str, Any] = state if fmt.nested_key is None else {fmt.nested_key: state}
    # the proof of the inverse, on every export: the loader's mapping gives back exactly the model's keys
    loaded = map_checkpoint_keys(obj, fmt, source=f"export of {type(_unwrapped(model)).__name__}")
    if set(loaded) != set(own) or any(loaded[k] is not state[names[k]] for k in own):
        raise AssertionError(f"format {fmt.name!r}: exported keys do not map back onto the model's")
    return obj


def _os_error(error: BaseException) -> OSError | None:
    """The OSError behind ``error``: itself, or the first in its chain of causes and contexts (torch's
    writer turns a failed write of a Python file object into a RuntimeError raised while handling it)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def save_torch_file(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically, a failed write (a full disk, a file size limit) raised as
    an OSError naming ``path``: the recipe's one-line error (:func:`sasv.cli.run_cli`), not torch's
    "PytorchStreamWriter failed writing file" or "unexpected pos" without a file name.

    torch writes through a Python file object here, so the operating system's error (ENOSPC, EFBIG) is
    raised by Python with its errno, and found even when torch wraps it; its file name is the temporary
    file's, which is not what the user should look for, so it is replaced by ``path``."""
    path = Path(path)
    try:
        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            torch.save(obj, f)
    except (OSError, RuntimeError) as e:
        cause = _os_error(e)
        if cause is None:
            raise
        code = cause.errno if cause.errno is not None else 0
        raise OSError(code, cause.strerror or os.strerror(code), str(path)) from e


def save_checkpoint(
    model: nn.Module,
    path: str | Path,
    fmt_name: str,
    extra: Mapping[str, torch.Tensor] | None = None,
) -> str:
    """Write ``model`` to ``path`` in format ``fmt_name`` (atomically: never a half-written checkpoint under
    its final name, which a re-run would take for a finished one); returns the file's sha256 for the conf."""
    obj = state_dict_for_format(model, fmt_name, extra)
    path = Path(path)
    save_torch_file(obj, path)
    return sha256_file(path)


class _ConfDumper(yaml.SafeDumper):
    """Lists of scalars in flow style (``layers: [3, 4, 6, 3]``), as the hand-written confs have them."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(v, (list, dict)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_ConfDumper.add_representer(list, _represent_list)


def _plain(value: Any) -> Any:
    """Tuples (from confs built in code) -> lists, recursively: the safe YAML dumper refuses tuples."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def exported_conf(
    conf: ModelConf,
    checkpoint_path: str | Path,
    sha256: str,
    path: str | Path,
    name: str | None = None,
    *,
    format_name: str | None = None,
    trained_on: str | None = None,
    relative_to: Literal["root", "conf"] = "root",
) -> dict[str, Any]:
    """The conf :func:`write_conf` writes, as a mapping, checked by :func:`sasv.models.conf.parse_conf` as if
    read from ``path`` (a bad name or format is a :class:`~sasv.models.conf.ConfError`). The training tools
    call it before the first step too, with a placeholder sha256: what would fail at the export fails then."""
    fmt = format_name or (conf.checkpoint.format if conf.checkpoint is not None else None)
    if fmt is None:
        raise ValueError(f"{conf.source}: names no checkpoint format; pass format_name")
    raw: dict[str, Any] = {"name": name or conf.name, "kind": conf.kind, "arch": conf.arch}
    raw["args"] = _plain(conf.args)
    if conf.frontend is not None:
        raw["frontend"] = _plain(conf.frontend)
    if conf.embedding_dim is not None:
        raw["embedding_dim"] = conf.embedding_dim
    raw["batch_size"] = conf.batch_size
    raw["checkpoint"] = {"path": str(checkpoint_path), "format": fmt, "sha256": sha256.lower(), "url": None}
    if relative_to != "root":
        raw["checkpoint"]["relative_to"] = relative_to
    if trained_on is not None:
        raw["checkpoint"]["trained_on"] = trained_on
    parse_conf(raw, source=str(path))
    return raw


def write_conf(
    conf: ModelConf,
    checkpoint_path: str | Path,
    sha256: str,
    path: str | Path,
    name: str | None = None,
    *,
    format_name: str | None = None,
    trained_on: str | None = None,
    relative_to: Literal["root", "conf"] = "root",
) -> Path:
    """Write a conf for the exported checkpoint: ``conf``'s architecture, arguments, front-end and format,
    the new file and its sha256 (so a later load refuses any other file) and no URL (nothing to download).

    ``checkpoint_path`` is written as given; a relative one is resolved against the recipe root, as in every
    hand-written conf, or with ``relative_to="conf"`` against the folder of the conf written here (the
    training tools write ``model.<ext>`` beside ``model.yaml`` so: the folder can be moved whole).
    ``format_name`` is only needed when ``conf`` names no checkpoint; ``trained_on`` says in words what
    the weights were trained on (tables show it). The result is parsed with
    :func:`sasv.models.conf.parse_conf` before it is written, so an invalid conf is never left behind.
    """
    raw = exported_conf(
        conf, checkpoint_path, sha256, path, name,
        format_name=format_name, trained_on=trained_on, relative_to=relative_to,
    )  # fmt: skip
    path = Path(path)
    source = " ".join(str(conf.source).split())  # one comment line, whatever the source string holds
    fmt = raw["checkpoint"]["format"]
    # "sasv.export": the module's name when exports began, kept: a refactor leaves exports byte-identical
    header = (
        f"# Generated by sasv.export from {source}: the same model with exported weights ({fmt} format).\n"
        f"# arch, args, frontend and format are copied from it; the checkpoint is the exported file.\n"
    )
    if relative_to == "conf":
        header += "# checkpoint.path is relative to this file's folder: move or copy the folder as a whole.\n"
    atomic_write_text(path, header + yaml.dump(raw, Dumper=_ConfDumper, sort_keys=False))
    return path
