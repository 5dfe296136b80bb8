"""Training the recipe's models: speaker-embedding models with AAM-softmax (:mod:`sasv.train.asv`) and
countermeasures with weighted cross-entropy (:mod:`sasv.train.cm`), both run by one resumable, torchrun-aware
epoch loop (:mod:`sasv.train.loop`) from checked confs (:mod:`sasv.train.confs`); cropped training data
(:mod:`sasv.train.data`), augmentation (:mod:`sasv.train.augment`, :mod:`sasv.train.rawboost`), loss heads
and schedules as pure functions of the step (:mod:`sasv.train.losses`, :mod:`sasv.train.schedules`),
validation with the stages' own engines (:mod:`sasv.train.validate`) and the export in public checkpoint
formats (:mod:`sasv.train.export`).

May import: every library layer below it (extraction for validation, reports for the curves); never a tool.
"""

from sasv.runtime.torch_version import require_torch

require_torch()  # one clear error on a torch too old, before any training module uses its APIs
