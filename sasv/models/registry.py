"""Architecture registry: the ``arch`` name a conf file gives -> the class that builds it.

Entries are import strings so that choosing one model never imports (or breaks on) another.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

ARCHITECTURES: dict[str, str] = {
    # speaker embedding extractors: forward(wav (B, N) float32 16 kHz) -> (B, D)
    "ecapa_tdnn": "sasv.models.ecapa_tdnn:EcapaTdnn",
    "se_resnet34": "sasv.models.resnet:SEResNet34",
    "se_res2net50": "sasv.models.resnet:SERes2Net50",
    "res2next50": "sasv.models.resnet:Res2NeXt50",
    "wavlm_ecapa": "sasv.models.wavlm_ecapa:WavLMEcapa",
    # countermeasures: forward(wav (B, 64600)) -> logits (B, 2), index 1 = bona fide
    "aasist": "sasv.models.aasist:AASIST",
    "ssl_aasist": "sasv.models.ssl_aasist:SSLAASIST",
}


def check_architecture(name: str) -> None:
    """Raise ValueError unless ``name`` is registered (imports nothing: confs are checked without torch)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")


def resolve_architecture(name: str) -> type[nn.Module]:
    check_architecture(name)
    module_name, attr = ARCHITECTURES[name].split(":")
    return getattr(importlib.import_module(module_name), attr)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate architecture ``name`` with the conf's arguments, checked against the constructor's type
    hints first (an unknown key or a value of the wrong type is a ValueError naming ``args.<key>``)."""
    from sasv.arg_types import check_arguments

    cls = resolve_architecture(name)
    check_arguments(cls.__init__, kwargs, "args")
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments for architecture {name!r}: {e}") from e
