"""LWIR-IQA (Journal of Electrical Engineering, 2022, doi 10.2478/jee-2022-0011): 20 LWIR
scenes, 500 distorted images, 5 distortion types, MOS from 31 subjects.

Two layouts are in use and both load:

* the authors' release: ``original/IMG_XX.bmp``, ``white-noise/``, ``blurring/``,
  ``non-uniformity/``, ``jpeg/``, ``jpeg2000/`` and ``scores.xlsx``;
* the layout of the NestConvNeXt-IQA reference code: ``scores.csv`` (``Distorted_image;MOS``)
  beside the images.

Type, level and scene come from names such as ``IMG_09_NU (4).bmp``; the reference is
``original/IMG_09.bmp`` when present.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DatasetError
from .items import Item
from .paths import ImageIndex, contained
from .score_tables import find_column, parse_score, read_csv_rows, read_xlsx_scores

NAME_PATTERN = re.compile(
    r"^(?P<scene>IMG_\d+)_(?P<type>AWGN|BLU|NU|JPG|J2K)\s*\((?P<level>\d+)\)", re.IGNORECASE
)
#: Folder of the authors' release -> distortion code.
FOLDER_TYPES = {
    "white-noise": "AWGN",
    "blurring": "BLU",
    "non-uniformity": "NU",
    "jpeg": "JPG",
    "jpeg2000": "J2K",
}


def parse_name(name: str) -> tuple[str, str, int] | None:
    """``(scene, type, level)`` from an LWIR-IQA file name, or None if it does not match."""
    match = NAME_PATTERN.match(Path(name).name)
    if match is None:
        return None
    return match["scene"].upper(), match["type"].upper(), int(match["level"])


def load_lwir_iqa(root: Path) -> list[Item]:
    """Items of an LWIR-IQA folder in either layout."""
    csv_path, xlsx_path = root / "scores.csv", root / "scores.xlsx"
    if csv_path.is_file():
        header, rows = read_csv_rows(csv_path)
        image_col = find_column(header, ("distorted_image", "image", "name"), csv_path, "image")
        mos_col = find_column(header, ("mos",), csv_path, "MOS")
        entries = [
            (line, row[image_col], parse_score(row[mos_col], csv_path, line, "MOS"))
            for line, row in rows
        ]
        table = csv_path
    elif xlsx_path.is_file():
        entries = read_xlsx_scores(xlsx_path)
        table = xlsx_path
    else:
        raise DatasetError(f"{root} has neither scores.csv nor scores.xlsx")
    index = ImageIndex(root)
    items = []
    for line, listed, mos in entries:
        if not listed:
            raise DatasetError(f"{table} line {line}: empty image name")
        path = index.find(listed, table, line)
        item = _item(root, path, listed, mos)
        if item.distortion is None:
            raise DatasetError(
                f"{table} line {line}: {listed!r} is not an LWIR-IQA image name (expected "
                "names such as 'IMG_09_NU (4).bmp', types AWGN, BLU, NU, JPG, J2K, or the "
                "release's type folders); for authentic distortions use --dataset TIIQAD, for "
                "any other folder --dataset csv"
            )
        items.append(item)
    return items


def _item(root: Path, path: Path, listed: str, mos: float) -> Item:
    parsed = parse_name(listed) or parse_name(path.name)
    if parsed is not None:
        scene, kind, level = parsed
    else:
        scene, kind, level = path.stem, FOLDER_TYPES.get(path.parent.name.lower()), None
    ref = _reference(root, scene)
    return Item(
        id=path.relative_to(root).as_posix() if path.is_relative_to(root) else listed,
        image=path,
        mos=mos,
        quality=mos,
        content=scene,
        ref=ref,
        distortion=kind,
        level=level,
    )


def _reference(root: Path, scene: str) -> Path | None:
    folder = root / "original"
    for suffix in (".bmp", ".png", ".BMP", ".PNG"):
        candidate = folder / f"{scene}{suffix}"
        if candidate.is_file():
            return contained(root, candidate, f"reference of {scene}")
    return None
