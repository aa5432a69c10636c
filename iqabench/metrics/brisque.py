"""BRISQUE, the Blind/Referenceless Image Spatial Quality Evaluator.

One feature extractor (:func:`brisque_features`) and one support-vector regressor evaluator
(:class:`LibSVMRegressor`, for LIBSVM text models) serve two metrics:

* ``brisque-live`` (:class:`BRISQUELive`): the authors' LIVE-trained epsilon-SVR, a score on
  about 0..100 where lower is better, as the original release prints it;
* ``brisque`` (:class:`BRISQUE`): the same features with an RBF epsilon-SVR retrained on each
  training split. Unfitted, it falls back on the LIVE model negated (``-score``), so that like
  every trainable metric its values are higher-is-better.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import UserError
from ..features.nss import fit_aggd, fit_ggd, imresize, mscn, paired_products
from ..metric import FeatureMetric, Metric
from ..weights import WeightsFile, resolve
from .niqe import FlatWindowShare

#: The authors' LIVE-trained SVR (LIBSVM text format) and its feature ranges (svm-scale format).
LIVE_MODEL = WeightsFile("brisque/allmodel", "BRISQUE LIVE SVR model (allmodel)")
LIVE_RANGE = WeightsFile("brisque/allrange", "BRISQUE feature ranges (allrange)")
#: Number of features (18 at each of two scales).
N_FEATURES = 36

CITATION = (
    "A. Mittal, A. K. Moorthy, A. C. Bovik, No-reference image quality assessment in the "
    "spatial domain, IEEE Transactions on Image Processing 21(12), 2012, "
    "doi 10.1109/TIP.2012.2214050"
)


def brisque_features(image: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of one grey image (0..255, ``float64``), as ``brisque_feature.m``.

    At each of two scales (the second from MATLAB ``imresize(I, 0.5)``): the MSCN coefficients
    (7x7 Gaussian, sigma 7/6, zero-padded as ``filter2(..., 'same')``) give the GGD shape and
    variance, then each of the four paired products gives its AGGD shape, mean, and left and
    right variances. A constant image gives NaN features.
    """
    data = np.asarray(image, dtype=np.float64)
    features: list[float] = []
    for scale in (1, 2):
        coefficients = mscn(data, padding="zeros")
        ggd = fit_ggd(coefficients)
        features += [ggd.alpha, ggd.std**2]
        for product in paired_products(coefficients):
            aggd = fit_aggd(product)
            features += [aggd.alpha, aggd.mean, aggd.left_std**2, aggd.right_std**2]
        if scale == 1:
            data = imresize(data, 0.5)
    return np.asarray(features, dtype=np.float64)


def _feature_matrix(images: Sequence[np.ndarray]) -> np.ndarray:
    rows = [brisque_features(image) for image in images]
    return np.stack(rows) if rows else np.empty((0, N_FEATURES))


class LibSVMRegressor:
    """An RBF-kernel support-vector regressor read from LIBSVM's text files.

    ``predict`` first scales each feature as ``svm-scale -r RANGE`` does (linearly from the
    range file's ``min..max`` onto its ``lower..upper``; features with ``min == max`` become 0),
    then returns ``sum_i coef_i exp(-gamma |x - sv_i|^2) - rho`` as ``svm-predict`` does for
    ``epsilon_svr`` and ``nu_svr`` models. The original tools round the numbers they exchange
    through text files (6 decimals); here everything stays in ``float64``.
    """

    def __init__(
        self,
        support_vectors: np.ndarray,
        coefficients: np.ndarray,
        gamma: float,
        rho: float,
        feature_min: np.ndarray,
        feature_max: np.ndarray,
        lower: float,
        upper: float,
    ) -> None:
        self.support_vectors = support_vectors
        self.coefficients = coefficients
        self.gamma = gamma
        self.rho = rho
        self.feature_min = feature_min
        self.feature_max = feature_max
        self.lower = lower
        self.upper = upper

    @classmethod
    def from_files(cls, model_path: str | Path, range_path: str | Path) -> LibSVMRegressor:
        """Read a LIBSVM model file and an ``svm-scale`` range file (one line errors)."""
        header, vectors, coefficients = _read_libsvm_model(Path(model_path))
        feature_min, feature_max, lower, upper = _read_svm_scale_range(Path(range_path))
        width = max(vectors.shape[1], feature_min.size)
        if vectors.shape[1] < width:
            vectors = np.pad(vectors, ((0, 0), (0, width - vectors.shape[1])))
        if feature_min.size < width:
            raise UserError(
                f"range file {range_path} covers {feature_min.size} features but the model "
                f"{model_path} uses {width}"
            )
        return cls(
            vectors,
            coefficients,
            header["gamma"],
            header["rho"],
            feature_min,
            feature_max,
            lower,
            upper,
        )

    @property
    def n_features(self) -> int:
        return int(self.feature_min.size)

    def scale(self, features: np.ndarray) -> np.ndarray:
        """Features mapped as ``svm-scale -r`` maps them."""
        span = self.feature_max - self.feature_min
        with np.errstate(divide="ignore", invalid="ignore"):
            unit = (features - self.feature_min) / span
        scaled = self.lower + (self.upper - self.lower) * unit
        return np.where(span == 0, 0.0, scaled)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The SVR's output for each row of ``features`` (NaN rows give NaN)."""
        from scipy.spatial.distance import cdist

        data = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if data.shape[1] != self.n_features:
            raise UserError(
                f"the SVR model expects {self.n_features} features, got {data.shape[1]}"
            )
        distances = cdist(self.scale(data), self.support_vectors, "sqeuclidean")
        return np.exp(-self.gamma * distances) @ self.coefficients - self.rho


