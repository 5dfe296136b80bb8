"""The oldest torch the model and training code runs on, checked once at import with one clear error.

pyproject.toml states the same minimum, but the recipe keeps a torch the user already has (a cluster's CUDA
build: README, ``local/setup_env.sh``), so an older one can be installed without pip ever objecting. The
code calls APIs that torch 2.4 introduced (``torch.amp.GradScaler(device)``,
``torch.is_autocast_enabled(device_type)``); on an older torch they fail mid-run with an AttributeError or
TypeError that names neither torch nor the version, so the training and engine modules check first.
"""

from __future__ import annotations

import re

from sasv.errors import SasvError

MIN_TORCH = (2, 4)
"""Keep in step with ``torch>=`` in pyproject.toml (tests/train/test_distributed.py holds them equal)."""


class TorchVersionError(SasvError, ImportError):
    """The installed torch is older than :data:`MIN_TORCH`."""


def parse_version(version: str) -> tuple[int, int]:
    """(major, minor) of a torch version string such as ``2.4.1+cu121`` or ``2.6.0a0+git1234``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise TorchVersionError(f"torch: cannot read its version {version!r}")
    return int(match[1]), int(match[2])


def require_torch(version: str | None = None) -> None:
    """Raise :class:`TorchVersionError` naming the installed and the needed version if torch (or
    ``version``) is older than :data:`MIN_TORCH`."""
    if version is None:
        import torch

        version = torch.__version__
    if parse_version(version) < MIN_TORCH:
        need = ".".join(map(str, MIN_TORCH))
        raise TorchVersionError(
            f"torch {version} is installed; the recipe needs torch >= {need} (torch.amp.GradScaler(device), "
            f"torch.is_autocast_enabled(device_type)). Install a newer torch build for your CUDA "
            f"(https://pytorch.org/get-started/locally/) into the recipe's environment"
        )
