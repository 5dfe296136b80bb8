"""The corpora: their release layouts, strict protocol readers, stage-1 preparation into Kaldi data dirs
(:mod:`sasv.corpora.datadir`), the synthetic mini corpora the tests and the demo run on, and where the
training corpora are downloaded from.

May import: the shared top-level modules (errors, files, audio). Torch-free: stage 1 never imports torch.
"""
