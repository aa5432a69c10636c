"""The Python API: what a researcher calls from a notebook or script.

>>> from iqabench import api
>>> api.score("ssim", "dist.png", ref="ref.png")                      # doctest: +SKIP
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
    from .runner import RunResult

__all__ = ["evaluate", "load_dataset", "run", "score"]


def evaluate(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """PLCC/SROCC/KROCC/RMSE overall and per distortion type: :func:`iqabench.evaluate.evaluate`."""
    from .evaluate import evaluate as evaluate_scores

    return evaluate_scores(*args, **kwargs)


def score(metric: str, image: str | Path, ref: str | Path | None = None, **params: Any) -> float:
    """One metric's score for one image (and its reference, for full-reference metrics)."""
    from . import registry
    from .errors import UserError
    from .imageio import load_for_metric

    instance = registry.create(metric, **params)
    if instance.full_reference and ref is None:
        raise UserError(f"{instance.name} is a full-reference metric: give the reference (--ref)")
    pixels, reference = load_for_metric(
        image, instance.colour, ref if instance.full_reference else None
    )
    values = instance.score([pixels], [reference] if instance.full_reference else None)
    return float(values[0])


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
    fields of :class:`~iqabench.runner.RunOptions` (``splits``, ``seed``, ``workers``...).
    """
    from . import registry
    from .runner import RunOptions
    from .runner import run as run_benchmark

    spec = metrics if isinstance(metrics, str) else ",".join(metrics)
    names = registry.resolve_names(spec)
    loaded = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_root, csv)
    target = Path(out) if out is not None else Path("reports") / loaded.name
    run_options = RunOptions(
        metric_params=dict(params or {}),
        explicit=spec.strip().lower() != "all",
        **options,
    )
    return run_benchmark(names, loaded, target, run_options, progress)