def _read_libsvm_model(path: Path) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Header (gamma, rho), dense support vectors and coefficients of a LIBSVM SVR model."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read LIBSVM model {path}: {exc}") from None
    header: dict[str, str] = {}
    for number, line in enumerate(lines):
        key, _, value = line.strip().partition(" ")
        if key == "SV":
            body = lines[number + 1 :]
            break
        header[key] = value.strip()
    else:
        raise UserError(f"not a LIBSVM model (no SV section): {path}")
    if header.get("svm_type") not in ("epsilon_svr", "nu_svr"):
        raise UserError(f"{path} is a {header.get('svm_type')!r} model; a regression SVR is needed")
    if header.get("kernel_type") != "rbf":
        raise UserError(f"{path} has a {header.get('kernel_type')!r} kernel; only rbf is supported")
    coefficients: list[float] = []
    entries: list[dict[int, float]] = []
    try:
        numbers = {"gamma": float(header["gamma"]), "rho": float(header["rho"].split()[0])}
        for line in body:
            if not line.strip():
                continue
            coefficient, *pairs = line.split()
            coefficients.append(float(coefficient))
            entries.append({int(k): float(v) for k, v in (pair.split(":") for pair in pairs)})
        if any(index < 1 for entry in entries for index in entry):
            raise ValueError("feature indices start at 1")
    except (KeyError, ValueError, IndexError) as exc:
        raise UserError(f"malformed LIBSVM model {path}: {exc}") from None
    width = max((max(entry, default=0) for entry in entries), default=0)
    vectors = np.zeros((len(entries), width))
    for row, entry in enumerate(entries):
        for index, value in entry.items():
            vectors[row, index - 1] = value
    return numbers, vectors, np.asarray(coefficients)


def _read_svm_scale_range(path: Path) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Feature minima and maxima (by index) and the target interval of an svm-scale file."""
    try:
        lines = [line.split() for line in path.read_text(encoding="ascii").splitlines()]
        lines = [line for line in lines if line]
        if lines[0] != ["x"]:
            raise ValueError("first line must be 'x' (target scaling is not supported)")
        lower, upper = (float(v) for v in lines[1])
        bounds = {int(index): (float(low), float(high)) for index, low, high in lines[2:]}
        if any(index < 1 for index in bounds):
            raise ValueError("feature indices start at 1")
    except (OSError, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise UserError(f"malformed svm-scale range file {path}: {exc}") from None
    width = max(bounds, default=0)
    feature_min = np.zeros(width)
    feature_max = np.zeros(width)
    for index, (low, high) in bounds.items():
        feature_min[index - 1], feature_max[index - 1] = low, high
    return feature_min, feature_max, lower, upper


def live_regressor() -> LibSVMRegressor:
    """The authors' LIVE-trained SVR with its ranges, resolved through :mod:`iqabench.weights`."""
    return LibSVMRegressor.from_files(resolve(LIVE_MODEL), resolve(LIVE_RANGE))


class BRISQUELive(Metric):
    """BRISQUE with the authors' LIVE-trained SVR: about 0..100, lower is better.

    A. Mittal, A. K. Moorthy, A. C. Bovik, "No-reference image quality assessment in the spatial
    domain", IEEE Transactions on Image Processing 21(12), 4695-4708, 2012,
    doi 10.1109/TIP.2012.2214050.

    A float64 re-implementation of the original release (``brisquescore.m``): the 36
    :func:`brisque_features`, scaled by ``allrange`` and regressed by the epsilon-SVR in
    ``allmodel`` (both through :mod:`iqabench.weights`).
    """

    name: ClassVar[str] = "brisque-live"
    family = "TR-NR"
    full_reference = False
    higher_is_better = False
    colour = "grey"
    version = "2"
    citation = CITATION
    batch_size = 16
    #: Per-image diagnostics the runner records beside the scores.
    diagnostics: ClassVar[tuple[type[Metric], ...]] = (FlatWindowShare,)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._svr: LibSVMRegressor | None = None

    def model_files(self) -> list[Path]:
        """The LIVE model and ranges, read now: a broken file stops the metric, once, named."""
        if self._svr is None:
            self._svr = live_regressor()
        return [resolve(LIVE_MODEL), resolve(LIVE_RANGE)]

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        if self._svr is None:
            self._svr = live_regressor()
        return self._svr.predict(_feature_matrix(images))


