"""Restoration objectives (pure functions of tensors).

* :func:`restoration_l1`: mean absolute error between a restored image and its reference;
* :func:`representation_semantic_loss`: DRI-IQA's representation-based semantic (RS) loss (J.
  Yue, X. Lin, Z. Yang and C. Ren, "Dual-Representation Interaction Driven Image Quality
  Assessment with Restoration Assistance", WACV 2025, arXiv:2411.17390): the distance between
  the degradation representation of the restored image and that of the reference, so that the
  restoration removes what the extractor sees as degradation. The paper gives no formula here
  to follow; the mean absolute difference is used, with the reference side detached (it is the
  target), so the loss is zero for a perfect restoration.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def restoration_l1(restored: Tensor, reference: Tensor) -> Tensor:
    """Mean absolute error between ``restored`` and the (constant) ``reference``."""
    if restored.shape != reference.shape:
        raise ValueError(
            f"restored {tuple(restored.shape)} and reference {tuple(reference.shape)} differ"
        )
    return F.l1_loss(restored, reference.detach())


def representation_semantic_loss(restored_repr: Tensor, reference_repr: Tensor) -> Tensor:
    """RS loss: mean absolute difference between the degradation representations of the
    restored image and of its reference (the reference side is the target, detached)."""
    if restored_repr.shape != reference_repr.shape:
        raise ValueError(
            f"representations {tuple(restored_repr.shape)} and {tuple(reference_repr.shape)} differ"
        )
    return F.l1_loss(restored_repr, reference_repr.detach())
