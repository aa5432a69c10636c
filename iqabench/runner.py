"""A benchmark run: every item x every metric, evaluated, written to a run folder.

The runner only orchestrates: items and content keys come from the dataset, scores from the
store or :mod:`iqabench.scoring`, per-split fits from :mod:`iqabench.fitting`, both run by an
executor (:mod:`iqabench.executors`: this process, a local pool or a Dask cluster) whose results
only this process writes to the store, statistics from :mod:`iqabench.evaluate`, and files
from :mod:`iqabench.results`. One metric's failure never stops the others, and one image's
failure never stops its metric. The score store is shared by runs (the run folder's
``store.json`` names it); ``scores.csv`` is written as each metric finishes.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, registry
from .cards import calibration_status, metric_card
from .cross_dataset import PROTOCOL as CROSS_DATASET
from .cross_dataset import CrossPlan, check_disjoint, cross_plan, fingerprint, training_refusal
from .data.items import Dataset, Item
from .errors import (
    RunFolderBusyError,
    StorageError,
    UserError,
    one_line,
    storage_error,
)
from .executors import Executor, create_executor
from .imageio import cached_file_sha256
from .metric import FeatureMetric, LearnedMetric, Metric
from .progress import Progress, SilentProgress
from .protocol import Split, content_splits, random_splits
from .results import SCHEMA, ScoresWriter, write_summary
from .scoring import DEFAULT_TIMEOUT, Job, MetricAbortedError, Tally, compute
from .store import (
    MetricKey,
    Record,
    ScoreStore,
    default_store_path,
    link_store,
    linked_store,
    lock_run_folder,
)

STATISTICS = ("plcc", "srocc", "krocc", "rmse")
CHECKPOINT_NOTE = (
    "scored with a given checkpoint instead of training per split: images it was trained on "
    "are scored too, which inflates the figures unless the checkpoint never saw this dataset"
)


@dataclass
class RunOptions:
    """How a run is carried out (the protocol and the execution)."""

    splits: int = 10
    train_fraction: float = 0.8
    seed: int = 0
    split_mode: str = "content"
    #: Processes (local pool) or Dask workers (local cluster) that score and fit in parallel.
    workers: int = 1
    #: Where tasks run: ``"local"`` (this process, or a pool of ``workers`` processes),
    #: ``"dask"`` (the cluster at ``scheduler``, or a local one of ``workers`` processes), or an
    #: :class:`~iqabench.executors.Executor` the caller owns.
    executor: str | Executor = "local"
    #: Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    scheduler: str | None = None
    #: The score store; None: the one the run folder names, else the shared default store.
    store: str | Path | None = None
    bootstrap: int = 1000
    #: Per-metric parameters, e.g. ``{"niqe": {"model": "thermal.npz"}}``.
    metric_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Metrics named explicitly (not through ``all``): skipping one is an error.
    explicit: bool = True
    report: bool = True
    #: Seconds each metric may spend per image before it is stopped (None: no limit), and
    #: per-metric overrides, e.g. ``{"nestconvnext": 3600}``.
    timeout: float | None = DEFAULT_TIMEOUT
    metric_timeouts: Mapping[str, float | None] = field(default_factory=dict)
    #: The cross-dataset protocol (:mod:`iqabench.cross_dataset`): trainable metrics are fitted
    #: on every image of this dataset and score every image of the run's dataset (no splits).
    train_dataset: Dataset | None = None
    #: Every test dataset trained for at once (this run's among them), so that one training
    #: predicts them all and the runs of the others reuse it; empty: this run's dataset alone.
    cross_tests: Sequence[Dataset] = ()


@dataclass
class RunResult:
    """What a run produced, for the CLI to summarise and choose its exit code."""

    out: Path
    summary: dict[str, Any]
    tally: Tally
    explicit: bool = True
    report: Path | None = None
    report_error: str | None = None
    #: ``"input"`` when the report could not be written (full disk, read-only folder).
    report_error_kind: str | None = None
    input_failures: list[str] = field(default_factory=list)
    #: Per-item errors that are iqabench's or the metric's fault (exit code 1).
    internal_failures: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class _Context:
    dataset: Dataset
    options: RunOptions
    store: ScoreStore
    keys: dict[str, str]
    missing: dict[str, str]
    splits: list[Split]
    progress: Progress
    hashes: _Hashes | None = None
    executor: Executor | None = None
    cross: _Cross | None = None
    #: Where the metrics' rows of ``scores.csv`` go as they are made (None: kept in lists).
    rows: ScoresWriter | None = None


def run(
    metric_names: Sequence[str],
    dataset: Dataset,
    out: Path,
    options: RunOptions | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Score ``dataset`` with every metric, evaluate, and write the run folder ``out``.

    The run holds the folder's lock throughout: a second run into the same folder raises
    :class:`~iqabench.errors.RunFolderBusyError` naming the holder.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(out, exc) from None
    with lock_run_folder(out):
        return _run_locked(metric_names, dataset, out, options, progress)


def _run_locked(
    metric_names: Sequence[str],
    dataset: Dataset,
    out: Path,
    options: RunOptions | None,
    progress: Progress | None,
) -> RunResult:
    options = options or RunOptions()
    progress = progress or SilentProgress()
    started, clock = datetime.now(UTC), time.perf_counter()
    store_path = _store_path(out, options)
    ScoresWriter.remove_stale(out)
    _refuse_untrainable(metric_names, options)
    hashes = _content_keys(dataset.items, progress)
    cross = _cross_dataset(dataset, hashes, options, progress)
    splits = _splits(dataset, options) if cross is None else []
    tally, entries, failures, warnings = Tally(), {}, [], []
    result = RunResult(out=out, summary={}, tally=tally, explicit=options.explicit)
    with ScoreStore(store_path) as store, ScoresWriter(out) as rows, _executor(options) as executor:
        link_store(out, store.path)
        context = _Context(
            dataset, options, store, {}, {}, splits, progress, hashes, executor, cross, rows
        )
        for name in metric_names:
            outcome = _run_metric(name, context)
            entries[name] = outcome.entry
            failures.extend(outcome.failures)
            warnings.extend(f"{name}: {note}" for note in outcome.entry.get("notes", []))
            tally.add(outcome.tally)
            status, reason = outcome.entry["status"], outcome.entry.get("reason")
            if status == "skipped":
                result.skipped[name] = reason
            elif status == "failed":
                result.failed[name] = reason
        rows.commit()
    result.input_failures = _per_image([f for f in failures if f.get("kind") == "input"])
    result.internal_failures = _per_image([f for f in failures if f.get("kind") != "input"])
    result.summary = {
        "schema": SCHEMA,
        "iqabench_version": __version__,
        "created": started.isoformat(timespec="seconds"),
        "software": _software(),
        "dataset": {**_dataset_facts(dataset), "fingerprint": hashes.fingerprint(dataset.items)},
        **({"train_dataset": cross.facts()} if cross is not None else {}),
        "protocol": _protocol_facts(options, splits, cross),
        "timing": {
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - clock, 3),
        },
        "counts": {"scored": tally.scored, "reused": tally.reused, "failed": tally.failed},
        "metrics": entries,
        "failures": [{k: v for k, v in f.items() if k != "kind"} for f in failures],
        "warnings": warnings,
    }
    write_summary(out, result.summary)
    if options.report:
        _build_report(result)
    return result


def _protocol_facts(
    options: RunOptions, splits: Sequence[Split], cross: _Cross | None
) -> dict[str, Any]:
    """The protocol block of the summary: its ``name`` (``splits``, ``all`` or
    ``cross-dataset``) and what defines it."""
    from .evaluate import MIN_TEST_ITEMS
    from .fitting import VALIDATION_FRACTION

    common = {
        "seed": options.seed,
        "bootstrap": options.bootstrap,
        "confidence": 0.95,
        "min_test_items": MIN_TEST_ITEMS,
    }
    if cross is not None:
        return {
            "name": CROSS_DATASET,
            "splits": 0,
            "validation_fraction": VALIDATION_FRACTION,
            "test_datasets": [test.name for test, _ in cross.tests],
            **common,
        }
    return {
        "name": "splits" if splits else "all",
        "splits": len(splits),
        "train_fraction": options.train_fraction,
        "split_mode": options.split_mode,
        **common,
    }


def _refuse_untrainable(metric_names: Sequence[str], options: RunOptions) -> None:
    """Before any work: a metric named explicitly whose training needs (references, distortion
    types) the cross-dataset training set cannot meet is refused, in one line. (Through
    ``all`` it is skipped with the same reason.)"""
    if options.train_dataset is None or not options.explicit:
        return
    for name in metric_names:
        try:
            metric = registry.get(name)(**dict(options.metric_params.get(name, {})))
        except UserError:
            continue  # a bad parameter: the metric's own run says so
        if metric.trainable and _needs_fit(metric):
            reason = training_refusal(metric, options.train_dataset)
            if reason:
                raise UserError(f"metric {name!r} cannot be trained here: {reason}")


def _store_path(out: Path, options: RunOptions) -> Path:
    """The run's score store: ``options.store``, else the one the run folder names (a rerun
    resumes where it stopped), else the shared default store."""
    if options.store is not None:
        return Path(options.store)
    return linked_store(out) or default_store_path()


def _executor(options: RunOptions) -> AbstractContextManager[Executor]:
    """The executor the options name, closed after the run; one the caller gave stays open."""
    if isinstance(options.executor, Executor):
        return nullcontext(options.executor)
    return create_executor(options.executor, options.workers, options.scheduler)


def _per_image(failures: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per failed image, naming the metrics it failed for (its first error shown)."""
    grouped: dict[str, tuple[str, list[str]]] = {}
    for failure in failures:
        error, metrics = grouped.setdefault(failure["image"], (failure["error"], []))
        metrics.append(failure["metric"])
    return [f"{error} (metrics: {', '.join(metrics)})" for error, metrics in grouped.values()]


