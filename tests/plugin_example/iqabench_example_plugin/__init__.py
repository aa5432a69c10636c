"""An example iqabench plugin: one no-reference metric in a package of its own.

Install it (``pip install .``) and ``iqabench list metrics`` shows ``example-sharpness``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from iqabench.metric import Metric


class MeanGradientSharpness(Metric):
    """Mean gradient magnitude, a classical sharpness cue (higher is sharper).

    E.g. J. M. Tenenbaum, "Accommodation in computer vision", PhD thesis, Stanford, 1970 (the
    Tenengrad focus measure); here the mean central-difference gradient magnitude.
    """

    name = "example-sharpness"
    family = "TR-NR"
    full_reference = False
    higher_is_better = True
    colour = "grey"
    version = "1"
    citation = "J. M. Tenenbaum, Accommodation in computer vision, PhD thesis, Stanford, 1970"

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        values = []
        for image in images:
            gy, gx = np.gradient(image)
            values.append(float(np.mean(np.hypot(gx, gy))))
        return np.asarray(values)
