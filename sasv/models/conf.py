"""Model conf files (``conf/asv/*.yaml``, ``conf/cm/*.yaml``): parsing, validation, instantiation.

A conf is the single place that says which architecture, with which arguments, front-end and checkpoint,
a system uses. Swapping models in the recipe is choosing another conf.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sasv.errors import SasvError
from sasv.exp_layout import check_model_name
from sasv.models.checkpoint_formats import CheckpointError, get_format
from sasv.models.registry import build_model, check_architecture

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

KINDS = ("asv", "cm")


class ConfError(SasvError, ValueError):
    """A conf file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class CheckpointSource:
    """One place a checkpoint can be downloaded from, and where that link was read (an upstream README at a
    commit), so a dead link can be traced and replaced."""

    url: str
    read_from: str | None = None


@dataclass(frozen=True)
class CheckpointSpec:
    path: str
    format: str
    sha256: str | None = None
    # download sources, tried in order (mirrors of the same file): the conf's `url` or `urls`
    sources: tuple[CheckpointSource, ...] = ()
    # what the weights were trained on, in words (written by the training tools' export; tables show it)
    trained_on: str | None = None
    # the training conf that makes these weights when no source serves them (models without a public host)
    train_with: str | None = None
    # where a relative path starts: None, the recipe root (the `root` of resolved_path: every hand-written
    # conf's `pretrained/...`); or a folder, the conf's own (`relative_to: conf`, written by the training
    # tools' export, so that a training folder moved or copied whole keeps a working model.yaml)
    base: str | None = None

    @property
    def url(self) -> str | None:
        """The first source's URL (None without sources)."""
        return self.sources[0].url if self.sources else None

    def resolved_path(self, root: Path) -> Path:
        p = Path(self.path)
        if p.is_absolute():
            return p
        return (Path(self.base) if self.base is not None else root) / p


@dataclass(frozen=True)
class ModelConf:
    """A parsed model conf. ``source`` is the file it came from, for error messages."""

    name: str
    kind: str
    arch: str
    args: dict[str, Any] = field(default_factory=dict)
    frontend: dict[str, Any] | None = None
    checkpoint: CheckpointSpec | None = None
    embedding_dim: int | None = None
    batch_size: int = 16
    source: str = "<memory>"

    def how_to_obtain(self) -> str:
        if self.checkpoint is None:
            return ""
        if self.checkpoint.trained_on is not None and not self.checkpoint.sources:
            # written by `sasv train_asv|train_cm` beside this conf: nothing to download
            return (
                f"{self.name} was trained here (`sasv train_{self.kind}`, run_train_{self.kind}.sh; "
                f"{self.checkpoint.trained_on}): its weights are written beside its model.yaml; move or copy "
                f"the training folder as a whole, or train it again under this name (--name {self.name})."
            )
        where = f" from {self.checkpoint.url}" if self.checkpoint.url else ""
        return (
            f"Download it{where} with `local/download_pretrained.sh {self.name}` or put the file there by "
            f"hand (see pretrained/README.md)."
        )


_SHA256 = re.compile(r"[0-9a-f]{64}")
_TOP_KEYS = {"name", "kind", "arch", "args", "frontend", "checkpoint", "embedding_dim", "batch_size"}


def parse_conf(raw: Any, source: str = "<memory>") -> ModelConf:
    if not isinstance(raw, dict):
        raise ConfError(f"{source}: a conf must be a YAML mapping, got {type(raw).__name__}")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    for key in ("name", "kind", "arch"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfError(f"{source}: '{key}' must be a non-empty string")
    check_model_name(raw["name"], source)
    if raw["kind"] not in KINDS:
        raise ConfError(f"{source}: kind must be one of {KINDS}, got {raw['kind']!r}")
    try:
        check_architecture(raw["arch"])
    except ValueError as e:
        raise ConfError(f"{source}: {e}") from e
    spec = _checkpoint_spec(raw.get("checkpoint"), source)
    args = raw.get("args") or {}
    frontend = raw.get("frontend")
    if not isinstance(args, dict) or (frontend is not None and not isinstance(frontend, dict)):
        raise ConfError(f"{source}: 'args' and 'frontend' must be mappings")
    embedding_dim = raw.get("embedding_dim")
    if embedding_dim is not None:
        if raw["kind"] != "asv":
            raise ConfError(f"{source}: embedding_dim: a {raw['kind']} model has no speaker embedding")
        _positive_int(embedding_dim, "embedding_dim", source)
    return ModelConf(
        name=raw["name"],
        kind=raw["kind"],
        arch=raw["arch"],
        args=dict(args),
        frontend=dict(frontend) if frontend is not None else None,
        checkpoint=spec,
        embedding_dim=embedding_dim,
        batch_size=_positive_int(raw.get("batch_size", 16), "batch_size", source),
        source=source,
    )


def _positive_int(value: Any, key: str, source: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfError(f"{source}: {key}: expected a positive integer, got {value!r}")
    return value


def _checkpoint_spec(ckpt: Any, source: str) -> CheckpointSpec | None:
    if ckpt is None:
        return None
    if not isinstance(ckpt, dict) or "path" not in ckpt or "format" not in ckpt:
        raise ConfError(f"{source}: checkpoint needs at least 'path' and 'format'")
    extra = set(ckpt) - {"path", "format", "sha256", "url", "urls", "trained_on", "train_with", "relative_to"}
    if extra:
        raise ConfError(f"{source}: unknown checkpoint keys {sorted(extra)}")
    for key in ("path", "format"):
        if not isinstance(ckpt[key], str) or not ckpt[key]:
            raise ConfError(f"{source}: checkpoint.{key}: expected a non-empty string, got {ckpt[key]!r}")
    sha256 = ckpt.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise ConfError(f"{source}: checkpoint.sha256: expected 64 hex digits or null, got {sha256!r}")
    for key in ("url", "trained_on", "train_with"):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], str):
            raise ConfError(f"{source}: checkpoint.{key}: expected a string or null, got {ckpt[key]!r}")
    try:
        get_format(ckpt["format"])
    except CheckpointError as e:
        raise ConfError(f"{source}: {e}") from e
    relative_to = ckpt.get("relative_to", "root")
    if relative_to not in ("root", "conf"):
        raise ConfError(f"{source}: checkpoint.relative_to: expected root or conf, got {relative_to!r}")
    return CheckpointSpec(
        ckpt["path"],
        ckpt["format"],
        sha256,
        _checkpoint_sources(ckpt, source),
        ckpt.get("trained_on"),
        ckpt.get("train_with"),
        # the conf's folder, absolute: a conf read once resolves the same wherever the process goes next
        str(Path(source).absolute().parent) if relative_to == "conf" else None,
    )


