"""VIF: Visual Information Fidelity in the wavelet domain (Sheikh & Bovik, 2006)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from ..errors import UserError
from ..metric import Metric
from ._checks import require_pairs

#: Side of the non-overlapping blocks (vectors of M*M coefficients) of the GSM model.
M = 3
#: Variance of the visual noise added to both channels.
SIGMA_NSQ = 0.4
#: Threshold under which a variance counts as zero (the authors' ``tol``).
TOL = 1e-15
#: Levels of the steerable pyramid; two of its six orientations per level are used.
LEVELS = 4
ORIENTATIONS = (0, 3)
#: Smallest image side for which every used sub-band keeps at least one statistics sample.
MIN_SIDE = 65


class VIF(Metric):
    """Visual Information Fidelity, the wavelet-domain (steerable pyramid, GSM) original.

    H. R. Sheikh and A. C. Bovik, "Image Information and Visual Quality", IEEE Transactions on
    Image Processing 15(2), 430-444, 2006, doi:10.1109/TIP.2005.859378.

    A ``float64`` NumPy/SciPy port of pyiqa's ``vif_arch`` (itself a port of the authors'
    ``vifvec`` release), which runs in ``float32`` only; the steerable-pyramid filter taps
    (``sp5Filters``) are read from ``pyiqa.archs.vif_arch.sp5_filters``. As in ``vifvec``: a
    4-level, 6-orientation pyramid with reflected edges; sub-bands 4, 7, ..., 25 of ``ind2wtree``
    order (orientations 3 and 0 at each level); a ``2**lev + 1`` statistics window sampled every
    3 pixels; ``sigma_nsq = 0.4``. This is not the pixel-domain VIFp. A reference with no
    information in those sub-bands (a flat image) gives NaN, the authors' 0/0.
    """

    name = "vif"
    family = "TR-FR"
    full_reference = True
    higher_is_better = True
    colour = "grey"
    version = "1"
    citation = (
        "H. R. Sheikh, A. C. Bovik. Image Information and Visual Quality. IEEE Transactions on "
        "Image Processing 15(2), 2006. doi:10.1109/TIP.2005.859378"
    )
    default_params = {}
    batch_size = 8

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        pairs = require_pairs(self.name, images, refs)
        for image, _ in pairs:
            if min(image.shape) < MIN_SIDE:
                raise UserError(
                    f"metric 'vif' needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels, "
                    f"got {image.shape[1]}x{image.shape[0]}"
                )
        return np.array([_vif(image, ref) for image, ref in pairs], dtype=np.float64)


@cache
def _filters() -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """The ``sp5Filters`` taps: initial low-pass, level low-pass, oriented band-pass filters."""
    from pyiqa.archs.vif_arch import sp5_filters

    taps = sp5_filters()
    bands = np.asarray(taps["bfilts"], dtype=np.float64)
    side = int(round(np.sqrt(bands.shape[0])))
    # Each column is a band filter stored in MATLAB's column-major order.
    oriented = tuple(bands[:, b].reshape(side, side).T.copy() for b in range(bands.shape[1]))
    return (
        np.asarray(taps["lo0filt"], dtype=np.float64),
        np.asarray(taps["lofilt"], dtype=np.float64),
        oriented,
    )


#: OpenCV filters a ``float64`` image through the DFT once a kernel has this many taps; below it
#: the sums are taken directly (for the 5x5 and 7x7 kernels here, bit-identical to SciPy's).
_DIRECT_TAPS = 50


def _correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """matlabPyrTools ``corrDn`` with ``reflect1`` edges (reflection about the edge pixel).

    Direct sums only (``kernel`` under :data:`_DIRECT_TAPS` taps): a constant image stays
    exactly constant, so a flat reference keeps no information (NaN) as in ``vifvec``.
    """
    import cv2

    return cv2.filter2D(image, cv2.CV_64F, kernel, borderType=cv2.BORDER_REFLECT_101)


def _correlate_down(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """:func:`_correlate` kept at every second row and column, computing only those samples.

    The output at ``(2i, 2j)`` sums the four polyphase parts: the kernel taps of row parity
    ``a`` and column parity ``b`` against the same parities of the padded image. Each part has
    under :data:`_DIRECT_TAPS` taps, so the sums stay direct for kernels up to 13x13.
    """
    import cv2

    half = kernel.shape[0] // 2
    padded = cv2.copyMakeBorder(image, half, half, half, half, cv2.BORDER_REFLECT_101)
    rows, cols = -(-image.shape[0] // 2), -(-image.shape[1] // 2)
    total = np.zeros((rows, cols))
    for a in (0, 1):
        for b in (0, 1):
            part = np.ascontiguousarray(padded[a::2, b::2])
            taps = np.ascontiguousarray(kernel[a::2, b::2])
            filtered = cv2.filter2D(
                part, cv2.CV_64F, taps, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT
            )
            total += filtered[:rows, :cols]
    return total


def _subbands(image: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The used sub-bands as (statistics window side, coefficients), finest level first."""
    lo0, lo, oriented = _filters()
    low = _correlate(image, lo0)
    found = []
    for level in range(1, LEVELS + 1):
        window = 2 ** (LEVELS + 1 - level) + 1
        found.extend((window, _correlate(low, oriented[o])) for o in ORIENTATIONS)
        if level < LEVELS:
            low = _correlate_down(low, lo)
    return found


