"""Resolving image paths listed in a score table, safely, inside a dataset folder."""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError

IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pgm", ".ppm", ".jp2")


def inside(root: Path, relative: str, table: Path, line: int | str) -> Path:
    """``root / relative``, refusing absolute paths and paths that escape ``root``."""
    candidate = Path(relative.replace("\\", "/"))
    if candidate.is_absolute():
        raise DatasetError(f"{table} line {line}: absolute path {relative!r} refused")
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DatasetError(f"{table} line {line}: path {relative!r} escapes {root}")
    return root / candidate


class ImageIndex:
    """Every image file under a folder, found by relative path, file name or stem."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_name: dict[str, list[Path]] = {}
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                for key in (path.name.lower(), path.stem.lower()):
                    self._by_name.setdefault(key, []).append(path)

    def find(self, listed: str) -> Path | None:
        """The file a table entry means: its relative path, else a unique name/stem match."""
        direct = self.root / listed
        if direct.is_file():
            return direct
        matches = self._by_name.get(Path(listed).name.lower(), [])
        return matches[0] if len(matches) == 1 else None
