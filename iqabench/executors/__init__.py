"""Where a run's tasks run: this process, a local process pool, or a Dask cluster.

:func:`create_executor` builds the one a run asks for; :class:`~.base.Executor` is the interface
the runner and :mod:`iqabench.scoring` / :mod:`iqabench.fitting` use. See :mod:`.local` and
:mod:`.dask_cluster` for what each backend promises.
"""

from __future__ import annotations

from .base import Executor, FitTask, MetricSpec
from .local import InProcess, ProcessPool

#: The names ``iqabench run --executor`` accepts.
EXECUTORS = ("local", "dask")

__all__ = ["EXECUTORS", "Executor", "FitTask", "InProcess", "MetricSpec", "create_executor"]


def create_executor(
    kind: str = "local", workers: int = 1, scheduler: str | None = None
) -> Executor:
    """The executor ``kind`` names: ``local`` (this process for one worker, else a pool of
    ``workers`` processes) or ``dask`` (the cluster at ``scheduler``, or a local cluster of
    ``workers`` processes on 127.0.0.1). Raises :class:`~iqabench.errors.UserError` for an
    unknown kind, a scheduler given to the local executor, a missing ``distributed`` extra or
    an unreachable scheduler."""
    from ..errors import UserError

    if kind not in EXECUTORS:
        raise UserError(f"unknown executor {kind!r} (choose {' or '.join(EXECUTORS)})")
    if kind == "local":
        if scheduler is not None:
            raise UserError("--scheduler needs --executor dask")
        return InProcess() if workers <= 1 else ProcessPool(workers)
    try:
        from .dask_cluster import DaskExecutor
    except ImportError as exc:
        raise UserError(
            f"--executor dask needs Dask distributed ({exc.name or exc} is not installed): "
            "pip install 'iqabench[distributed]'"
        ) from None
    return DaskExecutor(scheduler, workers)