def _build_report(result: RunResult) -> None:
    try:
        from .report import build_report

        result.report = build_report(result.out)
    except StorageError as exc:  # results are written; the report's folder is full or locked
        result.report_error, result.report_error_kind = one_line(exc), "input"
    except Exception as exc:  # results are written; a report failure must not lose them
        result.report_error = f"{type(exc).__name__}: {one_line(exc)}"


# -- items ------------------------------------------------------------------------------------
@dataclass
class _Hashes:
    """Content hashes of the items' images and references, and the files that are missing."""

    images: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    missing_images: dict[str, str] = field(default_factory=dict)
    missing_refs: dict[str, str] = field(default_factory=dict)

    def for_metric(self, full_reference: bool) -> tuple[dict[str, str], dict[str, str]]:
        """Store keys of the items a metric can score, and why the others cannot be: a
        no-reference metric needs the image alone, a full-reference one the pair."""
        keys, missing = {}, dict(self.missing_images)
        for item_id, image in self.images.items():
            if not full_reference:
                keys[item_id] = image[:32]
            elif item_id in self.missing_refs:
                missing[item_id] = self.missing_refs[item_id]
            elif item_id in self.refs:
                keys[item_id] = f"{image[:32]}:{self.refs[item_id][:32]}"
            else:
                keys[item_id] = image[:32]
        return keys, missing

    def fingerprint(self, items: Sequence[Item]) -> str:
        """The dataset's fingerprint (:func:`iqabench.cross_dataset.fingerprint`)."""
        return fingerprint(items, self.images, self.refs)

    def files(self, items: Sequence[Item]) -> dict[str, str]:
        """A path for every content hash of the items' images and references."""
        by_id = {item.id: item for item in items}
        found = {digest: str(by_id[i].image) for i, digest in self.images.items()}
        for item_id, digest in self.refs.items():
            found.setdefault(digest, str(by_id[item_id].ref))
        return found


