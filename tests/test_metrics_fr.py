"""Full-reference metrics VIF, IW-SSIM, IW-PSNR, GMSD and FSIM: calibration and properties."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CALIBRATION, REPO, THERMAL_PRISTINE

from iqabench import registry
from iqabench.cards import metric_card
from iqabench.errors import SizeMismatchError, UserError
from iqabench.imageio import Image, display_window, load_for_metric, read_image, to_metric_input

METRICS = ("vif", "iw-ssim", "iw-psnr", "gmsd", "fsim")
CALIBRATED = ("vif", "gmsd", "fsim")
PAIRS = ("I03", "I04", "I06", "I08", "I19")
#: Score of identical images (IW-PSNR: the authors' cap, since IW-MSE is 0).
BEST = {"vif": 1.0, "iw-ssim": 1.0, "iw-psnr": 1000.0, "gmsd": 0.0, "fsim": 1.0}
#: A textured 192x256 crop of a clean LWIR frame (large enough for 5-scale IW-SSIM).
FRAME = "tno_Kaptein_1654_Kaptein_1654_IR.png"
CROP = (slice(100, 292), slice(150, 406))
NOISE_SIGMAS = (2.0, 5.0, 10.0, 20.0, 40.0)
BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.5, 4.0)


def official_rows(metric: str) -> list[dict[str, str]]:
    with open(CALIBRATION / "official_values.csv", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["metric"] == metric]


def half_last_digit(text: str) -> float:
    """Half a unit in the last printed decimal of ``text`` (the rounding of the printed value)."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0**-decimals


@pytest.fixture(scope="module")
def frame(shared) -> np.ndarray:
    return to_metric_input(read_image(THERMAL_PRISTINE / FRAME), "grey")[CROP]


