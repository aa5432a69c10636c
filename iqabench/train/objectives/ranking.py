"""Ranking and self-consistency objectives for quality regression (pure functions of tensors).

From TReS: S. A. Golestaneh, S. Dadsetan and K. M. Kitani, "No-Reference Image Quality
Assessment via Transformers, Relative Ranking, and Self-Consistency", WACV 2022,
doi:10.1109/WACV51458.2022.00404 (official solver: github.com/isalirezag/TReS, ``models.py``,
read, not copied).

* :func:`triplet_ranking_loss`: the relative-ranking term. In a batch, the image of lowest
  opinion is the anchor of a triplet whose positive is the second lowest and whose negative is
  the highest; symmetrically the highest is the anchor, the second highest its positive and the
  lowest its negative. Each triplet is ``max(|a - p + eps| - |a - n + eps| + margin, 0)``
  (``torch.nn.TripletMarginLoss`` with ``p=1`` on one-dimensional scores) with the margin set to
  the opinion gap between the negative and the positive's counterpart, as the solver does.
* :func:`self_consistency_loss`: the flip term, L1 between each representation of an image and
  the (detached) same representation of its horizontal mirror.
* :func:`tres_objective`: the solver's whole loss for one batch seen as is and mirrored.

Departure: ties in the opinion scores (frequent with ordinal ground truth) are broken by batch
order (a stable sort); the solver's ``torch.argsort`` breaks them arbitrarily.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

#: ``torch.nn.functional.pairwise_distance``'s default, which the official triplet loss uses.
DISTANCE_EPS = 1e-6


def _triplet(anchor: Tensor, positive: Tensor, negative: Tensor, margin: Tensor) -> Tensor:
    """Triplet margin loss with the L1 distance on scalars (torch's ``p=1`` formula)."""
    closer = (anchor - positive + DISTANCE_EPS).abs()
    farther = (anchor - negative + DISTANCE_EPS).abs()
    return torch.clamp(closer - farther + margin, min=0.0)


def triplet_ranking_loss(scores: Tensor, mos: Tensor) -> Tensor:
    """TReS's relative-ranking loss of one batch: the two extreme triplets (lowest and highest
    opinion as anchors), summed. ``scores`` and ``mos`` hold one value per image (any shape with
    ``N >= 2`` elements); the margins are constants (no gradient flows into the opinions)."""
    predicted = scores.reshape(-1)
    opinion = mos.reshape(-1).to(predicted.dtype)
    if predicted.numel() < 2 or predicted.numel() != opinion.numel():
        raise ValueError(
            f"need one score per opinion and at least two images, got {predicted.numel()} "
            f"scores and {opinion.numel()} opinions"
        )
    order = torch.argsort(opinion, stable=True)
    lowest, second_lowest, second_highest, highest = order[0], order[1], order[-2], order[-1]
    margin_low = (opinion[highest] - opinion[second_lowest]).detach()
    margin_high = (opinion[second_highest] - opinion[lowest]).detach()
    low = _triplet(predicted[lowest], predicted[second_lowest], predicted[highest], margin_low)
    high = _triplet(predicted[highest], predicted[second_highest], predicted[lowest], margin_high)
    return low + high


def self_consistency_loss(features: Sequence[Tensor], mirrored: Sequence[Tensor]) -> Tensor:
    """Sum over representations of the mean absolute difference between each one and the
    detached representation of the mirrored image (compared element for element, not flipped
    back, as in the official network)."""
    if len(features) != len(mirrored) or not features:
        raise ValueError("need the same, non-zero number of representations on both sides")
    terms = [F.l1_loss(a, b.detach()) for a, b in zip(features, mirrored, strict=True)]
    return torch.stack(terms).sum()


class TReSLoss(NamedTuple):
    """The official solver's loss for a batch and its mirror (``total``) and its terms."""

    total: Tensor
    #: L1 of both orientations' scores on the opinions.
    regression: Tensor
    #: Both self-consistency terms (as given, weighted by the caller).
    consistency: Tensor
    #: Both orientations' triplet ranking losses, summed (unweighted).
    ranking: Tensor
    #: The symmetric L1 gap between the two ranking losses (unweighted).
    ranking_gap: Tensor


def tres_objective(
    scores: Tensor,
    mirrored_scores: Tensor,
    consistency: Tensor,
    mirrored_consistency: Tensor,
    mos: Tensor,
    ranking_weight: float = 0.05,
    ranking_consistency_weight: float = 0.5,
) -> TReSLoss:
    """The official solver's loss for a batch and its horizontal mirror.

    ``scores``/``consistency``: the network's predictions and self-consistency term on the batch;
    ``mirrored_*``: the same on the mirrored batch. The loss is the L1 regression of both
    predictions on ``mos``, plus both consistency terms, plus ``ranking_consistency_weight``
    times the symmetric L1 gap between the two ranking losses (each side against the other
    detached), plus ``ranking_weight`` times the sum of the two ranking losses. A batch of one
    image has no triplet: its ranking terms are zero (the solver would fail on it).
    """
    target = mos.reshape(-1).to(scores.dtype)
    regression = F.l1_loss(scores.reshape(-1), target) + F.l1_loss(
        mirrored_scores.reshape(-1), target
    )
    if target.numel() < 2:
        ranking = mirrored_ranking = scores.new_zeros(())
    else:
        ranking = triplet_ranking_loss(scores, target)
        mirrored_ranking = triplet_ranking_loss(mirrored_scores, target)
    gap = (ranking - mirrored_ranking.detach()).abs() + (mirrored_ranking - ranking.detach()).abs()
    both = consistency + mirrored_consistency
    total = (
        regression
        + both
        + ranking_consistency_weight * gap
        + ranking_weight * (ranking + mirrored_ranking)
    )
    return TReSLoss(total, regression, both, ranking + mirrored_ranking, gap)


# -- VTAMIQ's pairwise rank loss ------------------------------------------------------------
# A. Chubarau and J. Clark, "VTAMIQ: Transformers for Attention Modulated Image Quality
# Assessment", arXiv:2110.01655 (2021); the paper-era reference code (github.com/ch-andrei/VTAMIQ,
# commit c67f036, run_main.py, read, not copied) gives the exact form.

#: Guards against a zero opinion gap and a zero largest prediction.
RANK_EPS = 1e-6


def vtamiq_rank_loss(scores: Tensor, mos: Tensor) -> Tensor:
    """VTAMIQ's pairwise rank loss, the mean over all pairs ``i < j`` of a batch of

        max(0, -sign(y_i - y_j) (s_i - s_j)) / max(|s_i|, |s_j|)

    (``sign`` as ``(y_i - y_j) / (|y_i - y_j| + eps)``, so tied opinions cost nothing): a pair
    costs only when the predictions are ordered against the opinions, in proportion to the
    disorder relative to the larger prediction. Zero for fewer than two images."""
    predicted = scores.reshape(-1)
    opinion = mos.reshape(-1).to(predicted.dtype)
    if predicted.numel() != opinion.numel():
        raise ValueError(f"got {predicted.numel()} scores for {opinion.numel()} opinions")
    if predicted.numel() < 2:
        return predicted.sum() * 0.0
    first, second = torch.triu_indices(predicted.numel(), predicted.numel(), offset=1)
    gap = opinion[first] - opinion[second]
    sign = gap / (gap.abs() + RANK_EPS)
    disorder = torch.clamp(-sign * (predicted[first] - predicted[second]), min=0.0)
    largest = torch.maximum(predicted[first].abs(), predicted[second].abs())
    return (disorder / largest.clamp_min(RANK_EPS)).mean()
