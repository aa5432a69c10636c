"""Contrastive objectives (pure functions of tensors).

* :func:`info_nce`: the InfoNCE loss of MoCo (K. He, H. Fan, Y. Wu, S. Xie and R. Girshick,
  "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020,
  doi:10.1109/CVPR42600.2020.00975), as DRI-IQA trains its degradation representation (J. Yue,
  X. Lin, Z. Yang and C. Ren, WACV 2025, arXiv:2411.17390): each query is pulled towards its one
  positive key and pushed from every key in the queue.
* :func:`supervised_nt_xent`: the supervised NT-Xent loss SaTQA pretrains its encoder with (J.
  Shi, P. Gao and J. Qin, AAAI 2024, doi:10.1609/aaai.v38i5.28285; official
  ``nt_xent_sup_sparse.py``, read, not copied), the "outside" form of P. Khosla et al.,
  "Supervised Contrastive Learning", NeurIPS 2020: for each embedding, the mean over its
  same-class partners of their scaled cosine similarity, minus the log-sum-exp over all others.
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


def supervised_nt_xent(embeddings: Tensor, labels: Tensor, temperature: float = 0.1) -> Tensor:
    """Supervised NT-Xent of a batch of ``(M, D)`` embeddings with ``(M,)`` integer class labels.

    With ``s_ij = cos(z_i, z_j) / temperature``, the loss of anchor ``i`` is
    ``log sum_{j != i} exp(s_ij) - mean_{j != i, y_j = y_i} s_ij``, averaged over the anchors
    that have at least one same-class partner (the others are left out, as officially). SaTQA
    passes the distorted images' embeddings followed by their references' (the pristine class).
    """
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"need (M, D) embeddings and (M,) labels, got {tuple(embeddings.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"the temperature must be positive, not {temperature}")
    z = F.normalize(embeddings, dim=1)
    similarity = z @ z.t() / temperature
    others = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    partners = (labels[:, None] == labels[None, :]) & others
    counts = partners.sum(dim=1)
    anchors = counts > 0
    if not bool(anchors.any()):
        raise ValueError("no embedding has a same-class partner in the batch")
    log_denominator = torch.logsumexp(similarity.masked_fill(~others, float("-inf")), dim=1)
    positive_mean = (similarity * partners).sum(dim=1) / counts.clamp(min=1)
    return (log_denominator - positive_mean)[anchors].mean()
