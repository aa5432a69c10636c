"""GM-LOG: joint statistics of gradient magnitude and Laplacian of Gaussian responses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import MetricParameterError
from ..metric import FeatureMetric, Regressor

#: Average ratio of GM to LoG responses on LIVE, by which the GM map is divided (authors' code).
GM_TO_LOG_RATIO = 2.5
#: Constant added to the normalisation map (authors' code: ``c0 = 4 * 0.05``).
NORMALISATION_C0 = 0.2
#: Width of a quantisation bin of the normalised responses (authors' code).
BIN_WIDTH = 0.2
#: Regularising constant of the conditional probabilities (authors' code: ``alpha1``).
CONDITIONAL_ALPHA = 1e-4


class GMLOG(FeatureMetric):
    """GM-LOG of Xue, Mou, Zhang, Bovik and Feng (IEEE TIP 23(11), 2014), model M3.

    The grey image (0..255) is filtered with Gaussian partial derivatives (sigma 0.5) to give
    the gradient magnitude G (divided by 2.5, the mean G/L ratio on LIVE) and with a LoG
    (sigma 0.5) to give |L|. Both are divided by the joint adaptive normalisation map
    ``sqrt(gaussian_sigma=1 * (G^2 + L^2)/2) + 0.2``, a 3-pixel border is dropped, and each map
    is quantised into ``bins`` (M = N = 10) levels of width 0.2 (the last level takes the
    tail). From the joint histogram K(m, n) come the marginals P_G, P_L and the dependency
    ("independency") distributions Q_G(m) ~ sum_n K(m, n) / (P_L(n) + 1e-4) and
    Q_L(n) ~ sum_m K(m, n) / (P_G(m) + 1e-4), each normalised: ``4 * bins`` = 40 features from
    one scale, as in the authors' release ``Grad_LOG_CP_TIP.m``. Quality is regressed with an
    epsilon-SVR (RBF kernel), C and gamma chosen by 5-fold cross-validation on the training
    data.
    """

    name: ClassVar[str] = "gm-log"
    family = "TR-NR"
    full_reference = False
    higher_is_better = True
    colour = "grey"
    version = "1"
    citation = (
        "W. Xue, X. Mou, L. Zhang, A. C. Bovik, X. Feng, Blind image quality assessment using "
        "joint statistics of gradient magnitude and Laplacian features, IEEE TIP 23(11):"
        "4850-4862, 2014, doi 10.1109/TIP.2014.2355716"
    )
    default_params: ClassVar[Mapping[str, Any]] = {"sigma": 0.5, "bins": 10}
    batch_size = 32

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if not float(self.params["sigma"]) > 0:
            raise MetricParameterError(f"gm-log: sigma must be > 0, got {self.params['sigma']}")
        if int(self.params["bins"]) < 2 or int(self.params["bins"]) != self.params["bins"]:
            raise MetricParameterError(
                f"gm-log: bins must be an integer >= 2, got {self.params['bins']}"
            )

    @property
    def n_features(self) -> int:
        """Length of the feature vector: ``4 * bins``."""
        return 4 * int(self.params["bins"])

    def features(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        return np.stack([self._image_features(image) for image in images])

    def _image_features(self, image: np.ndarray) -> np.ndarray:
        from ..features.gradients import (
            gaussian_derivatives,
            gradient_magnitude,
            joint_adaptive_normalisation,
            laplacian_of_gaussian,
            require_grey,
        )

        sigma = float(self.params["sigma"])
        bins = int(self.params["bins"])
        border = int(np.ceil(3 * 2 * sigma))
        data = require_grey(self.name, image, 2 * border + 1)
        gm = gradient_magnitude(*gaussian_derivatives(data, sigma)) / GM_TO_LOG_RATIO
        log = np.abs(laplacian_of_gaussian(data, sigma))
        gm, log = joint_adaptive_normalisation(gm, log, 2 * sigma, NORMALISATION_C0)
        # the authors' code keeps rows and columns border..end-border+1 (1-based)
        crop = (
            slice(border - 1, gm.shape[0] - border + 1),
            slice(border - 1, gm.shape[1] - border + 1),
        )
        gm_level = np.clip(np.ceil(gm[crop] / BIN_WIDTH), 1, bins).astype(np.int64) - 1
        log_level = np.clip(np.ceil(log[crop] / BIN_WIDTH), 1, bins).astype(np.int64) - 1
        joint = np.bincount((gm_level * bins + log_level).ravel(), minlength=bins * bins)
        joint = joint.reshape(bins, bins) / joint.sum()
        p_gm, p_log = joint.sum(axis=1), joint.sum(axis=0)
        q_gm = (joint / (p_log[None, :] + CONDITIONAL_ALPHA)).sum(axis=1)
        q_log = (joint / (p_gm[:, None] + CONDITIONAL_ALPHA)).sum(axis=0)
        return np.concatenate([p_gm, p_log, q_gm / q_gm.sum(), q_log / q_log.sum()])

    def make_regressor(self, seed: int, groups: Sequence[str] | None = None) -> Regressor:
        return rbf_svr_search(seed, self.n_features, groups)


def rbf_svr_search(seed: int, n_features: int, groups: Sequence[str] | None = None) -> Regressor:
    """Standardised features -> epsilon-SVR (RBF), C and gamma by seeded 5-fold CV (grouped by
    content when ``groups`` are given, see :func:`iqabench.metrics._cv.cv_folds`).

    The target is standardised too (so epsilon = 0.1 is a tenth of its spread, whatever the
    dataset's score scale). The grid: C in {1, 10, 100, 1000}, gamma in {0.1, 1, 10} /
    ``n_features``. Shared by GM-LOG and GWH-GLBP, which both use LIBSVM's epsilon-SVR.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    from ._cv import ContentFolds

    model = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "svr",
                TransformedTargetRegressor(
                    regressor=SVR(kernel="rbf", epsilon=0.1), transformer=StandardScaler()
                ),
            ),
        ]
    )
    grid = {
        "svr__regressor__C": [1.0, 10.0, 100.0, 1000.0],
        "svr__regressor__gamma": [factor / n_features for factor in (0.1, 1.0, 10.0)],
    }
    return GridSearchCV(model, grid, cv=ContentFolds(5, seed, groups))
