"""SCIQA: style- and content-based full-reference quality from VGG-16 features.

Xian et al., "A Style Transfer-Based Fast Image Quality Assessment Method for Image Sensors",
Sensors 25(16):5121, 2025, doi 10.3390/s25165121.

The paper compares a distorted image with its reference in the feature space of an ImageNet
VGG-16, at several depths, in two ways borrowed from neural style transfer: a *content* distance
between the feature maps themselves and a *style* distance between their Gram matrices (feature
correlations). The per-layer distances are combined with non-negative weights, which are found
by a convex optimisation against subjective scores.

Here, as a :class:`~iqabench.metric.FeatureMetric`:

* :meth:`SCIQA.features` returns, per pair, the content and style distances at the five VGG-16
  stages ``relu1_2, relu2_2, relu3_3, relu4_3, relu5_3`` (:data:`FEATURE_NAMES`, 10 columns).
  Each distance is normalised by the energy of both sides, ``|a - b|^2 / (|a|^2 + |b|^2)``,
  which lies in [0, 1] for ReLU features (and their Gram matrices), so layers are comparable.
* :class:`NonNegativeLayerWeights` fits ``quality = b - sum_k w_k d_k`` with ``w >= 0`` by
  least squares (a ridge penalty chosen by cross-validation inside the training data only).
* Unfitted, the score is ``1 - mean_k d_k`` (equal weights): 1 for identical images.

Where the paper's exact layer set, normalisation and objective could not be checked, these are
iqabench's choices; ``registry/sciqa.yaml`` says which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import MetricParameterError, UserError, WeightsNotFoundError
from ..metric import FeatureMetric
from ..weights import WeightsFile, resolve
from ._checks import require_pairs

if TYPE_CHECKING:
    import torch

#: torchvision's ImageNet VGG-16 checkpoint, resolved through :mod:`iqabench.weights`.
VGG16_WEIGHTS = WeightsFile(
    relpath="vgg16-397923af.pth",
    description="ImageNet VGG-16 weights (torchvision's vgg16-397923af.pth)",
)

#: Stages compared, with their index in ``torchvision.models.vgg16().features``.
LAYERS: tuple[tuple[str, int], ...] = (
    ("relu1_2", 3),
    ("relu2_2", 8),
    ("relu3_3", 15),
    ("relu4_3", 22),
    ("relu5_3", 29),
)

#: Columns of :meth:`SCIQA.features`: the content distances, then the style distances.
FEATURE_NAMES: tuple[str, ...] = tuple(f"content_{name}" for name, _ in LAYERS) + tuple(
    f"style_{name}" for name, _ in LAYERS
)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
#: The smallest side that still leaves one position at relu5_3 (after four 2x2 poolings).
_MIN_SIDE = 16
#: Seed of the randomly initialised network that ``allow_random_init`` may fall back to.
_RANDOM_INIT_SEED = 0


class SCIQA(FeatureMetric):
    """SCIQA (Xian et al., Sensors 25(16):5121, 2025): VGG-16 content and style distances.

    Parameters: ``weights_file`` (a VGG-16 state dict; default: ``vgg16-397923af.pth`` resolved
    through ``IQABENCH_WEIGHTS``, the iqabench cache or the torch hub cache), ``device``
    (``"cpu"`` or ``"cuda"``), ``batch_pairs`` (pairs per VGG forward pass) and, for tests only,
    ``allow_random_init``: when no weights are found, use a seeded randomly initialised network
    instead of raising :class:`~iqabench.errors.WeightsNotFoundError`; :meth:`notes` then says
    so, since such scores are not SCIQA.
    """

    name: ClassVar[str] = "sciqa"
    family = "DL-FR"
    full_reference = True
    higher_is_better = True
    colour = "rgb"
    version = "1"
    citation = (
        "Xian et al., A Style Transfer-Based Fast Image Quality Assessment Method for Image "
        "Sensors, Sensors 25(16):5121, 2025, doi 10.3390/s25165121"
    )
    default_params: ClassVar[dict[str, Any]] = {
        "weights_file": None,
        "device": "cpu",
        "batch_pairs": 2,
        "allow_random_init": False,
    }
    file_params = ("weights_file",)
    runtime_params = ("device", "batch_pairs")
    batch_size = 4
    #: The conformance suite checks the interface on a random VGG-16 where no ImageNet file is
    #: installed (its numbers mean nothing; a run never does this unless asked).
    conformance: ClassVar[Mapping[str, Any]] = {"params": {"allow_random_init": True}}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if int(self.params["batch_pairs"]) < 1:
            raise MetricParameterError("sciqa: batch_pairs must be at least 1")
        self._network: torch.nn.Module | None = None
        self._random_init = False

    def features(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        """The ``(N, 10)`` content and style distances (:data:`FEATURE_NAMES`), float64."""
        import torch

        pairs = require_pairs(self.name, images, refs)
        out = np.zeros((len(pairs), len(FEATURE_NAMES)), dtype=np.float64)
        if not pairs:
            return out
        network = self._vgg()
        device = next(network.parameters()).device
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, (image, _) in enumerate(pairs):
            by_shape.setdefault(_check_shape(image), []).append(index)
        step = int(self.params["batch_pairs"])
        with torch.inference_mode():
            for indices in by_shape.values():
                for start in range(0, len(indices), step):
                    chunk = indices[start : start + step]
                    batch = [pairs[i][0] for i in chunk] + [pairs[i][1] for i in chunk]
                    out[chunk] = _distances(network, _to_tensor(batch, device), len(chunk))
        return out

    def make_regressor(
        self, seed: int, groups: Sequence[str] | None = None
    ) -> NonNegativeLayerWeights:
        return NonNegativeLayerWeights(seed=seed, groups=groups)

    def pretrained_regressor(self) -> NonNegativeLayerWeights:
        """Equal weights on the ten normalised distances: ``1 - mean(d)``, in [0, 1]."""
        size = len(FEATURE_NAMES)
        return NonNegativeLayerWeights.fixed(np.full(size, 1.0 / size), intercept=1.0)

    def model_files(self) -> list[Path]:
        """The resolved VGG-16 checkpoint (``weights_file`` is hashed as a file parameter)."""
        if self.params["weights_file"] is not None:
            return []
        path = _weights_path(None, bool(self.params["allow_random_init"]))
        return [] if path is None else [path]

    def pretrained_weights(self) -> bool:
        return not self.notes()

    def notes(self) -> list[str]:
        """Warnings to record with the results: a randomly initialised network."""
        if self._network is None:  # features may have come from the score store
            self._random_init = (
                bool(self.params["allow_random_init"])
                and self.params["weights_file"] is None
                and _weights_path(None, allow_random_init=True) is None
            )
        if not self._random_init:
            return []
        return [
            "sciqa: VGG-16 was randomly initialised (allow_random_init=True and no ImageNet "
            "weights found); these scores are for testing only, not SCIQA"
        ]

    def _vgg(self) -> torch.nn.Module:
        if self._network is None:
            self._network, self._random_init = _load_vgg(
                self.params["weights_file"],
                bool(self.params["allow_random_init"]),
                str(self.params["device"]),
            )
        return self._network


class NonNegativeLayerWeights:
    """The convex fit: ``quality ~ b - X w`` with ``w >= 0`` (non-negative least squares).

    Columns are scaled to unit standard deviation on the training data; a ridge penalty
    ``alpha * n * |w|^2`` (on the scaled weights, intercept free) is chosen among
    :attr:`ALPHAS` by ``n_folds``-fold cross-validation of the squared error inside the data
    given to :meth:`fit` (the larger alpha wins a tie). Each problem is solved exactly as a
    non-negative least-squares problem. ``coef_`` holds the weights of the raw distances.
    """

    ALPHAS: ClassVar[tuple[float, ...]] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)

    def __init__(
        self, seed: int = 0, n_folds: int = 5, groups: Sequence[str] | None = None
    ) -> None:
        self.seed = seed
        self.n_folds = n_folds
        self.groups = None if groups is None else list(groups)

    @classmethod
    def fixed(cls, coef: np.ndarray, intercept: float) -> NonNegativeLayerWeights:
        """A model with given weights, usable without fitting."""
        model = cls()
        model.coef_ = np.asarray(coef, dtype=np.float64)
        model.intercept_ = float(intercept)
        model.alpha_ = None
        if model.coef_.ndim != 1 or np.any(model.coef_ < 0):
            raise ValueError("layer weights must be a vector of non-negative numbers")
        return model

    def fit(self, X: np.ndarray, y: np.ndarray) -> NonNegativeLayerWeights:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).ravel()
        if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(f"cannot fit {X.shape} features to {y.shape} targets")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("features and targets must be finite")
        self.alpha_ = self._select_alpha(X, y)
        self.coef_, self.intercept_ = _solve(X, y, self.alpha_)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return self.intercept_ - X @ self.coef_

    @property
    def relative_weights(self) -> np.ndarray:
        """``coef_`` scaled to sum to one (all zeros when nothing was learnt)."""
        total = float(self.coef_.sum())
        return self.coef_ / total if total > 0 else self.coef_.copy()

    def _select_alpha(self, X: np.ndarray, y: np.ndarray) -> float:
        from ._cv import cv_folds

        if min(self.n_folds, X.shape[0] // 2) < 2:
            return 0.0
        folds = cv_folds(X.shape[0], min(self.n_folds, X.shape[0] // 2), self.seed, self.groups)
        errors = []
        for alpha in self.ALPHAS:
            squared = 0.0
            for train, fold in folds:
                coef, intercept = _solve(X[train], y[train], alpha)
                squared += float(np.sum((y[fold] - (intercept - X[fold] @ coef)) ** 2))
            errors.append(squared)
        best = min(errors)
        tied = [a for a, e in zip(self.ALPHAS, errors, strict=True) if e <= best * (1 + 1e-9)]
        return max(tied)


def _solve(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Exact solution of min |y - b + X w|^2 + alpha n |S w|^2 over b and w >= 0."""
    from scipy.optimize import nnls

    n, d = X.shape
    x_mean, y_mean = X.mean(axis=0), float(y.mean())
    centred = X - x_mean
    scale = np.sqrt(np.mean(centred**2, axis=0))
    usable = scale > 1e-12 * max(1.0, float(np.abs(X).max(initial=0.0)))
    coef = np.zeros(d)
    if n > 1 and usable.any():
        design = -centred[:, usable] / scale[usable]
        target = y - y_mean
        if alpha > 0:
            k = int(usable.sum())
            design = np.vstack([design, np.sqrt(alpha * n) * np.eye(k)])
            target = np.concatenate([target, np.zeros(k)])
        scaled, _ = nnls(design, target, maxiter=50 * design.shape[1])
        coef[usable] = scaled / scale[usable]
    return coef, y_mean + float(x_mean @ coef)


