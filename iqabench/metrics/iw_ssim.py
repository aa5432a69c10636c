"""IW-SSIM and IW-PSNR: information content weighted SSIM and PSNR (Wang & Li, 2011).

Both metrics come from one multi-scale computation, written here from the paper and the
conventions of the authors' MATLAB release (``iwssim.m`` with ``buildLpyr`` from matlabPyrTools):

* a 5-scale Laplacian pyramid, ``binom5`` filter (``sqrt(2) * [1 4 6 4 1] / 16``), edges reflected
  about the edge pixel, up-sampling by zero insertion at the size of the finer level;
* per scale, the contrast-structure map of SSIM (11x11 Gaussian window, sigma 1.5, ``'valid'``;
  K = (0.01, 0.03), L = 255), times the luminance map at the coarsest scale, and the squared error;
* per scale but the coarsest, the information content weight of the reference band (3x3
  neighbourhood plus the parent coefficient, bilinearly enlarged as ``imenlarge2`` does, except at
  the last band scale; ``sigma_nsq = 0.4``);
* weighted means per scale (remembered per pair's content, so a run scoring both metrics
  computes them once), combined as ``prod(x_s ** w_s)`` with the weights
  (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) truncated to the scales used and renormalised:
  IW-SSIM from the contrast-structure means, IW-MSE from the squared-error means, and
  ``IW-PSNR = min(10 log10(255^2 / IW-MSE), 1000)``.

Where the authors' code would fail, the choices are: a covariance matrix of the reference
neighbourhoods with zero eigenvalues is pseudo-inverted (MATLAB's ``inv`` returns infinities), a
scale whose weights are all zero (a flat reference band) is pooled unweighted, and a negative
pooled contrast-structure mean (anti-correlated images; MATLAB's power turns complex) counts as 0.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import MetricParameterError, UserError
from ..metric import Metric
from ._checks import require_pairs

SCALE_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
K1, K2, DYNAMIC_RANGE = 0.01, 0.03, 255.0
WINDOW_SIDE, WINDOW_SIGMA = 11, 1.5
BLOCK_SIDE = 3
SIGMA_NSQ = 0.4
TOL = 1e-15
#: The authors' cap on IW-PSNR (reached by identical images, whose IW-MSE is 0).
MAX_PSNR = 1000.0
BINOM5 = np.sqrt(2) * np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def iw_pooled(image: np.ndarray, ref: np.ndarray, scales: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-scale information-weighted means: contrast-structure similarity and squared error.

    ``image`` and ``ref`` are grey ``float64`` arrays on 0..255. Returns two arrays of length
    ``scales``, finest scale first (the last contrast-structure mean includes luminance).
    """
    pyr_ref, pyr_dist = _laplacian_pyramid(ref, scales), _laplacian_pyramid(image, scales)
    bound = (WINDOW_SIDE - 1) // 2
    inner = (slice(bound, -bound), slice(bound, -bound))
    weight_bound = bound - (BLOCK_SIDE - 1) // 2
    contrast = np.empty(scales)
    error = np.empty(scales)
    for s in range(scales):
        cs_map, lum_map = _ssim_maps(pyr_ref[s], pyr_dist[s])
        se_map = ((pyr_ref[s] - pyr_dist[s]) ** 2)[inner]
        if s == scales - 1:
            cs_map = cs_map * lum_map
            weights = np.ones_like(cs_map)
        else:
            parent = pyr_ref[s + 1] if s < scales - 2 else None
            weights = _information_content(pyr_ref[s], pyr_dist[s], parent)
            weights = weights[weight_bound:-weight_bound, weight_bound:-weight_bound]
        if not weights.any():
            weights = np.ones_like(cs_map)
        contrast[s] = np.sum(cs_map * weights) / np.sum(weights)
        error[s] = np.sum(se_map * weights) / np.sum(weights)
    return contrast, error


#: Recent :func:`iw_pooled` results by the pair's content, so that scoring a dataset with both
#: IW-SSIM and IW-PSNR in one process runs the multi-scale computation once per pair.
_RECENT: OrderedDict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
_RECENT_SIZE = 4096


