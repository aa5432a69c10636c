"""The Dask distributed executor (``pip install iqabench[distributed]``).

``iqabench run --executor dask --scheduler tcp://HOST:8786`` sends scoring batches and
per-split fits to the workers of a running Dask cluster; ``--executor dask --workers N``
starts a :class:`distributed.LocalCluster` of N single-threaded worker processes bound to
127.0.0.1 for the run. Workers need the same iqabench, plugins and model files as the driver
(each task checks the metric's version and parameters hash) and must see the dataset's files
at the same paths; the driver alone writes the score store.

Each worker sizes its thread pools (BLAS/OpenMP, torch, OpenCV) to its share of its machine's
cores. Deep-model trainings, and scoring by metrics that want a GPU, ask for one ``GPU``
worker resource when the cluster declares that resource (``dask worker --resources GPU=1``);
their DataLoader starts processes on a GPU, which a worker may do only when it is not a daemon
(``DASK_DISTRIBUTED__WORKER__DAEMON=False`` where the workers start; the LocalCluster's are
started so).
A worker that dies has its tasks run again elsewhere (a task that kills three workers fails its
metric); a batch that returns nothing within the per-image limit stops its metric and the
workers running it are restarted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import dask
import distributed
from distributed import Client, Future, LocalCluster, WorkerPlugin

from ..errors import UserError, one_line
from ..metric import LearnedMetric
from .base import BatchSizer, Executor, FitTask, MetricSpec, Stalled, batch_patience, windowed
from .worker import (
    THREAD_VARIABLES,
    available_cores,
    fit_task,
    limit_threads,
    score_task,
    threads_per_worker,
)

if TYPE_CHECKING:
    from ..metric import Metric
    from ..scoring import Job
    from ..store import Record

#: Seconds to wait for a scheduler to answer before giving up.
CONNECT_TIMEOUT = 30
#: The worker resource a GPU task asks for.
GPU_RESOURCE = "GPU"
#: Dask settings of the LocalCluster's workers: not daemons, so that a GPU training's
#: DataLoader may start processes (they still end with the driver: distributed watches the
#: parent from each worker); glibc's default trim threshold instead of Dask's 64 KiB, which
#: made every NumPy temporary a fresh mapping and doubled the CPU time of SSIM and NIQE; no
#: statistical profiler sampling the task thread every 10 ms.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.daemon": False,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}


class ThreadLimits(WorkerPlugin):
    """Sizes each worker's thread pools to its share of its host's cores (``threads`` by host
    as the driver measured them; a worker on a new host shares its own cores among its
    threads), and quiets distributed's per-task logging in the worker."""

    name = "iqabench-threads"

    def __init__(self, threads: dict[str, int]) -> None:
        self.threads = threads

    def setup(self, worker: Any) -> None:
        _quiet_logging()
        host = worker.address.rsplit(":", 1)[0]
        fallback = max(1, available_cores() // max(1, worker.state.nthreads))
        limit_threads(self.threads.get(host, fallback))


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: the one at ``scheduler``, or a local one of ``workers``."""

    def __init__(self, scheduler: str | None = None, workers: int = 1) -> None:
        _quiet_logging()
        self._cluster: LocalCluster | None = None
        #: Threads of each LocalCluster worker, decided before Dask sets OMP_NUM_THREADS=1
        #: in this process's environment for the workers it spawns.
        self._local_threads = threads_per_worker(workers)
        try:
            if scheduler is None:
                dask.config.set(LOCAL_CLUSTER_CONFIG)
                dask.config.set(
                    {
                        f"distributed.nanny.pre-spawn-environ.{variable}": self._local_threads
                        for variable in THREAD_VARIABLES
                    }
                )
                self._cluster = LocalCluster(
                    n_workers=max(1, workers),
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    scheduler_port=0,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
                self.client = Client(self._cluster, timeout=CONNECT_TIMEOUT)
            else:
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            self._close_cluster()
            where = scheduler or "a local Dask cluster"
            raise UserError(f"cannot reach {where}: {one_line(exc)}") from None
        workers_info = self.client.scheduler_info(n_workers=-1)["workers"]
        if not workers_info:
            self.close()
            raise UserError(f"the Dask cluster at {scheduler} has no workers")
        self.parallelism = sum(int(w["nthreads"]) for w in workers_info.values())
        self.gpus = any((w.get("resources") or {}).get(GPU_RESOURCE) for w in workers_info.values())
        self.client.register_plugin(ThreadLimits(self._threads_by_host(workers_info)))

    def _threads_by_host(self, workers_info: dict[str, Any]) -> dict[str, int]:
        """Threads per task slot on each host: its cores over the slots of its workers."""
        cores = self.client.run(available_cores)
        slots: dict[str, int] = {}
        host_cores: dict[str, int] = {}
        for address, info in workers_info.items():
            host = address.rsplit(":", 1)[0]
            slots[host] = slots.get(host, 0) + int(info["nthreads"])
            host_cores[host] = int(cores.get(address, 1))
        if self._cluster is not None:
            return {host: self._local_threads for host in slots}
        return {host: max(1, host_cores[host] // slots[host]) for host in slots}

    def score(
        self, metric: Metric, kind: str, jobs: Sequence[Job], timeout: float | None
    ) -> Iterator[list[Record]]:
        spec = MetricSpec.of(metric)
        sizer = BatchSizer(metric.batch_size)
        resources = self._resources(metric.gpu_recommended)
        pending: list[Future] = []

        def submit(batch: list[Job]) -> Future:
            future = self.client.submit(
                score_task, spec, kind, batch, timeout, pure=False, resources=resources
            )
            pending.append(future)
            return future

        done = windowed(
            sizer.batches(jobs), submit, _wait_first, 2 * self.parallelism, batch_patience(timeout)
        )
        try:
            for batch, future in done:
                pending.remove(future)
                records = self._result(future, metric, f"the batch starting with {batch[0].image}")
                sizer.measured(records)
                yield records
        except Stalled as exc:
            from ..scoring import MetricAbortedError, expired_reason

            self._stop(pending, restart=True)
            first = exc.pending[0][0]
            raise MetricAbortedError(expired_reason(metric, timeout, first)) from None
        except BaseException:
            self._stop(pending, restart=False)
            raise

    def fit(self, metric: Metric, tasks: Iterable[FitTask]) -> Iterator[tuple[FitTask, Any]]:
        spec = MetricSpec.of(metric)
        resources = self._resources(isinstance(metric, LearnedMetric))
        pending: list[Future] = []

        def submit(task: FitTask) -> Future:
            future = self.client.submit(fit_task, spec, task, pure=False, resources=resources)
            pending.append(future)
            return future

        done = windowed(tasks, submit, _wait_first, self.parallelism, lambda pending: None)
        try:
            for task, future in done:
                pending.remove(future)
                yield task, self._result(future, metric, f"split {task.split}")
        except BaseException:
            self._stop(pending, restart=False)
            raise

    def close(self) -> None:
        try:
            self.client.close(timeout=10)
        finally:
            self._close_cluster()

    def _close_cluster(self) -> None:
        if self._cluster is not None:
            self._cluster.close(timeout=10)
            self._cluster = None

    def _resources(self, wants_gpu: bool) -> dict[str, int] | None:
        return {GPU_RESOURCE: 1} if wants_gpu and self.gpus else None

    def _result(self, future: Future, metric: Metric, what: str) -> Any:
        from ..scoring import MetricAbortedError

        try:
            return future.result()
        except distributed.scheduler.KilledWorker:
            raise MetricAbortedError(
                f"{metric.name}: Dask workers kept dying while working on {what}"
            ) from None

    def _stop(self, futures: list[Future], restart: bool) -> None:
        """Cancel ``futures``; with ``restart``, restart the workers still running them (a
        hung metric cannot be stopped inside a worker thread)."""
        if not futures:
            return
        keys = {future.key for future in futures}
        busy = []
        if restart:
            busy = [
                address
                for address, running in self.client.processing().items()
                if keys.intersection(running)
            ]
        self.client.cancel(futures, force=True)
        if busy:
            self.client.restart_workers(busy, raise_for_error=False)


def _wait_first(futures: list[Future], seconds: float | None) -> set[Future]:
    try:
        done, _ = distributed.wait(futures, timeout=seconds, return_when="FIRST_COMPLETED")
    except TimeoutError:
        return set()
    return set(done)


def _quiet_logging() -> None:
    """Only errors from distributed: its routine warnings (a worker restarted, a large task)
    would interleave with the run's own one-line messages."""
    logging.getLogger("distributed").setLevel(logging.ERROR)
