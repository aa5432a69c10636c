"""SCIQA: VGG-16 content/style distances and the non-negative convex fit of layer weights.

No ImageNet VGG-16 weights exist on the test machines, so the network tests use a randomly
initialised VGG-16 (explicitly allowed, or saved to a state dict in tmp_path): they check what
must hold for any network (zero at identity, growth with distortion level, determinism, input
handling), not SCIQA's published accuracy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.ndimage import gaussian_filter

from iqabench.errors import MetricParameterError, SizeMismatchError, UserError, WeightsNotFoundError
from iqabench.imageio import Image, display_window, read_image, to_metric_input
from iqabench.metrics.sciqa import FEATURE_NAMES, SCIQA, NonNegativeLayerWeights

REPO = Path(__file__).resolve().parent.parent
FRAME = "tno_Farm_Farm_IR.png"


@pytest.fixture(scope="module")
def metric() -> SCIQA:
    """One randomly initialised SCIQA shared by the tests (the network is loaded once)."""
    return SCIQA(allow_random_init=True)


@pytest.fixture(scope="module")
def frame(shared: Path) -> np.ndarray:
    """A 64x96 crop of a real thermal frame, as SCIQA receives it (RGB, 0..255)."""
    image = to_metric_input(read_image(shared / "data" / "thermal-pristine" / FRAME), "rgb")
    return image[100:164, 150:246]


def test_import_stays_light() -> None:
    code = "import sys, iqabench.metrics.sciqa; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_missing_weights_raise_one_clear_line(frame: np.ndarray) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        SCIQA().features([frame], [frame])
    message = str(info.value)
    assert "\n" not in message
    assert "vgg16-397923af.pth" in message and "IQABENCH_WEIGHTS" in message


def test_missing_weights_file_raises(tmp_path: Path, frame: np.ndarray) -> None:
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        SCIQA(weights_file=tmp_path / "nope.pth", allow_random_init=True).features([frame], [frame])


def test_identical_images_score_best(metric: SCIQA, frame: np.ndarray) -> None:
    noisy = frame + np.random.default_rng(0).normal(0, 10, frame.shape)
    features = metric.features([frame, noisy], [frame, frame])
    assert features.shape == (2, len(FEATURE_NAMES)) and features.dtype == np.float64
    assert np.all(features[0] == 0.0)
    assert np.all(features[1] > 0.0) and np.all(features[1] <= 1.0)
    scores = metric.score([frame, noisy], [frame, frame])
    assert scores[0] == 1.0 and scores[1] < 1.0
    assert metric.notes() and "randomly initialised" in metric.notes()[0]


def test_notes_flag_random_network_even_before_it_is_loaded() -> None:
    # Features may come from the score store, so notes() must not depend on a forward pass.
    assert "randomly initialised" in SCIQA(allow_random_init=True).notes()[0]
    assert SCIQA().notes() == []


@pytest.mark.parametrize("kind", ["awgn", "blur"])
def test_distances_grow_with_distortion_level(metric: SCIQA, frame: np.ndarray, kind: str) -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, frame.shape)
    if kind == "awgn":
        images = [frame + sigma * noise for sigma in (3, 8, 20, 45)]
    else:
        images = [gaussian_filter(frame, (sigma, sigma, 0)) for sigma in (0.7, 1.5, 3, 6)]
    features = metric.features(images, [frame] * len(images))
    assert np.all(np.diff(features, axis=0) >= -1e-9), features
    assert np.all(np.diff(features.sum(axis=1)) > 0)


def test_features_do_not_depend_on_batch_companions(metric: SCIQA, frame: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    a = frame + rng.normal(0, 5, frame.shape)
    b = np.clip(frame * 0.7 + 30, 0, 255)
    together = metric.features([a, b, a], [frame, frame, frame])
    alone = np.vstack([metric.features([a], [frame]), metric.features([b], [frame])])
    np.testing.assert_allclose(together[:2], alone, rtol=1e-4, atol=1e-9)
    np.testing.assert_array_equal(together[0], together[2])


def test_deterministic(frame: np.ndarray) -> None:
    distorted = gaussian_filter(frame, (1.0, 1.0, 0))
    first = SCIQA(allow_random_init=True).features([distorted], [frame])
    second = SCIQA(allow_random_init=True).features([distorted], [frame])
    np.testing.assert_array_equal(first, second)


def test_weights_file_is_loaded(tmp_path: Path, metric: SCIQA, frame: np.ndarray) -> None:
    import torch

    # torchvision's own checkpoint layout: "features.N.weight" keys (the classifier is unused).
    state = {f"features.{key}": value for key, value in metric._vgg().state_dict().items()}
    path = tmp_path / "vgg16-random.pth"
    torch.save(state, path)
    loaded = SCIQA(weights_file=path)
    distorted = frame + np.random.default_rng(3).normal(0, 12, frame.shape)
    np.testing.assert_allclose(
        loaded.features([distorted], [frame]), metric.features([distorted], [frame]), rtol=1e-6
    )
    assert loaded.notes() == []


def test_bad_weights_file_is_refused(tmp_path: Path, frame: np.ndarray) -> None:
    import torch

    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(UserError, match="not a VGG-16 state dict"):
        SCIQA(weights_file=path).features([frame], [frame])
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read") as info:
        SCIQA(weights_file=path).features([frame], [frame])
    assert "\n" not in str(info.value)


def test_grey_and_16_bit_input(metric: SCIQA, frame: np.ndarray) -> None:
    grey = frame[..., 0]
    distorted = gaussian_filter(grey, 1.2)
    from_grey = metric.features([distorted], [grey])
    from_rgb = metric.features([np.dstack([distorted] * 3)], [frame])
    np.testing.assert_allclose(from_grey, from_rgb, rtol=1e-6)

    ref16 = Image((grey * 40 + 1000).astype(np.uint16), 16)
    dist16 = Image((distorted * 40 + 1000).astype(np.uint16), 16)
    window = display_window(ref16)
    features = metric.features(
        [to_metric_input(dist16, "rgb", window)], [to_metric_input(ref16, "rgb", window)]
    )
    assert np.all(np.isfinite(features)) and np.all(features > 0)


def test_size_mismatch_and_tiny_images(metric: SCIQA, frame: np.ndarray) -> None:
    with pytest.raises(SizeMismatchError):
        metric.features([frame[:48]], [frame])
    with pytest.raises(UserError, match="full-reference"):
        metric.features([frame], None)
    with pytest.raises(UserError, match="at least 16x16"):
        metric.features([frame[:8, :8]], [frame[:8, :8]])


def test_unavailable_device_is_refused(frame: np.ndarray) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(MetricParameterError, match="CUDA is not available"):
        SCIQA(device="cuda", allow_random_init=True).features([frame], [frame])


def test_convex_fit_recovers_known_nonnegative_weights() -> None:
    rng = np.random.default_rng(4)
    X = rng.uniform(0, 1, (300, len(FEATURE_NAMES))) ** 2
    true = np.array([0.8, 0.0, 2.0, 0.0, 0.5, 0.0, 1.5, 0.0, 0.0, 3.0])
    y = 5.0 - X @ true + rng.normal(0, 0.01, 300)
    model = NonNegativeLayerWeights(seed=0).fit(X, y)
    np.testing.assert_allclose(model.coef_, true, atol=0.03)
    assert model.intercept_ == pytest.approx(5.0, abs=0.03)
    assert np.all(model.coef_ >= 0)
    assert model.relative_weights.sum() == pytest.approx(1.0)


def test_fit_keeps_weights_nonnegative() -> None:
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 1, (120, 3))
    y = 1.0 - 2.0 * X[:, 0] + 1.5 * X[:, 1]  # the second distance "helps" quality
    model = NonNegativeLayerWeights().fit(X, y)
    assert model.coef_[1] == 0.0 and model.coef_[0] > 1.5
    assert np.all(model.coef_ >= 0)


def test_fit_uses_only_what_it_is_given() -> None:
    rng = np.random.default_rng(6)
    X = rng.uniform(0, 1, (80, 4))
    y = 2.0 - X @ np.array([1.0, 0.5, 0.0, 2.0]) + rng.normal(0, 0.05, 80)
    train, test = slice(0, 60), slice(60, 80)
    X_train, y_train = X[train].copy(), y[train].copy()
    model = NonNegativeLayerWeights(seed=3).fit(X_train, y_train)
    np.testing.assert_array_equal(X_train, X[train])  # inputs are not modified
    twin = NonNegativeLayerWeights(seed=3).fit(X[train], y[train])
    np.testing.assert_array_equal(model.coef_, twin.coef_)
    assert model.alpha_ == twin.alpha_
    # Each prediction depends on its own row only: changing the others changes nothing.
    shuffled = X[test].copy()
    shuffled[1:] = rng.uniform(0, 1, shuffled[1:].shape)
    assert model.predict(X[test])[0] == model.predict(shuffled)[0]


def test_metric_fit_predict_and_default_weights(metric: SCIQA) -> None:
    rng = np.random.default_rng(7)
    X = rng.uniform(0, 0.5, (50, len(FEATURE_NAMES)))
    quality = 80 - 40 * X[:, 2] - 20 * X[:, 7]
    fresh = SCIQA(allow_random_init=True)
    default = fresh.predict(X)
    np.testing.assert_allclose(default, 1.0 - X.mean(axis=1))
    fitted = fresh.fit(X, quality, seed=1).predict(X)
    assert np.corrcoef(fitted, quality)[0, 1] > 0.999


def test_card_matches_class() -> None:
    card = yaml.safe_load((REPO / "registry" / "sciqa.yaml").read_text(encoding="utf-8"))
    assert card["name"] == SCIQA.name and card["family"] == SCIQA.family
    assert card["trainable"] is True and card["higher_is_better"] is True
    assert card["implementation"]["entry_point"] == "iqabench.metrics.sciqa:SCIQA"
    assert set(card["parameters"]) == set(SCIQA.default_params)
    assert card["paper"]["doi"] == "10.3390/s25165121"
