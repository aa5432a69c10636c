"""Natural-scene-statistics (NSS) building blocks shared by NIQE, BRISQUE and related metrics.

The conventions are those of the authors' MATLAB releases of BRISQUE (A. Mittal, A. K. Moorthy,
A. C. Bovik, "No-reference image quality assessment in the spatial domain", IEEE TIP 21(12),
2012, doi 10.1109/TIP.2012.2214050) and NIQE (A. Mittal, R. Soundararajan, A. C. Bovik,
"Making a 'completely blind' image quality analyzer", IEEE SPL 20(3), 2013,
doi 10.1109/LSP.2012.2227726), on ``float64`` images:

* :func:`gaussian_window` is ``fspecial('gaussian', size, sigma)`` normalised to sum 1;
* :func:`local_mean_std` and :func:`mscn` give the local Gaussian-weighted mean and deviation
  and the mean-subtracted contrast-normalised (MSCN) coefficients ``(I - mu) / (sigma + c)``;
* :func:`paired_products` multiplies each coefficient with its neighbour along four
  orientations (circular shifts, as MATLAB ``circshift``);
* :func:`fit_ggd` and :func:`fit_aggd` are the moment-matching fits of the generalised and
  asymmetric generalised Gaussian, choosing the shape on the releases' grid ``0.2:0.001:10``;
* :func:`imresize` is MATLAB ``imresize(I, scale)`` on ``double`` data (bicubic, antialiased
  when shrinking), used between the two scales of both metrics.

The filters take one 2-D image; :func:`paired_products` also takes a stack of blocks, and the
fits reduce over the axes they are given, so that many blocks are fitted in one call.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np

#: Padding names accepted by :func:`local_mean_std` and the MATLAB call each one reproduces.
PADDINGS: dict[str, str] = {
    "replicate": "imfilter(..., 'replicate')",
    "zeros": "filter2(..., 'same') (zero padding)",
    "symmetric": "imfilter(..., 'symmetric')",
}
_CV2_BORDERS = {
    "replicate": "BORDER_REPLICATE",
    "zeros": "BORDER_CONSTANT",
    "symmetric": "BORDER_REFLECT",
}

Axis = int | tuple[int, ...] | None


def gaussian_window(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``: a ``(size, size)`` window summing to 1."""
    line = _gaussian_line(size, sigma)
    return np.outer(line, line)


def _gaussian_line(size: int, sigma: float) -> np.ndarray:
    """The 1-D factor of :func:`gaussian_window` (the 2-D window is its outer product)."""
    if size < 1 or sigma <= 0:
        raise ValueError(f"Gaussian window needs size >= 1 and sigma > 0, got {size}, {sigma}")
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    line = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return line / line.sum()


#: A centre closer than this (relative) to its local mean may be one that equals it in exact
#: arithmetic (a flat or planar 7x7 window), where only the rounding decides the sign.
ROUNDING_TOLERANCE = 1e-10


