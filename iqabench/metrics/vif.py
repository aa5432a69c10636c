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


def _correlate(image: np.ndarray, kernel: np.ndarray, step: int = 1) -> np.ndarray:
    """matlabPyrTools ``corrDn`` with ``reflect1`` edges (reflection about the edge pixel)."""
    from scipy import ndimage

    return ndimage.correlate(image, kernel, mode="mirror")[::step, ::step]


def _subbands(image: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The used sub-bands as (statistics window side, coefficients), finest level first."""
    lo0, lo, oriented = _filters()
    low = _correlate(image, lo0)
    found = []
    for level in range(1, LEVELS + 1):
        window = 2 ** (LEVELS + 1 - level) + 1
        found.extend((window, _correlate(low, oriented[o])) for o in ORIENTATIONS)
        if level < LEVELS:
            low = _correlate(low, lo, step=2)
    return found


def _channel(ref: np.ndarray, dist: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Gain ``g`` and noise variance ``vv`` of the distortion channel (``vifsub_est_M``)."""
    from scipy import ndimage

    rows, cols = ref.shape
    ones = np.ones(window)

    def window_sum(values: np.ndarray) -> np.ndarray:
        summed = ndimage.correlate1d(values, ones, axis=0, mode="mirror")
        summed = ndimage.correlate1d(summed, ones, axis=1, mode="mirror")
        stop_r, stop_c = rows - (M + 1) // 2 + 1, cols - (M + 1) // 2 + 1
        return summed[M // 2 : stop_r : M, M // 2 : stop_c : M]

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
    """Reference GSM field ``s^2`` per block and eigenvalues of ``C_U`` (``refparams_vecgsm``)."""
    patches = np.lib.stride_tricks.sliding_window_view(ref, (M, M))
    vectors = patches.reshape(-1, M * M)
    centred = vectors - vectors.mean(axis=0)
    cov = centred.T @ centred / len(vectors)
    blocks = patches[::M, ::M].reshape(-1, M * M)
    field = np.sum((blocks @ np.linalg.pinv(cov, hermitian=True)) * blocks, axis=1) / (M * M)
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