def _content_keys(items: Sequence[Item], progress: Progress) -> _Hashes:
    """Content hashes of every item's image and reference (each file hashed once)."""
    hashes = _Hashes()
    with progress.task("hashing images", len(items)) as bar:
        for item in items:
            if not item.image.is_file():
                hashes.missing_images[item.id] = f"image not found: {item.image}"
            else:
                hashes.images[item.id] = cached_file_sha256(item.image)
            if item.ref is not None and not item.ref.is_file():
                hashes.missing_refs[item.id] = f"reference not found: {item.ref}"
            elif item.ref is not None:
                hashes.refs[item.id] = cached_file_sha256(item.ref)
            bar.advance()
    return hashes


@dataclass
class _Cross:
    """The cross-dataset side of a run: the training dataset, its hashes and fingerprint, and
    every test dataset trained for at once with its hashes (the run's own among them)."""

    train: Dataset
    train_hashes: _Hashes
    fingerprint: str
    tests: list[tuple[Dataset, _Hashes]]

    def facts(self) -> dict[str, Any]:
        """The ``train_dataset`` block of the summary."""
        return {**_dataset_facts(self.train), "fingerprint": self.fingerprint}


def _cross_dataset(
    dataset: Dataset, hashes: _Hashes, options: RunOptions, progress: Progress
) -> _Cross | None:
    """The run's cross-dataset side (None without ``train_dataset``); refuses a test dataset
    that shares an image or reference with the training dataset."""
    train = options.train_dataset
    if train is None:
        return None
    train_hashes = _content_keys(train.items, progress)
    ordered = list(options.cross_tests)
    if all(test is not dataset for test in ordered):
        ordered.insert(0, dataset)
    tests = [
        (test, hashes if test is dataset else _content_keys(test.items, progress))
        for test in ordered
    ]
    train_files = train_hashes.files(train.items)
    for test, test_hashes in tests:
        check_disjoint(train_files, test_hashes.files(test.items), test)
    return _Cross(train, train_hashes, train_hashes.fingerprint(train.items), tests)


def _splits(dataset: Dataset, options: RunOptions) -> list[Split]:
    if options.splits <= 0:
        return []
    if options.split_mode == "random":
        return random_splits(
            len(dataset.items), options.splits, options.train_fraction, options.seed
        )
    if options.split_mode != "content":
        raise UserError(f"unknown split mode {options.split_mode!r} (content or random)")
    return content_splits(dataset.contents, options.splits, options.train_fraction, options.seed)


