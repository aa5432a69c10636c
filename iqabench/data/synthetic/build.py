"""Writing a synthetic-lwir folder, and keeping the default one in the iqabench cache.

Layout of a built folder (all paths relative to it, forward slashes)::

    reference/<content>.png                  pristine frames (8-bit grey or 16-bit counts)
    distorted/<content>_<TYPE>_<level>.png   25 per content (5 types x 5 levels)
    scores.csv                               image,ref,mos,distortion,level,content
    manifest.json                            generator version, seed, bit depth, recipe, contents

``mos`` is NOT a mean opinion score: it is the ordinal quality ``6 - level`` (5 = mildest,
1 = worst), given so that every correlation statistic is defined on this dataset.

The same arguments always give byte-identical files (the same numpy, SciPy and Pillow).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...errors import DatasetError
from .distortions import DISTORTIONS, N_LEVELS, RECIPE, Draws, recipe_description
from .scenes import COUNTS_MAX
from .sources import Source, folder_sources, scene_sources

#: Version of the generator's output; bump it whenever any output byte changes.
GENERATOR_VERSION = "1"
NAME = "synthetic-lwir"
#: Entropy tag of the distortion random streams (scenes use another tag).
DISTORTION_STREAM = 2
#: Smallest synthetic frame side, in pixels.
MIN_SIZE = 32
#: Temporary build folders older than this (seconds) belong to killed builds and are removed.
STALE_AFTER_S = 3600.0
SCORE_COLUMNS = ("image", "ref", "mos", "distortion", "level", "content")

Progress = Callable[[int, int], None]


def build_synthetic_lwir(
    out_dir: Path,
    *,
    seed: int = 0,
    n_scenes: int = 12,
    size: tuple[int, int] = (256, 320),
    bit_depth: int = 8,
    from_dir: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the dataset into ``out_dir`` (absent or empty) and return it.

    ``size`` is (height, width) of the synthetic scenes; with ``from_dir`` the scenes are the
    images of that folder instead (``n_scenes`` and ``size`` are then unused). ``progress`` is
    called as ``progress(done, total)`` after each content. Raises
    :class:`~iqabench.errors.DatasetError` for bad options, a non-empty ``out_dir`` or an empty
    frames folder, and :class:`~iqabench.errors.ImageReadError` for an unreadable frame; a
    failed build leaves ``out_dir`` as it found it.
    """
    _check_options(seed, n_scenes, size, bit_depth)
    out_dir = Path(out_dir)
    if from_dir is not None:
        sources = folder_sources(Path(from_dir), bit_depth)
        origin: dict[str, object] = {"kind": "frames", "files": len(sources)}
    else:
        sources = scene_sources(seed, n_scenes, size, bit_depth)
        origin = {"kind": "synthetic", "n_scenes": n_scenes, "size": list(size)}
    created = _claim_empty(out_dir)
    try:
        rows = _write_all(out_dir, sources, seed, progress)
        _write_scores(out_dir / "scores.csv", rows)
        _write_manifest(out_dir, seed, bit_depth, origin, [s.content for s in sources])
    except BaseException:
        _undo(out_dir, created)
        raise
    return out_dir


def default_synthetic_dir(seed: int = 0, bit_depth: int = 8) -> Path:
    """Where :func:`ensure_synthetic_lwir` keeps the default build in the iqabench cache."""
    from ...weights import cache_dir

    name = f"{NAME}-v{GENERATOR_VERSION}-seed{seed}-{bit_depth}bit"
    return cache_dir() / "datasets" / name


def ensure_synthetic_lwir(
    seed: int = 0, bit_depth: int = 8, progress: Progress | None = None
) -> Path:
    """The default build (12 scenes, 320x256) in the cache, built on first use.

    The build goes into a temporary sibling folder renamed into place when complete, so a
    killed build never leaves a half dataset; a concurrent builder that loses the rename race
    uses the winner's folder.
    """
    target = default_synthetic_dir(seed, bit_depth)
    if _is_complete(target):
        return target
    if target.is_dir() and any(target.iterdir()):
        raise DatasetError(
            f"incomplete {NAME} folder {target} (no manifest.json); delete it to rebuild"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(target)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        build_synthetic_lwir(scratch, seed=seed, bit_depth=bit_depth, progress=progress)
        try:
            os.replace(scratch, target)
        except OSError:
            if not _is_complete(target):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def made_dataset_name(root: Path) -> str | None:
    """The display name of a folder made by ``iqabench make-dataset synthetic-lwir``.

    A made folder keeps its own name, e.g. ``tno (Synthetic LWIR recipe on your frames, 8-bit)``
    or ``seed7 (Synthetic LWIR, seed 7, 16-bit)``; None for the built-in default build in the
    cache, and for any folder without this generator's ``manifest.json``.
    """
    root = Path(root)
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict) or manifest.get("name") != NAME:
        return None
    seed, bits = manifest.get("seed"), manifest.get("bit_depth")
    if isinstance(seed, int) and isinstance(bits, int):
        default = default_synthetic_dir(seed, bits)
        if root.resolve() == default.resolve():
            return None
    source = manifest.get("source") if isinstance(manifest.get("source"), dict) else {}
    if source.get("kind") == "frames":
        return f"{root.name} (Synthetic LWIR recipe on your frames, {bits}-bit)"
    return f"{root.name} (Synthetic LWIR, seed {seed}, {bits}-bit)"


