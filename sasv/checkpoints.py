"""Safe, strict loading of the public checkpoint formats.

A checkpoint is untrusted input: it is only ever unpickled with ``weights_only=True``. Each public format
(TaoRuijie's ECAPA-TDNN container, voxceleb_trainer's SpeakerNet, clovaai's AASIST, ...) is described by a
:class:`CheckpointFormat` that says which keys belong to the model and how they are renamed onto this
package's modules; everything else must be a known extra (a loss head) or the load fails loudly.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sasv.fileio import sha256_file


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, unsafe, or does not fit the model it is loaded into."""


@dataclass(frozen=True)
class CheckpointFormat:
    """How the keys of one public checkpoint format map onto this package's modules.

    ``nested_key``: the state dict lives under this key of the saved dict (``{'model': sd, ...}``).
    ``model_prefix``: only keys with this prefix belong to the model; it is stripped.
    ``ignored_prefixes``: keys (checked before prefix stripping) that are known extras, e.g. the loss head.
    ``renames``: (old key prefix, new key prefix) pairs applied after stripping, first match wins.
    """

    name: str
    nested_key: str | None = None
    model_prefix: str = ""
    ignored_prefixes: tuple[str, ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    description: str = ""


def _mel_frontend_renames(old: str) -> tuple[tuple[str, str], ...]:
    """torchaudio's Sequential(PreEmphasis, MelSpectrogram) buffer names -> ``LogMelFrontend``'s."""
    return (
        (f"{old}.0.flipped_filter", "frontend.preemphasis_filter"),
        (f"{old}.1.spectrogram.window", "frontend.window"),
        (f"{old}.1.mel_scale.fb", "frontend.mel_fb"),
    )


def _unispeech_ecapa_head_renames() -> tuple[tuple[str, str], ...]:
    """UniSpeech ECAPA_TDNN head names -> the shared blocks of ``sasv.models.blocks`` (SE-Res2Block, pooling).

    The head always has three SE-Res2Blocks (``layer2..4``); its attentive pooling module becomes the
    model's ``attention`` network (conv, tanh, conv).
    """
    block = (
        ("Conv1dReluBn1.conv.", "conv1."),
        ("Conv1dReluBn1.bn.", "bn1."),
        ("Res2Conv1dReluBn.", ""),  # .convs.N / .bns.N
        ("Conv1dReluBn2.conv.", "conv3."),
        ("Conv1dReluBn2.bn.", "bn3."),
        ("SE_Connect.linear1.", "se.fc.0."),
        ("SE_Connect.linear2.", "se.fc.2."),
    )
    return tuple((f"layer{i}.{old}", f"layer{i}.{new}") for i in (2, 3, 4) for old, new in block) + (
        ("pooling.linear1.", "attention.0."),
        ("pooling.linear2.", "attention.2."),
    )


FORMATS: dict[str, CheckpointFormat] = {
    f.name: f
    for f in (
        CheckpointFormat(
            name="plain",
            description="a plain state dict whose keys are this package's module names",
        ),
        CheckpointFormat(
            name="taoruijie_ecapa",
            model_prefix="speaker_encoder.",
            ignored_prefixes=("speaker_loss.",),
            renames=_mel_frontend_renames("torchfbank"),
            description="TaoRuijie/ECAPA-TDNN exps/pretrain.model (speaker_encoder.* + speaker_loss.*)",
        ),
        CheckpointFormat(
            name="voxceleb_trainer",
            model_prefix="__S__.",
            ignored_prefixes=("__L__.",),
            renames=_mel_frontend_renames("torchfb"),
            description="clovaai/voxceleb_trainer SpeakerNet (__S__.* model + __L__.* loss head)",
        ),
        CheckpointFormat(
            name="doubleroc_resnet",
            renames=_mel_frontend_renames("torchfb"),
            description="SASV2022_DoubleRoc Res2Net50V2 res2net50v2.model (plain state dict, torchfb.*)",
        ),
        CheckpointFormat(
            name="doubleroc_res2next",
            renames=_mel_frontend_renames("torchfbank"),
            description="SASV2022_DoubleRoc Res2NeXt50 res2next50.model (plain state dict, torchfbank.*)",
        ),
        CheckpointFormat(
            name="clovaai_aasist",
            description="clovaai/aasist models/weights/AASIST.pth and AASIST-L.pth (plain state dict)",
        ),
        CheckpointFormat(
            name="unispeech_wavlm_ecapa",
            nested_key="model",
            ignored_prefixes=("loss_calculator.",),
            # the original's anonymous nn.Sequential indices -> sasv.models.wavlm's named modules, for the
            # 7 conv layers every released WavLM has: conv_layers.N.0 = conv, .N.2.1 = its LayerNorm, and the
            # weight-normed positional conv pos_conv.0 (weight_g / weight_v / bias)
            renames=tuple(
                (f"feature_extract.model.feature_extractor.conv_layers.{i}.{old}.", new)
                for i in range(7)
                for old, new in (
                    ("0", f"feature_extract.model.feature_extractor.conv_layers.{i}.conv."),
                    ("2.1", f"feature_extract.model.feature_extractor.conv_layers.{i}.norm."),
                )
            )
            + (("feature_extract.model.encoder.pos_conv.0.", "feature_extract.model.encoder.pos_conv."),)
            + _unispeech_ecapa_head_renames(),
            description="microsoft/UniSpeech speaker_verification {'model': sd, 'best_valid_eer': float}",
        ),
    )
}


def register_format(fmt: CheckpointFormat) -> None:
    FORMATS[fmt.name] = fmt


def get_format(name: str) -> CheckpointFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise CheckpointError(
            f"unknown checkpoint format {name!r}; known formats: {', '.join(sorted(FORMATS))}"
        ) from None


def read_checkpoint(path: str | Path, how_to_obtain: str = "") -> dict:
    """Unpickle a checkpoint safely (``weights_only=True``) with errors that name the file and the cause."""
    path = Path(path)
    if not path.is_file():
        hint = f" {how_to_obtain}" if how_to_obtain else ""
        raise CheckpointError(f"checkpoint {path} does not exist.{hint}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): an interrupted download?")
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
    obj = read_checkpoint(path, how_to_obtain)
    digest = sha256_file(path)
    if expected_sha256 and digest != expected_sha256.lower():
        raise CheckpointError(
            f"checkpoint {path} has sha256 {digest}, expected {expected_sha256}: a different or corrupt "
            f"file. {how_to_obtain}".rstrip()
        )
    state = map_checkpoint_keys(obj, get_format(format_name), source=f"checkpoint {path}")
    check_state_dict_fits(model, state, source=f"checkpoint {path}")
    model.load_state_dict(state, strict=True)
    return digest
