"""Get-or-compute of per-item results (scores or features) in batches, locally.

Items already in the store are reused; the rest are scored in batches of the metric's
``batch_size``, each batch stored in one transaction as soon as it is done. A batch that raises
is retried one item at a time, so one bad image costs only itself: its error is stored with it
(``input`` errors, which the user can fix, are kept; ``internal`` ones are retried next run).
With ``workers > 1`` batches run in a process pool (spawned, each worker building its own
metric); the parent alone writes to the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MetricUnavailableError, UserError
from .imageio import load_for_metric
from .metric import FeatureMetric, Metric
from .progress import Task
from .store import MetricKey, Record, ScoreStore


@dataclass(frozen=True)
class Job:
    """One item to score: its store key and files."""

    key: str
    image: Path
    ref: Path | None


@dataclass
class Tally:
    """How many results were computed now, reused from the store, or failed."""

    scored: int = 0
    reused: int = 0
    failed: int = 0

    def add(self, other: Tally) -> None:
        self.scored += other.scored
        self.reused += other.reused
        self.failed += other.failed


def compute(
    store: ScoreStore,
    metric: Metric,
    key: MetricKey,
    kind: str,
    jobs: Sequence[Job],
    bar: Task,
    workers: int = 1,
) -> tuple[dict[str, Record], Tally]:
    """All records of ``jobs`` for ``metric`` (``kind`` "score" or "features")."""
    records = store.get(key, kind, [job.key for job in jobs])
    tally = Tally(reused=sum(1 for r in records.values() if r.ok))
    tally.failed = sum(1 for r in records.values() if not r.ok)
    bar.advance(len(records))
    todo = [job for job in dict((j.key, j) for j in jobs).values() if job.key not in records]
    size = max(1, int(metric.batch_size))
    batches = [todo[i : i + size] for i in range(0, len(todo), size)]

    def keep(batch_records: list[Record]) -> None:
        store.put(key, kind, batch_records)
        for record in batch_records:
            records[record.item] = record
            if record.ok:
                tally.scored += 1
            else:
                tally.failed += 1
        bar.advance(len(batch_records))

    if workers > 1 and len(batches) > 1:
        _in_pool(metric, kind, batches, workers, keep)
    else:
        for batch in batches:
            keep(score_batch(metric, kind, batch))
    return records, tally


def score_batch(metric: Metric, kind: str, batch: Sequence[Job]) -> list[Record]:
    """Records for one batch; failures are isolated to the items that cause them."""
    started = time.perf_counter()
    loaded: list[tuple[Job, np.ndarray, np.ndarray | None]] = []
    records: list[Record] = []
    for job in batch:
        try:
            image, ref = load_for_metric(job.image, metric.colour, job.ref)
        except UserError as exc:
            records.append(Record(job.key, error=str(exc), error_kind="input"))
            continue
        loaded.append((job, image, ref))
    if not loaded:
        return records
    try:
        outputs = _apply(metric, kind, loaded)
    except MetricUnavailableError:
        raise  # concerns the whole metric (e.g. its model file is missing), not this batch
    except Exception as exc:
        if len(loaded) == 1:
            return records + [_error_record(loaded[0][0], exc)]
        for job, _, _ in loaded:  # isolate the culprit: one item at a time
            records.extend(score_batch(metric, kind, [job]))
        return records
    seconds = (time.perf_counter() - started) / len(loaded)
    for (job, _, _), output in zip(loaded, outputs, strict=True):
        if kind == "features":
            records.append(Record(job.key, vector=np.asarray(output, float), seconds=seconds))
        else:
            records.append(Record(job.key, value=float(output), seconds=seconds))
    return records


def _apply(
    metric: Metric, kind: str, loaded: list[tuple[Job, np.ndarray, np.ndarray | None]]
) -> list[Any]:
    images = [image for _, image, _ in loaded]
    refs = [ref for _, _, ref in loaded] if metric.full_reference else None
    if kind == "features":
        assert isinstance(metric, FeatureMetric)
        matrix = np.asarray(metric.features(images, refs), dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != len(images):
            raise RuntimeError(f"{metric.name}.features returned shape {matrix.shape}")
        return list(matrix)
    values = np.asarray(metric.score(images, refs), dtype=np.float64).ravel()
    if values.shape[0] != len(images):
        raise RuntimeError(f"{metric.name}.score returned {values.shape[0]} values")
    return list(values)


def _error_record(job: Job, exc: Exception) -> Record:
    """The record of an item whose scoring raised ``exc``."""
    import traceback

    if isinstance(exc, UserError):
        return Record(job.key, error=f"{job.image}: {exc}", error_kind="input")
    where = traceback.extract_tb(exc.__traceback__)[-1]
    detail = f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})"
    return Record(job.key, error=f"{job.image}: {detail}", error_kind="internal")


# -- process pool ---------------------------------------------------------------------------
_WORKER_METRIC: Metric | None = None


def _init_worker(name: str, params: dict[str, Any]) -> None:
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from . import registry

    global _WORKER_METRIC
    _WORKER_METRIC = registry.create(name, **params)


def _worker_batch(kind: str, batch: list[Job]) -> list[Record]:
    assert _WORKER_METRIC is not None
    return score_batch(_WORKER_METRIC, kind, batch)


def _in_pool(
    metric: Metric,
    kind: str,
    batches: list[list[Job]],
    workers: int,
    keep: Callable[[list[Record]], None],
) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(metric.name, dict(metric.params)),
    ) as pool:
        pending: set[Future] = set()
        queue = list(batches)
        while queue or pending:
            while queue and len(pending) < 2 * workers:
                pending.add(pool.submit(_worker_batch, kind, queue.pop(0)))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                keep(future.result())
