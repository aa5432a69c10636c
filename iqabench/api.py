"""The Python API: what a researcher calls from a notebook or script.

>>> from iqabench import api
>>> api.score("ssim", "dist.png", ref="ref.png")                      # doctest: +SKIP
>>> niqe = api.create_metric("niqe"); niqe(["a.png", "b.png"])         # doctest: +SKIP
>>> result = api.run(["psnr", "ssim"], "synthetic-lwir", out="reports/demo")  # doctest: +SKIP
>>> result.summary["metrics"]["ssim"]["overall"]["srocc"]             # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import Dataset, load_dataset
from .progress import Progress

if TYPE_CHECKING:
    import numpy as np

    from .runner import RunResult
    from .scorer import Scorer

__all__ = ["create_metric", "evaluate", "load_dataset", "run", "score"]


def evaluate(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """PLCC/SROCC/KROCC/RMSE overall and per distortion type: :func:`iqabench.evaluate.evaluate`."""
    from .evaluate import evaluate as evaluate_scores

    return evaluate_scores(*args, **kwargs)


def score(metric: str, image: Any, ref: Any = None, **params: Any) -> float | np.ndarray:
    """Metric ``metric``'s score for one image or a batch (see :func:`create_metric`)."""
    return create_metric(metric, **params)(image, ref)


def create_metric(name: str, **params: Any) -> Scorer:
    """Metric ``name`` as a callable object (paths, arrays, PIL images, tensors; batches)."""
    from .scorer import create_metric as create

    return create(name, **params)


def run(
    metrics: str | Sequence[str] = "all",
    dataset: str | Dataset = "synthetic-lwir",
    data_root: str | Path | None = None,
    out: str | Path | None = None,
    *,
    csv: str | Path | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> RunResult:
    """Score a dataset with metrics, evaluate and write a run folder (see docs/results.md).

    ``metrics`` is ``"all"``, a comma-separated string or a list of names; ``options`` are the
    fields of :class:`~iqabench.runner.RunOptions` (``splits``, ``seed``, ``workers``,
    ``executor="dask"``, ``scheduler``, ``store``...).
    """
    from . import registry
    from .runner import RunOptions
    from .runner import run as run_benchmark

    spec = metrics if isinstance(metrics, str) else ",".join(metrics)
    names = registry.resolve_names(spec)
    _check_params_name_metrics(params or {}, names)
    loaded = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_root, csv)
    target = Path(out) if out is not None else Path("reports") / loaded.name
    run_options = RunOptions(
        metric_params=dict(params or {}),
        explicit=spec.strip().lower() != "all",
        **options,
    )
    return run_benchmark(names, loaded, target, run_options, progress)


def _check_params_name_metrics(params: Mapping[str, Any], names: Sequence[str]) -> None:
    """Per-metric parameters must name a metric of the run (a typo is an error, not ignored)."""
    from . import registry
    from .errors import UserError

    for metric in params:
        registry.get(metric)  # unknown: one line with the closest name
        if metric not in names:
            raise UserError(
                f"parameters given for metric {metric!r}, which this run does not score"
            )
