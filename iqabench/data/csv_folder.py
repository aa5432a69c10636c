"""Any folder described by a CSV: columns ``image`` (or ``Distorted_image``, as in the
NestConvNeXt-IQA reference code's tables) and ``mos``, optionally ``ref``, ``distortion``,
``level`` and ``content``; ``,`` or ``;`` separated; paths relative to the folder (never
outside it)."""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from .items import Item
from .paths import inside
from .score_tables import find_column, parse_score, parse_whole_number, read_csv_rows


def load_csv_folder(root: Path, table: Path, lower_is_better: bool = False) -> list[Item]:
    """Items listed in ``table``; ``lower_is_better`` for DMOS-like scores."""
    header, rows = read_csv_rows(table)
    image_col = find_column(header, ("image", "distorted_image"), table, "image")
    mos_col = find_column(header, ("mos", "dmos", "score", "quality"), table, "score (mos)")
    optional = {key.lower(): key for key in header}
    items = []
    for line, row in rows:
        if not row[image_col]:
            raise DatasetError(f"{table} line {line}: empty image path")
        image = inside(root, row[image_col], table, line)
        mos = parse_score(row[mos_col], table, line, mos_col)
        ref = None
        if row.get(optional.get("ref", ""), ""):
            ref = inside(root, row[optional["ref"]], table, line)
        level_text = row.get(optional.get("level", ""), "")
        level = parse_whole_number(level_text, table, line, "level") if level_text else None
        content = row.get(optional.get("content", ""), "") or (ref or image).stem
        items.append(
            Item(
                id=Path(row[image_col]).as_posix(),
                image=image,
                mos=mos,
                quality=-mos if lower_is_better else mos,
                content=content,
                ref=ref,
                distortion=row.get(optional.get("distortion", ""), "") or None,
                level=level,
            )
        )
    return items
