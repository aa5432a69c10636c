"""NIQE, BRISQUE (LIVE and retrained), fit-niqe and the shared NSS pieces."""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CALIBRATION, SHARED_WEIGHTS, THERMAL_PRISTINE

from iqabench import registry
from iqabench.errors import DatasetError, ImageReadError, UserError, WeightsNotFoundError
from iqabench.features import nss
from iqabench.imageio import load_for_metric

PAIRS = ("I03", "I04", "I06")
#: A clean LWIR frame on which NIQE and BRISQUE react to distortion with clear margins.
FRAME = "tno_Kaptein_1654_Kaptein_1654_IR.png"
#: Frames for fitting a thermal NIQE model in the tests (enough for > 36 sharp blocks).
FIT_FRAMES = (
    "tno_Kaptein_1123_Kaptein_1123_IR.png",
    "tno_Kaptein_1654_Kaptein_1654_IR.png",
    "tno_Marne_01_Marne_01_IR.png",
    "tno_Marne_02_Marne_02_IR.png",
    "tno_Marne_03_Marne_03_IR.png",
    "tno_Marne_04_Marne_04_IR.png",
    "tno_Marne_06_Marne_06_IR.png",
    "tno_Marne_07_Marne_07_IR.png",
    "tno_Marne_09_Marne_09_IR.png",
    "tno_Marne_24_Marne_24_IR.png",
    "tno_Movie_01_Movie_01_IR.png",
    "tno_Movie_12_Movie_12_IR.png",
)


def official(metric: str) -> dict[str, float]:
    with open(CALIBRATION / "official_values.csv", newline="") as handle:
        return {
            row["image"].removesuffix(".bmp"): float(row["value"])
            for row in csv.DictReader(handle)
            if row["metric"] == metric
        }


def calibration_image(pair: str) -> np.ndarray:
    return load_for_metric(CALIBRATION / "dist" / f"{pair}.bmp", "grey")[0]


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return load_for_metric(THERMAL_PRISTINE / FRAME, "grey")[0]


# --- calibration ------------------------------------------------------------------------------


def test_niqe_calibrated(shared: Path) -> None:
    metric = registry.create("niqe")
    expected = official("niqe")
    errors = {}
    for pair in PAIRS:
        value = float(metric.score([calibration_image(pair)])[0])
        errors[pair] = abs(value - expected[pair]) / expected[pair]
    print("NIQE relative errors:", errors)
    assert max(errors.values()) <= 0.02
    # I04 has no flat 7x7 neighbourhood, where MATLAB's rounding residues could matter
    assert errors["I04"] < 1e-9


def test_brisque_live_calibrated(shared: Path) -> None:
    metric = registry.create("brisque-live")
    expected = official("brisque")
    values = metric.score([calibration_image(pair) for pair in PAIRS])
    errors = {pair: abs(v - expected[pair]) for pair, v in zip(PAIRS, values, strict=True)}
    print("BRISQUE absolute errors:", errors)
    assert max(errors.values()) <= 0.5


def test_unfitted_brisque_is_negated_live_model(shared: Path) -> None:
    images = [calibration_image(pair) for pair in PAIRS]
    trainable = registry.create("brisque")
    live = registry.create("brisque-live").score(images)
    assert trainable.trainable and trainable.higher_is_better
    assert not registry.get("brisque-live").higher_is_better
    np.testing.assert_allclose(trainable.score(images), -live, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trainable.predict(trainable.features(images)), -live, atol=1e-12)


# --- trainable BRISQUE --------------------------------------------------------------------------


def test_brisque_fits_and_predicts_synthetic_quality() -> None:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(80, 36))
    quality = 50 + 10 * np.tanh(features[:, 0]) - 5 * features[:, 3] + rng.normal(0, 0.5, 80)
    metric = registry.create("brisque")
    metric.fit(features[:60], quality[:60], seed=3)
    predicted = metric.predict(features[60:])
    assert predicted.shape == (20,)
    assert np.corrcoef(predicted, quality[60:])[0, 1] > 0.8
    again = registry.create("brisque").fit(features[:60], quality[:60], seed=3)
    np.testing.assert_array_equal(again.predict(features[60:]), predicted)
    chosen = metric._regressor.best_params_
    assert chosen["C"] in metric._regressor.GRID["C"]
    with_nan = features[60:].copy()
    with_nan[0, 5] = np.nan
    assert np.isnan(metric.predict(with_nan)[0]) and np.isfinite(metric.predict(with_nan)[1:]).all()


