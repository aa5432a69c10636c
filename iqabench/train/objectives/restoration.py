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
  doi:10.1109/TCI.2016.2644865) does with weight 0.84, a structural term ``1 - SSIM`` (single-scale
  SSIM of Wang et al. 2004, 11x11 Gaussian window, sigma 1.5, valid positions only, as piq's
  ``ssim`` computes it on crops under 384 pixels: :func:`ssim_index`, written here so that the
  core install needs no piq; tests check it against piq) and a pixel term, the L1 error weighted by
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
    if restored.shape != reference.shape:
        raise ValueError(
            f"restored {tuple(restored.shape)} and reference {tuple(reference.shape)} differ"
        )
    if not 0.0 <= structural_weight <= 1.0:
        raise ValueError(f"the structural weight must lie in [0, 1], not {structural_weight}")
    reference = reference.detach()
    weights = 1.0 + error_map(distorted, reference)
    pixel = (weights * (restored - reference).abs()).mean()
    similarity = ssim_index(restored.clamp(0.0, 1.0), reference)
    return structural_weight * (1.0 - similarity) + (1.0 - structural_weight) * pixel


#: SSIM's window (Wang et al., IEEE TIP 13(4), 2004) and stabilising constants.
SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def ssim_index(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean single-scale SSIM of two ``(N, C, H, W)`` batches (differentiable): Gaussian
    local statistics over valid window positions, averaged over positions, channels and
    images. Images smaller than the window use the largest odd window that fits."""
    channels = x.shape[1]
    size = min(SSIM_WINDOW, x.shape[-2], x.shape[-1])
    size -= 1 - size % 2
    taps = torch.arange(size, dtype=x.dtype, device=x.device) - (size - 1) / 2
    line = torch.exp(-(taps**2) / (2 * SSIM_SIGMA**2))
    line = line / line.sum()
    window = (line[:, None] * line[None, :]).expand(channels, 1, size, size)

    def local(image: Tensor) -> Tensor:
        return F.conv2d(image, window, groups=channels)

    mu_x, mu_y = local(x), local(y)
    var_x = local(x * x) - mu_x**2
    var_y = local(y * y) - mu_y**2
    covariance = local(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    contrast_structure = (2 * covariance + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * contrast_structure).mean()