# -- one metric -------------------------------------------------------------------------------
@dataclass
class _Outcome:
    entry: dict[str, Any]
    #: The metric's rows of ``scores.csv``: the run's writer, or a list.
    rows: list[dict[str, Any]] | ScoresWriter = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)


def _run_metric(name: str, context: _Context) -> _Outcome:
    started = time.perf_counter()
    cls = registry.get(name)
    entry = _metric_facts(cls)
    outcome = _Outcome(entry=entry, rows=[] if context.rows is None else context.rows)
    try:
        metric = cls(**dict(context.options.metric_params.get(name, {})))
        entry["params"] = dict(metric.params)
        reason = _skip_reason(metric, context)
        if reason:
            entry.update(status="skipped", reason=reason)
            return outcome
        _score_metric(metric, _for_metric(context, metric), outcome)  # may set "failed"
    except (StorageError, RunFolderBusyError):
        raise  # the run folder itself cannot be used: no metric can go on
    except UserError as exc:  # a missing or unreadable model file, a bad parameter
        entry.update(status="skipped", reason=one_line(exc))
    except MetricAbortedError as exc:  # it exited, hung or lost its worker
        entry.update(status="failed", reason=one_line(exc))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # the metric is broken; the run goes on with the others
        entry.update(status="failed", reason=f"{type(exc).__name__}: {one_line(exc)}")
    entry["seconds"] = round(time.perf_counter() - started, 3)
    return outcome


def _for_metric(context: _Context, metric: Metric) -> _Context:
    """The context with the store keys (and missing files) of this metric's kind, the keys
    carrying the item facts the metric reads (its ``item_fields``)."""
    if context.hashes is not None:
        keys, missing = context.hashes.for_metric(metric.full_reference)
        context = replace(context, keys=keys, missing=missing)
    return _keyed_by_item_facts(metric, context)


def _timeout(metric: Metric, options: RunOptions) -> float | None:
    return options.metric_timeouts.get(metric.name, options.timeout)


def _metric_facts(cls: type[Metric]) -> dict[str, Any]:
    card = metric_card(cls.name, cls) or {}
    facts = cls.describe()
    facts.update(
        display_name=card.get("display_name", cls.name),
        calibration=calibration_status(cls.name, cls),
        params=dict(cls.default_params),
        status="ok",
        reason=None,
        notes=[],
        pretrained=None,
    )
    return facts


def _skip_reason(metric: Metric, context: _Context) -> str | None:
    if metric.full_reference and not context.dataset.has_references:
        return "full-reference metric, and this dataset has no reference images"
    trained = metric.trainable and _needs_fit(metric)
    if trained and context.cross is not None:
        refusal = training_refusal(metric, context.cross.train)
        if refusal:
            return refusal
    if metric.gpu_recommended and not context.options.explicit and not _has_cuda():
        return "needs a GPU to be practical and none is present (name it explicitly to run on CPU)"
    if trained and context.cross is None and not context.splits:
        return "trainable metric, and the run has no splits (--splits 0)"
    for name in metric.item_fields:
        if all(getattr(item, name) is None for item in context.dataset.items):
            return f"needs each image's {name}, and this dataset does not give it"
    return None


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _needs_fit(metric: Metric) -> bool:
    if isinstance(metric, LearnedMetric):
        return metric.requires_fit()
    return isinstance(metric, FeatureMetric)


def _score_metric(metric: Metric, context: _Context, outcome: _Outcome) -> None:
    items = context.dataset.items
    key = MetricKey(metric.name, metric.version, metric.params_hash())
    usable = [i for i in items if i.id in context.keys and (i.ref or not metric.full_reference)]
    for item in items:
        if item.id in context.missing:
            _fail(outcome, metric, item, context.missing[item.id], "input")
            outcome.tally.failed += 1
        elif metric.full_reference and item.ref is None:
            _fail(outcome, metric, item, f"{item.image}: no reference image", "input")
            outcome.tally.failed += 1
    jobs = [
        Job(
            context.keys[i.id],
            i.image,
            i.ref if metric.full_reference else None,
            _item_facts(metric, i),
        )
        for i in usable
    ]
    executor, timeout = context.executor, _timeout(metric, context.options)
    if not _needs_fit(metric):
        with context.progress.task(metric.name, len(jobs)) as bar:
            records, tally = compute(
                context.store, metric, key, "score", jobs, bar, executor, timeout
            )
        outcome.tally.add(tally)
        scores = _collect(records, usable, context, metric, outcome)
        _record_diagnostics(metric, context, usable, jobs, outcome)
        _add_notes(outcome, metric.notes())
        if metric.trainable:  # a learned metric given its trained model
            _add_notes(outcome, [CHECKPOINT_NOTE])
        outcome.entry["pretrained"] = metric.pretrained_weights()
        _evaluate_direct(metric, scores, context, outcome)
        return
    if context.cross is not None:
        _score_across(metric, key, context, usable, jobs, outcome)
        return
    from .fitting import feature_predictions, learned_predictions

    if isinstance(metric, FeatureMetric):
        with context.progress.task(f"{metric.name} features", len(jobs)) as bar:
            records, tally = compute(
                context.store, metric, key, "features", jobs, bar, executor, timeout
            )
        outcome.tally.add(tally)
        _collect(records, usable, context, metric, outcome)
        _record_diagnostics(metric, context, usable, jobs, outcome)
        with context.progress.task(
            f"{metric.name} fit x{len(context.splits)}", len(context.splits)
        ) as bar:
            predictions, notes, fitted = feature_predictions(
                context.store,
                metric,
                key,
                items,
                context.keys,
                context.store.features(key),
                context.splits,
                context.options.seed,
                bar,
                executor,
            )
    else:
        assert isinstance(metric, LearnedMetric)
        with context.progress.task(
            f"{metric.name} train x{len(context.splits)}", len(context.splits)
        ) as bar:
            predictions, notes, fitted = learned_predictions(
                context.store,
                metric,
                key,
                items,
                context.keys,
                {i.id for i in usable},
                context.splits,
                context.options.seed,
                bar,
                executor,
            )
    outcome.tally.add(fitted)
    _add_notes(outcome, [*notes, *metric.notes()])
    outcome.entry["pretrained"] = metric.pretrained_weights()
    _evaluate_splits_of_trainable(predictions, context, outcome)


