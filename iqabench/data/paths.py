"""Resolving image paths listed in a score table, safely, inside a dataset folder.

Every loader takes every path it reads through :func:`inside` (a path listed in a table) or
:func:`contained` (a file it found itself): absolute paths, ``..`` and symbolic links that
lead out of the dataset root are refused with one line naming the table row or the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetError

IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pgm", ".ppm", ".jp2")


def inside(root: Path, relative: str, table: Path, line: int | str) -> Path:
    """``root / relative``, refusing absolute paths and paths that escape ``root``."""
    candidate = Path(relative.replace("\\", "/"))
    if candidate.is_absolute():
        raise DatasetError(f"{table} line {line}: absolute path {relative!r} refused")
    return contained(root, root / candidate, f"{table} line {line}")


def contained(root: Path, path: Path, where: str) -> Path:
    """``path`` if it lies inside ``root`` once ``..`` and symbolic links are followed; else
    :class:`~iqabench.errors.DatasetError` saying ``where`` it came from."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DatasetError(f"{where}: {path} escapes {root} (it leads to {resolved})")
    return path


class ImageIndex:
    """Every image file under a folder, found by relative path, file name or stem."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_name: dict[str, list[Path]] = {}
        found = []
        for folder, _, names in os.walk(root):  # symbolic links to folders are not followed
            found.extend(Path(folder) / name for name in names)
        for path in sorted(found):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                for key in (path.name.lower(), path.stem.lower()):
                    self._by_name.setdefault(key, []).append(path)

    def find(self, listed: str, table: Path, line: int | str) -> Path:
        """The file a table entry means: its relative path, else a unique name/stem match
        (else the relative path, to be reported missing); never a file outside the root."""
        direct = inside(self.root, listed, table, line)
        if direct.is_file():
            return direct
        matches = self._by_name.get(Path(listed).name.lower(), [])
        if len(matches) != 1:
            return direct
        return contained(self.root, matches[0], f"{table} line {line}")