def _channel(ref: np.ndarray, dist: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Gain ``g`` and noise variance ``vv`` of the distortion channel (``vifsub_est_M``)."""
    import cv2

    rows, cols = ref.shape
    ones, identity = np.ones(window), np.ones(1)
    kept_rows = slice(M // 2, rows - (M + 1) // 2 + 1, M)
    kept_cols = slice(M // 2, cols - (M + 1) // 2 + 1, M)

    def window_sum(values: np.ndarray) -> np.ndarray:
        """Sums over ``window x window`` (mirrored edges) at the kept block centres only."""
        border = cv2.BORDER_REFLECT_101
        summed = cv2.sepFilter2D(values, cv2.CV_64F, identity, ones, borderType=border)
        summed = np.ascontiguousarray(summed[kept_rows])
        summed = cv2.sepFilter2D(summed, cv2.CV_64F, ones, identity, borderType=border)
        return summed[:, kept_cols]

    area = window * window
    mean_x, mean_y = window_sum(ref) / area, window_sum(dist) / area
    cov_xy = window_sum(ref * dist) - area * mean_x * mean_y
    ss_x = np.maximum(window_sum(ref * ref) - area * mean_x**2, 0)
    ss_y = np.maximum(window_sum(dist * dist) - area * mean_y**2, 0)

    gain = cov_xy / (ss_x + TOL)
    noise = (ss_y - gain * cov_xy) / area
    flat_ref = ss_x < TOL
    gain[flat_ref] = 0
    noise[flat_ref] = ss_y[flat_ref]
    flat_dist = ss_y < TOL
    gain[flat_dist] = 0
    noise[flat_dist] = 0
    negative = gain < 0
    noise[negative] = ss_y[negative]
    gain[negative] = 0
    return gain, np.maximum(noise, TOL)


def _gsm(ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference GSM field ``s^2`` per block and eigenvalues of ``C_U`` (``refparams_vecgsm``).

    ``C_U`` is the covariance of every ``M x M`` neighbourhood (as the rows of a ``(M*M, N)``
    matrix, row-major within the neighbourhood); the field is taken on the non-overlapping
    blocks.
    """
    rows, cols = ref.shape[0] - M + 1, ref.shape[1] - M + 1
    patches = np.empty((M * M, rows, cols))
    for index in range(M * M):
        i, j = divmod(index, M)
        patches[index] = ref[i : i + rows, j : j + cols]
    vectors = patches.reshape(M * M, rows * cols)
    centred = vectors - vectors.mean(axis=1, keepdims=True)
    cov = centred @ centred.T / vectors.shape[1]
    blocks = patches[:, ::M, ::M].reshape(M * M, -1)
    field = np.sum((np.linalg.pinv(cov, hermitian=True) @ blocks) * blocks, axis=0) / (M * M)
    shape = (ref.shape[0] // M, ref.shape[1] // M)
    return field.reshape(shape), np.linalg.eigvalsh(cov)


def _vif(image: np.ndarray, ref: np.ndarray) -> float:
    numerator = denominator = 0.0
    for (window, band_ref), (_, band_dist) in zip(_subbands(ref), _subbands(image), strict=True):
        rows, cols = (band_ref.shape[0] // M) * M, (band_ref.shape[1] // M) * M
        band_ref, band_dist = band_ref[:rows, :cols], band_dist[:rows, :cols]
        gain, noise = _channel(band_ref, band_dist, window)
        field, eigenvalues = _gsm(band_ref)
        border = int(np.ceil((window - 1) / 2 / M))
        inner = (slice(border, -border), slice(border, -border))
        gain, noise, field = gain[inner], noise[inner], field[inner]
        scaled = field[..., None] * eigenvalues
        numerator += np.log2(
            1 + (gain**2)[..., None] * scaled / (noise[..., None] + SIGMA_NSQ)
        ).sum()
        denominator += np.log2(1 + scaled / SIGMA_NSQ).sum()
    if denominator == 0:
        return float("nan")
    return float(numerator / denominator)