def _score_across(
    metric: Metric,
    key: MetricKey,
    context: _Context,
    usable: Sequence[Item],
    jobs: Sequence[Job],
    outcome: _Outcome,
) -> None:
    """A trainable metric under the cross-dataset protocol: fitted once on every usable image
    of the training dataset and predicting every test image of every test dataset (stored under
    the training set's fingerprint, so the other test datasets' runs and reruns reuse it), then
    evaluated on this run's test dataset."""
    from .fitting import cross_fit_key, feature_predictions, learned_predictions

    cross = context.cross
    assert cross is not None
    train, train_keys = _usable_keys(metric, context, cross.train, cross.train_hashes)
    plan = cross_plan(
        train, train_keys, [_usable_keys(metric, context, d, h) for d, h in cross.tests]
    )
    stored_as = cross_fit_key(cross.fingerprint, context.options.seed, plan.test_keys)
    executor, seed = context.executor, context.options.seed
    if isinstance(metric, FeatureMetric):
        every = [*jobs, *(_job(metric, plan.keys[i.id], i) for i in plan.items)]
        unique = list({job.key: job for job in every}.values())
        with context.progress.task(f"{metric.name} features", len(unique)) as bar:
            records, tally = compute(
                context.store,
                metric,
                key,
                "features",
                unique,
                bar,
                executor,
                _timeout(metric, context.options),
            )
        outcome.tally.add(tally)
        _collect(records, usable, context, metric, outcome)
        _record_diagnostics(metric, context, usable, jobs, outcome)
        _add_notes(outcome, _left_out_of_training(cross.train, plan, records))
        with context.progress.task(f"{metric.name} fit on {cross.train.name}", 1) as bar:
            predictions, notes, fitted = feature_predictions(
                context.store,
                metric,
                key,
                plan.items,
                plan.keys,
                context.store.features(key),
                [plan.split],
                seed,
                bar,
                executor,
                lambda _split: stored_as,
            )
    else:
        assert isinstance(metric, LearnedMetric)
        _add_notes(outcome, _left_out_of_training(cross.train, plan, {}))
        with context.progress.task(f"{metric.name} train on {cross.train.name}", 1) as bar:
            predictions, notes, fitted = learned_predictions(
                context.store,
                metric,
                key,
                plan.items,
                plan.keys,
                set(plan.keys),
                [plan.split],
                seed,
                bar,
                executor,
                lambda _split: stored_as,
            )
    outcome.tally.add(fitted)
    _add_notes(outcome, [*notes, *metric.notes()])
    outcome.entry["pretrained"] = metric.pretrained_weights()
    outcome.entry["trained_on"] = {"dataset": cross.train.name, "images": plan.n_train}
    _evaluate_across(predictions[plan.split.index], context, outcome)


def _usable_keys(
    metric: Metric, context: _Context, dataset: Dataset, hashes: _Hashes
) -> tuple[list[Item], dict[str, str]]:
    """The items of ``dataset`` that ``metric`` can use (image found; the reference too for a
    full-reference metric) and their store keys."""
    keys = _for_metric(replace(context, dataset=dataset, hashes=hashes), metric).keys
    usable = [i for i in dataset.items if i.id in keys and (i.ref or not metric.full_reference)]
    return usable, {item.id: keys[item.id] for item in usable}


def _job(metric: Metric, key: str, item: Item) -> Job:
    """The scoring job of one item for ``metric``."""
    ref = item.ref if metric.full_reference else None
    return Job(key, item.image, ref, _item_facts(metric, item))