def _remembered_pooled(
    image: np.ndarray, ref: np.ndarray, scales: int
) -> tuple[np.ndarray, np.ndarray]:
    key = (_digest(image), _digest(ref), scales)
    if key in _RECENT:
        _RECENT.move_to_end(key)
        return _RECENT[key]
    result = iw_pooled(image, ref, scales)
    _RECENT[key] = result
    if len(_RECENT) > _RECENT_SIZE:
        _RECENT.popitem(last=False)
    return result


def forget_remembered() -> None:
    """Drop the remembered results (benchmarks call it so that every timed call computes)."""
    _RECENT.clear()


def _digest(array: np.ndarray) -> str:
    data = np.ascontiguousarray(array, dtype=np.float64)
    return hashlib.blake2b(data.tobytes() + str(data.shape).encode(), digest_size=16).hexdigest()


class _InformationWeighted(Metric):
    """What IW-SSIM and IW-PSNR share: the paper, the ``scales`` parameter, input checks."""

    family = "TR-FR"
    full_reference = True
    higher_is_better = True
    colour = "grey"
    version = "1"
    citation = (
        "Z. Wang, Q. Li. Information Content Weighting for Perceptual Image Quality Assessment. "
        "IEEE Transactions on Image Processing 20(5), 2011. doi:10.1109/TIP.2010.2092435"
    )
    default_params = {"scales": 5}
    batch_size = 8
    #: Five scales need 176x176 images; the conformance suite's 96x128 images take three.
    conformance: ClassVar[Mapping[str, Any]] = {"params": {"scales": 3}}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        scales = self.params["scales"]
        valid = isinstance(scales, int | np.integer) and not isinstance(scales, bool)
        if not (valid and 1 <= scales <= 5):
            raise MetricParameterError(
                f"metric {self.name!r}: scales must be an integer 1..5, got {scales!r}"
            )
        self.scales = int(scales)
        self.weights = SCALE_WEIGHTS[: self.scales] / SCALE_WEIGHTS[: self.scales].sum()

    def pooled(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:func:`iw_pooled` of every pair, after checking sizes."""
        smallest = WINDOW_SIDE * 2 ** (self.scales - 1)
        pairs = require_pairs(self.name, images, refs)
        for image, _ in pairs:
            if min(image.shape) < smallest:
                raise UserError(
                    f"metric {self.name!r} with {self.scales} scales needs images of at least "
                    f"{smallest}x{smallest} pixels, got {image.shape[1]}x{image.shape[0]} "
                    "(use fewer scales)"
                )
        return [_remembered_pooled(image, ref, self.scales) for image, ref in pairs]


class IWSSIM(_InformationWeighted):
    """Information content weighted SSIM (IW-SSIM), 1 for identical images.

    Z. Wang and Q. Li, "Information Content Weighting for Perceptual Image Quality Assessment",
    IEEE Transactions on Image Processing 20(5), 1185-1198, 2011, doi:10.1109/TIP.2010.2092435.
    See the module docstring for the computation, shared with :class:`IWPSNR`. Parameter
    ``scales`` (1 to 5, default 5) sets the pyramid depth; images need a side of at least
    ``11 * 2 ** (scales - 1)`` pixels (176 for 5 scales), as in the authors' code.
    """

    name = "iw-ssim"
    score_range = (-1.0, 1.0)

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        return np.array(
            [
                np.prod(np.maximum(contrast, 0.0) ** self.weights)
                for contrast, _ in self.pooled(images, refs)
            ],
            dtype=np.float64,
        )


class IWPSNR(_InformationWeighted):
    """Information content weighted PSNR (IW-PSNR) in dB, capped at 1000 dB as the authors do.

    Z. Wang and Q. Li, "Information Content Weighting for Perceptual Image Quality Assessment",
    IEEE Transactions on Image Processing 20(5), 1185-1198, 2011, doi:10.1109/TIP.2010.2092435.
    IW-MSE is the product over scales of the information-weighted mean squared error of each
    band raised to the scale weight; IW-PSNR is ``10 log10(255^2 / IW-MSE)``, and identical
    images (IW-MSE 0) score the cap. Parameter ``scales`` as for :class:`IWSSIM`.
    """

    name = "iw-psnr"
    score_range = (0.0, math.inf)

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        scores = []
        for _, error in self.pooled(images, refs):
            mse = np.prod(error**self.weights)
            scores.append(MAX_PSNR if mse == 0 else min(10 * np.log10(255**2 / mse), MAX_PSNR))
        return np.array(scores, dtype=np.float64)


def _laplacian_pyramid(image: np.ndarray, scales: int) -> list[np.ndarray]:
    """matlabPyrTools ``buildLpyr(image, scales)`` with ``binom5`` and ``reflect1`` edges."""
    bands = []
    current = image
    for _ in range(scales - 1):
        low = _correlate(current, BINOM5, axis=1)[:, ::2]
        low = _correlate(low, BINOM5, axis=0)[::2, :]
        bands.append(current - _expand(low, current.shape))
        current = low
    bands.append(current)
    return bands


def _correlate(values: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """Correlation with ``taps`` along ``axis``, edges reflected about the edge pixel
    (matlabPyrTools ``reflect1``, SciPy's ``mirror``)."""
    import cv2

    identity = np.ones(1)
    kernel_x, kernel_y = (taps, identity) if axis == 1 else (identity, taps)
    data = np.ascontiguousarray(values)
    return cv2.sepFilter2D(data, cv2.CV_64F, kernel_x, kernel_y, borderType=cv2.BORDER_REFLECT_101)


def _expand(low: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """matlabPyrTools ``upConv`` by 2 per axis: zeros inserted up to ``shape``, then filtered."""
    tall = np.zeros((shape[0], low.shape[1]))
    tall[::2] = low
    tall = _correlate(tall, BINOM5, axis=0)
    full = np.zeros(shape)
    full[:, ::2] = tall
    return _correlate(full, BINOM5, axis=1)


def _gaussian_window() -> np.ndarray:
    """One factor of MATLAB ``fspecial('gaussian', 11, 1.5)`` normalised (it is separable)."""
    offsets = np.arange(WINDOW_SIDE) - (WINDOW_SIDE - 1) / 2
    factor = np.exp(-(offsets**2) / (2 * WINDOW_SIGMA**2))
    return factor / factor.sum()


def _filter_same(values: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``filter2(outer(factor, factor), values, 'same')``: zeros outside ``values``."""
    import cv2

    return cv2.sepFilter2D(values, cv2.CV_64F, factor, factor, borderType=cv2.BORDER_CONSTANT)


def _valid_filter(values: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``filter2(outer(factor, factor), values, 'valid')``."""
    bound = (len(factor) - 1) // 2
    return _filter_same(values, factor)[bound:-bound, bound:-bound]


def _ssim_maps(ref: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contrast-structure and luminance maps of SSIM over the valid region."""
    window = _gaussian_window()
    c1, c2 = (K1 * DYNAMIC_RANGE) ** 2, (K2 * DYNAMIC_RANGE) ** 2
    mu1, mu2 = _valid_filter(ref, window), _valid_filter(dist, window)
    sigma12 = _valid_filter(ref * dist, window) - mu1 * mu2
    sigma1_sq = np.maximum(_valid_filter(ref * ref, window) - mu1**2, 0)
    sigma2_sq = np.maximum(_valid_filter(dist * dist, window) - mu2**2, 0)
    contrast = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    luminance = (2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1)
    return contrast, luminance


def _enlarge(band: np.ndarray) -> np.ndarray:
    """``imenlarge2``: bilinear ``imresize`` to ``4n - 3``, linear extrapolation of one more
    sample at each border, every second sample kept (``2n`` per side).

    Only the kept samples are interpolated: of the ``4n - 3`` the odd ones, plus the first two
    and the last two, from which the border samples are extrapolated.
    """
    rows = _enlarge_axis(band, axis=0)
    return _enlarge_axis(rows, axis=1)


def _enlarge_axis(values: np.ndarray, axis: int) -> np.ndarray:
    """:func:`_enlarge` along one axis (``n`` samples become ``2n``)."""
    size = values.shape[axis]
    left, right, fraction = _bilinear_taps(size, 4 * size - 3)
    keep = np.r_[0, 1 : 4 * size - 4 : 2, 4 * size - 4]
    data = np.moveaxis(values, axis, 0)
    shape = (-1,) + (1,) * (data.ndim - 1)
    weight = fraction[keep].reshape(shape)
    inner = (1 - weight) * data[left[keep]] + weight * data[right[keep]]
    inner[0] = 2 * inner[0] - inner[1]
    inner[-1] = 2 * inner[-1] - inner[-2]
    return np.moveaxis(inner, 0, axis)


def _bilinear_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MATLAB ``imresize(..., 'bilinear')`` enlarging one axis from ``size_in`` to ``size_out``:
    per output sample the left and right input indices (clipped to the axis) and the weight of
    the right one."""
    position = (np.arange(size_out) + 0.5) * size_in / size_out - 0.5
    left = np.floor(position)
    fraction = position - left
    clip = (0, size_in - 1)
    return (
        np.clip(left, *clip).astype(int),
        np.clip(left + 1, *clip).astype(int),
        fraction,
    )


def _information_content(
    ref: np.ndarray, dist: np.ndarray, parent: np.ndarray | None
) -> np.ndarray:
    """Information content weight map of one band (``info_content_weight_map``), size - 2."""
    third = np.full(BLOCK_SIDE, 1.0 / BLOCK_SIDE)
    mean_x, mean_y = _filter_same(ref, third), _filter_same(dist, third)
    cov_xy = _filter_same(ref * dist, third) - mean_x * mean_y
    ss_x = np.maximum(_filter_same(ref * ref, third) - mean_x**2, 0)
    ss_y = np.maximum(_filter_same(dist * dist, third) - mean_y**2, 0)
    gain = cov_xy / (ss_x + TOL)
    noise = ss_y - gain * cov_xy
    flat_ref = ss_x < TOL
    gain[flat_ref] = 0
    noise[flat_ref] = ss_y[flat_ref]
    flat_dist = ss_y < TOL
    gain[flat_dist] = 0
    noise[flat_dist] = 0

    # Every full 3x3 neighbourhood of the reference band (row-major), plus its parent
    # coefficient, as the columns of a (dim, N) matrix.
    half = (BLOCK_SIDE - 1) // 2
    rows, cols = ref.shape[0] - 2 * half, ref.shape[1] - 2 * half
    dim = BLOCK_SIDE * BLOCK_SIDE + (parent is not None)
    vectors = np.empty((dim, rows, cols))
    for index in range(BLOCK_SIDE * BLOCK_SIDE):
        i, j = divmod(index, BLOCK_SIDE)
        vectors[index] = ref[i : i + rows, j : j + cols]
    if parent is not None:
        vectors[-1] = _enlarge(parent)[half : half + rows, half : half + cols]
    vectors = vectors.reshape(dim, rows * cols)

    # Covariance with negative eigenvalues zeroed, total variance kept.
    eigenvalues, basis = np.linalg.eigh(vectors @ vectors.T / vectors.shape[1])
    kept = eigenvalues * (eigenvalues > 0)
    kept_sum = kept.sum()
    kept = kept * eigenvalues.sum() / (kept_sum + (kept_sum == 0))
    inverse = np.divide(1.0, kept, out=np.zeros_like(kept), where=kept > 0)
    field = np.sum(((basis * inverse) @ basis.T @ vectors) * vectors, axis=0) / dim

    # sum_k log2(1 + ((noise + (1 + g^2) s) field lambda_k + s noise) / s^2), s = sigma_nsq,
    # one eigenvalue at a time.
    gain = gain[half : half + rows, half : half + cols].ravel()
    noise = noise[half : half + rows, half : half + cols].ravel()
    factor = noise + (1 + gain**2) * SIGMA_NSQ
    offset = SIGMA_NSQ * noise
    weight = np.zeros(rows * cols)
    term = np.empty(rows * cols)
    for eigenvalue in kept:
        np.multiply(field, eigenvalue, out=term)
        term *= factor
        term += offset
        term /= SIGMA_NSQ**2
        term += 1
        weight += np.log2(term, out=term)
    weight[weight < TOL] = 0
    return weight.reshape(rows, cols)
