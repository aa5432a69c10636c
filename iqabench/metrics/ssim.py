"""Structural similarity (SSIM)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ..metric import Metric
from ._checks import require_pairs


class SSIM(Metric):
    """SSIM of Wang, Bovik, Sheikh and Simoncelli (IEEE TIP 13(4), 2004).

    The authors' ``ssim_index.m``: an 11x11 Gaussian window (sigma 1.5), K = (0.01, 0.03),
    L = 255, the mean over the 'valid' part of the SSIM map, on grey (MATLAB ``rgb2gray``)
    input, without the automatic downsampling of the later ``ssim.m``. Computed with
    scikit-image's ``structural_similarity`` in float64, which reproduces the official values.
    """

    name: ClassVar[str] = "ssim"
    family = "TR-FR"
    full_reference = True
    higher_is_better = True
    score_range = (-1.0, 1.0)
    colour = "grey"
    version = "1"
    citation = (
        "Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, Image quality assessment: from "
        "error visibility to structural similarity, IEEE TIP 13(4):600-612, 2004, "
        "doi 10.1109/TIP.2003.819861"
    )
    default_params: ClassVar[dict[str, float]] = {
        "sigma": 1.5,
        "k1": 0.01,
        "k2": 0.03,
        "data_range": 255.0,
    }
    batch_size = 32

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        from skimage.metrics import structural_similarity

        pairs = require_pairs(self.name, images, refs)
        return np.asarray(
            [
                structural_similarity(
                    ref,
                    image,
                    gaussian_weights=True,
                    sigma=float(self.params["sigma"]),
                    use_sample_covariance=False,
                    data_range=float(self.params["data_range"]),
                    K1=float(self.params["k1"]),
                    K2=float(self.params["k2"]),
                )
                for image, ref in pairs
            ],
            dtype=np.float64,
        )
