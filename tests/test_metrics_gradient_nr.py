"""GM-LOG, OG-IQA and GWH-GLBP: building blocks against hand-worked examples, and properties.

No official values exist for these metrics here, so the tests check what must hold: feature
dimensions as in the papers, determinism, the filters and LBP codes on examples worked out by
hand, and that a model fitted on AWGN/blur levels of some thermal frames ranks the levels of
other (content-disjoint) frames.
"""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import yaml
from conftest import REPO, THERMAL_PRISTINE
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr

from iqabench.errors import MetricParameterError, NotFittedError, UserError
from iqabench.features.gradients import (
    fspecial_log,
    gaussian_derivatives,
    joint_adaptive_normalisation,
    laplacian_of_gaussian,
    prewitt_magnitude,
)
from iqabench.features.lbp import lbp_riu2, weighted_histogram
from iqabench.imageio import Image, read_image, to_metric_input
from iqabench.metrics.gm_log import GMLOG
from iqabench.metrics.gwh_glbp import GWHGLBP
from iqabench.metrics.og_iqa import OGIQA

METRICS = [GMLOG, OGIQA, GWHGLBP]
DIMENSIONS = {"gm-log": 40, "og-iqa": 6, "gwh-glbp": 50}


# --- building blocks --------------------------------------------------------------------------


def test_gaussian_derivative_of_a_ramp_matches_the_hand_worked_kernel() -> None:
    # sigma 0.5: the 1-D Gaussian at offsets -3..3 is exp(-2 j^2); the kernel's x factor is the
    # forward difference d_j = g_j - g_(j+1) for j = -2..2, the y factor cancels out on a ramp
    # that is constant along y, and the kernel is scaled to sum(|d|) = 1.
    g = {j: math.exp(-2.0 * j * j) for j in range(-3, 4)}
    d = {j: g[j] - g[j + 1] for j in range(-2, 3)}
    total = sum(abs(v) for v in d.values())
    slope = 3.0
    image = np.tile(slope * np.arange(30.0), (20, 1))
    gx, gy = gaussian_derivatives(image, 0.5)
    columns = np.arange(2, 28)
    expected = slope * np.array([sum(v * (x + j) for j, v in d.items()) for x in columns]) / total
    np.testing.assert_allclose(gx[5, columns], expected, rtol=1e-12)
    # the y factor is a forward difference too, so its taps sum to g_-2 - g_3, not 0: on any
    # image it leaks that fraction of the intensity itself
    leak = (g[-2] - g[3]) / total
    np.testing.assert_allclose(gy[2:-2, 2:-2], leak * image[2:-2, 2:-2], rtol=1e-9)
    # the same ramp along y gives the same response in gy
    _, gy_t = gaussian_derivatives(image.T.copy(), 0.5)
    np.testing.assert_allclose(gy_t[columns, 5], expected, rtol=1e-12)


def test_prewitt_magnitude_of_a_ramp_is_twice_its_slope() -> None:
    image = np.tile(3.0 * np.arange(12.0), (9, 1))
    np.testing.assert_allclose(prewitt_magnitude(image)[1:-1, 1:-1], 6.0, rtol=1e-12)
    np.testing.assert_allclose(prewitt_magnitude(image.T.copy())[1:-1, 1:-1], 6.0, rtol=1e-12)


def _octave_conv2_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Octave's conv2(image, kernel, 'same') in exact rational arithmetic, rounding once per
    tap (a fused multiply-add), taps in dconv2o's order: a slow, independent transcription."""
    (ma, na), (mb, nb) = image.shape, kernel.shape
    full = [[0.0] * (na + nb - 1) for _ in range(ma + mb - 1)]
    for k in range(na):
        for j in range(nb):
            for i in range(mb):
                if kernel[i, j] == 0:
                    continue
                for r in range(ma):
                    exact = Fraction(full[r + i][k + j]) + Fraction(kernel[i, j]) * Fraction(
                        image[r, k]
                    )
                    full[r + i][k + j] = float(exact)  # correctly rounded
    return np.array(full)[mb // 2 : mb // 2 + ma, nb // 2 : nb // 2 + na]


def test_conv2_rounds_as_octave_with_fused_multiply_add() -> None:
    from iqabench.features.conv2 import conv2, fused_multiply_add

    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, (9, 11)).astype(np.float64)
    image[4:, 5:] = rng.normal(100, 30, (5, 6))
    for kernel in (np.array([[1.0, 0.0, -1.0]] * 3) / 3.0, rng.normal(size=(3, 5))):
        assert np.array_equal(conv2(image, kernel, "same"), _octave_conv2_same(image, kernel))
    # the single rounding matters: t * 7 + c is not round(round(t * 7) + c) here
    third = 1.0 / 3.0
    a, c = np.array([7.0]), np.array([-7.0 / 3.0])
    assert fused_multiply_add(third, a, c)[0] != third * 7.0 + c[0]
    assert fused_multiply_add(third, a, c)[0] == float(Fraction(third) * 7 + Fraction(c[0]))


