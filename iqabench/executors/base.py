"""The executor interface: where the runner's two kinds of task run.

A run hands an executor two kinds of task for one metric at a time:

* **scoring**: the items (:class:`~iqabench.scoring.Job`) a metric has not scored yet; the
  executor cuts them into batches, scores each batch where it runs and yields the batch's
  records back to the driver as batches complete;
* **fitting**: one task per (metric, split) of a trainable metric (a :class:`FitTask`: fit on
  the split's training items, predict its test items); results come back as tasks complete.

Results always flow back to the driver, which alone writes the score store: a killed worker or
driver loses at most the tasks in flight, never a stored result. Nothing here knows datasets or
statistics.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ..metric import Metric
    from ..scoring import Job
    from ..store import Record

#: Extra seconds a driver grants a batch beyond the metric's own limit (start-up, imports).
WORKER_GRACE = 60.0
#: Work a remote batch should hold (seconds), so that sending it costs little beside it.
TARGET_BATCH_SECONDS = 0.5
#: The largest batch sent to a worker, in multiples of the metric's ``batch_size`` (the images
#: of a batch are decoded together in the worker's memory).
MAX_BATCH_FACTOR = 4


class FitTask(Protocol):
    """One (metric, split) of a trainable metric: fit on the training items, predict the test
    items. Picklable, so that it can run in another process or on another machine."""

    #: The split's index.
    split: int

    def run(self, metric: Metric) -> Any:
        """Fit ``metric`` (a fresh or reused instance) and return what the driver stores."""


@dataclass(frozen=True)
class MetricSpec:
    """What a worker needs to build a metric the driver uses, and to check it is the same one
    (version and parameters hash, model files included)."""

    name: str
    params: tuple[tuple[str, Any], ...]
    version: str
    params_hash: str

    @classmethod
    def of(cls, metric: Metric) -> MetricSpec:
        return cls(
            metric.name, tuple(sorted(metric.params.items())), metric.version, metric.params_hash()
        )


class Executor(ABC):
    """Runs scoring batches and per-split fits; yields their results to the driver."""

    #: How many tasks run at once (processes, or Dask worker threads).
    parallelism: int = 1

    @abstractmethod
    def score(
        self, metric: Metric, kind: str, jobs: Sequence[Job], timeout: float | None
    ) -> Iterator[list[Record]]:
        """Records of ``jobs`` for ``metric`` (``kind`` "score" or "features"), one list per
        batch as batches complete. Raises :class:`~iqabench.scoring.MetricAbortedError` when
        the metric exits, hangs past ``timeout`` seconds per image or loses its worker."""

    @abstractmethod
    def fit(self, metric: Metric, tasks: Iterable[FitTask]) -> Iterator[tuple[FitTask, Any]]:
        """``(task, task.run(metric))`` for every task, as tasks complete."""

    def close(self) -> None:  # noqa: B027 - an executor holding nothing has nothing to close
        """Release the processes or cluster this executor holds."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BatchSizer:
    """Batch sizes of one metric's items for a remote executor.

    The first batches hold the metric's ``batch_size`` items; once the cost per item is
    measured, a batch of a cheap metric grows to about :data:`TARGET_BATCH_SECONDS` of work
    (at most :data:`MAX_BATCH_FACTOR` times ``batch_size``), so that sending it and storing its
    records cost little beside the work.
    """

    def __init__(self, batch_size: int) -> None:
        self.base = max(1, int(batch_size))
        self._seconds = 0.0
        self._items = 0

    def measured(self, records: Sequence[Record]) -> None:
        """Take the per-item seconds of a completed batch into the estimate."""
        self._seconds += sum(record.seconds for record in records)
        self._items += len(records)

    def next_size(self) -> int:
        size = self.base
        if self._items and self._seconds > 0:
            per_item = self._seconds / self._items
            wanted = int(TARGET_BATCH_SECONDS / per_item)
            size = min(max(self.base, wanted), self.base * MAX_BATCH_FACTOR)
        return size

    def batches(self, jobs: Sequence[Job]) -> Iterator[list[Job]]:
        """``jobs`` cut into batches, each sized when it is asked for."""
        start = 0
        while start < len(jobs):
            size = self.next_size()
            yield list(jobs[start : start + size])
            start += size


class Stalled(Exception):
    """No task completed within the patience: every task in flight is stuck."""

    def __init__(self, pending: list[Any]) -> None:
        super().__init__(f"{len(pending)} task(s) stuck")
        self.pending = pending


T = TypeVar("T")
F = TypeVar("F", bound=Hashable)


def windowed(
    tasks: Iterable[T],
    submit: Callable[[T], F],
    wait_some: Callable[[list[F], float | None], set[F]],
    window: int,
    patience: Callable[[list[T]], float | None],
) -> Iterator[tuple[T, F]]:
    """Submit ``tasks`` keeping at most ``window`` in flight; yield ``(task, future)`` as each
    completes. ``wait_some(futures, seconds)`` returns the completed ones (empty after
    ``seconds``); :class:`Stalled` is raised when none completes within
    ``patience(tasks in flight)`` seconds (None: wait for ever)."""
    pending: dict[F, T] = {}
    source = iter(tasks)
    exhausted = False
    while True:
        while not exhausted and len(pending) < window:
            task = next(source, _END)
            if task is _END:
                exhausted = True
            else:
                pending[submit(task)] = task  # type: ignore[arg-type]
        if not pending:
            return
        done = wait_some(list(pending), patience(list(pending.values())))
        if not done:
            raise Stalled(list(pending.values()))
        for future in [f for f in pending if f in done]:
            yield pending.pop(future), future


_END: Any = object()


def batch_patience(timeout: float | None) -> Callable[[list[list[Job]]], float | None]:
    """How long a driver waits for one of the batches in flight before it gives the metric up:
    the per-image limit times the largest batch, plus :data:`WORKER_GRACE`."""

    def patience(batches: list[list[Job]]) -> float | None:
        if timeout is None:
            return None
        return timeout * max(len(batch) for batch in batches) + WORKER_GRACE

    return patience
