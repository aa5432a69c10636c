"""What runs inside a worker process (a local pool process or a Dask worker): the metric
built from its :class:`~iqabench.executors.base.MetricSpec`, scoring one batch, fitting one
split, and the thread limits that keep N workers on N cores from oversubscribing them.

Each worker keeps the last metric it built, so the batches and splits of one metric reuse it;
the next metric replaces it (its memory is freed).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..metric import Metric
    from ..scoring import Job
    from ..store import Record
    from .base import FitTask, MetricSpec

#: Environment variables that size the thread pools of OpenMP, BLAS libraries and numexpr;
#: read when those libraries load, so they are set before a metric imports them.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

#: The metric this worker built last, by ``repr`` of its spec (parameters may be lists).
_BUILT: dict[str, Metric] = {}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Threads each of ``workers`` processes on ``cores`` cores may use: an explicit
    ``OMP_NUM_THREADS`` wins, else the cores shared out (at least one)."""
    explicit = os.environ.get("OMP_NUM_THREADS", "")
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    return max(1, (cores or available_cores()) // max(1, workers))


def limit_threads(threads: int) -> None:
    """Size every thread pool of this process to ``threads``: the environment for libraries
    not loaded yet, and the live pools of BLAS/OpenMP (threadpoolctl), torch and OpenCV."""
    import sys

    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    import cv2

    cv2.setNumThreads(threads)


def metric_for(spec: MetricSpec) -> Metric:
    """The metric ``spec`` describes, built once per worker; refused when this worker's
    installation would give other numbers (another version, other parameters or model
    files) than the driver's."""
    metric = _BUILT.get(repr(spec))
    if metric is not None:
        return metric
    from .. import registry
    from ..errors import MetricUnavailableError

    _BUILT.clear()
    metric = registry.create(spec.name, **dict(spec.params))
    if metric.version != spec.version or metric.params_hash() != spec.params_hash:
        raise MetricUnavailableError(
            f"{spec.name} on worker {_host()} is version {metric.version} with parameters "
            f"{metric.params_hash()}, the driver's is version {spec.version} with "
            f"{spec.params_hash}: install the same iqabench, plugins and model files on "
            "every worker"
        )
    _BUILT[repr(spec)] = metric
    return metric


def score_task(
    spec: MetricSpec, kind: str, batch: list[Job], timeout: float | None
) -> list[Record]:
    """Records of one batch, scored by this worker's copy of the metric."""
    from ..scoring import score_batch

    return score_batch(metric_for(spec), kind, batch, timeout)


def fit_task(spec: MetricSpec, task: FitTask) -> Any:
    """One split fitted and predicted by this worker's copy of the metric."""
    return task.run(metric_for(spec))


def _host() -> str:
    import socket

    return socket.gethostname()
