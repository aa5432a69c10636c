"""Image reading the MATLAB way, display windows for 16-bit data, content keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from iqabench.errors import ImageReadError, SizeMismatchError
from iqabench.imageio import (
    content_key,
    load_for_metric,
    read_image,
    rgb2gray,
    to_metric_input,
)


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    PILImage.fromarray(array, mode=mode).save(path)
    return path


def test_rgb2gray_matches_matlab_coefficients_and_rounding() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    grey = rgb2gray(rgb)
    # 0.298936*255 = 76.229 -> 76; 0.587043*255 = 149.70 -> 150; 0.114021*255 = 29.08 -> 29
    assert grey.dtype == np.uint8
    assert grey.tolist() == [[76, 150, 29, 18]]
    floats = rgb2gray(rgb.astype(np.float64))
    assert floats[0, 3] == pytest.approx(
        0.298936021293775 * 10 + 0.587043074451121 * 20 + 0.114020904255103 * 30
    )


def test_reads_grey_rgb_palette_and_16_bit(tmp_path: Path) -> None:
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert read_image(_save(tmp_path / "g.png", grey)).bit_depth == 8
    rgb = np.stack([grey, grey // 2, grey // 3], axis=2)
    loaded = read_image(_save(tmp_path / "c.bmp", rgb))
    assert loaded.is_rgb and np.array_equal(loaded.pixels, rgb)
    palette = PILImage.fromarray(rgb).convert("P")
    palette.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").is_rgb
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    PILImage.fromarray(deep).save(tmp_path / "d.png")
    loaded16 = read_image(tmp_path / "d.png")
    assert loaded16.bit_depth == 16 and loaded16.pixels.max() == 63000


def test_16_bit_is_mapped_through_the_reference_window(tmp_path: Path) -> None:
    ref = np.full((8, 8), 8000, dtype=np.uint16)
    ref[0, 0], ref[0, 1] = 7000, 9000
    dist = ref.copy()
    dist[4, 4] = 9500
    PILImage.fromarray(ref).save(tmp_path / "r.png")
    PILImage.fromarray(dist).save(tmp_path / "d.png")
    image, reference = load_for_metric(tmp_path / "d.png", "grey", tmp_path / "r.png")
    assert reference.min() == 0.0 and reference.max() == 255.0
    assert image[4, 4] == pytest.approx((9500 - 7000) * 255 / 2000)  # same window, no clipping
    alone = to_metric_input(read_image(tmp_path / "d.png"), "grey")
    assert alone.max() == 255.0  # no-reference: the image's own window


def test_colour_conventions(tmp_path: Path) -> None:
    grey = np.full((4, 4), 100, dtype=np.uint8)
    image = read_image(_save(tmp_path / "g.png", grey))
    assert to_metric_input(image, "rgb").shape == (4, 4, 3)
    assert to_metric_input(image, "native").shape == (4, 4)
    rgb = read_image(_save(tmp_path / "c.png", np.stack([grey] * 3, axis=2)))
    assert to_metric_input(rgb, "grey").shape == (4, 4)
    dist, ref = load_for_metric(tmp_path / "g.png", "native", tmp_path / "c.png")
    assert dist.shape == ref.shape == (4, 4, 3)


def test_unreadable_truncated_and_missing_images(tmp_path: Path) -> None:
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageReadError, match="text.png"):
        read_image(tmp_path / "text.png")
    full = _save(
        tmp_path / "full.png", np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    )
    (tmp_path / "cut.png").write_bytes(full.read_bytes()[:300])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "absent.png")


def test_size_mismatch_names_both_sizes(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", np.zeros((8, 10), dtype=np.uint8))
    _save(tmp_path / "b.png", np.zeros((8, 12), dtype=np.uint8))
    with pytest.raises(SizeMismatchError, match="10x8.*12x8"):
        load_for_metric(tmp_path / "a.png", "grey", tmp_path / "b.png")


def test_content_key_follows_content_not_name(tmp_path: Path) -> None:
    a = _save(tmp_path / "a.png", np.zeros((4, 4), dtype=np.uint8))
    b = tmp_path / "b.png"
    b.write_bytes(a.read_bytes())
    c = _save(tmp_path / "c.png", np.ones((4, 4), dtype=np.uint8))
    assert content_key(a) == content_key(b) != content_key(c)
    assert content_key(a, c) != content_key(a, b)
