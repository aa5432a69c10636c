"""NIQE, the Natural Image Quality Evaluator, and the fitting of its pristine model."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..errors import DatasetError, UserError, WeightsNotFoundError
from ..features.nss import (
    fit_aggd,
    flat_window_share,
    imresize,
    local_mean_std,
    paired_products,
)
from ..metric import Metric
from ..weights import WeightsFile, resolve

#: The pristine model of the original release (see ``registry/niqe.yaml``).
PRISTINE_MODEL = WeightsFile("niqe/niqe_pristine_model.npz", "NIQE pristine model")
#: Side of the square blocks at full scale, as in the original release.
BLOCK_SIZE = 96
#: Number of features per block (18 at each of two scales).
N_FEATURES = 36
#: Fraction of the sharpest block's sharpness a pristine block must exceed to be kept.
SHARPNESS_THRESHOLD = 0.75


def niqe_features(image: np.ndarray, block_size: int = BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Per-block NIQE features and block sharpness of one grey image (0..255, ``float64``).

    The image is cropped to a whole number of ``block_size`` blocks (top-left kept). At each of
    two scales (the second from MATLAB ``imresize(I, 0.5)``) the MSCN coefficients (7x7
    Gaussian, sigma 7/6, replicated borders) of each block, of half the side at the second
    scale, give 18 features: the AGGD shape and mean scale of the coefficients, then for each of
    the four paired products (circular within the block) its AGGD shape, mean and left/right
    scales. Returns ``(features, sharpness)``: ``(B, 36)`` and the mean local deviation of each
    block at full scale, ``(B,)``. A fit whose samples have no negative (positive) value has a
    NaN left (right) scale and mean and the shape 0.2, as in the release.
    """
    rows, cols = image.shape[0] // block_size, image.shape[1] // block_size
    if rows == 0 or cols == 0:
        raise UserError(
            f"NIQE needs an image of at least {block_size}x{block_size} pixels, "
            f"got {image.shape[1]}x{image.shape[0]}"
        )
    data = np.asarray(image, dtype=np.float64)[: rows * block_size, : cols * block_size]
    mean, deviation = local_mean_std(data, padding="replicate")
    sharpness = _blocks(deviation, rows, cols).mean(axis=(1, 2))
    full = _block_features(_blocks((data - mean) / (deviation + 1.0), rows, cols))
    half = imresize(data, 0.5)
    mean, deviation = local_mean_std(half, padding="replicate")
    coarse = _block_features(_blocks((half - mean) / (deviation + 1.0), rows, cols))
    return np.concatenate([full, coarse], axis=1), sharpness


def _block_features(coefficients: np.ndarray) -> np.ndarray:
    """The 18 features of each block in a ``(B, h, w)`` stack of MSCN coefficients."""
    own = fit_aggd(coefficients, axis=(1, 2))
    columns = [own.alpha, (own.beta_left + own.beta_right) / 2.0]
    for product in paired_products(coefficients):
        fit = fit_aggd(product, axis=(1, 2))
        columns += [fit.alpha, fit.mean, fit.beta_left, fit.beta_right]
    return np.stack(columns, axis=1)