def test_brisque_refuses_too_few_training_images() -> None:
    metric = registry.create("brisque")
    with pytest.raises(UserError, match="at least"):
        metric.fit(np.ones((3, 36)), np.arange(3.0))


# --- monotonicity, determinism, input range -----------------------------------------------------


def awgn(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(np.round(image + noise), 0, 255)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.round(gaussian_filter(image, sigma, mode="nearest")) if sigma else image


@pytest.mark.parametrize("name", ["niqe", "brisque-live"])
def test_worse_with_more_noise_and_blur(shared: Path, frame: np.ndarray, name: str) -> None:
    metric = registry.create(name)
    noisy = metric.score([awgn(frame, sigma) for sigma in (0, 10, 20, 40)])
    blurred = metric.score([blur(frame, sigma) for sigma in (0, 1, 2, 3)])
    assert np.all(np.diff(noisy) > 0), noisy
    assert np.all(np.diff(blurred) > 0), blurred


@pytest.mark.parametrize("name", ["niqe", "brisque-live", "brisque"])
def test_deterministic(shared: Path, frame: np.ndarray, name: str) -> None:
    first = registry.create(name).score([frame])
    np.testing.assert_array_equal(registry.create(name).score([frame]), first)


def test_sixteen_bit_input(shared: Path, frame: np.ndarray, tmp_path: Path) -> None:
    from PIL import Image

    counts = (frame * 40 + 3000).astype(np.uint16)
    path = tmp_path / "radiometric.png"
    Image.fromarray(counts).save(path)
    image = load_for_metric(path, "grey")[0]
    stretched = (frame - frame.min()) * (255.0 / (frame.max() - frame.min()))
    np.testing.assert_allclose(image, stretched, atol=1e-9)
    for name in ("niqe", "brisque-live"):
        metric = registry.create(name)
        np.testing.assert_allclose(metric.score([image]), metric.score([stretched]), rtol=1e-9)
        assert np.isfinite(metric.score([image])).all()


def test_niqe_edge_cases(shared: Path) -> None:
    metric = registry.create("niqe")
    assert np.isnan(metric.score([np.full((200, 300), 90.0)])[0])
    with pytest.raises(UserError, match="at least 96x96"):
        metric.score([np.zeros((50, 300))])


# --- weights ------------------------------------------------------------------------------------


def test_published_models_run_on_a_fresh_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iqabench.weights import PACKAGED_DIR

    frame = np.random.default_rng(0).uniform(0, 255, (96, 96))  # needs no ../shared
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("IQABENCH_WEIGHTS", str(empty))
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("niqe", "brisque-live", "brisque"):
        metric = registry.create(name)
        assert all(path.is_relative_to(PACKAGED_DIR) for path in metric.model_files()), name
        assert np.isfinite(metric.score([frame])).all(), name


def test_a_weights_directory_overrides_the_packaged_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iqabench.weights import PACKAGED_DIR

    frame = np.random.default_rng(0).uniform(0, 255, (96, 96))
    with np.load(PACKAGED_DIR / "niqe" / "niqe_pristine_model.npz") as model:
        mu, cov = model["mu"], model["cov"]
    (tmp_path / "niqe").mkdir()
    np.savez(tmp_path / "niqe" / "niqe_pristine_model.npz", mu=mu + 0.1, cov=cov)
    packaged = float(registry.create("niqe").score([frame])[0])
    monkeypatch.setenv("IQABENCH_WEIGHTS", str(tmp_path))
    metric = registry.create("niqe")
    assert metric.model_files() == [tmp_path / "niqe" / "niqe_pristine_model.npz"]
    assert float(metric.score([frame])[0]) != packaged


def test_niqe_model_parameter(shared: Path, tmp_path: Path) -> None:
    original = SHARED_WEIGHTS / "niqe" / "niqe_pristine_model.npz"
    copy = tmp_path / "copy.npz"
    shutil.copy(original, copy)
    default, explicit = registry.create("niqe"), registry.create("niqe", model=str(copy))
    image = calibration_image("I04")
    assert explicit.score([image])[0] == default.score([image])[0]
    assert "model" in explicit.file_params
    moved = tmp_path / "moved.npz"
    shutil.copy(original, moved)
    assert registry.create("niqe", model=str(moved)).params_hash() == explicit.params_hash()
    with pytest.raises(WeightsNotFoundError, match="NIQE model file not found"):
        registry.create("niqe", model=str(tmp_path / "absent.npz"))
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu=np.zeros(3), cov=np.eye(3))
    with pytest.raises(UserError, match="expected"):
        registry.create("niqe", model=str(bad)).score([image])


