"""OG-IQA: relative gradient statistics with an AdaBoosted back-propagation neural network."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import MetricParameterError
from ..metric import FeatureMetric, Regressor

#: Quantisation step of the relative orientation histogram, in radians (authors' code).
ORIENTATION_STEP = 0.3
#: Quantisation step of the gradient and relative gradient magnitude histograms (authors' code).
MAGNITUDE_STEP = 1.0


class OGIQA(FeatureMetric):
    """OG-IQA of Liu, Hua, Zhao, Huang and Bovik (Signal Processing: Image Communication 40,
    2016).

    At each scale (the image, then MATLAB ``imresize(., 0.5)`` of it) Gaussian partial
    derivatives (sigma 0.5) give Ix, Iy and their 3x3 local means; three maps follow:
    the gradient magnitude GM, the relative gradient orientation RO (orientation
    ``atan(Ix/Iy)`` minus that of the local mean gradient) and the relative gradient magnitude
    RM (magnitude of the gradient minus the local mean gradient). Each map is summarised, as in
    the authors' release (``feature_extract.m``), by the standard deviation of its normalised
    histogram (bins of 1 for GM and RM, 0.3 rad for RO, spanning the map's range): 3 features
    per scale, 6 in all. Quality is regressed with AdaBoost (AdaBoost.R2, resampling by weight)
    over back-propagation networks of two tanh hidden layers; the hidden-layer width (6 or 12)
    and the number of networks (5 or 10) are chosen by 3-fold cross-validation on the training
    data.
    """

    name: ClassVar[str] = "og-iqa"
    family = "TR-NR"
    full_reference = False
    higher_is_better = True
    colour = "grey"
    version = "1"
    citation = (
        "L. Liu, Y. Hua, Q. Zhao, H. Huang, A. C. Bovik, Blind image quality assessment by "
        "relative gradient statistics and adaboosting neural network, Signal Processing: Image "
        "Communication 40:1-15, 2016, doi 10.1016/j.image.2015.10.005"
    )
    default_params: ClassVar[Mapping[str, Any]] = {"sigma": 0.5, "scales": 2}
    batch_size = 32

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if not float(self.params["sigma"]) > 0:
            raise MetricParameterError(f"og-iqa: sigma must be > 0, got {self.params['sigma']}")
        scales = self.params["scales"]
        if int(scales) != scales or int(scales) < 1:
            raise MetricParameterError(f"og-iqa: scales must be an integer >= 1, got {scales}")

    @property
    def n_features(self) -> int:
        """Length of the feature vector: 3 per scale."""
        return 3 * int(self.params["scales"])

    def features(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        return np.stack([self._image_features(image) for image in images])

    def _image_features(self, image: np.ndarray) -> np.ndarray:
        from ..features.gradients import require_grey
        from ..features.nss import imresize

        scales = int(self.params["scales"])
        data = require_grey(self.name, image, 3 * 2 ** (scales - 1))
        feats: list[float] = []
        for scale in range(scales):
            if scale:
                data = imresize(data, 0.5)
            gm, ro, rm = relative_gradient_maps(data, float(self.params["sigma"]))
            feats += [
                histogram_spread(gm, MAGNITUDE_STEP),
                histogram_spread(ro, ORIENTATION_STEP),
                histogram_spread(rm, MAGNITUDE_STEP),
            ]
        return np.asarray(feats)

    def make_regressor(self, seed: int, groups: Sequence[str] | None = None) -> Regressor:
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.ensemble import AdaBoostRegressor
        from sklearn.model_selection import GridSearchCV
        from sklearn.neural_network import MLPRegressor
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import MinMaxScaler

        from ._cv import ContentFolds

        network = MLPRegressor(
            hidden_layer_sizes=(6, 6), activation="tanh", solver="lbfgs", max_iter=100
        )
        boosted = AdaBoostRegressor(estimator=network, n_estimators=10, random_state=seed)
        model = Pipeline(
            [
                ("scale", MinMaxScaler(feature_range=(-1, 1))),
                (
                    "boost",
                    TransformedTargetRegressor(
                        regressor=boosted, transformer=MinMaxScaler(feature_range=(-1, 1))
                    ),
                ),
            ]
        )
        grid = {
            "boost__regressor__estimator__hidden_layer_sizes": [(6, 6), (12, 12)],
            "boost__regressor__n_estimators": [5, 10],
        }
        return GridSearchCV(model, grid, cv=ContentFolds(3, seed, groups))

    def fit(
        self,
        features: np.ndarray,
        quality: np.ndarray,
        seed: int = 0,
        groups: Sequence[str] | None = None,
    ) -> OGIQA:
        """Fit as :class:`FeatureMetric` does, on one BLAS thread and without the networks'
        iteration-limit warnings.

        The networks are tiny, so threaded matrix products only add overhead (several times the
        run time on a busy machine). Each network stops after 100 L-BFGS iterations, as the
        paper's networks stop after a fixed number of epochs; scikit-learn would warn about
        every one of them.
        """
        from sklearn.exceptions import ConvergenceWarning
        from threadpoolctl import threadpool_limits

        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            super().fit(features, quality, seed, groups)
        return self


def relative_gradient_maps(
    image: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GM, RO and RM maps of OG-IQA (the authors' ``FGr.m``).

    The local mean gradient is the 3x3 box mean (``conv2``, zero padding) of the Gaussian
    derivatives; an orientation is ``atan(Ix/Iy)``, set to pi/2 where ``Iy`` is 0.
    """
    from ..features.gradients import filter2_same, gaussian_derivatives, gradient_magnitude

    gx, gy = gaussian_derivatives(image, sigma)
    box = np.full((3, 3), 1.0 / 9.0)
    mean_x, mean_y = filter2_same(gx, box), filter2_same(gy, box)
    relative_orientation = _orientation(gx, gy) - _orientation(mean_x, mean_y)
    return (
        gradient_magnitude(gx, gy),
        relative_orientation,
        gradient_magnitude(gx - mean_x, gy - mean_y),
    )


def _orientation(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = np.arctan(gx / gy)
    angle[gy == 0] = np.pi / 2
    return angle


def _round(value: float) -> float:
    """MATLAB ``round`` (halves away from zero)."""
    return math.copysign(math.floor(abs(value) + 0.5), value)


def histogram_spread(values: np.ndarray, step: float) -> float:
    """Standard deviation (n - 1) of the normalised histogram of ``values`` (``VarInformation.m``).

    The bin centres run from ``round(min - 1)`` to ``round(max + 1)`` in steps of ``step``;
    edges lie halfway between centres (MATLAB ``hist``), the end bins open-ended.
    """
    flat = values.ravel()
    low, high = _round(float(flat.min()) - 1.0), _round(float(flat.max()) + 1.0)
    centres = low + step * np.arange(math.floor((high - low) / step + 1e-10) + 1)
    edges = centres[:-1] + np.diff(centres) / 2.0
    counts = np.bincount(np.searchsorted(edges, flat, side="right"), minlength=centres.size)
    return float(np.std(counts / flat.size, ddof=1))
