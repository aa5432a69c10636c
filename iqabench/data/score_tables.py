"""Reading score tables (CSV with ``,`` or ``;``, and the LWIR-IQA ``scores.xlsx``).

Every problem a user can cause (missing column, non-numeric score, empty table) raises
:class:`~iqabench.errors.DatasetError` naming the file and the row.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..errors import DatasetError

Row = dict[str, str]


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, Row]]]:
    """Header and ``(line number, row)`` pairs of a ``,`` or ``;`` separated table.

    Parsed as CSV is written: a quoted cell keeps its line breaks, and each row is numbered by
    the line it starts on.
    """
    if not path.is_file():
        raise DatasetError(f"score table not found: {path}")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read score table {path}: {exc}") from None
    first = text.splitlines()[0] if text else ""
    if not first.strip():
        raise DatasetError(f"score table {path} is empty")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [cell.strip() for cell in next(reader)]
        numbered = []
        start = reader.line_num + 1
        for cells in reader:
            numbered.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DatasetError(f"{path} line {reader.line_num}: {exc}") from None
    rows = []
    for number, cells in numbered:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            raise DatasetError(f"{path} line {number}: more cells than the header has")
        row = {key: cells[i].strip() if i < len(cells) else "" for i, key in enumerate(header)}
        rows.append((number, row))
    if not rows:
        raise DatasetError(f"score table {path} lists no images")
    return header, rows


def find_column(header: list[str], candidates: tuple[str, ...], path: Path, what: str) -> str:
    """The header cell matching one of ``candidates`` (case-insensitive), else DatasetError."""
    lowered = {cell.lower().strip(): cell for cell in header}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    raise DatasetError(
        f"{path}: no {what} column (expected one of {', '.join(candidates)}; found "
        f"{', '.join(header) or 'no header'})"
    )


def parse_score(value: str, path: Path, line: int, column: str) -> float:
    """A finite float from a table cell, else DatasetError naming the row."""
    text = value.strip()
    if text.count(",") == 1 and "." not in text:  # a decimal comma, as spreadsheets export
        text = text.replace(",", ".")
    try:
        number = float(text)
    except ValueError:
        shown = value if value else "(empty)"
        raise DatasetError(f"{path} line {line}: {column} {shown!r} is not a number") from None
    if not math.isfinite(number):
        raise DatasetError(f"{path} line {line}: {column} {value!r} is not a finite number")
    return number


def parse_whole_number(value: str, path: Path, line: int, column: str) -> int:
    """A whole number from a table cell (``3`` or ``3.0``; never ``2.7`` cut to 2)."""
    number = parse_score(value, path, line, column)
    if not number.is_integer():
        raise DatasetError(f"{path} line {line}: {column} {value.strip()!r} is not a whole number")
    return int(number)


def read_xlsx_scores(path: Path) -> list[tuple[str, str, float]]:
    """``(sheet!row, image name, score)`` from a spreadsheet, found by header names.

    The header row may be anywhere in the first 20 rows of any sheet; the image-name column is
    the one whose header mentions image/name/file, the score column the one whose header is or
    mentions MOS (or score).
    """
    try:
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise DatasetError(f"cannot read spreadsheet {path}: {exc}") from None
    seen: list[str] = []
    for sheet in book.worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        for index, row in enumerate(rows[:20]):
            cells = [str(c).strip().lower() if c is not None else "" for c in row]
            seen.extend(c for c in cells if c)
            name_col = _first(cells, ("distorted_image", "image", "name", "file", "filename"))
            score_col = _first(cells, ("mos", "dmos", "score", "mean opinion score"))
            if name_col is None or score_col is None:
                continue
            found = []
            for number, data in enumerate(rows[index + 1 :], start=index + 2):
                if data is None or name_col >= len(data) or data[name_col] in (None, ""):
                    continue
                where = f"{sheet.title}!{number}"
                raw = data[score_col] if score_col < len(data) else None
                score = parse_score("" if raw is None else str(raw), path, number, "MOS")
                found.append((where, str(data[name_col]).strip(), score))
            if found:
                return found
    raise DatasetError(
        f"{path}: cannot find an image-name and a MOS column (headers seen: "
        f"{', '.join(sorted(set(seen))[:12]) or 'none'}); export it as scores.csv with "
        "columns Distorted_image;MOS"
    )


def _first(cells: list[str], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        for i, cell in enumerate(cells):
            if cell == key:
                return i
    for key in keys:
        for i, cell in enumerate(cells):
            if key in cell:
                return i
    return None