def _left_out_of_training(
    train: Dataset, plan: CrossPlan, records: Mapping[str, Record]
) -> list[str]:
    """A note on the training images the fit cannot use: missing files (or references of a
    full-reference metric), and images whose features failed."""
    failed = [
        record
        for index in plan.split.train
        if (record := records.get(plan.keys[plan.items[index].id])) is not None and not record.ok
    ]
    missing = len(train.items) - plan.n_train
    if not failed and not missing:
        return []
    example = f", e.g. {failed[0].error}" if failed else ""
    return [
        f"{missing + len(failed)} of {len(train.items)} training images left out of training "
        f"({missing} missing or without the reference it needs, {len(failed)} failed){example}"
    ]


def _item_facts(metric: Metric, item: Item) -> tuple[tuple[str, Any], ...]:
    """The facts ``metric`` asks for (its ``item_fields``) of ``item``."""
    return tuple((name, getattr(item, name)) for name in metric.item_fields)


def _keyed_by_item_facts(metric: Metric, context: _Context) -> _Context:
    """The context whose store keys also carry the item facts the metric reads: the same
    pixels under another label (e.g. distortion type) are another result."""
    if not metric.item_fields:
        return context
    facts = {item.id: _item_facts(metric, item) for item in context.dataset.items}
    keys = {
        item_id: f"{key}|{json.dumps(facts[item_id], default=str)}"
        for item_id, key in context.keys.items()
    }
    return replace(context, keys=keys)


def _record_diagnostics(
    metric: Metric,
    context: _Context,
    usable: Sequence[Item],
    jobs: Sequence[Job],
    outcome: _Outcome,
) -> None:
    """Per-image diagnostics the metric names (``diagnostics``: training-free metrics with a
    ``summarise`` class method, e.g. NIQE's flat-window share), computed in this process
    through the store like scores (they are cheap) and kept in the metric's entry with their
    warnings."""
    for cls in metric.diagnostics:
        diagnostic = cls()
        key = MetricKey(diagnostic.name, diagnostic.version, diagnostic.params_hash())
        with context.progress.task(f"{metric.name} {diagnostic.name}", len(jobs)) as bar:
            records, _ = compute(context.store, diagnostic, key, "score", jobs, bar)
        values = {
            item.id: records[context.keys[item.id]].value
            for item in usable
            if records.get(context.keys[item.id]) and records[context.keys[item.id]].ok
        }
        summary, notes = cls.summarise(values, metric.name)
        outcome.entry.setdefault("diagnostics", {})[diagnostic.name] = summary
        _add_notes(outcome, notes)


def _add_notes(outcome: _Outcome, notes: Sequence[str]) -> None:
    known = outcome.entry["notes"]
    known.extend(note for note in dict.fromkeys(notes) if note not in known)


def _fail(outcome: _Outcome, metric: Metric, item: Item, error: str, kind: str) -> None:
    outcome.failures.append(
        {
            "metric": metric.name,
            "item_id": item.id,
            "image": str(item.image),
            "error": error,
            "kind": kind,
        }
    )
    outcome.rows.append(_row(metric.name, item, None, None, error))


def _collect(
    records: Mapping[str, Record],
    usable: Sequence[Item],
    context: _Context,
    metric: Metric,
    outcome: _Outcome,
) -> dict[str, float]:
    """Scores by item id (features: only failures are recorded); failures become rows."""
    scores: dict[str, float] = {}
    for item in usable:
        record = records.get(context.keys[item.id])
        if record is None:
            continue
        if not record.ok:
            _fail(outcome, metric, item, record.error or "failed", record.error_kind or "internal")
        elif record.value is not None:
            scores[item.id] = record.value
            outcome.rows.append(_row(metric.name, item, None, record.value, None))
    return scores


def _row(metric: str, item: Item, split: int | None, score: float | None, error: str | None):  # noqa: ANN202
    return {
        "metric": metric,
        "split": split,
        "item_id": item.id,
        "image": str(item.image),
        "ref": str(item.ref) if item.ref else None,
        "distortion": item.distortion,
        "level": item.level,
        "content": item.content,
        "mos": item.mos,
        "quality": item.quality,
        "score": score,
        "error": error,
    }