# --- fit-niqe -----------------------------------------------------------------------------------


def fit_niqe(*argv: str) -> int:
    from iqabench.commands import fit_niqe_cmd

    parser = argparse.ArgumentParser(prog="iqabench")
    fit_niqe_cmd.add_parser(parser.add_subparsers(dest="command", required=True), "fit-niqe")
    args = parser.parse_args(["fit-niqe", *argv])
    return args.handler(args)


def test_fit_niqe_makes_a_usable_thermal_model(
    shared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "pristine"
    folder.mkdir()
    for name in FIT_FRAMES:
        shutil.copy(THERMAL_PRISTINE / name, folder / name)
    (folder / "README.txt").write_text("not an image, ignored")
    out = tmp_path / "models" / "thermal_niqe.npz"
    assert fit_niqe(str(folder), "--out", str(out)) == 0
    assert "sharp blocks of 12 images" in capsys.readouterr().out
    with np.load(out) as model:
        assert model["mu"].shape == (36,) and model["cov"].shape == (36, 36)
        np.testing.assert_allclose(model["cov"], model["cov"].T)
    metric = registry.create("niqe", model=str(out))
    clean = [load_for_metric(folder / name, "grey")[0] for name in FIT_FRAMES[:4]]
    clean_scores = metric.score(clean)
    noisy_scores = metric.score([awgn(image, 25.0) for image in clean])
    assert np.all(clean_scores < noisy_scores), (clean_scores, noisy_scores)


def test_fit_niqe_user_errors(shared: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "model.npz")
    with pytest.raises(DatasetError, match="not found"):
        fit_niqe(str(tmp_path / "absent"), "--out", out)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        fit_niqe(str(empty), "--out", out)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "frame.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="frame.png"):
        fit_niqe(str(broken), "--out", out)
    single = tmp_path / "single"
    single.mkdir()
    shutil.copy(THERMAL_PRISTINE / FRAME, single / FRAME)
    with pytest.raises(DatasetError, match="sharp 96x96 blocks"):
        fit_niqe(str(single), "--out", out)
    assert not Path(out).exists()
    with pytest.raises(SystemExit):
        fit_niqe(str(single), "--out", out, "--sharpness", "1.5")


# --- shared NSS pieces --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [0.6, 1.0, 2.0, 3.5])
def test_fit_ggd_recovers_shape(shape: float) -> None:
    from scipy.stats import gennorm

    samples = gennorm.rvs(shape, scale=2.0, size=400_000, random_state=1)
    fit = nss.fit_ggd(samples)
    assert fit.alpha == pytest.approx(shape, rel=0.03)
    assert fit.std == pytest.approx(np.sqrt(np.mean(samples**2)))


@pytest.mark.parametrize(("shape", "left", "right"), [(0.8, 1.0, 2.0), (1.5, 3.0, 1.0)])
def test_fit_aggd_recovers_parameters(shape: float, left: float, right: float) -> None:
    from scipy.stats import gennorm

    rng = np.random.default_rng(2)
    n = 400_000
    negative = rng.random(n) < left / (left + right)
    magnitude = np.abs(gennorm.rvs(shape, size=n, random_state=rng))
    samples = np.where(negative, -left * magnitude, right * magnitude)
    fit = nss.fit_aggd(samples)
    assert fit.alpha == pytest.approx(shape, rel=0.03)
    assert fit.beta_left == pytest.approx(left, rel=0.03)
    assert fit.beta_right == pytest.approx(right, rel=0.03)
    assert fit.mean == pytest.approx(samples.mean(), abs=0.03 * (left + right))


def test_fits_vectorise_over_axes() -> None:
    rng = np.random.default_rng(3)
    blocks = rng.laplace(size=(5, 30, 40)) + 0.2
    together = nss.fit_aggd(blocks, axis=(1, 2))
    for index, block in enumerate(blocks):
        alone = nss.fit_aggd(block)
        assert together.alpha[index] == alone.alpha
        assert together.left_std[index] == pytest.approx(alone.left_std, rel=1e-12)
    assert np.allclose(nss.fit_ggd(blocks, axis=(1, 2)).std, np.sqrt((blocks**2).mean((1, 2))))
    # no negative sample: the left deviation is undefined and, as MATLAB's min of an all-NaN
    # vector gives index 1, the shape is the grid's first, 0.2
    undefined = nss.fit_aggd(np.abs(blocks), axis=(1, 2))
    assert (undefined.alpha == 0.2).all() and np.isnan(undefined.left_std).all()
    assert np.isfinite(undefined.right_std).all() and np.isnan(undefined.mean).all()
    assert nss.fit_ggd(np.zeros(10)).alpha == 0.2


def test_gaussian_window_is_matlab_fspecial() -> None:
    window = nss.gaussian_window(7, 7 / 6)
    offsets = np.arange(-3, 4)
    expected = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * (7 / 6) ** 2))
    np.testing.assert_allclose(window, expected / expected.sum(), rtol=1e-14)


