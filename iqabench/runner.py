"""A benchmark run: every item x every metric, evaluated, written to a run folder.

The runner only orchestrates: items and content keys come from the dataset, scores from the
store or :mod:`iqabench.scoring`, per-split fits from :mod:`iqabench.fitting`, statistics from
:mod:`iqabench.evaluate`, and files from :mod:`iqabench.results`. One metric's failure never
stops the others, and one image's failure never stops its metric.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, registry
from .cards import calibration_status, metric_card
from .data.items import Dataset, Item
from .errors import MetricUnavailableError, UserError
from .imageio import content_key
from .metric import FeatureMetric, LearnedMetric, Metric
from .progress import Progress, SilentProgress
from .protocol import Split, content_splits, random_splits
from .results import SCHEMA, write_scores, write_summary
from .scoring import Job, Tally, compute
from .store import MetricKey, Record, ScoreStore

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
    workers: int = 1
    bootstrap: int = 1000
    #: Per-metric parameters, e.g. ``{"niqe": {"model": "thermal.npz"}}``.
    metric_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Metrics named explicitly (not through ``all``): skipping one is an error.
    explicit: bool = True
    report: bool = True


@dataclass
class RunResult:
    """What a run produced, for the CLI to summarise and choose its exit code."""

    out: Path
    summary: dict[str, Any]
    tally: Tally
    explicit: bool = True
    report: Path | None = None
    report_error: str | None = None
    input_failures: list[str] = field(default_factory=list)
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


def run(
    metric_names: Sequence[str],
    dataset: Dataset,
    out: Path,
    options: RunOptions | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Score ``dataset`` with every metric, evaluate, and write the run folder ``out``."""
    options = options or RunOptions()
    progress = progress or SilentProgress()
    started, clock = datetime.now(UTC), time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keys, missing = _content_keys(dataset.items, progress)
    splits = _splits(dataset, options)
    tally, entries, rows, failures, warnings = Tally(), {}, [], [], []
    result = RunResult(out=out, summary={}, tally=tally, explicit=options.explicit)
    with ScoreStore(out / "scores.db") as store:
        context = _Context(dataset, options, store, keys, missing, splits, progress)
        for name in metric_names:
            outcome = _run_metric(name, context)
            entries[name] = outcome.entry
            rows.extend(outcome.rows)
            failures.extend(outcome.failures)
            warnings.extend(f"{name}: {note}" for note in outcome.entry.get("notes", []))
            tally.add(outcome.tally)
            status, reason = outcome.entry["status"], outcome.entry.get("reason")
            if status == "skipped":
                result.skipped[name] = reason
            elif status == "failed":
                result.failed[name] = reason
    result.input_failures = [f["error"] for f in failures if f.get("kind") == "input"]
    result.summary = {
        "schema": SCHEMA,
        "iqabench_version": __version__,
        "created": started.isoformat(timespec="seconds"),
        "software": _software(),
        "dataset": _dataset_facts(dataset),
        "protocol": {
            "splits": len(splits),
            "train_fraction": options.train_fraction,
            "seed": options.seed,
            "split_mode": options.split_mode,
            "bootstrap": options.bootstrap,
            "confidence": 0.95,
        },
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
    write_scores(out, rows)
    write_summary(out, result.summary)
    if options.report:
        _build_report(result)
    return result


def _build_report(result: RunResult) -> None:
    try:
        from .report import build_report

        result.report = build_report(result.out)
    except Exception as exc:  # results are written; a report failure must not lose them
        result.report_error = f"{type(exc).__name__}: {exc}"


# -- items ------------------------------------------------------------------------------------
def _content_keys(
    items: Sequence[Item], progress: Progress
) -> tuple[dict[str, str], dict[str, str]]:
    """Content key of every readable item; the others with the reason they have none."""
    keys: dict[str, str] = {}
    missing: dict[str, str] = {}
    with progress.task("hashing images", len(items)) as bar:
        for item in items:
            absent = [p for p in (item.image, item.ref) if p is not None and not p.is_file()]
            if absent:
                what = "image" if absent[0] == item.image else "reference"
                missing[item.id] = f"{what} not found: {absent[0]}"
            else:
                keys[item.id] = content_key(item.image, item.ref)
            bar.advance()
    return keys, missing


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
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)


def _run_metric(name: str, context: _Context) -> _Outcome:
    started = time.perf_counter()
    cls = registry.get(name)
    entry = _metric_facts(cls)
    outcome = _Outcome(entry=entry)
    try:
        metric = cls(**dict(context.options.metric_params.get(name, {})))
        entry["params"] = dict(metric.params)
        reason = _skip_reason(metric, context)
        if reason:
            entry.update(status="skipped", reason=reason)
            return outcome
        _score_metric(metric, context, outcome)  # may set status "failed" (nothing to evaluate)
    except MetricUnavailableError as exc:
        entry.update(status="skipped", reason=str(exc))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # the metric is broken; the run goes on with the others
        entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    entry["seconds"] = round(time.perf_counter() - started, 3)
    return outcome


