"""Writing and reading a run folder's results: ``summary.json`` and ``scores.csv``.

The schema is documented in ``docs/results.md``. Files are written atomically (a temporary file
renamed over the old one), so a run killed while writing never leaves half a summary.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import UserError

SCHEMA = "iqabench.results/1"
SCORE_COLUMNS = (
    "metric",
    "split",
    "item_id",
    "image",
    "ref",
    "distortion",
    "level",
    "content",
    "mos",
    "quality",
    "score",
    "error",
)


def write_summary(out: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``summary.json`` (NaN and infinities become null)."""
    text = json.dumps(_json_safe(summary), indent=2, allow_nan=False)
    return write_text_atomically(out / "summary.json", text + "\n")


def write_scores(out: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``scores.csv`` with :data:`SCORE_COLUMNS`."""
    with ScoresWriter(out) as writer:
        writer.write(rows)
        return writer.commit()


class ScoresWriter:
    """``scores.csv`` written as rows come, so that a run never holds them all: into a
    temporary file beside it, renamed over ``scores.csv`` by :meth:`commit` (the file is the
    old one or the whole new one, never half written). Leaving the ``with`` block without
    committing removes the temporary file; a full disk or read-only folder raises
    :class:`~iqabench.errors.StorageError` naming ``scores.csv``."""

    PREFIX = ".scores.csv."

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / "scores.csv"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.PREFIX)
            self._tmp = Path(tmp)
            self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise _unwritable(self.path, exc) from None
        self._csv = csv.DictWriter(self._handle, fieldnames=SCORE_COLUMNS, lineterminator="\n")
        self._guard(self._csv.writeheader)

    @classmethod
    def remove_stale(cls, out: Path) -> None:
        """Remove the temporary files of runs into ``out`` that were killed while writing
        (call it only while holding the run folder)."""
        for stale in Path(out).glob(f"{cls.PREFIX}*"):
            stale.unlink(missing_ok=True)

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.append(row)

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row (so that a writer can stand where a list of rows is kept)."""
        values = {k: "" if row.get(k) is None else row[k] for k in SCORE_COLUMNS}
        self._guard(lambda: self._csv.writerow(values))

    def commit(self) -> Path:
        """Put the complete file in place of ``scores.csv``."""
        self._guard(self._handle.close)
        self._guard(lambda: os.replace(self._tmp, self.path))
        return self.path

    def _guard(self, operation: Any) -> None:
        try:
            operation()
        except OSError as exc:
            raise _unwritable(self.path, exc) from None

    def __enter__(self) -> ScoresWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._handle.closed:
            try:
                self._handle.close()
            except OSError:
                pass  # a full disk: the file is removed anyway
        self._tmp.unlink(missing_ok=True)


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The summary of a run folder, refusing anything that is not one."""
    path = Path(run_dir) / "summary.json"
    if not Path(run_dir).is_dir():
        raise UserError(f"run folder not found: {run_dir}")
    if not path.is_file():
        raise UserError(f"{run_dir} has no summary.json: is it a folder written by `iqabench run`?")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if not isinstance(summary, dict) or summary.get("schema") != SCHEMA:
        raise UserError(f"{path} is not an iqabench results file (schema {SCHEMA})")
    return summary


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``: the
    file is either the old one or the whole new one, never half written. A full disk or a
    read-only folder raises :class:`~iqabench.errors.StorageError` naming ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _unwritable(path, exc) from None
        raise
    return path


def _unwritable(path: Path, exc: OSError) -> Exception:
    """A StorageError for a full disk or forbidden folder; other OS errors as they are."""
    from .errors import STORAGE_ERRNOS, storage_error

    return storage_error(path, exc) if exc.errno in STORAGE_ERRNOS else exc


def _json_safe(value: Any) -> Any:
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _json_safe(value.item())
    if isinstance(value, Path):
        return str(value)
    return value