def test_mscn_properties() -> None:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (60, 80)).astype(np.float64)
    image[20:40, 20:50] = 128.0
    coefficients = nss.mscn(image)
    assert coefficients.shape == image.shape
    np.testing.assert_allclose(nss.mscn(image + 40.0), coefficients, atol=1e-9)
    # everywhere as the releases under Octave compute it (imfilter 'replicate' is conv2 'valid'
    # of the padded image), and bit for bit in the flat 7x7 neighbourhoods, where the
    # coefficient is rounding noise
    from iqabench.features.conv2 import filter2, sequential_sum
    from iqabench.features.gradients import fspecial_gaussian

    window = fspecial_gaussian(7, 7 / 6)
    window = window / sequential_sum([sequential_sum(column) for column in window.T])
    padded = np.pad(image, 3, mode="edge")
    mean = filter2(window, padded, "valid")
    deviation = np.sqrt(np.abs(filter2(window, padded * padded, "valid") - mean * mean))
    reference = (image - mean) / (deviation + 1.0)
    np.testing.assert_allclose(coefficients, reference, rtol=0, atol=1e-11)
    flat = (slice(23, 37), slice(23, 47))
    assert np.array_equal(coefficients[flat], reference[flat])
    assert 0 < np.abs(coefficients[flat]).max() < 1e-12
    mean, deviation = nss.local_mean_std(image, padding="zeros")
    assert mean[0, 0] < image[1:4, 1:4].mean()  # zero padding darkens the corner
    with pytest.raises(ValueError, match="padding"):
        nss.mscn(image, padding="wrap")


def test_paired_products_are_circular_neighbours() -> None:
    data = np.arange(12.0).reshape(3, 4) + 1
    horizontal, vertical, diagonal, antidiagonal = nss.paired_products(data)
    assert horizontal[1, 2] == data[1, 2] * data[1, 1]
    assert horizontal[1, 0] == data[1, 0] * data[1, 3]
    assert vertical[0, 1] == data[0, 1] * data[2, 1]
    assert diagonal[1, 1] == data[1, 1] * data[0, 0]
    assert antidiagonal[1, 1] == data[1, 1] * data[0, 2]
    stack = np.stack([data, 2 * data])
    assert np.array_equal(nss.paired_products(stack)[0][1], 4 * horizontal)


