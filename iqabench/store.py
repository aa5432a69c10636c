"""The score store: SQLite (WAL) in the run folder; get-or-compute, never compute twice.

Rows are keyed by metric name + metric version + parameters hash + the *content* hash of the
distorted image (and of its reference), so renaming or moving files reuses their scores, and
changing a file, a metric's version or its parameters recomputes. Each batch is one transaction:
a run killed with SIGKILL loses at most the batch in flight and never leaves a corrupt store.

Tables: ``results`` (a scalar score or a feature vector per item, or the item's error),
``predictions`` (a trainable metric's test-item predictions per split, written all at once per
split), ``notes`` (warnings a trainable metric recorded while fitting a split) and
``evaluations`` (statistics already computed, keyed by a hash of the numbers they came from).

SQLite stores a NaN as NULL, so a NULL score of an item stored without an error, and a NULL
prediction, are read back as NaN: a rerun sees exactly the numbers of the first run. A store
that cannot be opened or written (full disk, read-only folder) raises
:class:`~iqabench.errors.StorageError` naming it.

:func:`lock_run_folder` keeps a second run out of a run folder while one is writing to it.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np

from .errors import RunFolderBusyError, StorageError

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    metric TEXT NOT NULL, version TEXT NOT NULL, params TEXT NOT NULL,
    kind TEXT NOT NULL, item TEXT NOT NULL,
    value REAL, vector BLOB, error TEXT, error_kind TEXT, seconds REAL, created REAL NOT NULL,
    PRIMARY KEY (metric, version, params, kind, item)
);
CREATE TABLE IF NOT EXISTS predictions (
    metric TEXT NOT NULL, version TEXT NOT NULL, params TEXT NOT NULL,
    split TEXT NOT NULL, item TEXT NOT NULL, value REAL, created REAL NOT NULL,
    PRIMARY KEY (metric, version, params, split, item)
);
CREATE TABLE IF NOT EXISTS evaluations (key TEXT PRIMARY KEY, result TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notes (
    metric TEXT NOT NULL, version TEXT NOT NULL, params TEXT NOT NULL,
    split TEXT NOT NULL, notes TEXT NOT NULL,
    PRIMARY KEY (metric, version, params, split)
);
"""


@dataclass(frozen=True)
class MetricKey:
    """What identifies a metric's results: name, version and parameters hash."""

    name: str
    version: str
    params: str

    def sql(self) -> tuple[str, str, str]:
        return (self.name, self.version, self.params)


@dataclass(frozen=True)
class Record:
    """One item's stored result: a score, a feature vector, or an error."""

    item: str
    value: float | None = None
    vector: np.ndarray | None = None
    error: str | None = None
    #: ``"input"`` for errors the user can fix (kept), ``"internal"`` for others (retried).
    error_kind: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def default_store_path() -> Path:
    """The score store shared by the commands outside a run folder: ``$IQABENCH_CACHE/scores.db``
    (default ``~/.cache/iqabench/scores.db``)."""
    from .weights import cache_dir

    return cache_dir() / "scores.db"


