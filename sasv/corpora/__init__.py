"""The corpora: their release layouts, strict protocol readers, stage-1 preparation into Kaldi data dirs
(:mod:`sasv.corpora.datadir`), the synthetic mini corpora the tests and the demo run on, where the training
corpora are downloaded from, and the registry of the corpora evaluated on (:mod:`sasv.corpora.registry`).

May import: the shared top-level modules (errors, files, audio). Torch-free: stage 1 never imports torch.
"""