@dataclass(frozen=True)
class InitCheckpoint:
    """Pre-trained weights for one sub-module of a model that is then trained (a training conf's
    ``init_checkpoint``): ``module`` is its name in the model (``ssl_model.model``)."""

    module: str
    checkpoint: CheckpointSpec


def init_checkpoint_spec(raw: Any, source: str) -> InitCheckpoint:
    """``{module: NAME, path, format, sha256, url(s)}`` -> :class:`InitCheckpoint` (a ValueError naming
    ``source`` and the key otherwise)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("module"), str) or not raw["module"]:
        raise ValueError(f"{source}: expected a mapping with 'module' (a sub-module name) and a checkpoint")
    rest = {k: v for k, v in raw.items() if k != "module"}
    try:
        spec = _checkpoint_spec(rest, source)
    except ConfError as e:
        raise ValueError(str(e)) from None
    assert spec is not None
    return InitCheckpoint(raw["module"], spec)


def _checkpoint_sources(ckpt: dict, source: str) -> tuple[CheckpointSource, ...]:
    """``url: U`` (one source) or ``urls:`` a list of mirrors, each ``U`` or ``{url: U, read_from: TEXT}``."""
    if ckpt.get("url") is not None and ckpt.get("urls") is not None:
        raise ConfError(f"{source}: checkpoint: give 'url' or 'urls' (mirrors), not both")
    if ckpt.get("url") is not None:
        return (CheckpointSource(ckpt["url"]),)
    urls = ckpt.get("urls")
    if urls is None:
        return ()
    if not isinstance(urls, list) or not urls:
        raise ConfError(f"{source}: checkpoint.urls: expected a non-empty list of mirrors, got {urls!r}")
    out = []
    for i, entry in enumerate(urls):
        if isinstance(entry, str):
            entry = {"url": entry}
        ok = isinstance(entry, dict) and set(entry) <= {"url", "read_from"}
        ok = ok and isinstance(entry.get("url"), str) and isinstance(entry.get("read_from", ""), str)
        if not ok:
            expected = "a URL or {url: URL, read_from: TEXT}"
            raise ConfError(f"{source}: checkpoint.urls[{i}]: expected {expected}, got {entry!r}")
        out.append(CheckpointSource(entry["url"], entry.get("read_from")))
    return tuple(out)


def load_conf(path: str | Path) -> ModelConf:
    path = Path(path)
    if not path.is_file():
        raise ConfError(f"conf file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfError(f"{path}: not valid YAML: {e}") from e
    return parse_conf(raw, source=str(path))


def build_from_conf(conf: ModelConf) -> nn.Module:
    """The conf's model, every value checked first (:mod:`sasv.arg_types`): an unknown key or a value of
    the wrong type is a :class:`ConfError` naming the conf and the key, and so is an ``embedding_dim`` that
    the architecture with these arguments does not produce."""
    import inspect

    from sasv.arg_types import check_arguments
    from sasv.models.frontend import LogMelFrontend
    from sasv.models.registry import resolve_architecture

    kwargs = dict(conf.args)
    try:
        if conf.frontend is not None:
            if "frontend" not in inspect.signature(resolve_architecture(conf.arch)).parameters:
                raise ValueError(f"frontend: architecture {conf.arch!r} has no log-mel front-end to set")
            check_arguments(LogMelFrontend.__init__, conf.frontend, "frontend")
            kwargs["frontend"] = dict(conf.frontend)
        model = build_model(conf.arch, **kwargs)
    except ValueError as e:
        raise ConfError(f"{conf.source}: {e}") from e
    produced = getattr(model, "embedding_dim", None)
    if conf.embedding_dim is not None and produced != conf.embedding_dim:
        raise ConfError(
            f"{conf.source}: embedding_dim: {conf.embedding_dim}, but {conf.arch} with these args produces "
            f"{produced}-dimensional embeddings"
        )
    return model


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference plus where its weights came from (written into results)."""

    model: nn.Module
    conf: ModelConf
    checkpoint_sha256: str | None  # None: randomly initialised

    @property
    def pretrained(self) -> bool:
        return self.checkpoint_sha256 is not None