def test_log_kernel_and_response_to_a_blob() -> None:
    kernel = fspecial_log(5, 0.5)
    assert kernel.sum() == pytest.approx(0.0, abs=1e-12)
    # centre, edge-adjacent and corner values of fspecial('log', 5, 0.5)
    assert kernel[2, 2] == pytest.approx(-4.9048, abs=1e-4)
    assert kernel[2, 1] == pytest.approx(0.7146, abs=1e-4)
    assert kernel[0, 0] == pytest.approx(0.0448, abs=1e-4)
    yy, xx = np.mgrid[-10:11, -10:11]
    blob = 100.0 * np.exp(-(xx**2 + yy**2) / 2.0)
    response = laplacian_of_gaussian(blob, 0.5)
    assert response[10, 10] < 0
    assert np.unravel_index(np.argmax(np.abs(response)), response.shape) == (10, 10)
    # zero on constants and on ramps (away from the zero-padded border)
    ramp = 2.0 * xx + 5.0 * yy + 50.0
    np.testing.assert_allclose(laplacian_of_gaussian(ramp, 0.5)[2:-2, 2:-2], 0.0, atol=1e-9)


def test_joint_adaptive_normalisation_of_constant_maps() -> None:
    gm = np.full((15, 15), 10.0)
    log = np.full((15, 15), 10.0)
    gm_n, log_n = joint_adaptive_normalisation(gm, log, 1.0, 0.2)
    np.testing.assert_allclose(gm_n[3:-3, 3:-3], 10.0 / 10.2, rtol=1e-12)
    np.testing.assert_allclose(log_n[3:-3, 3:-3], 10.0 / 10.2, rtol=1e-12)


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ([[1, 2, 3], [4, 5, 6], [7, 8, 9]], 4),  # a ramp: half the circle is brighter
        ([[1, 1, 1], [1, 5, 1], [1, 1, 1]], 0),  # a peak: no neighbour >= centre
        ([[9, 9, 9], [9, 5, 9], [9, 9, 9]], 8),  # a pit: every neighbour >= centre
        ([[5, 5, 5], [5, 5, 5], [5, 5, 5]], 8),  # flat: ties count as >=
        ([[20, 0, 20], [0, 5, 0], [20, 0, 20]], 9),  # alternating: 8 transitions, non-uniform
        ([[0, 0, 0], [0, 5, 9], [0, 0, 0]], 1),  # one bright neighbour (right)
    ],
)
def test_lbp_codes_of_hand_worked_patches(patch: list[list[int]], code: int) -> None:
    codes = lbp_riu2(np.asarray(patch, dtype=np.float64), 8, 1)
    assert codes.shape == (1, 1)
    assert codes[0, 0] == code


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_lbp_matches_scikit_image_uniform() -> None:
    from skimage.feature import local_binary_pattern

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(24, 31)).astype(np.float64)
    for points, radius in ((8, 1), (16, 2)):
        reference = local_binary_pattern(image, points, radius, method="uniform")
        ours = lbp_riu2(image, points, radius)
        np.testing.assert_array_equal(ours, reference[radius:-radius, radius:-radius])


def test_weighted_histogram() -> None:
    codes = np.array([[0, 1], [1, 9]])
    weights = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = np.array([1.0, 5.0, 0, 0, 0, 0, 0, 0, 0, 4.0]) / 10.0
    np.testing.assert_allclose(weighted_histogram(codes, weights, 10), expected)
    np.testing.assert_array_equal(weighted_histogram(codes, np.zeros((2, 2)), 10), np.zeros(10))


# --- metrics: features ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frame(shared) -> np.ndarray:  # noqa: ANN001 - pytest fixture
    path = sorted(THERMAL_PRISTINE.glob("*.png"))[0]
    return to_metric_input(read_image(path), "grey")


