"""Model zoo: ASV embedding extractors and spoofing countermeasures, built by name from a conf
(:mod:`~sasv.models.conf`), their front ends, their public checkpoint formats and loading, and the downloads
of released checkpoints.

May import: the shared top-level modules (errors, files, progress, conf value types, the exp/ layout's name
rules). Importing a conf imports no torch; building a model does.
"""

from sasv.models.registry import ARCHITECTURES, build_model, resolve_architecture

__all__ = ["ARCHITECTURES", "build_model", "resolve_architecture"]