def load_model(
    conf: ModelConf, root: str | Path = ".", allow_random_init: bool = False, seed: int = 0
) -> LoadedModel:
    """Build the conf's model and strictly load its checkpoint, in eval mode on CPU.

    With ``allow_random_init`` a missing checkpoint file is tolerated (the demo runs without weights) and
    the returned ``LoadedModel.pretrained`` is False so that callers can say so in every output. A present but
    broken checkpoint is always an error.
    """
    import torch

    from sasv.models.checkpoints import load_checkpoint_into

    # a fixed seed makes randomly initialised (demo) runs reproducible; a loaded checkpoint overrides it
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_from_conf(conf)
    digest = None
    if conf.checkpoint is None:
        if not allow_random_init:
            raise ConfError(f"{conf.source}: no checkpoint given and random initialisation not allowed")
    else:
        path = conf.checkpoint.resolved_path(Path(root))
        if path.exists() or not allow_random_init:
            expected, hint = conf.checkpoint.sha256, conf.how_to_obtain()
            if expected is None:  # the sha256 its first download recorded (sasv.models.pretrained), if any
                from sasv.models.checksum_lock import DEFAULT_LOCK, ChecksumLock

                lock = ChecksumLock(Path(root) / DEFAULT_LOCK)
                expected = lock.get(conf.checkpoint.path)
                if expected is not None:
                    hint = (
                        f"{lock.path} recorded its sha256 at the first download; to accept this file: "
                        f"sasv download_pretrained --forget {conf.name}"
                    )
            digest = load_checkpoint_into(model, path, conf.checkpoint.format, expected, hint)
        else:
            log.warning(
                "%s: checkpoint %s not found: using RANDOMLY INITIALISED weights; scores mean nothing",
                conf.name,
                path,
            )
    model.eval()
    return LoadedModel(model=model, conf=conf, checkpoint_sha256=digest)


def load_init_checkpoint(
    model: nn.Module, init: InitCheckpoint, root: str | Path, weights: bool = True
) -> str:
    """Load a training conf's pre-trained weights (``init_checkpoint``) strictly into the sub-module it
    names, e.g. XLS-R 300M into SSL-AASIST's ``ssl_model.model``; returns the file's sha256.

    A fairseq checkpoint also says how its model trains: the sub-module takes the dropouts of its cfg
    (:class:`sasv.models.wavlm.Dropouts`) and its ``feature_grad_mult`` (the conv encoder's gradient
    scale, 0 = frozen), as the original builds the model it fine-tunes from that cfg.
    ``weights=False`` applies only those (a resumed run: the epoch checkpoint holds the weights)."""
    from sasv.models.checkpoints import load_contents_into, read_checkpoint

    try:
        module = model.get_submodule(init.module)
    except AttributeError:
        raise CheckpointError(
            f"init_checkpoint.module: {type(model).__name__} has no sub-module {init.module!r}"
        ) from None
    spec = init.checkpoint
    path = spec.resolved_path(Path(root))
    how = f"Download it from {spec.url}." if spec.url else ""
    fmt = get_format(spec.format)
    if not weights and not fmt.config_objects:
        return ""  # nothing but weights in such a file, and the resumed run has its own
    obj = read_checkpoint(path, how, fmt.config_objects)
    digest = load_contents_into(module, obj, path, fmt, spec.sha256, how) if weights else ""
    cfg = obj.get("cfg")
    if fmt.config_objects and hasattr(module, "set_dropouts") and isinstance(cfg, dict):
        from sasv.models.wavlm import Dropouts

        # fairseq's training checkpoints nest the model's cfg under "model"; WavLM-Large.pt's is the cfg
        model_cfg = cfg["model"] if isinstance(cfg.get("model"), dict) else cfg
        mult = model_cfg.get("feature_grad_mult", 1.0)
        try:
            dropouts = Dropouts.from_cfg(model_cfg)
            module.set_feature_grad_mult(mult)
        except ValueError as e:
            raise CheckpointError(f"{path}: its cfg's {e}") from None
        module.set_dropouts(dropouts)
        log.info(
            "%s trains with %s's dropouts: %s, feature_grad_mult %s", init.module, path.name, dropouts, mult
        )
    return digest
