"""sasv: spoofing-aware speaker verification (ASVspoof 2019 LA, SASV 2022) as an importable library.

The shell stages of the recipe are thin wrappers around this package; everything they do can be done from
Python (``sasv.conf.load_conf``, ``sasv.extract``, ``sasv.scoring``, ``sasv.metrics``).
"""

__version__ = "0.1.0"
