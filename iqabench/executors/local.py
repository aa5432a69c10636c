"""The local executors: this process, or a pool of spawned processes on this machine.

:class:`InProcess` (``--workers 1``, the default) scores and fits with the driver's own metric
object, one batch after the other; the per-image time limit is enforced with ``SIGALRM``.

:class:`ProcessPool` (``--workers N``) runs batches and fits in N spawned processes, each
building its own copy of the metric (:mod:`iqabench.executors.worker`) with its share of the
cores' threads. The pool is started on first use and kept for the following metrics. Workers
die with the parent (even on SIGKILL), ignore Ctrl-C (the parent stops them) and are stopped
at once when the parent is interrupted, when a metric hangs past its time limit (enforced in
the worker with ``SIGALRM`` and by the parent, which stops workers that return nothing in
time), or when a worker dies; the next metric gets a fresh pool.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from .base import (
    BatchSizer,
    Executor,
    FitTask,
    MetricSpec,
    Stalled,
    batch_patience,
    windowed,
)
from .worker import fit_task, limit_threads, score_task, threads_per_worker

if TYPE_CHECKING:
    from ..metric import Metric
    from ..scoring import Job
    from ..store import Record


class InProcess(Executor):
    """Everything in this process, with the driver's metric object."""

    parallelism = 1

    def score(
        self, metric: Metric, kind: str, jobs: Sequence[Job], timeout: float | None
    ) -> Iterator[list[Record]]:
        from ..scoring import score_batch

        size = max(1, int(metric.batch_size))
        for start in range(0, len(jobs), size):
            yield score_batch(metric, kind, jobs[start : start + size], timeout)

    def fit(self, metric: Metric, tasks: Iterable[FitTask]) -> Iterator[tuple[FitTask, Any]]:
        for task in tasks:
            yield task, task.run(metric)


class ProcessPool(Executor):
    """Batches and fits in ``workers`` spawned processes on this machine."""

    def __init__(self, workers: int) -> None:
        self.parallelism = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def score(
        self, metric: Metric, kind: str, jobs: Sequence[Job], timeout: float | None
    ) -> Iterator[list[Record]]:
        if self._pool is None and len(jobs) <= metric.batch_size:  # not worth starting a pool
            yield from InProcess().score(metric, kind, jobs, timeout)
            return
        spec = MetricSpec.of(metric)
        sizer = BatchSizer(metric.batch_size)
        with self._guarded(metric) as pool:
            done = windowed(
                sizer.batches(jobs),
                lambda batch: pool.submit(score_task, spec, kind, batch, timeout),
                _wait_first,
                2 * self.parallelism,
                batch_patience(timeout),
            )
            try:
                for batch, future in done:
                    records = _result(future, metric, f"the batch starting with {batch[0].image}")
                    sizer.measured(records)
                    yield records
            except Stalled as exc:
                from ..scoring import MetricAbortedError, expired_reason

                first = exc.pending[0][0]
                raise MetricAbortedError(expired_reason(metric, timeout, first)) from None

    def fit(self, metric: Metric, tasks: Iterable[FitTask]) -> Iterator[tuple[FitTask, Any]]:
        spec = MetricSpec.of(metric)
        with self._guarded(metric) as pool:
            done = windowed(
                tasks,
                lambda task: pool.submit(fit_task, spec, task),
                _wait_first,
                self.parallelism,
                lambda pending: None,
            )
            for task, future in done:
                yield task, _result(future, metric, f"split {task.split}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _guarded(self, metric: Metric) -> _Guard:
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                max_workers=self.parallelism,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(threads_per_worker(self.parallelism),),
            )
        return _Guard(self, self._pool)

    def _abandon(self) -> None:
        """Stop the pool's processes now; the next metric starts a fresh pool."""
        if self._pool is not None:
            _stop(self._pool)
            self._pool = None


class _Guard:
    """Hands out the pool; on any exception (an interrupt, a timeout, a dead worker, the
    consumer giving up) no worker outlives it."""

    def __init__(self, owner: ProcessPool, pool: ProcessPoolExecutor) -> None:
        self.owner, self.pool = owner, pool

    def __enter__(self) -> ProcessPoolExecutor:
        return self.pool

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.owner._abandon()


def _wait_first(futures: list[Future], seconds: float | None) -> set[Future]:
    done, _ = wait(futures, timeout=seconds, return_when=FIRST_COMPLETED)
    return set(done)


def _result(future: Future, metric: Metric, what: str) -> Any:
    from ..scoring import MetricAbortedError

    try:
        return future.result()
    except BrokenProcessPool:
        raise MetricAbortedError(
            f"{metric.name}: a worker process died while working on {what}"
        ) from None


def _init_worker(threads: int) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    limit_threads(threads)


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