# -- evaluation -------------------------------------------------------------------------------
def _evaluate_direct(
    metric: Metric, scores: Mapping[str, float], context: _Context, outcome: _Outcome
) -> None:
    """Training-free metric: statistics on every item, and on each split's test items (the
    protocol every metric shares, so that all are compared on the same test sets)."""
    items = context.dataset.items
    scored = [i for i in items if i.id in scores and np.isfinite(scores[i.id])]
    dropped = sum(1 for i in items if i.id in scores and not np.isfinite(scores[i.id]))
    if dropped:
        outcome.entry["notes"].append(
            f"{dropped} non-finite score(s) (e.g. PSNR of identical images) left out of the "
            "statistics"
        )
    entry = outcome.entry
    entry.update(evaluation="full", n_scored=len(scores), n_failed=len(outcome.failures))
    if len(scored) < 3:
        entry.update(status="failed", reason="fewer than 3 items scored: nothing to evaluate")
        return
    values = [scores[i.id] for i in scored]
    whole = _evaluate(context, values, scored, metric.higher_is_better, context.options.bootstrap)
    entry.update(whole)
    per_split, tests = [], []
    for split in context.splits:
        test = [
            items[j]
            for j in split.test
            if items[j].id in scores and np.isfinite(scores[items[j].id])
        ]
        values = [scores[i.id] for i in test]
        tests.append(test)
        per_split.append(_evaluate(context, values, test, metric.higher_is_better, 0))
    entry["splits"] = _summarise(per_split, tests)
    entry["evaluation_notes"] = _evaluation_notes(entry, [whole, *per_split], len(scored))
    _add_notes(outcome, entry["evaluation_notes"])


def _evaluate_splits_of_trainable(
    predictions: Mapping[int, Mapping[str, float]], context: _Context, outcome: _Outcome
) -> None:
    """Trainable metric: statistics per split's test items; cross-validated pooled view."""
    items = context.dataset.items
    per_split, tests, pooled = [], [], {}
    for split in context.splits:
        values = predictions.get(split.index, {})
        test = [items[j] for j in split.test if context.keys.get(items[j].id) in values]
        scores = [values[context.keys[i.id]] for i in test]
        for item, score in zip(test, scores, strict=True):
            pooled.setdefault(item.id, []).append(score)
            outcome.rows.append(_row(outcome.entry["name"], item, split.index, score, None))
        tests.append(test)
        per_split.append(_evaluate(context, scores, test, True, 0))
    entry = outcome.entry
    entry.update(evaluation="splits", n_scored=len(pooled), n_failed=len(outcome.failures))
    entry["splits"] = _summarise(per_split, tests)
    tested = [i for i in items if i.id in pooled]
    if len(tested) >= 3:
        pooled_means = [float(np.mean(pooled[i.id])) for i in tested]
        whole = _evaluate(context, pooled_means, tested, True, context.options.bootstrap)
        entry.update(whole)
        entry["evaluation_notes"] = _evaluation_notes(entry, [whole, *per_split], None)
        _add_notes(outcome, entry["evaluation_notes"])
    else:
        entry.update(status="failed", reason="no split produced test predictions")


def _evaluate_across(predicted: Mapping[str, float], context: _Context, outcome: _Outcome) -> None:
    """Trainable metric under the cross-dataset protocol: statistics on every test image it
    predicted (one set, bootstrap intervals over its images), as for a training-free metric."""
    items, keys = context.dataset.items, context.keys
    tested = [i for i in items if np.isfinite(predicted.get(keys.get(i.id, ""), np.nan))]
    scores = [predicted[keys[i.id]] for i in tested]
    for item, score in zip(tested, scores, strict=True):
        outcome.rows.append(_row(outcome.entry["name"], item, None, score, None))
    entry = outcome.entry
    entry.update(evaluation=CROSS_DATASET, n_scored=len(tested), n_failed=len(outcome.failures))
    if len(tested) < 3:
        entry.update(
            status="failed", reason="fewer than 3 test images predicted: nothing to evaluate"
        )
        return
    whole = _evaluate(context, scores, tested, True, context.options.bootstrap)
    entry.update(whole)
    entry["splits"] = _summarise([], [])
    entry["evaluation_notes"] = _evaluation_notes(entry, [whole], len(tested))
    _add_notes(outcome, entry["evaluation_notes"])


def _evaluate(
    context: _Context,
    scores: Sequence[float],
    items: Sequence[Item],
    higher_is_better: bool,
    bootstrap: int,
) -> dict[str, Any]:
    """Statistics of ``scores`` against the items' quality, overall and per type, served from
    the store when the same numbers were evaluated before (a rerun fits no curve again)."""
    from .evaluate import EVALUATION_VERSION, evaluate

    if len(items) < 3:
        return {"overall": {}, "per_type": {}}
    quality = [i.quality for i in items]
    types = [i.distortion for i in items]
    digest = hashlib.sha256(np.asarray(scores, dtype="<f8").tobytes())
    digest.update(np.asarray(quality, dtype="<f8").tobytes())
    digest.update(json.dumps([types, higher_is_better, bootstrap, context.options.seed]).encode())
    key = f"{EVALUATION_VERSION}:{digest.hexdigest()}"
    stored = context.store.get_evaluation(key)
    if stored is not None:
        return stored
    result = evaluate(
        list(scores),
        quality,
        types,
        higher_is_better,
        bootstrap=bootstrap,
        seed=context.options.seed,
    )
    context.store.put_evaluation(key, result)
    return result


