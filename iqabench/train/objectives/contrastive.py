"""Contrastive objectives (pure functions of tensors).

* :func:`info_nce`: the InfoNCE loss of MoCo (K. He, H. Fan, Y. Wu, S. Xie and R. Girshick,
  "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020,
  doi:10.1109/CVPR42600.2020.00975), as DRI-IQA trains its degradation representation (J. Yue,
  X. Lin, Z. Yang and C. Ren, WACV 2025, arXiv:2411.17390): each query is pulled towards its one
  positive key and pushed from every key in the queue.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def info_nce(query: Tensor, positive: Tensor, negatives: Tensor, temperature: float) -> Tensor:
    """Mean InfoNCE of a batch: cross-entropy of each query's positive among
    ``[positive, negatives...]`` with logits ``q . k / temperature``.

    ``query`` and ``positive``: ``(B, D)``, row ``i`` of each a pair (L2-normalised by the
    caller, as MoCo does); ``negatives``: ``(K, D)``, shared by the batch (the queue). Gradient
    flows into ``query`` only (MoCo's keys come from the momentum encoder).
    """
    if query.shape != positive.shape or query.ndim != 2 or negatives.shape[1:] != query.shape[1:]:
        raise ValueError(
            f"need (B, D) queries and positives and (K, D) negatives, got {tuple(query.shape)}, "
            f"{tuple(positive.shape)} and {tuple(negatives.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"the temperature must be positive, not {temperature}")
    positive_logits = (query * positive.detach()).sum(dim=1, keepdim=True)
    negative_logits = query @ negatives.detach().t()
    logits = torch.cat([positive_logits, negative_logits], dim=1) / temperature
    labels = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits, labels)
