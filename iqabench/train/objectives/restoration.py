"""Restoration objectives (pure functions of tensors).

* :func:`restoration_l1`: mean absolute error between a restored image and its reference;
* :func:`representation_semantic_loss`: DRI-IQA's representation-based semantic (RS) loss (J.
  Yue, X. Lin, Z. Yang and C. Ren, "Dual-Representation Interaction Driven Image Quality
  Assessment with Restoration Assistance", WACV 2025, arXiv:2411.17390): the distance between
  the degradation representation of the restored image and that of the reference, so that the
  restoration removes what the extractor sees as degradation. The paper gives no formula here
  to follow; the mean absolute difference is used, with the reference side detached (it is the
  target), so the loss is zero for a perfect restoration.
* :func:`error_map` and :func:`error_map_mixed_loss`: the restoration loss VCRNet pretrains its
  restoration network with (Z. Pan et al., "VCRNet: Visual Compensation Restoration Network for
  No-Reference Image Quality Assessment", IEEE TIP 31, 2022, doi:10.1109/TIP.2022.3144892). The
  paper names an error-map-based mixed loss; its training code is not released and its exact
  terms are not reproduced here. This project's reading, every choice its own: the error map is
  where the distortion changed the image, ``|distorted - reference|`` averaged over channels
  and smoothed by the 21x21, sigma-3 Gaussian that the released ``utils.py`` builds, scaled to
  mean 1 per image; the loss mixes, as the "Mix" of H. Zhao, O. Gallo, I. Frosio and J. Kautz
  ("Loss Functions for Image Restoration with Neural Networks", IEEE TCI 3(1), 2017,
  doi:10.1109/TCI.2016.2644865) does with weight 0.84, a structural term ``1 - SSIM`` (piq's
  SSIM, single scale, since crops may be 64 pixels) and a pixel term, the L1 error weighted by
  ``1 + error map`` so that the damaged regions count more.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: The Gaussian of the released VCRNet ``utils.py`` (``gauss_kernel(21, 3)``).
ERROR_MAP_KERNEL = 21
ERROR_MAP_SIGMA = 3.0
#: Weight of the structural term (Zhao et al.'s alpha).
STRUCTURAL_WEIGHT = 0.84


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


def error_map(distorted: Tensor, reference: Tensor) -> Tensor:
    """Where ``distorted`` differs from ``reference`` (``(N, C, H, W)`` on 0..1): the absolute
    difference averaged over channels, Gaussian-smoothed, scaled to mean 1 per image;
    ``(N, 1, H, W)``, no gradient."""
    from torchvision.transforms.functional import gaussian_blur

    if distorted.shape != reference.shape or distorted.ndim != 4:
        raise ValueError(
            f"need two (N, C, H, W) images of one shape, got {tuple(distorted.shape)} and "
            f"{tuple(reference.shape)}"
        )
    with torch.no_grad():
        difference = (distorted - reference).abs().mean(dim=1, keepdim=True)
        kernel = min(ERROR_MAP_KERNEL, 2 * (min(difference.shape[-2:]) // 2) - 1)
        smooth = gaussian_blur(difference, [kernel, kernel], [ERROR_MAP_SIGMA, ERROR_MAP_SIGMA])
        mean = smooth.mean(dim=(1, 2, 3), keepdim=True)
        return smooth / mean.clamp(min=1e-12)


def error_map_mixed_loss(
    restored: Tensor,
    reference: Tensor,
    distorted: Tensor,
    structural_weight: float = STRUCTURAL_WEIGHT,
) -> Tensor:
    """VCRNet's restoration loss as read here (see the module docstring): ``w * (1 - SSIM) +
    (1 - w) * mean((1 + E) |restored - reference|)`` with ``E`` the :func:`error_map` of the
    pair. All images ``(N, C, H, W)`` on 0..1 (``restored`` is clamped to it for SSIM); the
    reference and distorted images are constants."""
    from piq import ssim

    if restored.shape != reference.shape:
        raise ValueError(
            f"restored {tuple(restored.shape)} and reference {tuple(reference.shape)} differ"
        )
    if not 0.0 <= structural_weight <= 1.0:
        raise ValueError(f"the structural weight must lie in [0, 1], not {structural_weight}")
    reference = reference.detach()
    weights = 1.0 + error_map(distorted, reference)
    pixel = (weights * (restored - reference).abs()).mean()
    similarity = ssim(restored.clamp(0.0, 1.0), reference, data_range=1.0)
    return structural_weight * (1.0 - similarity) + (1.0 - structural_weight) * pixel