def _check_shape(image: np.ndarray) -> tuple[int, ...]:
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise UserError(f"sciqa: expected an HxW or HxWx3 image, got shape {image.shape}")
    if min(image.shape[:2]) < _MIN_SIDE:
        raise UserError(
            f"sciqa: images must be at least {_MIN_SIDE}x{_MIN_SIDE} pixels "
            f"(got {image.shape[1]}x{image.shape[0]})"
        )
    return tuple(image.shape)


def _to_tensor(images: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """Stack 0..255 images into an ImageNet-normalised float32 NCHW tensor (grey replicated)."""
    import torch

    arrays = []
    for image in images:
        rgb = image if image.ndim == 3 else image[..., None]
        if rgb.shape[2] == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        arrays.append(rgb)
    stacked = np.stack(arrays).astype(np.float32) / np.float32(255.0)
    batch = torch.from_numpy(stacked).permute(0, 3, 1, 2).to(device)
    mean = torch.tensor(_IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(_IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return ((batch - mean) / std).contiguous()


def _distances(network: torch.nn.Module, batch: torch.Tensor, pairs: int) -> np.ndarray:
    """Per-pair normalised content and style distances; ``batch`` is distorted, then refs."""
    taps = {index for _, index in LAYERS}
    content = np.zeros((pairs, len(LAYERS)))
    style = np.zeros((pairs, len(LAYERS)))
    x = batch
    column = 0
    for index, module in enumerate(network):
        x = module(x)
        if index not in taps:
            continue
        flat = x.flatten(2)
        grams = flat @ flat.transpose(1, 2) / flat.shape[2]
        for pair in range(pairs):
            content[pair, column] = _energy_distance(flat[pair], flat[pairs + pair])
            style[pair, column] = _energy_distance(grams[pair], grams[pairs + pair])
        column += 1
    return np.hstack([content, style])


def _energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|a - b|^2 / (|a|^2 + |b|^2)``, accumulated in float64; 0 when both are zero."""
    import torch

    def energy(x: torch.Tensor) -> float:
        return float(torch.linalg.vector_norm(x, dtype=torch.float64)) ** 2

    total = energy(a) + energy(b)
    return energy(a - b) / total if total > 0.0 else 0.0


def _load_vgg(
    weights_file: str | Path | None, allow_random_init: bool, device_name: str
) -> tuple[torch.nn.Module, bool]:
    """VGG-16 ``features`` up to relu5_3, in eval mode on ``device_name``; and whether random."""
    import torch
    from torchvision.models import vgg16

    device = _device(device_name)
    last = LAYERS[-1][1]
    path = _weights_path(weights_file, allow_random_init)
    with torch.device("meta"):  # no time spent initialising the classifier or overwritten weights
        features = vgg16(weights=None).features[: last + 1]
    features = features.to_empty(device="cpu")
    if path is None:
        _random_init(features)
    else:
        features.load_state_dict(_features_state(path, features.state_dict()))
    features.requires_grad_(False)
    return features.eval().to(device), path is None


def _weights_path(weights_file: str | Path | None, allow_random_init: bool) -> Path | None:
    """The VGG-16 state dict to load, or ``None`` for a random network (only when allowed)."""
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise WeightsNotFoundError(f"sciqa: weights_file {path} does not exist")
        return path
    try:
        return resolve(VGG16_WEIGHTS)
    except WeightsNotFoundError as exc:
        if allow_random_init:
            return None
        raise WeightsNotFoundError(f"sciqa: {exc}; or pass weights_file=PATH") from None


def _random_init(features: torch.nn.Module) -> None:
    """torchvision's VGG initialisation (He normal, fan-out; zero bias), seeded."""
    import torch

    generator = torch.Generator().manual_seed(_RANDOM_INIT_SEED)
    for module in features:
        if isinstance(module, torch.nn.Conv2d):
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            with torch.no_grad():
                module.weight.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=generator)
                module.bias.zero_()


def _features_state(path: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """The convolution weights of ``path`` (a full torchvision VGG-16 or its ``features``)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"sciqa: cannot read VGG-16 weights {path}: {reason}") from None
    if not isinstance(state, dict):
        raise UserError(f"sciqa: {path} is not a state dict")
    prefixed = any(str(key).startswith("features.") for key in state)
    if prefixed:
        state = {
            key[len("features.") :]: v for key, v in state.items() if key.startswith("features.")
        }
    missing = [key for key in expected if key not in state]
    wrong = [
        key for key in expected if key in state and tuple(state[key].shape) != expected[key].shape
    ]
    if missing or wrong:
        raise UserError(
            f"sciqa: {path} is not a VGG-16 state dict "
            f"({'missing ' + missing[0] if missing else 'wrong shape for ' + wrong[0]})"
        )
    return {key: state[key] for key in expected}


def _device(name: str) -> torch.device:
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise MetricParameterError(f"sciqa: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MetricParameterError(f"sciqa: device {name!r} requested but CUDA is not available")
    return device