@pytest.fixture(scope="module")
def series(frame: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Five AWGN and five Gaussian-blur levels of the frame, mildest first."""
    from scipy import ndimage

    noise = np.random.default_rng(0).standard_normal(frame.shape)
    return {
        "noise": [np.clip(frame + sigma * noise, 0, 255) for sigma in NOISE_SIGMAS],
        "blur": [ndimage.gaussian_filter(frame, sigma) for sigma in BLUR_SIGMAS],
    }


@pytest.fixture(scope="module")
def series_scores(frame, series) -> dict[str, dict[str, np.ndarray]]:
    """Every metric on both series, scored once for the property tests."""
    scores: dict[str, dict[str, np.ndarray]] = {}
    for name in METRICS:
        metric = registry.create(name)
        scores[name] = {
            kind: metric.score(images, [frame] * len(images)) for kind, images in series.items()
        }
    return scores


@pytest.mark.parametrize("name", CALIBRATED)
def test_reproduces_official_values(shared, name: str) -> None:
    """Through the registry and the image reader, as the runner would call the metric."""
    rows = official_rows(name)
    assert len(rows) == 3
    metric = registry.create(name)
    loaded = [
        load_for_metric(
            CALIBRATION / "dist" / row["image"], metric.colour, CALIBRATION / "ref" / row["image"]
        )
        for row in rows
    ]
    scores = metric.score([image for image, _ in loaded], [ref for _, ref in loaded])
    worst = 0.0
    for row, value in zip(rows, scores, strict=True):
        official = float(row["value"])
        error = abs(value - official)
        relative = error / abs(official)
        # The CSV prints some values with 3-4 significant digits (VIF on I03: 0.0172), so a
        # value that rounds to the printed one is accepted even past 1e-3 relative.
        assert relative <= 1e-3 or error <= half_last_digit(row["value"]), (row, value)
        worst = max(worst, relative)
        print(f"{name} {row['image']}: {value:.9g} (official {row['value']}, rel {relative:.2e})")
    print(f"{name}: max relative error {worst:.2e}")


def test_fsim_gives_fsimc_on_rgb_and_fsim_on_grey(shared) -> None:
    metric = registry.create("fsim")
    rgb, rgb_ref = load_for_metric(
        CALIBRATION / "dist" / "I03.bmp", "native", CALIBRATION / "ref" / "I03.bmp"
    )
    grey, grey_ref = load_for_metric(
        CALIBRATION / "dist" / "I03.bmp", "grey", CALIBRATION / "ref" / "I03.bmp"
    )
    fsimc, fsim = metric.score([rgb, grey], [rgb_ref, grey_ref])
    assert fsimc == pytest.approx(0.6890, abs=5e-5)  # the official FSIMc
    assert fsim == pytest.approx(0.6979, abs=5e-5)  # grey FSIM is another number
    # Grey replicated to RGB has no chroma: FSIMc is then grey FSIM.
    replicated = metric.score(
        [np.repeat(grey[..., None], 3, axis=2)], [np.repeat(grey_ref[..., None], 3, axis=2)]
    )
    assert replicated[0] == pytest.approx(fsim, rel=1e-9)


def test_iw_ssim_agrees_with_piq(shared) -> None:
    """piq follows the authors' iwssim.m; on 512x384 every pyramid level has even sides, where
    its up-sampling equals matlabPyrTools', so both are float64 renderings of one computation
    (measured difference ~1e-15; on odd-sized levels piq departs, see the card)."""
    import piq
    import torch

    from iqabench.metrics.iw_ssim import iw_pooled

    metric = registry.create("iw-ssim")
    worst_ssim = worst_error = 0.0
    for pair in PAIRS:
        image, ref = load_for_metric(
            CALIBRATION / "dist" / f"{pair}.bmp", "grey", CALIBRATION / "ref" / f"{pair}.bmp"
        )
        ours = metric.score([image], [ref])[0]
        theirs = float(
            piq.information_weighted_ssim(
                torch.from_numpy(image / 255)[None, None],
                torch.from_numpy(ref / 255)[None, None],
                data_range=1.0,
            )
        )
        worst_ssim = max(worst_ssim, abs(ours - theirs) / theirs)
        # IW-PSNR's per-scale weighted squared errors against piq's pyramid and weights.
        _, errors = iw_pooled(image, ref, 5)
        expected = piq_pooled_errors(image, ref)
        worst_error = max(worst_error, float(np.max(np.abs(errors - expected) / expected)))
    print(f"iw-ssim vs piq: max rel {worst_ssim:.2e}; pooled squared errors: {worst_error:.2e}")
    assert worst_ssim <= 1e-9
    assert worst_error <= 1e-9


def piq_pooled_errors(image: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Information-weighted mean squared error per scale, from piq's own pyramid and weights."""
    import torch
    from piq.functional import binomial_filter1d
    from piq.iw_ssim import _information_content, _pyr_step

    low_dist, low_ref = torch.from_numpy(image)[None, None], torch.from_numpy(ref)[None, None]
    kernel = binomial_filter1d(kernel_size=5, dtype=low_dist.dtype) * 2**0.5
    dist_bands, ref_bands = [], []
    for _ in range(4):
        low_dist, band_dist = _pyr_step(low_dist, kernel)
        low_ref, band_ref = _pyr_step(low_ref, kernel)
        dist_bands.append(band_dist)
        ref_bands.append(band_ref)
    dist_bands.append(low_dist)
    ref_bands.append(low_ref)
    errors = []
    for s in range(5):
        squared = ((dist_bands[s] - ref_bands[s]) ** 2)[..., 5:-5, 5:-5]
        if s == 4:
            weights = torch.ones_like(squared)
        else:
            parent = ref_bands[s + 1] if s < 3 else None
            weights = _information_content(dist_bands[s], ref_bands[s], parent)[..., 4:-4, 4:-4]
        errors.append(float((squared * weights).sum() / weights.sum()))
    return np.array(errors)


def test_single_scale_iw_metrics_are_ssim_and_psnr(frame, series) -> None:
    """With one scale there are no weights: IW-SSIM is SSIM and IW-PSNR the PSNR of the region
    SSIM's 11x11 window covers (independent check of the shared computation's pooling)."""
    from skimage.metrics import structural_similarity

    image = series["noise"][2]
    ssim = structural_similarity(
        frame, image, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    mse = np.mean(((frame - image) ** 2)[5:-5, 5:-5])
    assert registry.create("iw-ssim", scales=1).score([image], [frame])[0] == pytest.approx(
        ssim, rel=1e-10
    )
    assert registry.create("iw-psnr", scales=1).score([image], [frame])[0] == pytest.approx(
        10 * np.log10(255**2 / mse), rel=1e-12
    )


@pytest.mark.parametrize("name", METRICS)
def test_identical_images_score_best(frame, name: str) -> None:
    value = registry.create(name).score([frame], [frame])[0]
    assert value == pytest.approx(BEST[name], abs=1e-9)


@pytest.mark.parametrize("name", METRICS)
@pytest.mark.parametrize("kind", ["noise", "blur"])
def test_monotone_with_distortion_level(series_scores, name: str, kind: str) -> None:
    scores = series_scores[name][kind]
    steps = np.diff(scores)
    if registry.get(name).higher_is_better:
        assert np.all(steps < 0), scores
        assert np.all(scores < BEST[name])
    else:
        assert np.all(steps > 0), scores
        assert np.all(scores > BEST[name])


@pytest.mark.parametrize("name", METRICS)
def test_deterministic(frame, series, name: str) -> None:
    images = [series["noise"][1], series["blur"][1]]
    first = registry.create(name).score(images, [frame, frame])
    again = registry.create(name).score(images, [frame, frame])
    assert first.dtype == np.float64 and first.shape == (2,)
    assert np.array_equal(first, again)


@pytest.mark.parametrize("name", METRICS)
def test_accepts_16_bit_input(frame, name: str) -> None:
    """A radiometric uint16 pair goes through the reference's display window."""
    counts = (7000 + 12 * frame).astype(np.uint16)
    noisy = counts + np.random.default_rng(1).integers(0, 200, counts.shape, dtype=np.uint16)
    ref, dist = Image(counts, 16), Image(noisy, 16)
    metric = registry.create(name)
    window = display_window(ref)
    ref_input = to_metric_input(ref, metric.colour, window)
    dist_input = to_metric_input(dist, metric.colour, window)
    value, same = metric.score([dist_input, ref_input], [ref_input, ref_input])
    assert np.isfinite(value) and value != pytest.approx(BEST[name], abs=1e-6)
    assert same == pytest.approx(BEST[name], abs=1e-9)


@pytest.mark.parametrize("name", METRICS)
def test_size_mismatch_names_both_sizes(name: str) -> None:
    image, ref = np.zeros((200, 240)), np.zeros((200, 241))
    with pytest.raises(SizeMismatchError, match="240x200.*241x200"):
        registry.create(name).score([image], [ref])


@pytest.mark.parametrize("name", METRICS)
def test_reference_is_required(name: str) -> None:
    with pytest.raises(UserError):
        registry.create(name).score([np.zeros((200, 200))], None)


@pytest.mark.parametrize("name", ["vif", "iw-ssim", "iw-psnr"])
def test_too_small_images_are_refused(name: str) -> None:
    small = np.random.default_rng(2).random((64, 300)) * 255
    with pytest.raises(UserError, match="at least"):
        registry.create(name).score([small], [small])


def test_iw_scales_parameter() -> None:
    image = np.random.default_rng(3).random((100, 120)) * 255
    assert registry.create("iw-ssim", scales=3).score([image], [image])[0] == pytest.approx(1.0)
    with pytest.raises(UserError, match="scales"):
        registry.create("iw-psnr", scales=6)


@pytest.mark.parametrize("name", METRICS)
def test_card_matches_class(name: str) -> None:
    cls = registry.get(name)
    card = metric_card(name)
    assert card is not None
    assert card["name"] == cls.name and card["family"] == cls.family == "TR-FR"
    assert card["kind"] == "full-reference" and cls.full_reference
    assert card["higher_is_better"] == cls.higher_is_better
    assert card["parameters"] == dict(cls.default_params)
    assert card["implementation"]["entry_point"] == registry.entries()[name].target
    status = card["calibration"]["status"]
    assert status == ("calibrated" if name in CALIBRATED else "properties")


def test_modules_import_without_heavy_libraries() -> None:
    code = (
        "import sys, iqabench.metrics.vif, iqabench.metrics.iw_ssim, iqabench.metrics.gmsd, "
        "iqabench.metrics.fsim; "
        "print(sorted(m for m in ('torch', 'pyiqa', 'piq', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]"


def test_vif_and_fsim_score_without_pyiqa_or_piq() -> None:
    code = (
        "import sys, numpy as np; from iqabench import registry; "
        "rng = np.random.default_rng(0); a = rng.uniform(0, 255, (70, 80)); b = a + 3.0; "
        "[registry.create(n).score([b], [a]) for n in ('vif', 'fsim')]; "
        "print(sorted(m for m in ('pyiqa', 'piq') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]"


def test_vif_taps_are_matlabpyrtools_sp5_filters() -> None:
    from pyiqa.archs.vif_arch import sp5_filters

    from iqabench.metrics.vif import _filters

    published = sp5_filters()  # pyiqa's transcription of sp5Filters.m
    low0, low, bands = _filters()
    assert np.array_equal(low0, np.asarray(published["lo0filt"], dtype=np.float64))
    assert np.array_equal(low, np.asarray(published["lofilt"], dtype=np.float64))
    columns = np.asarray(published["bfilts"], dtype=np.float64)
    for index, band in enumerate(bands):
        assert np.array_equal(band, columns[:, index].reshape(7, 7).T), index


def test_fsim_bank_is_featuresim_m_not_piq() -> None:
    import torch
    from piq.fsim import _construct_filters

    from iqabench.metrics.fsim import log_gabor_bank

    # piq measures the filter angle from the row axis, FeatureSIM.m from the column axis: on a
    # square image the 0-degree filters are each other's transposes, the oblique ones differ
    ours = log_gabor_bank(32, 32)[0].numpy().reshape(4, 4, 32, 32)
    theirs = _construct_filters(torch.zeros((1, 1, 32, 32), dtype=torch.float64))[0].numpy()
    theirs = theirs.reshape(4, 4, 32, 32)
    np.testing.assert_allclose(ours[0], theirs[0].transpose(0, 2, 1), atol=1e-15)
    assert np.abs(ours[1] - theirs[1]).max() > 0.1  # not piq's bank
    assert ours.shape == (4, 4, 32, 32) and (ours >= 0).all() and (ours[:, :, 0, 0] == 0).all()


def test_iw_ssim_and_iw_psnr_share_one_computation_per_pair(shared: Path) -> None:
    from iqabench.metrics import iw_ssim

    image, ref = load_for_metric(CALIBRATION / "dist/I08.bmp", "grey", CALIBRATION / "ref/I08.bmp")
    iw_ssim.forget_remembered()
    fresh = registry.create("iw-psnr").score([image], [ref])
    assert len(iw_ssim._RECENT) == 1
    registry.create("iw-ssim").score([image], [ref])
    assert len(iw_ssim._RECENT) == 1  # the second metric reused the pair's computation
    iw_ssim.forget_remembered()
    assert np.array_equal(registry.create("iw-psnr").score([image], [ref]), fresh)
