"""The built-in synthetic-lwir generator: determinism, layout, level order, bit depths, user
frames, refusals and the atomic cache build."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, THERMAL_PRISTINE
from PIL import Image

from iqabench.data.synthetic import (
    DISTORTIONS,
    GENERATOR_VERSION,
    RECIPE,
    build_synthetic_lwir,
    default_synthetic_dir,
    ensure_synthetic_lwir,
)
from iqabench.data.synthetic import build as build_module
from iqabench.errors import DatasetError, ImageReadError
from iqabench.imageio import read_image

HEADER = ["image", "ref", "mos", "distortion", "level", "content"]


@pytest.fixture(scope="module")
def default_build() -> Path:
    """The default 8-bit build, made through the cache as a first use would make it."""
    return ensure_synthetic_lwir()


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "scores.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _psnr_by_level(folder: Path) -> dict[str, list[float]]:
    """Mean PSNR (display scale, the reference's window) over contents, per type and level."""
    values: dict[tuple[str, int], list[float]] = {}
    for row in _rows(folder):
        reference = read_image(folder / row["ref"])
        ref = reference.pixels.astype(np.float64)
        image = read_image(folder / row["image"]).pixels.astype(np.float64)
        span = max(ref.max() - ref.min(), 1.0) if reference.bit_depth == 16 else 255.0
        mse = np.mean(((image - ref) * (255.0 / span)) ** 2)
        psnr = 10.0 * np.log10(255.0**2 / max(mse, 1e-12))
        values.setdefault((row["distortion"], int(row["level"])), []).append(psnr)
    return {
        code: [float(np.mean(values[(code, level)])) for level in range(1, 6)]
        for code in DISTORTIONS
    }


def _assert_strictly_decreasing(psnr: dict[str, list[float]]) -> None:
    for code, by_level in psnr.items():
        assert all(np.diff(by_level) < 0), (code, by_level)


def test_default_build_layout_and_scores(default_build: Path) -> None:
    assert default_build == default_synthetic_dir()
    assert GENERATOR_VERSION in default_build.name
    references = sorted(p.name for p in (default_build / "reference").iterdir())
    distorted = sorted(p.name for p in (default_build / "distorted").iterdir())
    assert len(references) == 12 and len(distorted) == 12 * 25
    with open(default_build / "scores.csv", encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(HEADER)
    rows = _rows(default_build)
    assert len(rows) == 300
    for row in rows:
        level = int(row["level"])
        assert int(row["mos"]) == 6 - level
        assert row["image"] == f"distorted/{row['content']}_{row['distortion']}_{level}.png"
        assert row["ref"] == f"reference/{row['content']}.png"
        assert (default_build / row["image"]).is_file()
    assert {r["distortion"] for r in rows} == set(DISTORTIONS)
    reference = read_image(default_build / rows[0]["ref"])
    assert reference.bit_depth == 8 and reference.size == (256, 320) and not reference.is_rgb
    manifest = json.loads((default_build / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["generator_version"] == GENERATOR_VERSION
    assert manifest["seed"] == 0 and manifest["bit_depth"] == 8
    assert manifest["source"] == {"kind": "synthetic", "n_scenes": 12, "size": [256, 320]}
    assert manifest["contents"] == [f"scene{i:02d}" for i in range(1, 13)]
    assert manifest["recipe"]["NU"]["levels"]["5"] == RECIPE["NU"].levels[4]


def test_scenes_vary(default_build: Path) -> None:
    frames = [read_image(p).pixels for p in sorted((default_build / "reference").iterdir())]
    means = [float(f.mean()) for f in frames]
    assert np.std(means) > 5.0
    for frame in frames:
        assert 15.0 < frame.std() < 90.0  # thermal-like: moderate global contrast, not flat


def test_levels_are_ordered(default_build: Path) -> None:
    _assert_strictly_decreasing(_psnr_by_level(default_build))


def test_same_seed_gives_identical_bytes(default_build: Path, tmp_path: Path) -> None:
    again = build_synthetic_lwir(tmp_path / "again")
    assert _files(again) == _files(default_build)


def test_other_seed_differs(default_build: Path, tmp_path: Path) -> None:
    other = build_synthetic_lwir(tmp_path / "other", seed=1, n_scenes=2)
    for name in ("reference/scene01.png", "distorted/scene02_AWGN_1.png"):
        assert (other / name).read_bytes() != (default_build / name).read_bytes()


def test_sixteen_bit_variant(tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    folder = build_synthetic_lwir(
        tmp_path / "16", n_scenes=2, bit_depth=16, progress=lambda *a: progress.append(a)
    )
    assert progress == [(1, 2), (2, 2)]
    for name in ("reference/scene01.png", "distorted/scene01_JPG_3.png"):
        image = read_image(folder / name)
        assert image.bit_depth == 16 and image.pixels.dtype == np.uint16
        assert 0 < image.pixels.min() and image.pixels.max() <= 16383
    reference = read_image(folder / "reference/scene02.png").pixels
    assert len(np.unique(reference)) > 1000  # real 16-bit precision, not 8-bit data
    assert json.loads((folder / "manifest.json").read_text())["value_range"] == [0, 16383]
    _assert_strictly_decreasing(_psnr_by_level(folder))


def test_build_from_real_frames(shared: Path, tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    names = sorted(p.name for p in THERMAL_PRISTINE.glob("*.png"))[:2]
    for name in names:
        shutil.copy(THERMAL_PRISTINE / name, frames / name)
    grey = np.asarray(Image.open(THERMAL_PRISTINE / names[0]))[:96, :128]
    Image.fromarray(np.dstack([grey] * 3)).save(frames / "rgb_frame.png")
    (frames / "notes.txt").write_text("not an image", encoding="utf-8")
    folder = build_synthetic_lwir(tmp_path / "out", from_dir=frames)
    contents = [Path(n).stem for n in names] + ["rgb_frame"]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["contents"] == sorted(contents)
    assert manifest["source"] == {"kind": "frames", "files": 3}
    rows = _rows(folder)
    assert len(rows) == 75 and {r["content"] for r in rows} == set(contents)
    reference = read_image(folder / "reference/rgb_frame.png")
    assert not reference.is_rgb and np.array_equal(reference.pixels, grey)
    original = read_image(THERMAL_PRISTINE / names[1]).pixels
    assert np.array_equal(read_image(folder / f"reference/{Path(names[1]).stem}.png").pixels,
                          original)  # fmt: skip
    _assert_strictly_decreasing(_psnr_by_level(folder))


def test_sixteen_bit_user_frames(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    ramp = np.add.outer(np.arange(64), np.arange(80)).astype(np.uint16) * 30 + 20000
    Image.fromarray(ramp).save(frames / "counts.png")
    folder = build_synthetic_lwir(tmp_path / "out", from_dir=frames, bit_depth=16)
    assert np.array_equal(read_image(folder / "reference/counts.png").pixels, ramp)
    assert read_image(folder / "distorted/counts_J2K_5.png").bit_depth == 16
    eight_bit = build_synthetic_lwir(tmp_path / "out8", from_dir=frames, bit_depth=8)
    assert read_image(eight_bit / "reference/counts.png").bit_depth == 8
    Image.fromarray(np.zeros((64, 80), np.uint8)).save(frames / "grey.png")
    with pytest.raises(DatasetError, match="grey.png is 8-bit"):
        build_synthetic_lwir(tmp_path / "refused", from_dir=frames, bit_depth=16)
    assert not (tmp_path / "refused").exists()


def test_refuses_non_empty_output(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(DatasetError, match="not empty"):
        build_synthetic_lwir(tmp_path / "out", n_scenes=1)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_refuses_empty_or_unreadable_frames(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "README.md").write_text("no images here", encoding="utf-8")
    with pytest.raises(DatasetError, match="no images"):
        build_synthetic_lwir(tmp_path / "out", from_dir=frames)
    Image.fromarray(np.full((32, 32), 90, np.uint8)).save(frames / "a_good.png")
    (frames / "b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "out").mkdir()
    with pytest.raises(ImageReadError, match="b_broken.png"):
        build_synthetic_lwir(tmp_path / "out", from_dir=frames)
    assert list((tmp_path / "out").iterdir()) == []  # the failed build left nothing behind
    with pytest.raises(DatasetError, match="bit depth"):
        build_synthetic_lwir(tmp_path / "x", bit_depth=12)


def _small_builds(monkeypatch: pytest.MonkeyPatch, calls: list[Path]) -> None:
    """Make ensure's builds one small scene, recording each build's folder."""
    real = build_module.build_synthetic_lwir

    def small(out_dir: Path, **options: object) -> Path:
        calls.append(Path(out_dir))
        return real(out_dir, **{**options, "n_scenes": 1, "size": (64, 80)})

    monkeypatch.setattr(build_module, "build_synthetic_lwir", small)


def test_ensure_is_atomic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "cache"))
    calls: list[Path] = []
    _small_builds(monkeypatch, calls)
    target = default_synthetic_dir(seed=3)
    stale = target.parent / f".{target.name}.tmp-killed"
    (stale / "reference").mkdir(parents=True)
    (stale / "reference" / "scene01.png").write_bytes(b"half")
    old = 1_000_000_000
    os.utime(stale, (old, old))
    assert ensure_synthetic_lwir(seed=3) == target
    assert (target / "manifest.json").is_file() and len(calls) == 1
    assert calls[0].parent == target.parent and calls[0] != target  # built beside, renamed
    assert not stale.exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]
    assert ensure_synthetic_lwir(seed=3) == target and len(calls) == 1  # built once


def test_ensure_loser_of_race_uses_winner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IQABENCH_CACHE", str(tmp_path / "cache"))
    calls: list[Path] = []
    _small_builds(monkeypatch, calls)
    target = default_synthetic_dir(seed=4)
    real_replace = os.replace

    def rival_finishes_first(src: Path, dst: Path) -> None:
        shutil.copytree(src, dst)  # another process renamed its complete build into place
        (Path(dst) / "winner").write_text("", encoding="utf-8")
        real_replace(src, dst)

    monkeypatch.setattr(build_module.os, "replace", rival_finishes_first)
    assert ensure_synthetic_lwir(seed=4) == target
    assert (target / "winner").exists() and (target / "manifest.json").is_file()
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_dataset_card_matches_recipe() -> None:
    with open(REPO / "datasets" / "synthetic-lwir.yaml", encoding="utf-8") as handle:
        card = yaml.safe_load(handle)
    assert card["name"] == "synthetic-lwir"
    assert "NOT a MOS" in card["score"]["type"] and card["score"]["higher_is_better"] is True
    assert str(card["generator"]["version"]) == GENERATOR_VERSION
    assert list(card["distortions"]) == list(DISTORTIONS)
    for code, distortion in RECIPE.items():
        levels = card["distortions"][code]["levels"]
        assert [levels[i] for i in range(1, 6)] == list(distortion.levels), code