def test_imresize_matches_matlab_geometry() -> None:
    rows, cols = np.meshgrid(np.arange(1.0, 41.0), np.arange(1.0, 58.0), indexing="ij")
    ramp = 3.0 * rows + 0.5 * cols
    half = nss.imresize(ramp, 0.5)
    assert half.shape == (20, 29)  # ceil(scale * size)
    centre_r, centre_c = np.meshgrid(
        2.0 * np.arange(1, 21) - 0.5, 2.0 * np.arange(1, 30) - 0.5, indexing="ij"
    )
    # bicubic reproduces linear ramps away from the mirrored borders
    np.testing.assert_allclose(
        half[3:-3, 3:-3], (3.0 * centre_r + 0.5 * centre_c)[3:-3, 3:-3], atol=1e-10
    )
    np.testing.assert_allclose(nss.imresize(np.full((9, 7), 42.0), 0.5), 42.0, atol=1e-12)
    assert nss.imresize(ramp, 2.0).shape == (80, 114)


def test_imresize_agrees_with_pyiqa_matlab_port() -> None:
    import torch
    from pyiqa.matlab_utils import imresize as reference

    image = np.random.default_rng(5).random((37, 52)) * 255
    ours = nss.imresize(image, 0.5)
    theirs = reference(torch.from_numpy(image)[None, None], scale=0.5)[0, 0].double().numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-3)  # pyiqa resizes in float32


# --- LIBSVM files -------------------------------------------------------------------------------


def test_libsvm_regressor_matches_sklearn_svr(tmp_path: Path) -> None:
    from sklearn.svm import SVR

    from iqabench.metrics.brisque import LibSVMRegressor

    rng = np.random.default_rng(6)
    features = rng.uniform(-1, 1, (50, 4))
    svr = SVR(kernel="rbf", gamma=0.3, C=5.0).fit(features, features @ [1.0, -2.0, 0.5, 0.0])
    lines = ["svm_type epsilon_svr", "kernel_type rbf", "gamma 0.3", "nr_class 2"]
    lines += [f"total_sv {len(svr.support_)}", f"rho {-float(svr.intercept_[0])!r}", "SV"]
    for coefficient, vector in zip(svr.dual_coef_[0], svr.support_vectors_, strict=True):
        pairs = " ".join(f"{i + 1}:{float(v)!r}" for i, v in enumerate(vector) if v != 0)
        lines.append(f"{float(coefficient)!r} {pairs}")
    (tmp_path / "model").write_text("\n".join(lines) + "\n")
    # a range file mapping 0..2 onto -1..1 (features are shifted by +1 below)
    (tmp_path / "range").write_text("x\n-1 1\n" + "".join(f"{i} 0 2\n" for i in range(1, 5)))
    ours = LibSVMRegressor.from_files(tmp_path / "model", tmp_path / "range")
    probe = rng.uniform(-1, 1, (10, 4))
    np.testing.assert_allclose(ours.predict(probe + 1.0), svr.predict(probe), atol=1e-10)


def test_libsvm_files_refuse_what_they_cannot_read(tmp_path: Path) -> None:
    from iqabench.metrics.brisque import LibSVMRegressor

    model, ranges = tmp_path / "model", tmp_path / "range"
    ranges.write_text("x\n-1 1\n1 0 1\n")
    model.write_text("svm_type c_svc\nkernel_type rbf\ngamma 1\nrho 0\nSV\n1 1:0.5\n")
    with pytest.raises(UserError, match="regression SVR"):
        LibSVMRegressor.from_files(model, ranges)
    model.write_text("svm_type epsilon_svr\nkernel_type linear\ngamma 1\nrho 0\nSV\n1 1:0.5\n")
    with pytest.raises(UserError, match="only rbf"):
        LibSVMRegressor.from_files(model, ranges)
    model.write_text("svm_type epsilon_svr\nkernel_type rbf\ngamma 1\nrho 0\nSV\n1 1:x\n")
    with pytest.raises(UserError, match="malformed LIBSVM model"):
        LibSVMRegressor.from_files(model, ranges)
    model.write_text("svm_type epsilon_svr\nkernel_type rbf\ngamma 1\nrho 0\nSV\n1 2:0.5\n")
    with pytest.raises(UserError, match="covers 1 features"):
        LibSVMRegressor.from_files(model, ranges)
    ranges.write_text("y\n0 1\n")
    with pytest.raises(UserError, match="malformed svm-scale range"):
        LibSVMRegressor.from_files(model, ranges)
