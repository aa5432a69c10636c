"""Gradient-domain building blocks, written to match the authors' MATLAB releases.

Used by GM-LOG (Xue et al., IEEE TIP 2014), OG-IQA (Liu et al., Signal Processing: Image
Communication 2016) and GWH-GLBP (Li, Lin and Fang, IEEE SPL 2016). All functions take and
return ``float64`` arrays; the MATLAB conventions they reproduce are:

* ``fspecial('log')`` kernels, exactly (Gaussian windows and ``imresize`` come from
  :mod:`iqabench.features.nss`);
* ``fspecial('gaussian')`` as the two-dimensional formula the releases evaluate, normalised by
  a sum taken in MATLAB's order;
* ``filter2(kernel, image, 'same')`` and ``conv2(image, kernel, 'same')``: zero padding outside
  the image (``filter2`` correlates, ``conv2`` flips the kernel). Where a feature depends on
  the last bit of the filtered values (the LBP of GWH-GLBP, the orientations of OG-IQA) the
  filtering is :mod:`iqabench.features.conv2`'s, rounded as the reference runs; elsewhere
  OpenCV's.

OpenCV is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UserError
from .conv2 import conv2, sequential_sum
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


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)`` as the releases evaluate it.

    ``exp(-(x^2 + y^2) / (2 sigma^2))`` on the 2-D grid (libm's ``exp``, element by element),
    divided by its sum taken in column-major order. Unlike :func:`~iqabench.features.nss.
    gaussian_window` (an outer product of 1-D windows, equal up to rounding) it is bit-exact,
    which the Gaussian-derivative features need. MATLAB's zeroing of values under
    ``eps * max`` changes nothing for the sizes used here (``2*ceil(3*sigma)+3``).
    """
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    radius2 = offsets[None, :] ** 2 + offsets[:, None] ** 2
    window = np.vectorize(math.exp)(-radius2 / (2.0 * sigma**2))
    return window / sequential_sum(window)


def gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The horizontal and vertical Gaussian-derivative kernels of the GM-LOG and OG-IQA code.

    A Gaussian (:func:`fspecial_gaussian`) of side ``2*ceil(3*sigma) + 3`` is differenced with
    its one-pixel shift (a forward difference, so the kernel is centred half a pixel off),
    cropped by one pixel on each side and divided by the sum of its absolute values (taken in
    MATLAB's order). For ``sigma = 0.5``: 5x5. The vertical kernel is differenced and
    normalised on its own, as GM-LOG's release does (OG-IQA's transposes the horizontal one).
    """
    window = fspecial_gaussian(2 * math.ceil(3 * sigma) + 3, sigma)
    kx = window[1:-1, 1:-1] - window[1:-1, 2:]
    ky = window[1:-1, 1:-1] - window[2:, 1:-1]
    return kx / sequential_sum(np.abs(kx)), ky / sequential_sum(np.abs(ky))


def gaussian_derivatives(image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical Gaussian-derivative responses (``filter2``, zero padding)."""
    kx, ky = gaussian_derivative_kernels(sigma)
    return filter2_same(image, kx), filter2_same(image, ky)


#: Prewitt kernel of GWH-GLBP's release, ``dx = [1 0 -1; 1 0 -1; 1 0 -1]/3``.
PREWITT_X = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0


def prewitt_magnitude(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude ``sqrt(conv2(I, dx, 'same').^2 + conv2(I, dx', 'same').^2)`` of
    GWH-GLBP's release, with :func:`iqabench.features.conv2.conv2` (zero padding, the
    reference runs' rounding).

    The LBP of this map compares neighbouring magnitudes, and on 8-bit data many of them are
    equal in exact arithmetic: which of such ties survive rounding depends on the order of the
    additions, so the map is computed in the reference's order, bit for bit.
    """
    sx = conv2(image, PREWITT_X, "same")
    sy = conv2(image, PREWITT_X.T, "same")
    return np.sqrt(sx * sx + sy * sy)


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
