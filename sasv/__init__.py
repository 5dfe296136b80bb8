"""sasv: spoofing-aware speaker verification (ASVspoof 2019 LA, SASV 2022) as an importable library.

The shell stages of the recipe are thin wrappers around this package; everything they do can be done from
Python (``sasv.extraction.engines.load_engine``, ``sasv.extraction.chunks``, ``sasv.scoring.cosine``,
``sasv.metrics.eer``); the tools are ``sasv <tool>`` (:mod:`sasv.bin`). docs/ARCHITECTURE.md says which module
owns what.
"""

__version__ = "0.1.0"
