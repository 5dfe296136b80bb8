"""Model zoo: ASV embedding extractors and spoofing countermeasures, built by name from a conf."""

from sasv.models.registry import ARCHITECTURES, build_model, resolve_architecture

__all__ = ["ARCHITECTURES", "build_model", "resolve_architecture"]