def local_mean_std(
    image: np.ndarray,
    size: int = 7,
    sigma: float = 7.0 / 6.0,
    padding: str = "replicate",
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-weighted local mean and deviation ``sqrt(|E[I^2] - E[I]^2|)`` of an image.

    The window is :func:`gaussian_window`, applied to a 2-D image as a correlation with the
    border handling named by ``padding`` (see :data:`PADDINGS`): NIQE uses ``"replicate"``,
    BRISQUE ``"zeros"``.

    Where the window is flat or planar, the centre equals the local mean in exact arithmetic
    and the MSCN coefficient ``I - mean`` is rounding noise (about 1e-14) whose sign, and so
    the side of the AGGD fits it falls on, depends on the order of the additions: MATLAB's
    ``filter2``, Octave's ``conv2`` and OpenCV all differ there. The rule here, deterministic
    on every machine: the mean is computed with OpenCV, then recomputed wherever the centre is
    within :data:`ROUNDING_TOLERANCE` of it with the arithmetic of the reference runs
    (:func:`iqabench.features.conv2.conv2_at`, Octave's ``imfilter``/``filter2`` order with
    fused multiply-adds), and the deviation there too, so those coefficients are the
    reference's, bit for bit.
    """
    import cv2

    if padding not in _CV2_BORDERS:
        raise ValueError(f"unknown padding {padding!r} (known: {', '.join(PADDINGS)})")
    data = np.asarray(image, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"local_mean_std needs a 2-D image, got shape {data.shape}")
    border = getattr(cv2, _CV2_BORDERS[padding])
    line = _gaussian_line(size, sigma)

    def blur(values: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(values, cv2.CV_64F, line, line, borderType=border)

    mean = blur(data)
    deviation = np.sqrt(np.abs(blur(data * data) - mean * mean))
    rows, cols = np.nonzero(np.abs(data - mean) <= ROUNDING_TOLERANCE * (np.abs(data) + 1.0))
    if rows.size:
        exact_mean = _reference_filter_at(data, size, sigma, padding, rows, cols)
        exact_square = _reference_filter_at(data * data, size, sigma, padding, rows, cols)
        mean[rows, cols] = exact_mean
        deviation[rows, cols] = np.sqrt(np.abs(exact_square - exact_mean * exact_mean))
    return mean, deviation


def _reference_filter_at(
    data: np.ndarray, size: int, sigma: float, padding: str, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """The local mean of ``data`` at ``(rows, cols)`` as the releases compute it under Octave
    (the deviation there too: in a flat block of NIQE every coefficient is such noise, and
    its magnitude enters the fits): the window
    ``fspecial('gaussian')`` divided by ``sum(sum(window))``; ``imfilter(I, w, 'replicate')``
    is ``conv2`` of the replicate-padded image with the window turned, ``'valid'``;
    ``filter2(w, I, 'same')`` is ``conv2`` of the image with the window turned, ``'same'``."""
    from .conv2 import conv2_at, sequential_sum
    from .gradients import fspecial_gaussian

    window = fspecial_gaussian(size, sigma)
    window = window / sequential_sum([sequential_sum(column) for column in window.T])
    turned = window[::-1, ::-1]
    if padding == "zeros":
        return conv2_at(data, turned, "same", rows, cols)
    mode = "edge" if padding == "replicate" else "symmetric"
    padded = np.pad(data, (size // 2, (size - 1) // 2), mode=mode)
    return conv2_at(padded, turned, "valid", rows, cols)


def mscn(
    image: np.ndarray,
    size: int = 7,
    sigma: float = 7.0 / 6.0,
    c: float = 1.0,
    padding: str = "replicate",
) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients ``(I - mu) / (sigma + c)``.

    ``mu`` and ``sigma`` come from :func:`local_mean_std`; ``c = 1`` is the stabilising
    constant of BRISQUE and NIQE for images on the 0..255 scale.
    """
    mean, deviation = local_mean_std(image, size, sigma, padding)
    return (np.asarray(image, dtype=np.float64) - mean) / (deviation + c)


def paired_products(
    coefficients: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Products of each coefficient with its horizontal, vertical and two diagonal neighbours.

    The neighbour comes from a circular shift over the last two axes (MATLAB ``circshift`` by
    ``[0 1]``, ``[1 0]``, ``[1 1]`` and ``[1 -1]``), so every product map has the input's shape
    and a stack of blocks wraps around within each block. A circular shift by ``[-1 1]`` (the
    BRISQUE release) gives the same set of products as ``[1 -1]``.
    """
    data = np.asarray(coefficients, dtype=np.float64)
    shifts = ((0, 1), (1, 0), (1, 1), (1, -1))
    horizontal, vertical, diagonal, antidiagonal = (
        data * np.roll(data, shift, axis=(-2, -1)) for shift in shifts
    )
    return horizontal, vertical, diagonal, antidiagonal


class GGDFit(NamedTuple):
    """Zero-mean generalised Gaussian fit: shape ``alpha`` and standard deviation ``std``."""

    alpha: np.ndarray
    std: np.ndarray


class AGGDFit(NamedTuple):
    """Asymmetric generalised Gaussian fit: shape and the left/right standard deviations."""

    alpha: np.ndarray
    left_std: np.ndarray
    right_std: np.ndarray

    @property
    def beta_left(self) -> np.ndarray:
        """Left scale ``left_std * sqrt(Gamma(1/alpha) / Gamma(3/alpha))``."""
        return self.left_std * _std_to_scale(self.alpha)

    @property
    def beta_right(self) -> np.ndarray:
        """Right scale ``right_std * sqrt(Gamma(1/alpha) / Gamma(3/alpha))``."""
        return self.right_std * _std_to_scale(self.alpha)

    @property
    def mean(self) -> np.ndarray:
        """Mean of the distribution, ``(beta_r - beta_l) Gamma(2/alpha) / Gamma(1/alpha)``."""
        from scipy.special import gammaln

        alpha = self.alpha
        ratio = np.exp(gammaln(2.0 / alpha) - gammaln(1.0 / alpha))
        return ((self.beta_right - self.beta_left) * ratio)[()]


def _std_to_scale(alpha: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return np.exp(0.5 * (gammaln(1.0 / alpha) - gammaln(3.0 / alpha)))


@cache
def _shape_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shape grid 0.2:0.001:10 and the moment ratios the fits match, both increasing.

    ``ratio[k] = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` increases strictly with the shape
    ``a``; the GGD fit matches its reciprocal, stored negated so that it increases too.
    """
    from scipy.special import gammaln

    shapes = np.arange(200, 10001) / 1000.0
    log_ratio = 2.0 * gammaln(2.0 / shapes) - gammaln(1.0 / shapes) - gammaln(3.0 / shapes)
    return shapes, np.exp(log_ratio), -np.exp(-log_ratio)


def _nearest_shape(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Grid shape whose entry of the increasing ``table`` is nearest each value.

    Ties go to the smaller shape, as MATLAB ``min`` picks the first. An undefined value (NaN:
    samples without a negative or a positive value, or all zero) gives the first shape, 0.2,
    as the releases do: MATLAB's ``min`` of an all-NaN vector returns index 1.
    """
    shapes = _shape_tables()[0]
    values = np.asarray(values, dtype=np.float64)
    index = np.clip(np.searchsorted(table, values), 1, table.size - 1)
    nearer_below = (values - table[index - 1]) <= (table[index] - values)
    index = np.where(nearer_below, index - 1, index)
    return np.where(np.isnan(values), shapes[0], shapes[index])


def fit_ggd(samples: np.ndarray, axis: Axis = None) -> GGDFit:
    """Fit a zero-mean generalised Gaussian by moment matching (BRISQUE's ``estimateggdparam``).

    The shape is the grid value whose ``Gamma(1/a) Gamma(3/a) / Gamma(2/a)^2`` is nearest to
    ``E[x^2] / E[|x|]^2``; ``std`` is ``sqrt(E[x^2])``. Moments are taken over ``axis`` (all
    elements when ``None``, giving scalars). All-zero samples give the shape 0.2 (see
    :func:`_nearest_shape`) and a zero ``std``.
    """
    data = np.asarray(samples, dtype=np.float64)
    mean_square = np.mean(data * data, axis=axis)
    mean_abs = np.mean(np.abs(data), axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = mean_square / mean_abs**2
    alpha = _nearest_shape(_shape_tables()[2], -rho)
    return GGDFit(alpha[()], np.sqrt(mean_square)[()])


def fit_aggd(samples: np.ndarray, axis: Axis = None) -> AGGDFit:
    """Fit an asymmetric generalised Gaussian by moment matching (``estimateaggdparam``).

    ``left_std`` and ``right_std`` are the root mean squares of the negative and positive
    samples; the shape is the grid value whose ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` is
    nearest to ``r * (g^3 + 1)(g + 1) / (g^2 + 1)^2`` with ``g = left_std / right_std`` and
    ``r = E[|x|]^2 / E[x^2]``. Moments are taken over ``axis`` (all elements when ``None``,
    giving scalars). Samples without a negative (positive) value give a NaN left (right)
    deviation and the shape 0.2, as the releases do (see :func:`_nearest_shape`).
    """
    data = np.asarray(samples, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        left_std = np.sqrt(
            np.sum(np.minimum(data, 0.0) ** 2, axis=axis) / np.sum(data < 0, axis=axis)
        )
        right_std = np.sqrt(
            np.sum(np.maximum(data, 0.0) ** 2, axis=axis) / np.sum(data > 0, axis=axis)
        )
        ratio = left_std / right_std
        rhat = np.mean(np.abs(data), axis=axis) ** 2 / np.mean(data * data, axis=axis)
        rhat_norm = rhat * (ratio**3 + 1.0) * (ratio + 1.0) / (ratio**2 + 1.0) ** 2
    alpha = _nearest_shape(_shape_tables()[1], rhat_norm)
    return AGGDFit(alpha[()], left_std[()], right_std[()])


def imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(image, scale)`` on ``double`` data: bicubic, antialiased when shrinking.

    The output has ``ceil(scale * size)`` rows and columns; borders are mirrored as MATLAB does.
    Rows are resized first, then columns (MATLAB's order for equal scales). Extra trailing axes
    (channels) are resized independently. No rounding is applied.
    """
    if scale <= 0:
        raise ValueError(f"imresize needs a positive scale, got {scale}")
    data = np.asarray(image, dtype=np.float64)
    for axis in (0, 1):
        data = _resize_axis(data, scale, axis)
    return data


def _resize_axis(data: np.ndarray, scale: float, axis: int) -> np.ndarray:
    length = data.shape[axis]
    weights, indices = _contributions(length, int(np.ceil(scale * length)), scale)
    source = np.moveaxis(data, axis, 0)
    result = np.einsum("ot,ot...->o...", weights, source[indices])
    return np.moveaxis(result, 0, axis)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel (a = -0.5), as in MATLAB ``imresize``."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _contributions(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample: the weights and (0-based, mirrored) input indices MATLAB uses."""
    width = 4.0
    if scale < 1:
        width /= scale

        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)

    else:
        kernel = _cubic
    centre = np.arange(1, out_length + 1) / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(centre - width / 2.0)
    indices = left[:, None] + np.arange(int(np.ceil(width)) + 2)[None, :]
    weights = kernel(centre[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    used = np.any(weights != 0, axis=0)
    return weights[:, used], indices[:, used]


def flat_window_share(image: np.ndarray, size: int = 7) -> float:
    """Share of the ``size x size`` windows inside ``image`` whose pixels are all equal.

    Inside such a window the MSCN coefficient of NIQE and BRISQUE is rounding noise (see
    :func:`local_mean_std`), so this share says how much of a score rests on it.
    """
    import cv2

    data = np.ascontiguousarray(image, dtype=np.float64)
    if data.ndim != 2 or min(data.shape) < size:
        raise ValueError(f"flat_window_share needs a 2-D image of at least {size}x{size}")
    box = np.ones((size, size), np.uint8)
    half = size // 2
    inside = (
        slice(half, data.shape[0] - (size - 1 - half)),
        slice(half, data.shape[1] - (size - 1 - half)),
    )
    highest = cv2.dilate(data, box)[inside]
    lowest = cv2.erode(data, box)[inside]
    return float(np.mean(highest == lowest))
