"""Additive angular margin softmax (AAM-softmax, ArcFace), the usual loss head for speaker embeddings.

Embeddings and class centres are L2-normalised, so the logits are cosines; the target class's angle is
widened by ``margin`` before a scaled cross-entropy. Pushing the target angle up by ``m`` forces classes to
be separated by an angular gap, which is what cosine scoring of embeddings at test time relies on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MAX_MARGIN = math.pi / 2
"""Margins are kept below pi/2: beyond it even a perfectly aligned embedding has a negative target logit."""


class AAMSoftmax(nn.Module):
    """AAM-softmax head: ``forward(embeddings, labels) -> (loss, accuracy)``.

    The target logit is ``scale * cos(theta + m)``, the others ``scale * cos(theta)``. ``cos(theta + m)``
    stops decreasing once ``theta + m > pi``; there (``cos(theta) <= th = cos(pi - m)``) the target logit
    falls back to ``cos(theta) - mm`` with ``mm = m * sin(m)`` (ArcFace's fallback), which keeps it a
    decreasing function of ``theta``. With ``easy_margin`` the margin is applied only where
    ``cos(theta) > 0`` instead.

    The margin is plain Python state, not a buffer, so it is not in ``state_dict``: a trainer sets it from
    the schedule at every step (:func:`sasv.train.schedules.margin_schedule`), and a resumed run gets the
    same value as an uninterrupted one.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        scale: float = 30.0,
        margin: float = 0.2,
        easy_margin: bool = False,
    ) -> None:
        super().__init__()
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        if num_classes < 2:
            raise ValueError(
                f"num_classes must be >= 2 (one class makes the loss identically 0), got {num_classes}"
            )
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale}")
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.scale = float(scale)
        self.easy_margin = bool(easy_margin)
        # One row per class centre; xavier-normal as in voxceleb_trainer (only the direction matters).
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_normal_(self.weight)
        self.set_margin(margin)

    def set_margin(self, margin: float) -> None:
        """Set the angular margin (radians) and the constants derived from it.

        The margin is scheduled during training, so ``cos(m)``, ``sin(m)``, ``th`` and ``mm`` must be
        recomputed here rather than once in ``__init__``.
        """
        margin = float(margin)
        if not 0.0 <= margin < MAX_MARGIN:
            raise ValueError(f"margin must be in [0, pi/2), got {margin}")
        self.margin = margin
        self.cos_m = math.cos(margin)
        self.sin_m = math.sin(margin)
        self.th = math.cos(math.pi - margin)  # cos(theta) below this means theta + m > pi
        self.mm = math.sin(math.pi - margin) * margin  # = m * sin(m): the fallback's offset

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosines between each embedding and each class centre, ``(batch, num_classes)``, in float32 or
        wider (under autocast the matmul may be half precision; the margin maths below must not be)."""
        cosine = F.linear(F.normalize(embeddings), F.normalize(self.weight))
        if cosine.dtype in (torch.float16, torch.bfloat16):
            cosine = cosine.float()
        # Normalisation round-off can land a hair outside [-1, 1]; sin(theta) below would then be NaN.
        return cosine.clamp(-1.0, 1.0)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean AAM-softmax loss over the batch and top-1 accuracy of the *unmargined* cosines.

        The accuracy is a detached 0-d tensor, not a float, so a training step does not wait on the device
        just to log it; the margin is left out of it because it measures the classifier, not the loss.
        ``labels`` are class indices in ``[0, num_classes)`` (not checked: that would need a device sync).
        """
        if embeddings.dim() != 2 or embeddings.size(1) != self.embedding_dim:
            raise ValueError(
                f"embeddings must be (batch, {self.embedding_dim}), got {tuple(embeddings.shape)}"
            )
        if labels.shape != (embeddings.size(0),):
            raise ValueError(f"labels must be ({embeddings.size(0)},), got {tuple(labels.shape)}")
        labels = labels.long()
        cosine = self.cosine(embeddings)
        index = labels.unsqueeze(1)
        target = cosine.gather(1, index)  # only the target column gets the margin
        # sin(theta) = sqrt(1 - cos^2) has an infinite derivative at cos = +-1; the floor keeps the
        # gradient finite (at most ~1/sqrt(eps)) while changing sin(theta) only for theta < ~3e-4 rad.
        sine = torch.sqrt((1.0 - target * target).clamp(min=torch.finfo(target.dtype).eps))
        phi = target * self.cos_m - sine * self.sin_m  # cos(theta + m)
        if self.easy_margin:
            phi = torch.where(target > 0, phi, target)
        else:
            phi = torch.where(target > self.th, phi, target - self.mm)
        logits = self.scale * cosine.scatter(1, index, phi)
        loss = F.cross_entropy(logits, labels)
        with torch.no_grad():
            accuracy = (cosine.argmax(dim=1) == labels).float().mean()
        return loss, accuracy

    def extra_repr(self) -> str:
        return (
            f"embedding_dim={self.embedding_dim}, num_classes={self.num_classes}, scale={self.scale}, "
            f"margin={self.margin}, easy_margin={self.easy_margin}"
        )