def _summarise(
    per_split: Sequence[Mapping[str, Any]], tests: Sequence[Sequence[Item]]
) -> dict[str, Any]:
    """Median and spread over splits, overall and per distortion type, with the size of
    every split's test set (``test_items``) and whether it makes a small sample."""
    from .evaluate import summarize_splits

    def stats_of(results: list[Mapping[str, Any]]) -> dict[str, Any]:
        return {
            stat: summarize_splits(
                [float("nan") if r.get(stat) is None else r[stat] for r in results]
            )
            for stat in STATISTICS
        }

    types = list(dict.fromkeys(i.distortion for test in tests for i in test if i.distortion))
    return {
        "n": len(per_split),
        "overall": stats_of([s.get("overall", {}) for s in per_split]) if per_split else {},
        "per_type": {
            t: stats_of([s.get("per_type", {}).get(t, {}) for s in per_split]) for t in types
        },
        "test_items": {
            "overall": _test_sizes([len(test) for test in tests]),
            "per_type": {
                t: _test_sizes([sum(i.distortion == t for i in test) for test in tests])
                for t in types
            },
        },
    }


def _test_sizes(counts: Sequence[int]) -> dict[str, Any]:
    """Sizes of the splits' test sets; a small sample when their median is below the minimum."""
    from .evaluate import MIN_TEST_ITEMS

    if not counts:
        return {"median": None, "min": None, "max": None, "values": [], "small_sample": False}
    median = float(np.median(counts))
    return {
        "median": median,
        "min": int(min(counts)),
        "max": int(max(counts)),
        "values": [int(c) for c in counts],
        "small_sample": median < MIN_TEST_ITEMS,
    }


def _evaluation_notes(
    entry: Mapping[str, Any], results: Sequence[Mapping[str, Any]], all_items: int | None
) -> list[str]:
    """Warnings about what the statistics rest on: small samples, splits that gave no value,
    and mappings that did not converge (``all_items``: items of the all-image protocol)."""
    from .evaluate import MIN_TEST_ITEMS

    notes = []
    splits = entry.get("splits") or {}
    sizes = (splits.get("test_items") or {}).get("overall") or {}
    if sizes.get("small_sample"):
        notes.append(
            f"split test sets hold a median of {sizes['median']:g} images, fewer than "
            f"{MIN_TEST_ITEMS}: the split statistics are small samples (greyed, never a headline)"
        )
    missing = ((splits.get("overall") or {}).get("srocc") or {}).get("missing", 0)
    if missing:
        notes.append(f"{missing} of {splits['n']} splits gave no SROCC (too few test images)")
    if all_items is not None and all_items < MIN_TEST_ITEMS:
        notes.append(
            f"only {all_items} images scored, fewer than {MIN_TEST_ITEMS}: the all-image "
            "statistics are small samples"
        )
    mappings = [
        block.get("mapping") or {}
        for result in results
        for block in [result.get("overall") or {}, *(result.get("per_type") or {}).values()]
    ]
    failed = sum(1 for m in mappings if m.get("converged") is False)
    if failed:
        notes.append(
            f"the five-parameter logistic did not converge on {failed} of {len(mappings)} sets "
            "(each mapping records the fallback used and why)"
        )
    return notes


# -- facts ------------------------------------------------------------------------------------
def _dataset_facts(dataset: Dataset) -> dict[str, Any]:
    """The dataset block of the summary: names, sizes, types in the card's order, and what
    the ground truth is (``score_label``, e.g. "MOS" or "ordinal quality", and its scale)."""
    from .data.synthetic import made_dataset_name

    card = dataset.card or {}
    score = card.get("score") or {}
    listed = list(card["distortions"]) if isinstance(card.get("distortions"), Mapping) else []
    present = dataset.distortions
    ordered = [t for t in listed if t in present] + [t for t in present if t not in listed]
    mos = [i.mos for i in dataset.items if np.isfinite(i.mos)]
    return {
        "name": dataset.name,
        "display_name": made_dataset_name(dataset.root) or card.get("display_name", dataset.name),
        "root": str(dataset.root),
        "n_images": len(dataset.items),
        "n_contents": len(set(dataset.contents)),
        "distortions": ordered,
        "score_type": score.get("type", "MOS"),
        "score_label": score.get("label", "MOS"),
        "score_scale": score.get("scale"),
        "score_range": [float(min(mos)), float(max(mos))] if mos else None,
        "higher_is_better": dataset.score_higher_is_better,
    }


SOFTWARE = (
    "numpy",
    "scipy",
    "scikit-learn",
    "scikit-image",
    "opencv-python",
    "torch",
    "torchvision",
    "pyiqa",
    "piq",
)


def _software() -> dict[str, str]:
    """Versions of Python and of the libraries whose numbers a result may depend on."""
    import importlib.metadata as metadata

    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in SOFTWARE:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
