"""Where pristine frames come from: synthesised scenes, or a folder of the user's own frames.

A :class:`Source` names one content and loads its frame only when asked, so a large folder is
never held in memory at once. Its ``key`` seeds the content's random distortions: the scene
index for synthetic scenes, a checksum of the file stem for user frames (so a frame's noise does
not depend on which other files sit beside it).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DatasetError
from .distortions import Frame
from .scenes import COUNTS_MAX, synthesize_scene

#: File name suffixes read from a folder of user frames (other files are ignored).
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm")
#: Smallest frame side accepted from a user folder, in pixels.
MIN_SIDE = 16
#: Entropy tag of the scene random streams (distortion streams use another tag).
SCENE_STREAM = 1


@dataclass(frozen=True)
class Source:
    """One content: its id, the integer that seeds its distortions, and its frame loader."""

    content: str
    key: int
    load: Callable[[], Frame]


def scene_sources(seed: int, n_scenes: int, size: tuple[int, int], bit_depth: int) -> list[Source]:
    """``n_scenes`` synthetic scenes named scene01, scene02, ..."""
    digits = max(2, len(str(n_scenes)))
    return [
        Source(f"scene{index + 1:0{digits}d}", index, _scene_loader(seed, index, size, bit_depth))
        for index in range(n_scenes)
    ]


def _scene_loader(
    seed: int, index: int, size: tuple[int, int], bit_depth: int
) -> Callable[[], Frame]:
    def load() -> Frame:
        rng = np.random.default_rng(np.random.SeedSequence([seed, SCENE_STREAM, index]))
        scene = synthesize_scene(rng, size)
        if bit_depth == 8:
            return Frame.of(scene.to_uint8())
        return Frame.of(scene.to_counts(), max_value=COUNTS_MAX)

    return load


def folder_sources(folder: Path, bit_depth: int) -> list[Source]:
    """One source per image file in ``folder`` (sorted by name); content id = file stem."""
    if not folder.is_dir():
        raise DatasetError(f"frames folder not found: {folder}")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in frames folder {folder}")
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            raise DatasetError(
                f"two frames share the content id {path.stem!r}: {seen[path.stem]} and {path}"
            )
        seen[path.stem] = path
    return [
        Source(path.stem, zlib.crc32(path.stem.encode("utf-8")), _file_loader(path, bit_depth))
        for path in files
    ]


def _file_loader(path: Path, bit_depth: int) -> Callable[[], Frame]:
    def load() -> Frame:
        return read_frame(path, bit_depth)

    return load


def read_frame(path: Path, bit_depth: int) -> Frame:
    """A user frame as grey at ``bit_depth``.

    RGB becomes grey through MATLAB ``rgb2gray``; a 16-bit frame in an 8-bit dataset is mapped
    through its display window (minimum..maximum onto 0..255, rounded); an 8-bit frame cannot
    make a 16-bit dataset (it has no 16-bit counts) and is refused.
    """
    from ...imageio import read_image, rgb2gray, to_metric_input

    image = read_image(path)
    height, width = image.size
    if min(height, width) < MIN_SIDE:
        raise DatasetError(
            f"frame {path} is {width}x{height}; frames need at least {MIN_SIDE} pixels a side"
        )
    if bit_depth == 16:
        if image.bit_depth != 16:
            raise DatasetError(
                f"frame {path} is {image.bit_depth}-bit; a 16-bit dataset needs 16-bit frames "
                "(build an 8-bit dataset from it instead)"
            )
        return Frame.of(image.pixels)
    if image.bit_depth == 16:
        grey = to_metric_input(image, "grey")
        return Frame.of(np.clip(np.round(grey), 0, 255).astype(np.uint8))
    pixels = rgb2gray(image.pixels) if image.is_rgb else image.pixels
    return Frame.of(pixels)
