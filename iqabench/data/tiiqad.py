"""TIIQAD, the thermal infrared image quality assessment database of authentic distortions
(ICIP 2024, doi 10.1109/ICIP51287.2024.10648145): ``images/`` and ``scores.csv``
(``Distorted_image;MOS``). No references: no-reference metrics only; each image is its own
content for splitting. A table listing LWIR-IQA names (``IMG_09_NU (4).bmp``) is refused: those
images share scenes, and splitting them one by one would leak scenes into the test sets.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from .items import Item
from .lwir_iqa import parse_name
from .paths import inside
from .score_tables import find_column, parse_score, read_csv_rows


def load_tiiqad(root: Path) -> list[Item]:
    """Items of a TIIQAD folder (paths in the table are relative to ``images/``)."""
    table = root / "scores.csv"
    header, rows = read_csv_rows(table)
    image_col = find_column(header, ("distorted_image", "image", "name"), table, "image")
    mos_col = find_column(header, ("mos",), table, "MOS")
    images = root / "images"
    base = images if images.is_dir() else root
    items = []
    for line, row in rows:
        if parse_name(row[image_col]) is not None:
            raise DatasetError(
                f"{table} line {line}: {row[image_col]!r} is an LWIR-IQA name (scene, type and "
                "level of a synthetic distortion), not a TIIQAD image: use --dataset LWIR_IQA, "
                "which keeps each scene's images together in the splits"
            )
        mos = parse_score(row[mos_col], table, line, "MOS")
        path = inside(base, row[image_col], table, line)
        items.append(
            Item(
                id=path.relative_to(root).as_posix(),
                image=path,
                mos=mos,
                quality=mos,
                content=Path(row[image_col]).stem,
            )
        )
    return items
