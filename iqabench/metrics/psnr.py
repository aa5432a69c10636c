"""Peak signal-to-noise ratio."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ..metric import Metric
from ._checks import require_pairs


class PSNR(Metric):
    """PSNR in dB on the 0..255 scale, over every channel as stored.

    The classical fidelity measure (e.g. Q. Huynh-Thu and M. Ghanbari, "Scope of validity of
    PSNR in image/video quality assessment", Electronics Letters 44(13), 2008,
    doi 10.1049/el:20080522). RGB pairs are compared on all three channels, as MATLAB's
    ``psnr`` does on RGB uint8 images; identical images give ``inf``.
    """

    name: ClassVar[str] = "psnr"
    family = "TR-FR"
    full_reference = True
    higher_is_better = True
    score_range = (0.0, math.inf)  # infinite for identical images
    colour = "native"
    version = "1"
    citation = (
        "Q. Huynh-Thu, M. Ghanbari, Scope of validity of PSNR in image/video quality "
        "assessment, Electronics Letters 44(13), 2008, doi 10.1049/el:20080522"
    )
    default_params: ClassVar[dict[str, float]] = {"data_range": 255.0}
    batch_size = 32

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        pairs = require_pairs(self.name, images, refs)
        peak = float(self.params["data_range"]) ** 2
        scores = []
        for image, ref in pairs:
            mse = float(np.mean((image - ref) ** 2))
            scores.append(np.inf if mse == 0.0 else 10.0 * np.log10(peak / mse))
        return np.asarray(scores, dtype=np.float64)