class NegatedLiveRegressor:
    """The LIVE SVR turned quality-oriented: ``predict`` returns minus the BRISQUE score."""

    note = (
        "minus the BRISQUE score of the published LIVE model (so that higher is better); "
        "brisque-live gives the score itself"
    )

    def __init__(self, svr: LibSVMRegressor) -> None:
        self.svr = svr

    def fit(self, features: np.ndarray, quality: np.ndarray) -> NegatedLiveRegressor:
        raise UserError("the published LIVE model is fixed; BRISQUE refits its own SVR")

    def predict(self, features: np.ndarray) -> np.ndarray:
        return -self.svr.predict(features)


class CrossValidatedSVR:
    """RBF epsilon-SVR with C, gamma and epsilon chosen by K-fold cross-validation on ``fit``.

    Features are scaled onto -1..1 (as ``svm-scale``) and the quality standardised, both fitted
    on the training data only; the grid below is searched with a shuffled K-fold (K = 5, fewer
    for very small sets, seeded) on mean squared error, then the best setting is refitted on all
    the training data. Rows with undefined (NaN) features are left out of fitting and predicted
    as NaN.
    """

    #: Candidate hyper-parameters (epsilon in units of the standardised quality).
    GRID: ClassVar[dict[str, list[float]]] = {
        "C": [1.0, 10.0, 100.0],
        "gamma": [0.01, 0.05, 0.2],
        "epsilon": [0.05, 0.2],
    }
    MIN_SAMPLES: ClassVar[int] = 4

    def __init__(self, seed: int = 0, groups: Sequence[str] | None = None) -> None:
        self.seed = seed
        self.groups = None if groups is None else list(groups)
        self.model_: Any = None
        self.best_params_: dict[str, float] = {}

    def fit(self, features: np.ndarray, quality: np.ndarray) -> CrossValidatedSVR:
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.model_selection import GridSearchCV
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import MinMaxScaler, StandardScaler
        from sklearn.svm import SVR

        from ._cv import cv_folds

        data = np.asarray(features, dtype=np.float64)
        target = np.asarray(quality, dtype=np.float64).ravel()
        usable = np.isfinite(data).all(axis=1) & np.isfinite(target)
        data, target = data[usable], target[usable]
        groups = None if self.groups is None else np.asarray(self.groups)[usable]
        if data.shape[0] < self.MIN_SAMPLES:
            raise UserError(
                f"BRISQUE needs at least {self.MIN_SAMPLES} training images with defined "
                f"features and quality to fit its SVR, got {data.shape[0]}"
            )
        pipeline = Pipeline([("scale", MinMaxScaler((-1.0, 1.0))), ("svr", SVR(kernel="rbf"))])
        model = TransformedTargetRegressor(regressor=pipeline, transformer=StandardScaler())
        grid = {f"regressor__svr__{key}": values for key, values in self.GRID.items()}
        folds = cv_folds(data.shape[0], 5, self.seed, groups)
        search = GridSearchCV(
            model, grid, cv=folds, scoring="neg_mean_squared_error", n_jobs=1, error_score="raise"
        )
        search.fit(data, target)
        self.model_ = search.best_estimator_
        self.best_params_ = {
            key.rsplit("__", 1)[1]: value for key, value in search.best_params_.items()
        }
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.model_ is None:
            raise UserError("the BRISQUE SVR has not been fitted")
        data = np.atleast_2d(np.asarray(features, dtype=np.float64))
        result = np.full(data.shape[0], np.nan)
        usable = np.isfinite(data).all(axis=1)
        if usable.any():
            result[usable] = self.model_.predict(data[usable])
        return result


class BRISQUE(FeatureMetric):
    """BRISQUE features with an RBF epsilon-SVR retrained on each training split.

    A. Mittal, A. K. Moorthy, A. C. Bovik, "No-reference image quality assessment in the spatial
    domain", IEEE Transactions on Image Processing 21(12), 4695-4708, 2012,
    doi 10.1109/TIP.2012.2214050.

    :meth:`features` gives the 36 :func:`brisque_features`; :meth:`make_regressor` a
    :class:`CrossValidatedSVR`. Unfitted, :meth:`score` uses the authors' LIVE SVR and returns
    minus its score (so ``-94.6`` for a BRISQUE of 94.6): trainable metrics are higher-is-better.
    """

    name: ClassVar[str] = "brisque"
    family = "TR-NR"
    full_reference = False
    colour = "grey"
    version = "2"
    citation = CITATION
    batch_size = 16
    #: Per-image diagnostics the runner records beside the scores.
    diagnostics: ClassVar[tuple[type[Metric], ...]] = (FlatWindowShare,)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._live: NegatedLiveRegressor | None = None

    def features(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        return _feature_matrix(images)

    def make_regressor(self, seed: int, groups: Sequence[str] | None = None) -> CrossValidatedSVR:
        return CrossValidatedSVR(seed, groups)

    def pretrained_regressor(self) -> NegatedLiveRegressor:
        if self._live is None:
            self._live = NegatedLiveRegressor(live_regressor())
        return self._live