@pytest.mark.parametrize("cls", METRICS)
def test_feature_dimensions_and_determinism(cls, frame: np.ndarray) -> None:  # noqa: ANN001
    metric = cls()
    first = metric.features([frame, frame[::2, ::2]])
    assert first.shape == (2, DIMENSIONS[cls.name]) == (2, metric.n_features)
    assert first.dtype == np.float64 and np.isfinite(first).all()
    np.testing.assert_array_equal(first, cls().features([frame, frame[::2, ::2]]))


def test_gm_log_features_are_four_distributions(frame: np.ndarray) -> None:
    feats = GMLOG().features([frame])[0].reshape(4, 10)
    np.testing.assert_allclose(feats.sum(axis=1), 1.0, rtol=1e-12)
    assert (feats >= 0).all()


def test_gwh_glbp_features_are_one_histogram_per_scale(frame: np.ndarray) -> None:
    feats = GWHGLBP().features([frame])[0].reshape(5, 10)
    np.testing.assert_allclose(feats.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("cls", METRICS)
def test_sixteen_bit_input_is_accepted(cls, frame: np.ndarray) -> None:  # noqa: ANN001
    pixels = (frame * 40.0 + 7000.0).astype(np.uint16)
    image = to_metric_input(Image(pixels, 16), cls.colour)
    feats = cls().features([image])
    assert feats.shape == (1, DIMENSIONS[cls.name]) and np.isfinite(feats).all()


@pytest.mark.parametrize("cls", METRICS)
def test_unfitted_score_raises(cls, frame: np.ndarray) -> None:  # noqa: ANN001
    with pytest.raises(NotFittedError):
        cls().score([frame])


@pytest.mark.parametrize("cls", METRICS)
def test_bad_input_and_parameters_are_refused(cls) -> None:  # noqa: ANN001
    with pytest.raises(UserError, match=cls.name):
        cls().features([np.zeros((64, 64, 3))])
    with pytest.raises(UserError, match="at least"):
        cls().features([np.zeros((2, 2))])
    key = next(iter(cls.default_params))
    with pytest.raises(MetricParameterError):
        cls(**{key: -1})


@pytest.mark.parametrize("cls", METRICS)
def test_card_matches_the_class(cls) -> None:  # noqa: ANN001
    card = yaml.safe_load((REPO / "registry" / f"{cls.name}.yaml").read_text(encoding="utf-8"))
    assert card["name"] == cls.name and card["family"] == cls.family == "TR-NR"
    assert card["parameters"] == dict(cls.default_params)
    assert card["trainable"] is True and card["higher_is_better"] is True
    assert card["implementation"]["entry_point"].endswith(f":{cls.__name__}")


def test_importing_the_metrics_loads_no_heavy_library() -> None:
    code = (
        "import sys, iqabench.metrics.gm_log, iqabench.metrics.og_iqa, "
        "iqabench.metrics.gwh_glbp; "
        "print(sorted(m for m in ('sklearn', 'skimage', 'cv2', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- metrics: fitted on distortion levels ----------------------------------------------------

NOISE_SIGMA = (3.0, 6.0, 12.0, 24.0, 48.0)
BLUR_SIGMA = (0.6, 1.2, 2.0, 3.0, 4.5)


def _distorted_set(paths: list, seed: int) -> tuple[list[np.ndarray], np.ndarray, list[tuple]]:
    """AWGN and Gaussian blur at 5 levels of 256x320 centre crops; quality = 6 - level."""
    rng = np.random.default_rng(seed)
    images, quality, groups = [], [], []
    for path in paths:
        frame = to_metric_input(read_image(path), "grey")
        top, left = (frame.shape[0] - 256) // 2, (frame.shape[1] - 320) // 2
        crop = frame[top : top + 256, left : left + 320]
        for kind in ("noise", "blur"):
            for level in range(1, 6):
                if kind == "noise":
                    out = crop + rng.normal(0.0, NOISE_SIGMA[level - 1], crop.shape)
                else:
                    out = gaussian_filter(crop, BLUR_SIGMA[level - 1])
                images.append(np.clip(np.round(out), 0, 255))
                quality.append(6.0 - level)
                groups.append((path.name, kind))
    return images, np.asarray(quality), groups


@pytest.fixture(scope="module")
def level_sets(shared) -> dict:  # noqa: ANN001 - pytest fixture
    frames = sorted(THERMAL_PRISTINE.glob("*.png"))
    train, test = frames[0::3], frames[1::6]  # 9 and 4 frames, no frame in both
    assert not set(train) & set(test)
    return {"train": _distorted_set(train, 0), "test": _distorted_set(test, 1)}


def _centre(images: list[np.ndarray], side: int | None) -> list[np.ndarray]:
    """Centre ``side x 1.25 side`` crops (all of each image when None)."""
    if side is None:
        return images
    width = side * 5 // 4
    return [
        image[(image.shape[0] - side) // 2 :, (image.shape[1] - width) // 2 :][:side, :width]
        for image in images
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cls", "overall", "per_group", "side"),
    [
        (GMLOG, 0.9, 0.95, None),
        # the reference rounding of OG-IQA's and GWH-GLBP's filters costs time: smaller crops
        (OGIQA, 0.9, 0.95, 128),
        (GWHGLBP, 0.75, 0.9, 160),
    ],
)
def test_fitted_metric_ranks_unseen_distortion_levels(
    cls,
    overall: float,
    per_group: float,
    side: int | None,
    level_sets: dict,  # noqa: ANN001
) -> None:
    metric = cls()
    train_images, train_quality, _ = level_sets["train"]
    test_images, test_quality, groups = level_sets["test"]
    train_images, test_images = _centre(train_images, side), _centre(test_images, side)
    train_features = metric.features(train_images)
    test_features = metric.features(test_images)
    metric.fit(train_features, train_quality, seed=0)
    predicted = metric.predict(test_features)
    np.testing.assert_allclose(metric.score(test_images[:3]), predicted[:3], rtol=1e-12)
    assert spearmanr(predicted, test_quality)[0] > overall
    per = []
    for group in sorted(set(groups)):
        index = [i for i, g in enumerate(groups) if g == group]
        per.append(spearmanr(predicted[index], test_quality[index])[0])
    assert np.mean(per) > per_group
    # a refit with the same seed predicts the same
    again = cls().fit(train_features, train_quality, seed=0)
    np.testing.assert_array_equal(again.predict(test_features), predicted)


# --- OG-IQA's AdaBoosted networks (BP_Ada.m) -------------------------------------------------


def test_og_iqa_networks_follow_the_release_ensemble_rule() -> None:
    from iqabench.metrics.og_iqa import AdaBoostedNetworks

    rng = np.random.default_rng(2)
    features = rng.uniform(0, 1, (80, 6))
    quality = 3 * features[:, 0] - 2 * features[:, 1] ** 2 + rng.normal(0, 0.05, 80)
    model = AdaBoostedNetworks(networks=4, seed=1).fit(features, quality)
    # newff(X, y, [6 6], ...) on 6 features: 6*6+6 + 6*6+6 + 6+1 parameters
    assert [sum(p.size for p in member.params) for member in model.members_] == [91] * 4
    # the weights: D starts uniform; rows missed by more than 0.1 grow by 1.1; each network
    # weighs 1 / (1 + exp(-(|1 - E| - 0.5))), E the distribution's share of its missed rows
    distribution, weights = np.full(80, 1 / 80), []
    for member in model.members_:
        missed = np.abs(quality - member.predict(features)) > 0.1
        weights.append(1 / (1 + math.exp(-(abs(1 - distribution[missed].sum()) - 0.5))))
        distribution = np.where(missed, distribution * 1.1, distribution)
        distribution /= distribution.sum()
    np.testing.assert_allclose(model.weights_, np.array(weights) / sum(weights), rtol=1e-12)
    outputs = np.stack([member.predict(features[:5]) for member in model.members_])
    np.testing.assert_allclose(model.predict(features[:5]), model.weights_ @ outputs, rtol=1e-12)
    held_out = rng.uniform(0, 1, (40, 6))
    truth = 3 * held_out[:, 0] - 2 * held_out[:, 1] ** 2
    assert np.corrcoef(model.predict(held_out), truth)[0, 1] > 0.85
    np.testing.assert_array_equal(
        AdaBoostedNetworks(networks=4, seed=1).fit(features, quality).predict(held_out),
        model.predict(held_out),
    )
    with pytest.raises(UserError, match="at least"):
        AdaBoostedNetworks().fit(features[:3], quality[:3])
