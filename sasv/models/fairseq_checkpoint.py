"""fairseq checkpoints (XLS-R's ``xlsr2_300m.pt``) read without fairseq and without running their pickles.

A fairseq checkpoint is a pickle of ``{'cfg': ..., 'model': state_dict, ...}`` whose config (and, from a
training run, its meters and arguments) are objects of omegaconf, argparse and fairseq classes. Unpickling
them the ordinary way imports those libraries and calls whatever the file names; a checkpoint is untrusted
input, so here it goes through torch's ``weights_only`` unpickler with exactly the classes of
:data:`ADMITTED_GLOBALS` allowed, each replaced by an inert :class:`Record` that keeps the arguments and
the state the pickle gives it and runs nothing. Any other global in the file is refused with its name
before anything is unpickled (:func:`torch.serialization.get_unsafe_globals_in_checkpoint`). The records
are then turned into plain dicts, lists and values (:func:`plain`), so that the rest of the recipe sees
the config as the dict fairseq's own ``OmegaConf.to_container`` would give.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sasv.models.checkpoint_formats import CheckpointError

__all__ = ["ADMITTED_GLOBALS", "ADMITTED_MODULE_PREFIX", "Record", "plain", "read_fairseq_checkpoint"]

#: Every global a fairseq checkpoint's pickle may name, and what its record holds: omegaconf's containers
#: keep their values under ``_content``, its nodes under ``_val``, its metadata and resolver cache nothing
#: the recipe reads; type annotations (a node's ``ref_type``) become their names; an ``argparse.Namespace``
#: (``args`` of pre-hydra checkpoints) the dict of its attributes. The omegaconf 2.0 ones (fairseq's pin)
#: are those of tests/fixtures/ssl_aasist/dictconfig_checkpoint.pt.
ADMITTED_GLOBALS: dict[str, str] = {
    "omegaconf.dictconfig.DictConfig": "container",
    "omegaconf.listconfig.ListConfig": "container",
    "omegaconf.base.ContainerMetadata": "metadata",
    "omegaconf.base.Metadata": "metadata",
    "omegaconf.nodes.AnyNode": "node",
    "omegaconf.nodes.StringNode": "node",
    "omegaconf.nodes.IntegerNode": "node",
    "omegaconf.nodes.FloatNode": "node",
    "omegaconf.nodes.BooleanNode": "node",
    "omegaconf.nodes.EnumNode": "node",
    "collections.defaultdict": "metadata",
    "typing.Any": "type",
    "builtins.dict": "type",
    "builtins.list": "type",
    "builtins.int": "type",
    "builtins.float": "type",
    "builtins.str": "type",
    "builtins.bool": "type",
    "argparse.Namespace": "namespace",
}

#: fairseq's own config classes (the enums and dataclasses of a structured config) are admitted by module,
#: each as an inert record: an enum member becomes its value, anything else the dict of its state.
ADMITTED_MODULE_PREFIX = "fairseq."


def admitted(name: str) -> bool:
    return name in ADMITTED_GLOBALS or name.startswith(ADMITTED_MODULE_PREFIX)


class Record:
    """An object of an admitted class, rebuilt inert: ``args`` from its constructor call in the pickle,
    ``state`` from its ``__setstate__``. Nothing of the original class runs."""

    pickled_name = ""
    args: tuple
    state: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Record:
        record = object.__new__(cls)
        record.args, record.state = args, None
        return record

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"Record({self.pickled_name}, args={self.args!r}, state={self.state!r})"


def _record_class(name: str) -> type[Record]:
    """A class of its own per admitted global (the unpickler allows classes, not names)."""
    return type(name.rsplit(".", 1)[1], (Record,), {"pickled_name": name})


def _state_dict(record: Record) -> dict[str, Any]:
    state = record.state
    if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
        state = {**(state[0] or {}), **(state[1] or {})}  # (dict state, slot state)
    return state if isinstance(state, dict) else {}


def plain(value: Any) -> Any:
    """Records -> the plain values they hold: containers -> dict / list, nodes -> their value, a namespace ->
    the dict of its attributes, an enum member -> its value, a class named as a value -> its name, any
    other record -> the dict of its state. Tensors are left as they are."""
    if isinstance(value, type) and issubclass(value, Record):
        return value.pickled_name
    if isinstance(value, Record):
        kind = ADMITTED_GLOBALS.get(value.pickled_name, "fairseq")
        state = _state_dict(value)
        if kind == "container":
            return plain(state.get("_content"))
        if kind == "node":
            return plain(state.get("_val"))
        if kind == "metadata":
            return None
        if kind == "type":
            return value.pickled_name
        if kind == "fairseq" and not state and len(value.args) == 1:
            return plain(value.args[0])
        return {k: plain(v) for k, v in state.items()}
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def read_fairseq_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's top-level dict with every config object made plain (``cfg``, ``args``, ...) and the
    tensors as they are. A global outside :data:`ADMITTED_GLOBALS` (and fairseq's own classes) is a
    :class:`CheckpointError` naming it, raised before anything is unpickled."""
    path = Path(path)
    try:
        named = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except (RuntimeError, OSError, ValueError, EOFError) as e:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt and cannot be read: {e}") from e
    refused = sorted(name for name in named if not admitted(name))
    if refused:
        raise CheckpointError(
            f"checkpoint {path} names objects that a fairseq checkpoint does not hold and that safe loading "
            f"does not rebuild: {', '.join(refused)}; it is not loaded (unpickling them could run code)"
        )
    records = [(_record_class(name), name) for name in sorted(named)]
    try:
        with torch.serialization.safe_globals(records):
            try:  # memory-mapped: a 1.3 GB file costs no more memory than the tensors a caller keeps
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                obj = torch.load(path, map_location="cpu", weights_only=True)  # the legacy format
    except Exception as e:  # the weights_only unpickler's refusals and a corrupt file's errors alike
        raise CheckpointError(f"checkpoint {path} could not be read safely: {type(e).__name__}: {e}") from e
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"checkpoint {path} holds a {type(obj).__name__}, not a fairseq checkpoint dict"
        )
    return {key: (value if key == "model" else plain(value)) for key, value in obj.items()}