def _check_options(seed: int, n_scenes: int, size: tuple[int, int], bit_depth: int) -> None:
    if bit_depth not in (8, 16):
        raise DatasetError(f"{NAME}: bit depth must be 8 or 16, not {bit_depth}")
    if int(seed) != seed or seed < 0:
        raise DatasetError(f"{NAME}: seed must be a non-negative integer, not {seed}")
    if n_scenes < 1:
        raise DatasetError(f"{NAME}: the number of scenes must be at least 1, not {n_scenes}")
    if len(size) != 2 or min(size) < MIN_SIZE:
        raise DatasetError(
            f"{NAME}: size must be (height, width) of at least {MIN_SIZE} pixels, not {size}"
        )


def _claim_empty(out_dir: Path) -> bool:
    """Make sure ``out_dir`` exists and is empty; True when this call created it."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise DatasetError(f"output folder {out_dir} is a file")
        if any(out_dir.iterdir()):
            raise DatasetError(f"output folder {out_dir} is not empty; choose an empty folder")
        return False
    out_dir.mkdir(parents=True)
    return True


def _undo(out_dir: Path, created: bool) -> None:
    if created:
        shutil.rmtree(out_dir, ignore_errors=True)
        return
    for child in out_dir.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _write_all(
    out_dir: Path, sources: list[Source], seed: int, progress: Progress | None
) -> list[dict[str, object]]:
    (out_dir / "reference").mkdir()
    (out_dir / "distorted").mkdir()
    rows: list[dict[str, object]] = []
    for done, source in enumerate(sources, start=1):
        rows.extend(_write_content(out_dir, source, seed))
        if progress is not None:
            progress(done, len(sources))
    return rows


def _write_content(out_dir: Path, source: Source, seed: int) -> list[dict[str, object]]:
    frame = source.load()
    ref = f"reference/{source.content}.png"
    _write_png(out_dir / ref, frame.store(frame.pixels))
    rows: list[dict[str, object]] = []
    for index, code in enumerate(DISTORTIONS):
        distortion = RECIPE[code]
        shared = _draws(seed, source.key, index, 0) if distortion.shared_pattern else None
        for level in range(1, N_LEVELS + 1):
            draws = shared or _draws(seed, source.key, index, level)
            image = f"distorted/{source.content}_{code}_{level}.png"
            _write_png(out_dir / image, distortion(frame, level, draws))
            rows.append(
                {
                    "image": image,
                    "ref": ref,
                    "mos": N_LEVELS + 1 - level,
                    "distortion": code,
                    "level": level,
                    "content": source.content,
                }
            )
    return rows


def _draws(seed: int, key: int, distortion: int, level: int) -> Draws:
    """Random draws of one content's distortion (``level`` 0: shared by all levels)."""
    entropy = [seed, DISTORTION_STREAM, key, distortion, level]
    return Draws(np.random.default_rng(np.random.SeedSequence(entropy)))


def _write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(pixels).save(path, format="PNG", compress_level=1)


def _write_scores(path: Path, rows: list[dict[str, object]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SCORE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _write_manifest(
    out_dir: Path, seed: int, bit_depth: int, origin: dict[str, object], contents: list[str]
) -> None:
    manifest = {
        "name": NAME,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "bit_depth": bit_depth,
        "source": origin,
        "value_range": _value_range(bit_depth, origin),
        "score": "mos = 6 - level: ordinal quality (5 mildest .. 1 worst), NOT a mean opinion "
        "score",
        "levels": N_LEVELS,
        "recipe": recipe_description(),
        "contents": contents,
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (out_dir / "manifest.json").write_text(text, encoding="utf-8")


def _value_range(bit_depth: int, origin: dict[str, object]) -> list[int]:
    if bit_depth == 8:
        return [0, 255]
    return [0, COUNTS_MAX if origin["kind"] == "synthetic" else 65535]


def _is_complete(folder: Path) -> bool:
    return (folder / "manifest.json").is_file()


def _remove_stale_builds(target: Path) -> None:
    """Delete temporary folders that killed builds of ``target`` left behind."""
    cutoff = time.time() - STALE_AFTER_S
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        try:
            if leftover.is_dir() and leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue
