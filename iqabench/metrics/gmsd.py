"""GMSD: Gradient Magnitude Similarity Deviation (Xue, Zhang, Mou & Bovik, 2014)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metric import Metric
from ._checks import require_pairs


class GMSD(Metric):
    """Gradient Magnitude Similarity Deviation, lower is better (0 for identical images).

    W. Xue, L. Zhang, X. Mou and A. C. Bovik, "Gradient Magnitude Similarity Deviation: A Highly
    Efficient Perceptual Image Quality Index", IEEE Transactions on Image Processing 23(2),
    684-695, 2014, doi:10.1109/TIP.2013.2293423.

    The authors' ``GMSD.m`` in ``float64`` on the grey image, written with NumPy and OpenCV: 2x2
    block means (``conv2(..., 'same')`` with the 2x2 average, zero beyond the last row and
    column, every second sample kept), Prewitt gradients ``[1 0 -1] / 3`` (3x3, zero padding),
    magnitudes ``sqrt(gx^2 + gy^2)``, the similarity map with T = 170 and its standard deviation
    (N - 1). pyiqa's ``gmsd`` is not wrapped: it builds its Prewitt taps in ``float32`` (1/3
    rounded), drops an odd last row or column instead of zero-padding it, and is several times
    slower on one core.
    """

    name = "gmsd"
    family = "TR-FR"
    full_reference = True
    higher_is_better = False
    score_range = (0.0, 1.0)
    colour = "grey"
    version = "1"
    citation = (
        "W. Xue, L. Zhang, X. Mou, A. C. Bovik. Gradient Magnitude Similarity Deviation: A Highly "
        "Efficient Perceptual Image Quality Index. IEEE Transactions on Image Processing 23(2), "
        "2014. doi:10.1109/TIP.2013.2293423"
    )
    default_params = {}
    batch_size = 16

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        pairs = require_pairs(self.name, images, refs)
        return np.array([_gmsd(image, ref) for image, ref in pairs], dtype=np.float64)


#: Stabilising constant of the similarity map (0..255 scale).
T = 170.0
#: The authors' Prewitt kernel ``dx = [1 0 -1; 1 0 -1; 1 0 -1] / 3``.
PREWITT_X = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0


def _gmsd(image: np.ndarray, ref: np.ndarray) -> float:
    """GMSD of one grey pair (0..255)."""
    magnitude_image = _gradient_magnitude(_half(_pad_to_even(image)))
    magnitude_ref = _gradient_magnitude(_half(_pad_to_even(ref)))
    quality = (2.0 * magnitude_image * magnitude_ref + T) / (
        magnitude_image**2 + magnitude_ref**2 + T
    )
    return float(np.std(quality, ddof=1))


def _half(image: np.ndarray) -> np.ndarray:
    """Means of the 2x2 blocks (even sides)."""
    return (image[0::2, 0::2] + image[0::2, 1::2] + image[1::2, 0::2] + image[1::2, 1::2]) * 0.25


def _gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """``sqrt(gx^2 + gy^2)`` of the Prewitt responses (correlation, zero padding)."""
    import cv2

    gx = cv2.filter2D(image, cv2.CV_64F, PREWITT_X, borderType=cv2.BORDER_CONSTANT)
    gy = cv2.filter2D(image, cv2.CV_64F, PREWITT_X.T.copy(), borderType=cv2.BORDER_CONSTANT)
    return np.sqrt(gx * gx + gy * gy)


def _pad_to_even(image: np.ndarray) -> np.ndarray:
    """Append a zero row and/or column so that both sides are even."""
    rows, cols = image.shape
    return np.pad(image, ((0, rows % 2), (0, cols % 2)))
