"""Scoring a SASV system: speaker models and cosine scores, the product/sum score rule of ASV and CM, AS-norm,
the learned multi-system fusion, and the score files every stage exchanges (per-system scores, the SASV
submission format, the ASVspoof 5 Track 1 and Track 2 files, ASVspoof 2021 CM score files).

May import: the shared top-level modules, :mod:`sasv.corpora`, :mod:`sasv.metrics`,
:mod:`sasv.extraction.outputs` (the stored embeddings and CM scores it reads).
"""
