"""Get-or-compute of per-item results (scores or features) in batches.

Items already in the store are reused; the rest go to an executor
(:mod:`iqabench.executors`: this process, a local process pool or a Dask cluster), which
scores them in batches and hands each batch's records back as it completes; this process alone
stores them, one transaction per batch, so a killed run loses at most the batches in flight. A
batch that raises is retried one item at a time, so one bad image costs only itself: its error
is stored with it (``input`` errors, which the user can fix, are kept, and so is a
``ValueError``, a metric's way of saying it cannot score this image, e.g. one smaller than its
window; ``internal`` ones are retried next run).

A metric that calls ``sys.exit``, runs past its time limit (``timeout`` seconds per image) or
whose worker dies is stopped as a whole with :class:`MetricAbortedError`; what it scored until
then is kept. The limit is enforced with ``SIGALRM`` where a batch runs in a process's main
thread (POSIX), and by the driver, which stops workers that return nothing in time.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import MetricUnavailableError, UserError, one_line
from .imageio import load_for_metric
from .metric import FeatureMetric, Metric
from .progress import Task
from .store import MetricKey, Record, ScoreStore

if TYPE_CHECKING:
    from .executors import Executor

#: Seconds a metric may spend per image before it is stopped (``iqabench run --timeout``).
DEFAULT_TIMEOUT = 600.0


class MetricAbortedError(RuntimeError):
    """A metric stopped as a whole: it exited, hung past its time limit, or its worker died."""


class _Expired(BaseException):
    """Raised by SIGALRM in the scoring thread when a batch runs past its time limit (a
    BaseException, so that a plugin's ``except Exception`` cannot swallow it)."""


@dataclass(frozen=True)
class Job:
    """One item to score: its store key and files."""

    key: str
    image: Path
    ref: Path | None
    #: The item's facts a metric asked for (its ``item_fields``), as ``(field, value)`` pairs.
    metadata: tuple[tuple[str, Any], ...] = ()


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
    executor: Executor | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[dict[str, Record], Tally]:
    """The records of ``jobs`` for ``metric`` (``kind`` "score" or "features"; feature records
    come without their vectors, which stay in the store), computing what is not stored on
    ``executor`` (default: this process), each image allowed ``timeout`` seconds (None: no
    limit). Raises :class:`MetricAbortedError` when the metric has to be stopped; the records
    stored until then are kept."""
    from .executors import InProcess

    records = store.get(key, kind, [job.key for job in jobs], vectors=False)
    tally = Tally(reused=sum(1 for r in records.values() if r.ok))
    tally.failed = sum(1 for r in records.values() if not r.ok)
    bar.advance(len(records))
    todo = [job for job in dict((j.key, j) for j in jobs).values() if job.key not in records]
    for batch_records in (executor or InProcess()).score(metric, kind, todo, timeout):
        store.put(key, kind, batch_records)
        for record in batch_records:
            records[record.item] = replace(record, vector=None)
            if record.ok:
                tally.scored += 1
            else:
                tally.failed += 1
        bar.advance(len(batch_records))
    return records, tally


def score_batch(
    metric: Metric, kind: str, batch: Sequence[Job], timeout: float | None = None
) -> list[Record]:
    """Records for one batch; failures are isolated to the items that cause them.

    Raises :class:`MetricAbortedError` when the metric exits or runs past ``timeout`` seconds
    per image, and :class:`~iqabench.errors.MetricUnavailableError` for a whole-metric problem.
    """
    started = time.perf_counter()
    loaded: list[tuple[Job, np.ndarray, np.ndarray | None]] = []
    records: list[Record] = []
    for job in batch:
        try:
            image, ref = load_for_metric(job.image, metric.colour, job.ref)
        except Exception as exc:  # one unreadable image costs only itself
            records.append(_error_record(job, exc))
            continue
        loaded.append((job, image, ref))
    if not loaded:
        return records
    try:
        with _time_limit(None if timeout is None else timeout * len(loaded)):
            outputs = _apply(metric, kind, loaded)
    except _Expired:
        raise MetricAbortedError(expired_reason(metric, timeout, loaded[0][0])) from None
    except SystemExit as exc:
        raise MetricAbortedError(
            f"{metric.name} called sys.exit({exc.code}) while scoring {loaded[0][0].image}"
        ) from None
    except MetricUnavailableError:
        raise  # concerns the whole metric (e.g. its model file is missing), not this batch
    except Exception as exc:
        if len(loaded) == 1:
            return records + [_error_record(loaded[0][0], exc)]
        for job, _, _ in loaded:  # isolate the culprit: one item at a time
            records.extend(score_batch(metric, kind, [job], timeout))
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
    facts = {"metadata": [dict(job.metadata) for job, _, _ in loaded]} if metric.item_fields else {}
    if kind == "features":
        assert isinstance(metric, FeatureMetric)
        matrix = np.asarray(metric.features(images, refs, **facts), dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != len(images):
            raise RuntimeError(f"{metric.name}.features returned shape {matrix.shape}")
        return list(matrix)
    values = np.asarray(metric.score(images, refs, **facts), dtype=np.float64).ravel()
    if values.shape[0] != len(images):
        raise RuntimeError(f"{metric.name}.score returned {values.shape[0]} values")
    return list(values)


def _error_record(job: Job, exc: Exception) -> Record:
    """The record of an item whose reading or scoring raised ``exc`` (its message on one line,
    naming the image)."""
    import traceback

    if isinstance(exc, UserError):
        message = one_line(exc)
        named = message if str(job.image) in message else f"{job.image}: {message}"
        return Record(job.key, error=named, error_kind="input")
    where = traceback.extract_tb(exc.__traceback__)[-1]
    detail = f"{type(exc).__name__}: {one_line(exc)} ({Path(where.filename).name}:{where.lineno})"
    kind = "input" if isinstance(exc, ValueError) else "internal"
    return Record(job.key, error=f"{job.image}: {detail}", error_kind=kind)


def expired_reason(metric: Metric, timeout: float | None, first: Job) -> str:
    """Why a metric was stopped when a batch starting with ``first`` ran out of time."""
    return (
        f"{metric.name} timed out: no result within {timeout:g} s per image (batch starting "
        f"with {first.image}); raise the limit with --timeout {metric.name}=SECONDS"
    )


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`_Expired` in this thread after ``seconds`` (where SIGALRM is available
    to it: POSIX, main thread; elsewhere no limit)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not seconds or not usable or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield  # no limit here, or the caller's own timer is running: leave it alone
        return

    def expire(signum: int, frame: object) -> None:
        raise _Expired()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