class ScoreStore:
    """Get-or-compute storage of scores, features and per-split predictions."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self._unwritable(exc) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._transaction():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)
                )
        except sqlite3.Error as exc:
            self._db.close()
            raise self._unwritable(exc) from None

    def _unwritable(self, exc: BaseException) -> StorageError:
        reason = getattr(exc, "strerror", None) or str(exc)
        return StorageError(f"cannot write the score store {self.path}: {reason}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ScoreStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; a full disk or read-only store is a StorageError."""
        try:
            with _Transaction(self._db):
                yield
        except sqlite3.OperationalError as exc:
            raise self._unwritable(exc) from None

    # -- per-item results ------------------------------------------------------------------
    def get(self, key: MetricKey, kind: str, items: Iterable[str]) -> dict[str, Record]:
        """Stored records of ``items`` (missing ones are absent; retryable errors too)."""
        wanted = list(dict.fromkeys(items))
        found: dict[str, Record] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT item, value, vector, error, error_kind, seconds FROM results "
                f"WHERE metric=? AND version=? AND params=? AND kind=? AND item IN ({marks})",
                (*key.sql(), kind, *chunk),
            )
            for item, value, vector, error, error_kind, seconds in rows:
                if error is not None and error_kind != "input":
                    continue  # an internal failure is retried on the next run
                if value is None and vector is None and error is None and kind == "score":
                    value = math.nan  # SQLite keeps a NaN score as NULL
                found[item] = Record(
                    item=item,
                    value=value,
                    vector=None if vector is None else _decode(vector),
                    error=error,
                    error_kind=error_kind,
                    seconds=seconds or 0.0,
                )
        return found

    def put(self, key: MetricKey, kind: str, records: Iterable[Record]) -> None:
        """Store ``records`` in one transaction (replacing earlier rows of the same items)."""
        now = time.time()
        rows = [
            (
                *key.sql(),
                kind,
                r.item,
                r.value,
                None if r.vector is None else _encode(r.vector),
                r.error,
                r.error_kind,
                r.seconds,
                now,
            )
            for r in records
        ]
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
            )

    # -- per-split predictions -------------------------------------------------------------
    def get_predictions(self, key: MetricKey, split: str) -> dict[str, float] | None:
        """A split's stored predictions, or None if that split was never completed."""
        rows = self._db.execute(
            "SELECT item, value FROM predictions WHERE metric=? AND version=? AND params=? "
            "AND split=?",
            (*key.sql(), split),
        ).fetchall()
        if not rows:
            return None
        return {item: math.nan if value is None else value for item, value in rows}

    def get_notes(self, key: MetricKey, split: str) -> list[str]:
        row = self._db.execute(
            "SELECT notes FROM notes WHERE metric=? AND version=? AND params=? AND split=?",
            (*key.sql(), split),
        ).fetchone()
        return list(json.loads(row[0])) if row else []

    def put_predictions(
        self, key: MetricKey, split: str, values: Mapping[str, float], notes: list[str]
    ) -> None:
        """Store a whole split's predictions (and fitting notes) in one transaction."""
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO predictions VALUES (?,?,?,?,?,?,?)",
                [(*key.sql(), split, item, float(v), now) for item, v in values.items()],
            )
            self._db.execute(
                "INSERT OR REPLACE INTO notes VALUES (?,?,?,?,?)",
                (*key.sql(), split, json.dumps(notes)),
            )

    # -- evaluations -------------------------------------------------------------------------
    def get_evaluation(self, key: str) -> dict | None:
        """Statistics stored under ``key`` (a hash of their inputs), or None."""
        row = self._db.execute("SELECT result FROM evaluations WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_evaluation(self, key: str, result: Mapping) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO evaluations VALUES (?, ?)", (key, json.dumps(result))
            )


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


#: The lock file of a run folder; it names the run holding the folder.
LOCK_NAME = ".iqabench.lock"


@contextmanager
def lock_run_folder(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for this run, or raise :class:`~iqabench.errors.RunFolderBusyError`
    naming the run that holds it.

    An advisory lock on ``folder/.iqabench.lock`` (``flock``; ``msvcrt.locking`` on Windows)
    that the operating system releases when its holder ends, however it ends: a killed run
    never leaves a stale lock behind.
    """
    path = Path(folder) / LOCK_NAME
    try:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until the run ends
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunFolderBusyError(
                f"run folder {folder} is in use by another iqabench run ({holder}); wait "
                "for it to finish or write to another --out"
            )
        handle.seek(0)
        handle.truncate()
        since = datetime.now(UTC).isoformat(timespec="seconds")
        handle.write(f"pid {os.getpid()} on {_host()}, since {since}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def _try_lock(handle: IO[str]) -> bool:
    """Take the exclusive lock on ``handle`` without waiting; False when it is held."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _host() -> str:
    import socket

    return socket.gethostname()


def _encode(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f8").tobytes()


def _decode(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f8").copy()
