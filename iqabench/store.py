"""The score store: SQLite (WAL), shared by runs; get-or-compute, never compute twice.

One store serves every run (default ``$IQABENCH_CACHE/scores.db``, see
:func:`default_store_path`; ``iqabench run --store PATH`` for another): rows are keyed by metric
name + metric version + parameters hash + the *content* hash of the distorted image (and of its
reference), so renaming or moving files, or running into another run folder, reuses their
scores, and changing a file, a metric's version or its parameters recomputes. Each batch is one
transaction: a run killed with SIGKILL loses at most the batch in flight and never leaves a
corrupt store. Several processes may use one store at once (runs into different run folders):
SQLite's WAL lets readers work beside the one writer, every write is one ``BEGIN IMMEDIATE``
transaction, and a write or read that finds the store busy is retried (:data:`BUSY_PATIENCE`
seconds in all). SQLite's locking needs a local disk, not a network file system; with a Dask
cluster only the driver opens the store.

Tables: ``results`` (a scalar score or a feature vector per item, or the item's error),
``predictions`` (a trainable metric's test-item predictions per split, written all at once per
split), ``notes`` (warnings a trainable metric recorded while fitting a split) and
``evaluations`` (statistics already computed, keyed by a hash of the numbers they came from).

SQLite stores a NaN as NULL, so a NULL score of an item stored without an error, and a NULL
prediction, are read back as NaN: a rerun sees exactly the numbers of the first run. A store
that cannot be opened or written (full disk, read-only folder) raises
:class:`~iqabench.errors.StorageError` naming it.

:func:`lock_run_folder` keeps a second run out of a run folder while one is writing to it; the
run folder names the store its run used in ``store.json`` (:func:`link_store`).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

import numpy as np

from .errors import RunFolderBusyError, StorageError

SCHEMA_VERSION = "1"
#: Seconds a read or write waits in all for a store that other processes keep busy.
BUSY_PATIENCE = 120.0
#: The file of a run folder that names the score store of its run.
STORE_POINTER = "store.json"

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
    """The score store every run and ``iqabench score`` share unless told otherwise:
    ``$IQABENCH_CACHE/scores.db`` (default ``~/.cache/iqabench/scores.db``)."""
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
            _patiently(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._write(self._create_schema)
        except (sqlite3.Error, StorageError) as exc:
            self._db.close()
            raise exc if isinstance(exc, StorageError) else self._unwritable(exc) from None

    def _create_schema(self) -> None:
        for statement in filter(str.strip, _SCHEMA.split(";")):
            self._db.execute(statement)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))

    def _unwritable(self, exc: BaseException) -> StorageError:
        reason = getattr(exc, "strerror", None) or str(exc)
        return StorageError(f"cannot write the score store {self.path}: {reason}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ScoreStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, body: Callable[[], object]) -> None:
        """Run ``body`` in one write transaction, retried while other processes keep the store
        busy; a full disk or read-only store is a StorageError."""

        def transaction() -> None:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                body()
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

        try:
            _patiently(transaction)
        except sqlite3.OperationalError as exc:
            raise self._unwritable(exc) from None

    def _rows(self, sql: str, args: tuple) -> list[tuple]:
        """The rows of a query, retried while the store is busy."""
        return _patiently(lambda: self._db.execute(sql, args).fetchall())

    # -- per-item results ------------------------------------------------------------------
    def get(
        self, key: MetricKey, kind: str, items: Iterable[str], vectors: bool = True
    ) -> dict[str, Record]:
        """Stored records of ``items`` (missing ones are absent; retryable errors too), with
        their feature vectors unless ``vectors`` is False."""
        wanted = list(dict.fromkeys(items))
        found: dict[str, Record] = {}
        vector_column = "vector" if vectors else "vector IS NOT NULL"
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._rows(
                f"SELECT item, value, {vector_column}, error, error_kind, seconds FROM results "
                f"WHERE metric=? AND version=? AND params=? AND kind=? AND item IN ({marks})",
                (*key.sql(), kind, *chunk),
            )
            for item, value, vector, error, error_kind, seconds in rows:
                if error is not None and error_kind != "input":
                    continue  # an internal failure is retried on the next run
                if value is None and not vector and error is None and kind == "score":
                    value = math.nan  # SQLite keeps a NaN score as NULL
                found[item] = Record(
                    item=item,
                    value=value,
                    vector=_decode(vector) if vectors and vector is not None else None,
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
        self._write(
            lambda: self._db.executemany(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
            )
        )

    def features(self, key: MetricKey) -> StoredFeatures:
        """The stored feature vectors of ``key``'s metric, read when asked for."""
        return StoredFeatures(self, key)

    # -- per-split predictions -------------------------------------------------------------
    def get_predictions(self, key: MetricKey, split: str) -> dict[str, float] | None:
        """A split's stored predictions, or None if that split was never completed."""
        rows = self._rows(
            "SELECT item, value FROM predictions WHERE metric=? AND version=? AND params=? "
            "AND split=?",
            (*key.sql(), split),
        )
        if not rows:
            return None
        return {item: math.nan if value is None else value for item, value in rows}

    def get_notes(self, key: MetricKey, split: str) -> list[str]:
        rows = self._rows(
            "SELECT notes FROM notes WHERE metric=? AND version=? AND params=? AND split=?",
            (*key.sql(), split),
        )
        return list(json.loads(rows[0][0])) if rows else []

    def put_predictions(
        self, key: MetricKey, split: str, values: Mapping[str, float], notes: list[str]
    ) -> None:
        """Store a whole split's predictions (and fitting notes) in one transaction."""
        now = time.time()

        def insert() -> None:
            self._db.executemany(
                "INSERT OR REPLACE INTO predictions VALUES (?,?,?,?,?,?,?)",
                [(*key.sql(), split, item, float(v), now) for item, v in values.items()],
            )
            self._db.execute(
                "INSERT OR REPLACE INTO notes VALUES (?,?,?,?,?)",
                (*key.sql(), split, json.dumps(notes)),
            )

        self._write(insert)

    # -- evaluations -------------------------------------------------------------------------
    def get_evaluation(self, key: str) -> dict | None:
        """Statistics stored under ``key`` (a hash of their inputs), or None."""
        rows = self._rows("SELECT result FROM evaluations WHERE key=?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def put_evaluation(self, key: str, result: Mapping) -> None:
        sql, row = "INSERT OR REPLACE INTO evaluations VALUES (?, ?)", (key, json.dumps(result))
        self._write(lambda: self._db.execute(sql, row))


class StoredFeatures(Mapping[str, np.ndarray]):
    """A metric's stored feature vectors by item key, read from the store one at a time, so
    that a run never holds every image's features in memory."""

    def __init__(self, store: ScoreStore, key: MetricKey) -> None:
        self._store, self._key = store, key

    def __getitem__(self, item: str) -> np.ndarray:
        rows = self._store._rows(
            "SELECT vector FROM results WHERE metric=? AND version=? AND params=? "
            "AND kind='features' AND item=? AND vector IS NOT NULL",
            (*self._key.sql(), item),
        )
        if not rows:
            raise KeyError(item)
        return _decode(rows[0][0])

    def __contains__(self, item: object) -> bool:
        return bool(
            self._store._rows(
                "SELECT 1 FROM results WHERE metric=? AND version=? AND params=? "
                "AND kind='features' AND item=? AND vector IS NOT NULL",
                (*self._key.sql(), item),
            )
        )

    def __iter__(self) -> Iterator[str]:
        rows = self._store._rows(
            "SELECT item FROM results WHERE metric=? AND version=? AND params=? "
            "AND kind='features' AND vector IS NOT NULL",
            self._key.sql(),
        )
        return iter([row[0] for row in rows])

    def __len__(self) -> int:
        return len(list(iter(self)))


T = TypeVar("T")


def _patiently(operation: Callable[[], T]) -> T:
    """``operation()``, retried with growing pauses while SQLite says the store is busy or
    locked by another process, for :data:`BUSY_PATIENCE` seconds in all."""
    deadline = time.monotonic() + BUSY_PATIENCE
    pause = 0.01
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            busy = "locked" in text or "busy" in text
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 1.0)


def link_store(folder: Path, store: Path) -> Path:
    """Write ``folder/store.json``, naming the score store a run into ``folder`` used."""
    from .results import write_text_atomically

    text = json.dumps({"store": str(Path(store).resolve()), "schema": SCHEMA_VERSION})
    return write_text_atomically(Path(folder) / STORE_POINTER, text + "\n")


def linked_store(folder: Path) -> Path | None:
    """The score store ``folder``'s run used, as ``store.json`` names it (None without one)."""
    try:
        data = json.loads((Path(folder) / STORE_POINTER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Path(data["store"]) if isinstance(data, dict) and "store" in data else None


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
