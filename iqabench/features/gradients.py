"""Gradient-domain building blocks, written to match the authors' MATLAB releases.

Used by GM-LOG (Xue et al., IEEE TIP 2014), OG-IQA (Liu et al., Signal Processing: Image
Communication 2016) and GWH-GLBP (Li, Lin and Fang, IEEE SPL 2016). All functions take and
return ``float64`` arrays; the MATLAB conventions they reproduce are:

* ``fspecial('log')`` kernels, exactly (Gaussian windows and ``imresize`` come from
  :mod:`iqabench.features.nss`);
* ``filter2(kernel, image, 'same')`` and ``conv2(image, kernel, 'same')``: zero padding outside
  the image (``filter2`` correlates, ``conv2`` flips the kernel);

OpenCV is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UserError
from .nss import gaussian_window


def fspecial_log(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('log', size, sigma)``: Laplacian of Gaussian, shifted to sum to zero."""
    half = (size - 1) / 2.0
    offsets = np.arange(size, dtype=np.float64) - half
    radius2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    var = sigma * sigma
    gauss = np.exp(-radius2 / (2.0 * var))
    gauss[gauss < np.finfo(np.float64).eps * gauss.max()] = 0.0
    gauss /= gauss.sum()
    kernel = gauss * (radius2 - 2.0 * var) / (var * var)
    return kernel - kernel.sum() / kernel.size


def filter2_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(kernel, image, 'same')``: correlation, zeros outside the image.

    ``kernel`` must have odd sides (the case for every kernel in this module).
    """
    import cv2

    return cv2.filter2D(
        np.ascontiguousarray(image, dtype=np.float64),
        cv2.CV_64F,
        np.ascontiguousarray(kernel, dtype=np.float64),
        borderType=cv2.BORDER_CONSTANT,
    )


def gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The horizontal and vertical Gaussian-derivative kernels of the GM-LOG and OG-IQA code.

    A Gaussian of side ``2*ceil(3*sigma) + 3`` is differenced with its one-pixel shift (a
    forward difference, so the kernel is centred half a pixel off), cropped by one pixel on
    each side and scaled so that its absolute values sum to 1. For ``sigma = 0.5``: 5x5.
    """
    window = gaussian_window(2 * math.ceil(3 * sigma) + 3, sigma)
    kx = window[1:-1, 1:-1] - window[1:-1, 2:]
    ky = window[1:-1, 1:-1] - window[2:, 1:-1]
    return kx / np.abs(kx).sum(), ky / np.abs(ky).sum()


def gaussian_derivatives(image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical Gaussian-derivative responses (``filter2``, zero padding)."""
    kx, ky = gaussian_derivative_kernels(sigma)
    return filter2_same(image, kx), filter2_same(image, ky)


#: Prewitt kernel of GMSD and GWH-GLBP times 3 (``dx = [1 0 -1; 1 0 -1; 1 0 -1]/3``).
PREWITT_X_TIMES_3 = np.array([[1.0, 0.0, -1.0]] * 3)


def prewitt_magnitude(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude from MATLAB ``conv2(image, dx, 'same')`` and ``conv2(image, dx',
    'same')`` with the Prewitt kernel ``dx`` (zero padding; the flip of ``conv2`` only changes
    the sign).

    The sums are taken with the integer kernel :data:`PREWITT_X_TIMES_3` and the magnitude
    divided by 3 at the end, so that on 8-bit data ``sx^2 + sy^2`` is an exact integer:
    neighbourhoods with equal gradient magnitude give bit-identical values on every machine
    (MATLAB's order of rounding breaks such ties arbitrarily), which keeps an LBP of the
    gradient map reproducible.
    """
    sx = filter2_same(image, PREWITT_X_TIMES_3)
    sy = filter2_same(image, PREWITT_X_TIMES_3.T)
    return np.sqrt(sx * sx + sy * sy) / 3.0


def gradient_magnitude(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """``sqrt(gx.^2 + gy.^2)``, as MATLAB computes it."""
    return np.sqrt(gx * gx + gy * gy)


def laplacian_of_gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Signed LoG response of GM-LOG: ``fspecial('log', 2*ceil(3*sigma)+1, sigma)`` scaled so
    that its absolute values sum to 1, applied with ``filter2`` (zero padding)."""
    kernel = fspecial_log(2 * math.ceil(3 * sigma) + 1, sigma)
    return filter2_same(image, kernel / np.abs(kernel).sum())


def joint_adaptive_normalisation(
    gm: np.ndarray, log: np.ndarray, sigma: float, c0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Joint adaptive normalisation of GM-LOG (Xue et al. 2014, eqs. 6-8).

    Both maps are divided by ``N + c0``, where ``N`` is the square root of the Gaussian-weighted
    (``fspecial('gaussian', 2*ceil(3*sigma)+1, sigma)``, zero padding) local mean of
    ``(gm^2 + log^2) / 2``. ``sigma`` is the normalisation scale (twice the filter scale in the
    paper), ``c0`` a small constant that keeps flat regions finite.
    """
    window = gaussian_window(2 * math.ceil(3 * sigma) + 1, sigma)
    energy = filter2_same((gm * gm + log * log) / 2.0, window)
    norm = np.sqrt(np.maximum(energy, 0.0)) + c0
    return gm / norm, log / norm


def require_grey(name: str, image: np.ndarray, min_side: int) -> np.ndarray:
    """``image`` as a 2-D float64 array, refusing colour or too small input with one line."""
    data = np.asarray(image, dtype=np.float64)
    if data.ndim != 2:
        raise UserError(
            f"{name} takes grey images (H, W); got an array of shape {data.shape} "
            "(the runner converts RGB with MATLAB rgb2gray)"
        )
    if min(data.shape) < min_side:
        raise UserError(
            f"{name} needs images of at least {min_side}x{min_side} pixels; "
            f"got {data.shape[1]}x{data.shape[0]}"
        )
    return data