def _metric_facts(cls: type[Metric]) -> dict[str, Any]:
    card = metric_card(cls.name) or {}
    facts = cls.describe()
    facts.update(
        display_name=card.get("display_name", cls.name),
        calibration=calibration_status(cls.name),
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
    if metric.gpu_recommended and not context.options.explicit and not _has_cuda():
        return "needs a GPU to be practical and none is present (name it explicitly to run on CPU)"
    if metric.trainable and _needs_fit(metric) and not context.splits:
        return "trainable metric, and the run has no splits (--splits 0)"
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
    jobs = [Job(context.keys[i.id], i.image, i.ref) for i in usable]
    workers = context.options.workers
    if not _needs_fit(metric):
        with context.progress.task(metric.name, len(jobs)) as bar:
            records, tally = compute(context.store, metric, key, "score", jobs, bar, workers)
        outcome.tally.add(tally)
        scores = _collect(records, usable, context, metric, outcome)
        _add_notes(outcome, metric.notes())
        if metric.trainable:  # a learned metric given its trained model
            _add_notes(outcome, [CHECKPOINT_NOTE])
        outcome.entry["pretrained"] = metric.pretrained_weights()
        _evaluate_direct(metric, scores, context, outcome)
        return
    from .fitting import feature_predictions, learned_predictions

    if isinstance(metric, FeatureMetric):
        with context.progress.task(f"{metric.name} features", len(jobs)) as bar:
            records, tally = compute(context.store, metric, key, "features", jobs, bar, workers)
        outcome.tally.add(tally)
        features = {k: r.vector for k, r in records.items() if r.ok and r.vector is not None}
        _collect(records, usable, context, metric, outcome)
        with context.progress.task(
            f"{metric.name} fit x{len(context.splits)}", len(context.splits)
        ) as bar:
            predictions, notes, fitted = feature_predictions(
                context.store,
                metric,
                key,
                items,
                context.keys,
                features,
                context.splits,
                context.options.seed,
                bar,
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
            )
    outcome.tally.add(fitted)
    _add_notes(outcome, [*notes, *metric.notes()])
    outcome.entry["pretrained"] = metric.pretrained_weights()
    _evaluate_splits_of_trainable(predictions, context, outcome)


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
    """Training-free metric: statistics on every item, and on each split's test items."""
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
    entry.update(
        _evaluate(context, values, scored, metric.higher_is_better, context.options.bootstrap)
    )
    per_split = []
    for split in context.splits:
        test = [
            items[j]
            for j in split.test
            if items[j].id in scores and np.isfinite(scores[items[j].id])
        ]
        values = [scores[i.id] for i in test]
        per_split.append(_evaluate(context, values, test, metric.higher_is_better, 0))
    entry["splits"] = _summarise(per_split)


def _evaluate_splits_of_trainable(
    predictions: Mapping[int, Mapping[str, float]], context: _Context, outcome: _Outcome
) -> None:
    """Trainable metric: statistics per split's test items; cross-validated pooled view."""
    items = context.dataset.items
    per_split, pooled = [], {}
    for split in context.splits:
        values = predictions.get(split.index, {})
        test = [items[j] for j in split.test if context.keys.get(items[j].id) in values]
        scores = [values[context.keys[i.id]] for i in test]
        for item, score in zip(test, scores, strict=True):
            pooled.setdefault(item.id, []).append(score)
            outcome.rows.append(_row(outcome.entry["name"], item, split.index, score, None))
        per_split.append(_evaluate(context, scores, test, True, 0))
    entry = outcome.entry
    entry.update(evaluation="splits", n_scored=len(pooled), n_failed=len(outcome.failures))
    entry["splits"] = _summarise(per_split)
    tested = [i for i in items if i.id in pooled]
    if len(tested) >= 3:
        pooled_means = [float(np.mean(pooled[i.id])) for i in tested]
        entry.update(_evaluate(context, pooled_means, tested, True, context.options.bootstrap))
    else:
        entry.update(status="failed", reason="no split produced test predictions")


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


def _summarise(per_split: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Median and spread over splits, overall and per distortion type."""
    from .evaluate import summarize_splits

    def stats_of(results: list[Mapping[str, Any]]) -> dict[str, Any]:
        return {
            stat: summarize_splits(
                [float("nan") if r.get(stat) is None else r[stat] for r in results]
            )
            for stat in STATISTICS
        }

    types = list(dict.fromkeys(t for s in per_split for t in s.get("per_type", {})))
    return {
        "n": len(per_split),
        "overall": stats_of([s.get("overall", {}) for s in per_split]) if per_split else {},
        "per_type": {
            t: stats_of([s.get("per_type", {}).get(t, {}) for s in per_split]) for t in types
        },
    }


# -- facts ------------------------------------------------------------------------------------
def _dataset_facts(dataset: Dataset) -> dict[str, Any]:
    card = dataset.card or {}
    score = card.get("score") or {}
    return {
        "name": dataset.name,
        "display_name": card.get("display_name", dataset.name),
        "root": str(dataset.root),
        "n_images": len(dataset.items),
        "n_contents": len(set(dataset.contents)),
        "distortions": dataset.distortions,
        "score_type": score.get("type", "MOS"),
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