def _blocks(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Split an image into a ``(rows * cols, h, w)`` stack of its non-overlapping blocks."""
    height, width = values.shape[0] // rows, values.shape[1] // cols
    stack = values.reshape(rows, height, cols, width).transpose(0, 2, 1, 3)
    return stack.reshape(rows * cols, height, width)


def _complete_rows(features: np.ndarray) -> np.ndarray:
    return features[~np.isnan(features).any(axis=1)]


def _mvg(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of feature rows as the release's ``nanmean`` and ``nancov``: the
    mean of each column over its defined values, the covariance (normalised by N - 1, by N
    for a single row) over the rows with every feature defined (NaN where there are none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(features, axis=0)
    rows = _complete_rows(features)
    if rows.shape[0] == 0:
        return mu, np.full((features.shape[1], features.shape[1]), np.nan)
    ddof = 1 if rows.shape[0] > 1 else 0
    return mu, np.atleast_2d(np.cov(rows, rowvar=False, ddof=ddof))


def niqe_distance(features: np.ndarray, mu_pristine: np.ndarray, cov_pristine: np.ndarray) -> float:
    """NIQE's distance between the image's block features and the pristine MVG (Eq. 10).

    ``sqrt((mu_p - mu_d)' pinv((cov_p + cov_d) / 2) (mu_p - mu_d))`` with ``pinv`` at MATLAB's
    default tolerance and ``(mu_d, cov_d)`` from :func:`_mvg`, as ``computequality.m``: a block
    with undefined features (a flat block: its shapes are 0.2, its scales NaN) still counts in
    the mean of its defined columns. NaN when a column or the covariance is undefined.
    """
    mu, cov = _mvg(features)
    if np.isnan(mu).any() or np.isnan(cov).any():
        return float("nan")
    diff = mu_pristine - mu
    value = diff @ _pinv((cov_pristine + cov) / 2.0) @ diff
    return float(np.sqrt(max(value, 0.0)))


def _pinv(matrix: np.ndarray) -> np.ndarray:
    """Moore-Penrose inverse with MATLAB's tolerance ``max(size) * eps(norm)``."""
    u, s, vt = np.linalg.svd(matrix)
    keep = s > max(matrix.shape) * np.spacing(s[0])
    return (vt[keep].T / s[keep]) @ u[:, keep].T


class PristineModel(NamedTuple):
    """A fitted pristine model and what it was fitted on."""

    mu: np.ndarray
    cov: np.ndarray
    blocks: int
    images: int


def fit_pristine_model(
    images: Iterable[np.ndarray],
    sharpness_threshold: float = SHARPNESS_THRESHOLD,
    block_size: int = BLOCK_SIZE,
) -> PristineModel:
    """Fit the NIQE pristine model (multivariate Gaussian) on clean grey images (0..255).

    The original procedure: each image yields :func:`niqe_features` for its 96x96 blocks; the
    blocks whose sharpness exceeds ``sharpness_threshold`` times that of the image's sharpest
    block are kept; ``mu`` and ``cov`` are their ``nanmean`` and ``nancov`` (:func:`_mvg`), as
    the release's ``estimatemodelparam.m``. Images smaller than one block are skipped
    (``images`` counts those used). Raises :class:`~iqabench.errors.DatasetError` when no more
    blocks than features (36) are kept, too few for a full-rank covariance.
    """
    kept = []
    for image in images:
        if image.shape[0] < block_size or image.shape[1] < block_size:
            continue
        features, sharpness = niqe_features(image, block_size)
        sharp = sharpness > sharpness_threshold * sharpness.max()
        kept.append(features[sharp])
    rows = np.concatenate(kept) if kept else np.empty((0, N_FEATURES))
    if _complete_rows(rows).shape[0] <= N_FEATURES:
        raise DatasetError(
            f"only {_complete_rows(rows).shape[0]} sharp {block_size}x{block_size} blocks in "
            f"{len(kept)} usable images; fitting the {N_FEATURES}-feature model needs more "
            f"than {N_FEATURES}: add more or larger images"
        )
    mu, cov = _mvg(rows)
    return PristineModel(mu, cov, int(rows.shape[0]), len(kept))


def load_pristine_model(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a pristine model: an ``.npz`` with ``mu`` (36) and ``cov`` (36x36)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"NIQE model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            mu = np.asarray(data["mu"], dtype=np.float64).ravel()
            cov = np.asarray(data["cov"], dtype=np.float64)
    except Exception as exc:  # numpy raises many kinds (BadZipFile, EOFError...) for a damaged file
        raise UserError(f"not a NIQE model (npz with mu and cov): {path} ({exc})") from None
    if mu.shape != (N_FEATURES,) or cov.shape != (N_FEATURES, N_FEATURES):
        raise UserError(
            f"NIQE model {path} has mu {mu.shape} and cov {cov.shape}; "
            f"expected ({N_FEATURES},) and ({N_FEATURES}, {N_FEATURES})"
        )
    if not (np.isfinite(mu).all() and np.isfinite(cov).all()) or not cov.any():
        raise UserError(f"NIQE model {path} has non-finite or all-zero values")
    return mu, cov


def save_pristine_model(path: str | Path, mu: np.ndarray, cov: np.ndarray) -> Path:
    """Write a pristine model in the format :func:`load_pristine_model` reads (exact path)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(handle, mu=np.asarray(mu, dtype=np.float64), cov=np.asarray(cov, np.float64))
    return path


class FlatWindowShare(Metric):
    """Per-image diagnostic of NIQE and BRISQUE: the share of 7x7 windows of one grey level.

    Not a quality metric and not registered: the runner computes it beside the scores of the
    metrics that name it in ``diagnostics`` (it is cached in the score store like a score) and
    records it per image in the results, with a warning when many images of a dataset have
    flat windows. Inside a flat window the MSCN coefficient is rounding noise: there the
    scores follow the reference runs' arithmetic (see
    :func:`~iqabench.features.nss.local_mean_std`), and MATLAB's would differ (by up to 5.7%
    for NIQE and 1.7 points for BRISQUE on the thermal oracle set).
    """

    name: ClassVar[str] = "flat-window-share"
    family = "TR-NR"
    full_reference = False
    score_range = (0.0, 1.0)
    higher_is_better = False
    colour = "grey"
    version = "1"
    citation = "iqabench diagnostic (share of 7x7 windows of one grey level)"
    batch_size = 32
    #: An image whose share exceeds this has flat areas worth a warning.
    IMAGE_THRESHOLD: ClassVar[float] = 0.005
    #: A dataset is warned about when more than this share of its images exceed the threshold.
    DATASET_THRESHOLD: ClassVar[float] = 0.05

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        return np.asarray([flat_window_share(image) for image in images], dtype=np.float64)

    @classmethod
    def summarise(
        cls, shares: Mapping[str, float], metric: str
    ) -> tuple[dict[str, Any], list[str]]:
        """What the results keep (per-item shares, how many images exceed the threshold) and
        the warning for a dataset with many flat images."""
        over = sorted(item for item, share in shares.items() if share > cls.IMAGE_THRESHOLD)
        summary = {
            "window": 7,
            "image_threshold": cls.IMAGE_THRESHOLD,
            "images": len(shares),
            "images_over_threshold": len(over),
            "max_share": max(shares.values(), default=None),
            "per_item": dict(shares),
        }
        notes = []
        if shares and len(over) > cls.DATASET_THRESHOLD * len(shares):
            notes.append(
                f"{len(over)} of {len(shares)} images have more than "
                f"{cls.IMAGE_THRESHOLD:.1%} flat 7x7 windows (largest share "
                f"{summary['max_share']:.1%}): there {metric} scores rest on rounding noise "
                "(iqabench follows the reference Octave run; MATLAB's values differ, by up to "
                "5.7% for NIQE and 1.7 points for BRISQUE on the thermal oracle set)"
            )
        return summary, notes


class NIQE(Metric):
    """NIQE: distance of an image's NSS features from a model of pristine natural images.

    A. Mittal, R. Soundararajan, A. C. Bovik, "Making a 'completely blind' image quality
    analyzer", IEEE Signal Processing Letters 20(3), 209-212, 2013, doi 10.1109/LSP.2012.2227726.

    A float64 re-implementation of the original MATLAB release (``computequality.m``): the image
    is cropped to whole 96x96 blocks, each block gives 36 features (:func:`niqe_features`), and
    the score is :func:`niqe_distance` to the pristine model. All blocks are used when scoring
    (the sharpness selection applies only when fitting a model). Lower is better. The default
    model is the authors' (``niqe/niqe_pristine_model.npz`` through :mod:`iqabench.weights`);
    ``model`` names another, e.g. one from ``iqabench fit-niqe`` on clean thermal frames.
    """

    name: ClassVar[str] = "niqe"
    family = "TR-NR"
    full_reference = False
    higher_is_better = False
    score_range = (0.0, math.inf)
    colour = "grey"
    version = "2"
    citation = (
        "A. Mittal, R. Soundararajan, A. C. Bovik, Making a 'completely blind' image quality "
        "analyzer, IEEE Signal Processing Letters 20(3), 2013, doi 10.1109/LSP.2012.2227726"
    )
    default_params: ClassVar[dict[str, Any]] = {"model": None}
    file_params = ("model",)
    batch_size = 16
    #: Per-image diagnostics the runner records beside the scores.
    diagnostics: ClassVar[tuple[type[Metric], ...]] = (FlatWindowShare,)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        model = self.params["model"]
        if model and not Path(model).is_file():
            raise WeightsNotFoundError(f"NIQE model file not found: {model}")
        self._model: tuple[np.ndarray, np.ndarray] | None = None

    def model_files(self) -> list[Path]:
        """The original pristine model when no ``model`` file is given (that one is hashed as
        a file parameter). Reads the model in use, so that a broken one stops the metric here,
        once, naming the file."""
        self.pristine_model()
        return [] if self.params["model"] else [resolve(PRISTINE_MODEL)]

    def pristine_model(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``(mu, cov)`` in use: the ``model`` file, else the original release's."""
        if self._model is None:
            path = self.params["model"] or resolve(PRISTINE_MODEL)
            self._model = load_pristine_model(path)
        return self._model

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        mu, cov = self.pristine_model()
        return np.asarray(
            [niqe_distance(niqe_features(image)[0], mu, cov) for image in images],
            dtype=np.float64,
        )
