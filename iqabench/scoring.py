"""Get-or-compute of per-item results (scores or features) in batches, locally.

Items already in the store are reused; the rest are scored in batches of the metric's
``batch_size``, each batch stored in one transaction as soon as it is done. A batch that raises
is retried one item at a time, so one bad image costs only itself: its error is stored with it
(``input`` errors, which the user can fix, are kept, and so is a ``ValueError``, a metric's way
of saying it cannot score this image, e.g. one smaller than its window; ``internal`` ones are
retried next run).

A metric that calls ``sys.exit``, runs past its time limit (``timeout`` seconds per image) or
whose worker process dies is stopped as a whole with :class:`MetricAbortedError`; what it
scored until then is kept. The limit is enforced with ``SIGALRM`` in the process that scores
(POSIX, main thread), and with ``workers > 1`` also by the parent, which stops workers that
return nothing in time.

With ``workers > 1`` batches run in a process pool (spawned, each worker building its own
metric); the parent alone writes to the store. Workers die with the parent (even on SIGKILL),
ignore Ctrl-C (the parent stops them) and are stopped when the parent is interrupted. Everything
about where batches run is in :func:`_in_process` and :class:`_Pool`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MetricUnavailableError, UserError, one_line
from .imageio import load_for_metric
from .metric import FeatureMetric, Metric
from .progress import Task
from .store import MetricKey, Record, ScoreStore

#: Seconds a metric may spend per image before it is stopped (``iqabench run --timeout``).
DEFAULT_TIMEOUT = 600.0
#: Extra seconds the parent grants a worker beyond the metric's own limit (start-up, imports).
_WORKER_GRACE = 60.0


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
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[dict[str, Record], Tally]:
    """All records of ``jobs`` for ``metric`` (``kind`` "score" or "features"), each image
    allowed ``timeout`` seconds (None: no limit). Raises :class:`MetricAbortedError` when the
    metric has to be stopped; the records stored until then are kept."""
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
        _Pool(metric, workers, timeout).run(kind, batches, keep)
    else:
        _in_process(metric, kind, batches, timeout, keep)
    return records, tally


def _in_process(
    metric: Metric,
    kind: str,
    batches: list[list[Job]],
    timeout: float | None,
    keep: Callable[[list[Record]], None],
) -> None:
    """Score ``batches`` one after the other in this process."""
    for batch in batches:
        keep(score_batch(metric, kind, batch, timeout))


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
        raise MetricAbortedError(_expired_reason(metric, timeout, loaded[0][0])) from None
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


def _expired_reason(metric: Metric, timeout: float | None, first: Job) -> str:
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


# -- process pool ---------------------------------------------------------------------------
_WORKER_METRIC: Metric | None = None


def _init_worker(name: str, params: dict[str, Any]) -> None:
    import os

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from . import registry

    global _WORKER_METRIC
    _WORKER_METRIC = registry.create(name, **params)


def _die_with_parent() -> None:
    """End this worker as soon as its parent process is gone, however the parent ended."""
    import multiprocessing
    import multiprocessing.connection
    import os

    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="iqabench-parent-watch", daemon=True).start()


def _worker_batch(kind: str, batch: list[Job], timeout: float | None) -> list[Record]:
    assert _WORKER_METRIC is not None
    return score_batch(_WORKER_METRIC, kind, batch, timeout)


class _Pool:
    """Batches of one metric scored by ``workers`` spawned processes."""

    def __init__(self, metric: Metric, workers: int, timeout: float | None) -> None:
        self.metric, self.workers, self.timeout = metric, workers, timeout

    def run(
        self, kind: str, batches: list[list[Job]], keep: Callable[[list[Record]], None]
    ) -> None:
        """Score ``batches``, handing each batch's records to ``keep`` as they arrive."""
        import multiprocessing

        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.metric.name, dict(self.metric.params)),
        )
        try:
            self._drain(pool, kind, batches, keep)
        except BaseException:
            _stop(pool)  # an interrupt, a timeout, a dead worker: no worker outlives this
            raise
        pool.shutdown(wait=True)

    def _drain(
        self,
        pool: ProcessPoolExecutor,
        kind: str,
        batches: list[list[Job]],
        keep: Callable[[list[Record]], None],
    ) -> None:
        size = max(len(batch) for batch in batches)
        patience = None if self.timeout is None else self.timeout * size + _WORKER_GRACE
        pending: dict[Future, list[Job]] = {}
        queue = list(batches)
        while queue or pending:
            while queue and len(pending) < 2 * self.workers:
                batch = queue.pop(0)
                pending[pool.submit(_worker_batch, kind, batch, self.timeout)] = batch
            done, _ = wait(pending, timeout=patience, return_when=FIRST_COMPLETED)
            if not done:
                first = next(iter(pending.values()))[0]
                raise MetricAbortedError(_expired_reason(self.metric, self.timeout, first))
            for future in done:
                batch = pending.pop(future)
                try:
                    keep(future.result())
                except BrokenProcessPool:
                    raise MetricAbortedError(
                        f"{self.metric.name}: a worker process died while scoring the batch "
                        f"starting with {batch[0].image}"
                    ) from None


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued and end the workers now (Python 3.14 has ``terminate_workers``;
    before it the executor keeps its processes in ``_processes``)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.kill()
