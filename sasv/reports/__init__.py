"""What a scored system reports: its metrics record (``results.json``), the tables of results.md,
analysis.md, summary.md and RESULTS.md, and the figures.

May import: the shared top-level modules, :mod:`sasv.corpora`, :mod:`sasv.metrics`, :mod:`sasv.scoring`.
"""
