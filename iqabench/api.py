"""The Python API: what a researcher calls from a notebook or script.

>>> from iqabench import api
>>> api.score("ssim", "dist.png", ref="ref.png")                      # doctest: +SKIP
>>> niqe = api.create_metric("niqe"); niqe(["a.png", "b.png"])         # doctest: +SKIP
>>> result = api.run(["psnr", "ssim"], "synthetic-lwir", out="reports/demo")  # doctest: +SKIP
>>> result.summary["metrics"]["ssim"]["overall"]["srocc"]             # doctest: +SKIP
>>> api.run("brisque", "TIIQAD", "~/TIIQAD", train_dataset="synthetic-lwir")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import Dataset, load_dataset
from .progress import Progress

if TYPE_CHECKING:
    import numpy as np

    from .runner import RunOptions, RunResult
    from .scorer import Scorer

__all__ = ["create_metric", "evaluate", "load_dataset", "run", "run_cross_dataset", "score"]


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
    train_dataset: str | Dataset | None = None,
    train_data_root: str | Path | None = None,
    train_csv: str | Path | None = None,
    **options: Any,
) -> RunResult:
    """Score a dataset with metrics, evaluate and write a run folder (see docs/results.md).

    ``metrics`` is ``"all"``, a comma-separated string or a list of names; ``options`` are the
    fields of :class:`~iqabench.runner.RunOptions` (``splits``, ``seed``, ``workers``,
    ``executor="dask"``, ``scheduler``, ``store``...). With ``train_dataset`` (a name, with
    ``train_data_root`` and ``train_csv`` as for ``dataset``, or a loaded dataset) the run
    follows the cross-dataset protocol (:func:`run_cross_dataset`) with ``dataset`` as its test
    dataset, and ``out`` is its run folder.
    """
    names, run_options = _run_options(metrics, params, options)  # unknown names fail first
    loaded = _loaded(dataset, data_root, csv)
    if train_dataset is not None:
        train = _loaded(train_dataset, train_data_root, train_csv)
        found = run_cross_dataset(
            metrics, train, [loaded], out, params=params, progress=progress, **options
        )
        return found[0]
    from .runner import run as run_benchmark

    target = Path(out) if out is not None else Path("reports") / loaded.name
    return run_benchmark(names, loaded, target, run_options, progress)


def run_cross_dataset(
    metrics: str | Sequence[str],
    train_dataset: str | Dataset,
    test_datasets: Sequence[str | Dataset],
    out: str | Path | None = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> list[RunResult]:
    """Train on one dataset, test on others: the cross-dataset protocol (docs/results.md).

    Every trainable metric is fitted once on every image of ``train_dataset`` (its validation
    scenes carved from it) and scores every image of each test dataset; training-free metrics
    are scored there as usual. Each test dataset gets a run folder of its own: ``out`` itself
    for one test dataset, ``out/NAME`` for several (default ``reports/cross-TRAIN/NAME``);
    the runs after the first reuse the one training from the score store. Datasets are loaded
    datasets, or names of built-in ones (``synthetic-lwir``); ``options`` as for :func:`run`
    (``splits`` does not apply). Returns one result per test dataset, in order.
    """
    names, run_options = _run_options(metrics, params, options)
    train = _loaded(train_dataset, None, None)
    tests = [_loaded(test, None, None) for test in test_datasets]
    if not tests:
        from .errors import UserError

        raise UserError("a cross-dataset run needs at least one test dataset")
    from .runner import run as run_benchmark

    folders = _test_folders(train, tests, out)
    cross = replace(run_options, train_dataset=train, cross_tests=tuple(tests))
    return [
        run_benchmark(names, test, folder, cross, progress)
        for test, folder in zip(tests, folders, strict=True)
    ]


def _loaded(dataset: str | Dataset, root: str | Path | None, csv: str | Path | None) -> Dataset:
    """``dataset`` loaded by name from ``root``/``csv``, or as given when already loaded (then a
    root or CSV would be ignored, so it is refused: a folder meant as ``out`` goes there)."""
    if not isinstance(dataset, Dataset):
        return load_dataset(dataset, root, csv)
    if root is not None or csv is not None:
        raise TypeError(
            f"dataset {dataset.name!r} is already loaded: a data root or CSV applies only to a "
            "dataset given by name (the run folder is out=)"
        )
    return dataset


def _run_options(
    metrics: str | Sequence[str],
    params: Mapping[str, Mapping[str, Any]] | None,
    options: Mapping[str, Any],
) -> tuple[list[str], RunOptions]:
    """The metric names a run scores and its options (unknown names fail here, first)."""
    from . import registry
    from .runner import RunOptions

    spec = metrics if isinstance(metrics, str) else ",".join(metrics)
    names = registry.resolve_names(spec)
    _check_params_name_metrics(params or {}, names)
    run_options = RunOptions(
        metric_params=dict(params or {}),
        explicit=spec.strip().lower() != "all",
        **options,
    )
    return names, run_options


def _test_folders(train: Dataset, tests: Sequence[Dataset], out: str | Path | None) -> list[Path]:
    """The run folder of each test dataset: ``out`` for one, else ``out/NAME`` (default
    ``reports/cross-TRAIN/NAME``), NAME followed by the folder's name where names repeat."""
    if out is not None and len(tests) == 1:
        return [Path(out)]
    parent = Path(out) if out is not None else Path("reports") / f"cross-{train.name}"
    names = [test.name for test in tests]
    repeated = {name for name in names if names.count(name) > 1}
    folders = [
        parent / (f"{test.name}-{test.root.name}" if test.name in repeated else test.name)
        for test in tests
    ]
    if len(set(folders)) < len(folders):
        from .errors import UserError

        raise UserError(f"two test datasets would share the run folder {folders[0]}")
    return folders


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
