"""OG-IQA: relative gradient statistics with an AdaBoosted back-propagation neural network."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import MetricParameterError, UserError
from ..metric import FeatureMetric

#: Quantisation step of the relative orientation histogram, in radians (authors' code).
ORIENTATION_STEP = 0.3
#: Quantisation step of the gradient and relative gradient magnitude histograms (authors' code).
MAGNITUDE_STEP = 1.0


class OGIQA(FeatureMetric):
    """OG-IQA of Liu, Hua, Zhao, Huang and Bovik (Signal Processing: Image Communication 40,
    2016).

    Features as the authors' release (``feature_extract.m``, ``FGr.m``, ``VarInformation.m``)
    computes them: at each scale (the image, then MATLAB ``imresize(., 0.5)`` of it) Gaussian
    partial derivatives (sigma 0.5, ``filter2(..., 'valid')``) give Ix, Iy and their 3x3
    local means (``conv2(..., 'same')``); three maps follow: the gradient magnitude GM, the
    relative gradient orientation RO (``atan(Ix/Iy)`` minus that of the local mean gradient)
    and the relative gradient magnitude RM (magnitude of the gradient minus the local mean
    gradient). Each map is summarised by the standard deviation of its normalised histogram
    (bins of 1 for GM and RM, 0.3 rad for RO): 3 features per scale, 6 in all. The filtering
    is rounded as the reference runs (:mod:`iqabench.features.conv2`): the orientations of
    near-flat areas are ratios of tiny responses and move between bins otherwise.

    Quality is regressed by the release's AdaBoosted back-propagation networks
    (:class:`AdaBoostedNetworks`, ``BP_Ada.m``).
    """

    name: ClassVar[str] = "og-iqa"
    family = "TR-NR"
    full_reference = False
    higher_is_better = True
    colour = "grey"
    version = "2"
    citation = (
        "L. Liu, Y. Hua, Q. Zhao, H. Huang, A. C. Bovik, Blind image quality assessment by "
        "relative gradient statistics and adaboosting neural network, Signal Processing: Image "
        "Communication 40:1-15, 2016, doi 10.1016/j.image.2015.10.005"
    )
    default_params: ClassVar[Mapping[str, Any]] = {"sigma": 0.5, "scales": 2, "networks": 10}
    batch_size = 32

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if not float(self.params["sigma"]) > 0:
            raise MetricParameterError(f"og-iqa: sigma must be > 0, got {self.params['sigma']}")
        for key in ("scales", "networks"):
            value = self.params[key]
            if int(value) != value or int(value) < 1:
                raise MetricParameterError(f"og-iqa: {key} must be an integer >= 1, got {value}")

    @property
    def n_features(self) -> int:
        """Length of the feature vector: 3 per scale."""
        return 3 * int(self.params["scales"])

    def features(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        return np.stack([self._image_features(image) for image in images])

    def _image_features(self, image: np.ndarray) -> np.ndarray:
        from ..features.gradients import gaussian_derivative_kernels, require_grey
        from ..features.nss import imresize

        scales = int(self.params["scales"])
        kernel, _ = gaussian_derivative_kernels(float(self.params["sigma"]))
        data = require_grey(self.name, image, (kernel.shape[0] + 2) * 2 ** (scales - 1))
        feats: list[float] = []
        for scale in range(scales):
            if scale:
                data = imresize(data, 0.5)
            gm, ro, rm = relative_gradient_maps(data, kernel)
            feats += [
                histogram_spread(gm, MAGNITUDE_STEP),
                histogram_spread(ro, ORIENTATION_STEP),
                histogram_spread(rm, MAGNITUDE_STEP),
            ]
        return np.asarray(feats)

    def make_regressor(self, seed: int, groups: Sequence[str] | None = None) -> AdaBoostedNetworks:
        return AdaBoostedNetworks(int(self.params["networks"]), seed)


def relative_gradient_maps(
    image: np.ndarray, kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GM, RO and RM maps of OG-IQA (the authors' ``FGr.m``), ``kernel`` being the horizontal
    Gaussian-derivative kernel (the vertical one is its transpose, as in ``FGr.m``).

    The derivatives are ``filter2(kernel, image, 'valid')`` (so the maps are smaller than the
    image by the kernel's side less one); the local mean gradient is their ``conv2`` with
    ``ones(3)/9``, ``'same'``; an orientation is ``atan(Ix/Iy)``, set to pi/2 where ``Iy`` is 0.
    """
    from ..features.conv2 import conv2, filter2
    from ..features.gradients import gradient_magnitude

    gx, gy = filter2(kernel, image, "valid"), filter2(kernel.T, image, "valid")
    box = np.full((3, 3), 1.0 / 9.0)
    mean_x, mean_y = conv2(gx, box, "same"), conv2(gy, box, "same")
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

    The bin centres run from ``round(min - 1)`` to ``round(max + 1)`` in steps of ``step``
    (``low + k * step``, as Octave's colon operator); ``hist`` puts the cut between two bins at
    the mean of their centres, a value on a cut in the lower bin, the end bins open-ended.
    """
    flat = values.ravel()
    low, high = _round(float(flat.min()) - 1.0), _round(float(flat.max()) + 1.0)
    centres = low + step * np.arange(math.floor((high - low) / step + 1e-10) + 1)
    cuts = (centres[:-1] + centres[1:]) / 2.0
    counts = np.bincount(np.searchsorted(cuts, flat, side="left"), minlength=centres.size)
    return float(np.std(counts / flat.size, ddof=1))


class AdaBoostedNetworks:
    """The release's AdaBoosted back-propagation ensemble (``BP_Ada.m``), in NumPy.

    ``networks`` (10 in the release's example) networks, each MATLAB's
    ``newff(X, y, [6 6], {'tansig', 'radbas', 'tansig'})``: inputs and target mapped onto
    -1..1 (``mapminmax``, fitted on the training data), two hidden layers of 6 (tanh, then
    Gaussian ``exp(-n^2)``), a tanh output, Nguyen-Widrow initial weights (``initnw``), trained
    by :func:`train_levenberg_marquardt` on a random 70/15/15 division of the training rows
    (``dividerand``: the 15% validation rows stop training, the last 15% are left unused, as
    in MATLAB). Every network sees all training rows; after each one, the rule of ``BP_Ada.m``
    updates the AdaBoost distribution ``D`` (rows whose absolute training error exceeds 0.1,
    in target units, have ``D`` multiplied by 1.1 and count towards the weighted error ``E``)
    and gives the network the weight ``1 / (1 + exp(-(|1 - E| - 0.5)))``; the prediction is
    the weighted mean of the networks' outputs.

    What differs from MATLAB: the random streams (NumPy's seeded generator, so the networks
    are other draws of the same procedure); the training is :func:`train_levenberg_marquardt`
    (``trainlm``'s update, damping schedule and stopping rules, in ``float64``), not the
    toolbox's code.
    """

    #: Absolute training error, in target units, above which a row counts as missed.
    ERROR_THRESHOLD: ClassVar[float] = 0.1
    #: Factor applied to the distribution of the missed rows.
    MISSED_GROWTH: ClassVar[float] = 1.1
    HIDDEN: ClassVar[tuple[int, int]] = (6, 6)
    MIN_SAMPLES: ClassVar[int] = 4

    def __init__(self, networks: int = 10, seed: int = 0) -> None:
        self.networks = networks
        self.seed = seed
        self.members_: list[Network] = []
        self.weights_: np.ndarray = np.empty(0)

    def fit(self, features: np.ndarray, quality: np.ndarray) -> AdaBoostedNetworks:
        data = np.asarray(features, dtype=np.float64)
        target = np.asarray(quality, dtype=np.float64).ravel()
        if data.shape[0] < self.MIN_SAMPLES:
            raise UserError(
                f"OG-IQA needs at least {self.MIN_SAMPLES} training images to fit its networks, "
                f"got {data.shape[0]}"
            )
        rng = np.random.default_rng(self.seed)
        distribution = np.full(target.size, 1.0 / target.size)
        members, weights = [], []
        for _ in range(self.networks):
            network = Network.fit(data, target, self.HIDDEN, rng)
            missed = np.abs(target - network.predict(data)) > self.ERROR_THRESHOLD
            weighted_error = float(distribution[missed].sum())
            weights.append(1.0 / (1.0 + math.exp(-(abs(1.0 - weighted_error) - 0.5))))
            distribution = np.where(missed, distribution * self.MISSED_GROWTH, distribution)
            distribution /= distribution.sum()
            members.append(network)
        self.members_ = members
        self.weights_ = np.asarray(weights) / sum(weights)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        if not self.members_:
            raise UserError("the OG-IQA networks have not been fitted")
        data = np.atleast_2d(np.asarray(features, dtype=np.float64))
        outputs = np.stack([member.predict(data) for member in self.members_])
        return self.weights_ @ outputs


class MinMaxMap:
    """MATLAB ``mapminmax`` onto -1..1, fitted on training columns (a constant column maps to
    -1, as ``mapminmax`` does after ``removeconstantrows`` has nothing left to remove)."""

    def __init__(self, values: np.ndarray) -> None:
        self.low = values.min(axis=0)
        span = values.max(axis=0) - self.low
        self.gain = np.where(span > 0, 2.0 / np.where(span > 0, span, 1.0), 1.0)

    def forward(self, values: np.ndarray) -> np.ndarray:
        return (values - self.low) * self.gain - 1.0

    def reverse(self, mapped: np.ndarray) -> np.ndarray:
        return (mapped + 1.0) / self.gain + self.low


class Network:
    """A fitted ``newff`` network of ``BP_Ada.m``: tanh, Gaussian and tanh layers."""

    def __init__(self, params: list[np.ndarray], inputs: MinMaxMap, output: MinMaxMap) -> None:
        self.params = params
        self.inputs = inputs
        self.output = output

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        target: np.ndarray,
        hidden: tuple[int, int],
        rng: np.random.Generator,
    ) -> Network:
        inputs, output = MinMaxMap(features), MinMaxMap(target[:, None])
        x, y = inputs.forward(features), output.forward(target[:, None]).ravel()
        train, validation = _divide(len(y), rng)
        initial = _nguyen_widrow(features.shape[1], hidden, rng)
        params = train_levenberg_marquardt(
            initial, (x[train], y[train]), (x[validation], y[validation])
        )
        return cls(params, inputs, output)

    def predict(self, features: np.ndarray) -> np.ndarray:
        mapped = _forward(self.params, self.inputs.forward(features))[-1]
        return self.output.reverse(mapped[:, None]).ravel()


def _divide(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``dividerand``'s 70/15/15 division: training and validation rows (the test share is
    left out, as in MATLAB)."""
    order = rng.permutation(count)
    n_validation = round(0.15 * count)
    n_test = round(0.15 * count)
    n_train = count - n_validation - n_test
    return order[:n_train], order[n_train : n_train + n_validation]


#: Active input range of tansig and radbas (``initnw`` spreads the neurons over it).
_ACTIVE_RANGE = (-2.0, 2.0)


def _nguyen_widrow(
    n_inputs: int, hidden: tuple[int, int], rng: np.random.Generator
) -> list[np.ndarray]:
    """Initial ``[W1, b1, W2, b2, W3, b3]`` as MATLAB's ``initnw``: random directions of norm
    ``0.7 S^(1/R)``, biases spread evenly, scaled to the active range and to each layer's
    input range (-1..1 after ``mapminmax`` and tanh, 0..1 after the Gaussian layer)."""
    sizes = [n_inputs, *hidden, 1]
    input_ranges = [(-1.0, 1.0), (-1.0, 1.0), (0.0, 1.0)]
    params: list[np.ndarray] = []
    for (fan_in, fan_out), (low, high) in zip(
        zip(sizes[:-1], sizes[1:], strict=True), input_ranges, strict=True
    ):
        magnitude = 0.7 * fan_out ** (1.0 / fan_in)
        directions = rng.uniform(-1.0, 1.0, (fan_out, fan_in))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        weights = magnitude * directions
        if fan_out == 1:
            bias = np.zeros(1)
        else:
            bias = magnitude * np.linspace(-1.0, 1.0, fan_out) * np.sign(weights[:, 0])
        half_width = 0.5 * (_ACTIVE_RANGE[1] - _ACTIVE_RANGE[0])
        centre = 0.5 * (_ACTIVE_RANGE[1] + _ACTIVE_RANGE[0])
        weights, bias = half_width * weights, half_width * bias + centre
        scale = 2.0 / (high - low)
        shift = 1.0 - high * scale
        params += [weights * scale, bias + weights @ np.full(fan_in, shift)]
    return params


def _forward(params: list[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    """Activations of the three layers for the rows of ``x``."""
    w1, b1, w2, b2, w3, b3 = params
    first = np.tanh(x @ w1.T + b1)
    second = np.exp(-((first @ w2.T + b2) ** 2))
    return [first, second, np.tanh(second @ w3.T + b3).ravel()]


def _jacobian(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network outputs and their derivatives with respect to every parameter, ``(N, P)``."""
    w1, b1, w2, b2, w3, b3 = params
    first = np.tanh(x @ w1.T + b1)
    net2 = first @ w2.T + b2
    second = np.exp(-(net2**2))
    out = np.tanh(second @ w3.T + b3).ravel()
    d_out = 1.0 - out**2
    d_net2 = d_out[:, None] * w3.ravel()[None, :] * (-2.0 * net2 * second)
    d_net1 = (d_net2 @ w2) * (1.0 - first**2)
    columns = [
        (d_net1[:, :, None] * x[:, None, :]).reshape(len(x), -1),
        d_net1,
        (d_net2[:, :, None] * first[:, None, :]).reshape(len(x), -1),
        d_net2,
        d_out[:, None] * second,
        d_out[:, None],
    ]
    return out, np.concatenate(columns, axis=1)


def _unflatten(vector: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    parts, start = [], 0
    for array in like:
        parts.append(vector[start : start + array.size].reshape(array.shape))
        start += array.size
    return parts


#: ``trainlm`` defaults, with the release's 5000 epochs.
LM_EPOCHS, LM_MAX_FAIL, LM_MIN_GRADIENT = 5000, 6, 1e-7
LM_MU, LM_MU_DEC, LM_MU_INC, LM_MU_MAX = 1e-3, 0.1, 10.0, 1e10


def train_levenberg_marquardt(
    params: list[np.ndarray],
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
) -> list[np.ndarray]:
    """Levenberg-Marquardt training as MATLAB's ``trainlm``: the step
    ``(J'J + mu I)^-1 J'e`` on the training rows' squared error, ``mu`` divided by 10 after a
    step that lowers the error and multiplied by 10 until one does; training stops after
    ``LM_EPOCHS`` epochs, when ``mu`` exceeds 1e10, when the gradient norm falls under 1e-7 or
    after 6 consecutive epochs without a lower validation error, and the network with the
    lowest validation error is returned (the last one without validation rows).
    """
    x, y = train
    vector = np.concatenate([p.ravel() for p in params])
    mu = LM_MU
    best, best_validation, fails = vector, _validation_error(params, validation), 0
    for _ in range(LM_EPOCHS):
        out, jacobian = _jacobian(_unflatten(vector, params), x)
        error = y - out
        gradient = jacobian.T @ error
        if 2.0 * np.linalg.norm(gradient) < LM_MIN_GRADIENT:
            break
        hessian = jacobian.T @ jacobian
        current = float(error @ error)
        while mu <= LM_MU_MAX:
            step = np.linalg.solve(hessian + mu * np.eye(vector.size), gradient)
            trial = vector + step
            trial_out = _forward(_unflatten(trial, params), x)[-1]
            if float(np.sum((y - trial_out) ** 2)) < current:
                vector, mu = trial, mu * LM_MU_DEC
                break
            mu *= LM_MU_INC
        else:
            break
        score = _validation_error(_unflatten(vector, params), validation)
        if score < best_validation or validation[1].size == 0:
            best, best_validation, fails = vector, score, 0
        elif score > best_validation:
            fails += 1
            if fails >= LM_MAX_FAIL:
                break
    return _unflatten(best, params)


def _validation_error(params: list[np.ndarray], validation: tuple[np.ndarray, np.ndarray]) -> float:
    x, y = validation
    if y.size == 0:
        return math.inf
    return float(np.mean((y - _forward(params, x)[-1]) ** 2))
