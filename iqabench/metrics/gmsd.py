"""GMSD: Gradient Magnitude Similarity Deviation (Xue, Zhang, Mou & Bovik, 2014)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metric import Metric
from ._checks import require_pairs
from ._torch import as_tensor


class GMSD(Metric):
    """Gradient Magnitude Similarity Deviation, lower is better (0 for identical images).

    W. Xue, L. Zhang, X. Mou and A. C. Bovik, "Gradient Magnitude Similarity Deviation: A Highly
    Efficient Perceptual Image Quality Index", IEEE Transactions on Image Processing 23(2),
    684-695, 2014, doi:10.1109/TIP.2013.2293423.

    Wraps ``pyiqa.archs.gmsd_arch.gmsd`` in ``float64`` on the grey image. The authors' script
    averages 2x2 blocks with ``conv2(..., 'same')`` (zero beyond the last row and column) and
    keeps every second sample; pyiqa's strided average drops an odd last row or column instead,
    so odd-sized images get the zero row or column here first, which makes the two identical.
    """

    name = "gmsd"
    family = "TR-FR"
    full_reference = True
    higher_is_better = False
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
        from pyiqa.archs.gmsd_arch import gmsd

        scores = np.empty(len(images), dtype=np.float64)
        for index, (image, ref) in enumerate(require_pairs(self.name, images, refs)):
            image, ref = _pad_to_even(image), _pad_to_even(ref)
            value = gmsd(
                as_tensor(image, 1 / 255), as_tensor(ref, 1 / 255), channels=1, test_y_channel=False
            )
            scores[index] = float(value)
        return scores


def _pad_to_even(image: np.ndarray) -> np.ndarray:
    """Append a zero row and/or column so that both sides are even."""
    rows, cols = image.shape
    return np.pad(image, ((0, rows % 2), (0, cols % 2)))
