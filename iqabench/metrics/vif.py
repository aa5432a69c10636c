"""VIF: Visual Information Fidelity in the wavelet domain (Sheikh & Bovik, 2006)."""

from __future__ import annotations

import math
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

    A ``float64`` NumPy/SciPy/OpenCV re-implementation of the authors' ``vifvec`` release
    (hand-written; pyiqa's port runs in ``float32`` only), with the steerable-pyramid filter
    taps of matlabPyrTools' ``sp5Filters.m`` defined here (:func:`_filters`). As in ``vifvec``: a
    4-level, 6-orientation pyramid with reflected edges; sub-bands 4, 7, ..., 25 of ``ind2wtree``
    order (orientations 3 and 0 at each level); a ``2**lev + 1`` statistics window sampled every
    3 pixels; ``sigma_nsq = 0.4``. This is not the pixel-domain VIFp. A reference with no
    information in those sub-bands (a flat image) gives NaN, the authors' 0/0.
    """

    name = "vif"
    family = "TR-FR"
    full_reference = True
    higher_is_better = True
    score_range = (0.0, math.inf)  # above 1 where the image is contrast-enhanced
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


# The steerable-pyramid filters of matlabPyrTools' ``sp5Filters.m`` (E. P. Simoncelli, 1996;
# design: A. Karasaridis and E. P. Simoncelli, "A filter design technique for steerable pyramid
# image transforms", ICASSP 1996), which ``vifvec`` uses, as the release prints them (8
# decimals). The filters are symmetric, so only their independent taps are written out.

#: Upper triangle (row by row) of the top-left 3x3 corner of the 5x5 initial low-pass
#: ``lo0filt``, symmetric about both axes and both diagonals.
_LO0_TRIANGLE = (
    (0.00341614, -0.01551246, -0.03848215),
    (0.05586982, 0.15925570),
    (0.40304148,),
)
#: The same for the 9x9 level low-pass ``lofilt``, before the release's factor 2.
_LO_TRIANGLE = (
    (0.00085404, -0.00244917, -0.00387812, -0.00944432, -0.00962054),
    (-0.00523281, -0.00661117, 0.00410600, 0.01002988),
    (0.01396746, 0.03277038, 0.03981393),
    (0.06426333, 0.08169618),
    (0.10096540,),
)
#: Rows 0-3, columns 0-2 of the first 7x7 band filter: its rows are symmetric about the
#: middle row, its columns antisymmetric about the middle column (which is zero).
_BAND0_CORNER = (
    (0.00277643, -0.00986904, -0.01021852),
    (0.00496194, -0.00893064, -0.03075356),
    (0.01026699, 0.01189859, -0.08226445),
    (0.01455399, 0.02755155, -0.11732297),
)
#: The first 24 taps (row by row) of the second band filter, antisymmetric about its centre.
_BAND1_HALF = (
    (-0.00343249, -0.00358461, 0.01047717, 0.00790407, 0.00459034, -0.00128000, -0.01166982),
    (-0.00640815, -0.01977507, 0.01486305, 0.04435647, -0.00853965, -0.01161195, -0.00285723),
    (-0.00073141, -0.04084211, -0.04819057, 0.09454202, 0.05394139, -0.03930573, -0.00182078),
    (0.01124321, -0.00228219, -0.12227230),
)


def _mirrored_square(triangle: tuple[tuple[float, ...], ...]) -> np.ndarray:
    """The square filter symmetric about both axes and diagonals whose top-left quarter has
    ``triangle`` as its upper triangle."""
    half = len(triangle)
    quarter = np.zeros((half, half))
    for row, values in enumerate(triangle):
        quarter[row, row:] = values
        quarter[row:, row] = values
    index = np.minimum(np.arange(2 * half - 1), np.arange(2 * half - 1)[::-1])
    return quarter[np.ix_(index, index)]


def _band_filters() -> tuple[np.ndarray, ...]:
    """The six 7x7 oriented band-pass filters of ``sp5Filters`` (``reshape(bfilts(:, k),
    7, 7)``, as ``corrDn`` applies them): two written out, the others their transposes and
    mirror images, exactly."""
    index = np.minimum(np.arange(7), np.arange(7)[::-1])
    sign = np.sign(3 - np.arange(7))
    corner = np.hstack([np.asarray(_BAND0_CORNER), np.zeros((4, 1))])
    first = corner[np.ix_(index, index)] * sign
    second = np.zeros(49)
    taps = [value for row in _BAND1_HALF for value in row]
    second[:24] = taps
    second[25:] = -np.asarray(taps[::-1])
    second = second.reshape(7, 7)
    third = -second.T
    return first, second, third, -first.T, third[:, ::-1], second[:, ::-1]


@cache
def _filters() -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """The ``sp5Filters`` taps: initial low-pass, level low-pass, oriented band-pass filters."""
    return _mirrored_square(_LO0_TRIANGLE), 2.0 * _mirrored_square(_LO_TRIANGLE), _band_filters()


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
