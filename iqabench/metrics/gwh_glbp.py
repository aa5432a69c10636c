"""GWH-GLBP: gradient-weighted histograms of local binary patterns of the gradient map."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import MetricParameterError
from ..metric import FeatureMetric, Regressor


class GWHGLBP(FeatureMetric):
    """GWH-GLBP of Li, Lin and Fang (IEEE Signal Processing Letters 23(4), 2016).

    At each of ``scales`` scales (the image, then repeated MATLAB ``imresize(., 0.5)``) the
    Prewitt gradient magnitude map is computed as the authors' release does
    (``conv2(I, [1 0 -1; 1 0 -1; 1 0 -1]/3, 'same')``, zero padding, rounded as the reference
    runs: :func:`~iqabench.features.gradients.prewitt_magnitude`) and coded with
    rotation-invariant uniform LBP (riu2, P = 8 neighbours on a circle of radius R = 1: 10
    codes) as the release's ``lbp_new.m`` computes it (unrounded bilinear weights). The
    histogram of the codes, each pixel weighted by its gradient magnitude and normalised to
    sum to 1, gives ``P + 2`` features per scale: 5 x 10 = 50, as in ``gwhglbp_feature.m``.
    Quality is regressed with an epsilon-SVR (RBF kernel), C and gamma chosen by 5-fold
    cross-validation on the training data.
    """

    name: ClassVar[str] = "gwh-glbp"
    family = "TR-NR"
    full_reference = False
    higher_is_better = True
    colour = "grey"
    version = "2"
    citation = (
        "Q. Li, W. Lin, Y. Fang, No-reference quality assessment for multiply-distorted images "
        "in gradient domain, IEEE Signal Processing Letters 23(4):541-545, 2016, "
        "doi 10.1109/LSP.2016.2537321"
    )
    default_params: ClassVar[Mapping[str, Any]] = {"scales": 5, "points": 8, "radius": 1}
    batch_size = 32

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        for key, low in (("scales", 1), ("points", 2)):
            value = self.params[key]
            if int(value) != value or int(value) < low:
                raise MetricParameterError(
                    f"gwh-glbp: {key} must be an integer >= {low}, got {value}"
                )
        if not float(self.params["radius"]) > 0:
            raise MetricParameterError(f"gwh-glbp: radius must be > 0, got {self.params['radius']}")

    @property
    def n_features(self) -> int:
        """Length of the feature vector: ``points + 2`` per scale."""
        return int(self.params["scales"]) * (int(self.params["points"]) + 2)

    def features(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        return np.stack([self._image_features(image) for image in images])

    def _image_features(self, image: np.ndarray) -> np.ndarray:
        from ..features.gradients import prewitt_magnitude, require_grey
        from ..features.lbp import circle_origin, lbp_riu2, weighted_histogram
        from ..features.nss import imresize

        scales, points = int(self.params["scales"]), int(self.params["points"])
        radius = float(self.params["radius"])
        top, left = circle_origin(points, radius)
        data = require_grey(self.name, image, (2 * int(np.ceil(radius)) + 1) * 2 ** (scales - 1))
        hists = []
        for scale in range(scales):
            if scale:
                data = imresize(data, 0.5)
            gm = prewitt_magnitude(data)
            codes = lbp_riu2(gm, points, radius)
            weights = gm[top : top + codes.shape[0], left : left + codes.shape[1]]
            hists.append(weighted_histogram(codes, weights, points + 2))
        return np.concatenate(hists)

    def make_regressor(self, seed: int, groups: Sequence[str] | None = None) -> Regressor:
        from .gm_log import rbf_svr_search

        return rbf_svr_search(seed, self.n_features, groups)
