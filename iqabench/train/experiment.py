"""One deep-model experiment on a dataset: split, train, select, test, write results.

The default protocol splits by reference scene: 80% of the scenes train (20% of those held out
for validation, i.e. model selection) and 20% test, so no scene is seen on both sides. The
``random`` mode reproduces the reference code's image-level 80/20 split, in which distorted
versions of one scene land on both sides; its figures are optimistic and are reported as such.
In both modes the epoch is selected on validation only and the test split is scored once.

A run folder holds ``best.pt``, ``last.pt``, ``metrics.csv``/``metrics.json`` (per epoch; a
pretraining stage's under its own sub-folder), ``predictions.csv`` (the test items'
predictions) and ``results.json`` (schema ``iqabench.train/2``: model and backbone, split,
stages with their recipes, selected epoch, test statistics, notes). Any registered deep metric
(:class:`~iqabench.metrics._deep.DeepMetric`) runs the same way.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError
from .trainer import TrainResult, correlation

if TYPE_CHECKING:
    from ..data.items import Dataset, Item
    from ..metrics._deep import DeepMetric
    from ..progress import Progress

SPLIT_MODES = ("content", "random")
RESULTS_SCHEMA = "iqabench.train/2"


@dataclass(frozen=True)
class SplitPlan:
    """Item indices of the three sides of one experiment."""

    mode: str
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def describe(self, contents: list[str]) -> dict[str, Any]:
        def side(indices: np.ndarray) -> dict[str, Any]:
            scenes = sorted({contents[i] for i in indices})
            return {"images": int(len(indices)), "contents": scenes}

        return {
            "mode": self.mode,
            "train": side(self.train),
            "validation": side(self.validation),
            "test": side(self.test),
        }


def plan_split(
    dataset: Dataset, mode: str, test_fraction: float, val_fraction: float, seed: int
) -> SplitPlan:
    """Train/validation/test indices: by content (default) or image-level random."""
    from ..protocol import content_splits, random_splits, validation_split

    contents = dataset.contents
    if mode == "content":
        split = content_splits(contents, 1, 1.0 - test_fraction, seed)[0]
        fit, held_out = validation_split(split.train, contents, val_fraction, seed)
    elif mode == "random":
        split = random_splits(len(dataset), 1, 1.0 - test_fraction, seed)[0]
        # Every item its own "content": an image-level validation draw, as the split itself.
        fit, held_out = validation_split(split.train, [i.id for i in dataset], val_fraction, seed)
    else:
        raise UserError(f"unknown split mode {mode!r}: use {', '.join(SPLIT_MODES)} or both")
    return SplitPlan(mode, fit, held_out, split.test)


def run_experiment(
    dataset: Dataset,
    metric: DeepMetric,
    plan: SplitPlan,
    out_dir: Path,
    *,
    resume: bool = False,
    deterministic: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train ``metric`` on ``plan.train``, select on ``plan.validation``, score ``plan.test``
    once; write the run folder and return the ``results.json`` content."""
    from ..evaluate import evaluate
    from ..fitting import labelled

    started = time.perf_counter()
    result = metric.train_model(
        [labelled(dataset.items[i]) for i in plan.train],
        [labelled(dataset.items[i]) for i in plan.validation],
        out_dir=out_dir,
        resume=resume,
        progress=progress,
        deterministic=deterministic,
    )
    test_items = [dataset.items[i] for i in plan.test]
    scores = metric.predict([labelled(item).unlabelled() for item in test_items])
    scored = np.isfinite(scores)
    kept = [item for item, ok in zip(test_items, scored, strict=True) if ok]
    quality = np.array([item.quality for item in kept])
    statistics = evaluate(
        scores[scored], quality, [item.distortion for item in kept], seed=int(metric.params["seed"])
    )
    statistics["overall"]["plcc_linear"] = correlation("plcc", scores[scored], quality)
    write_predictions(out_dir / "predictions.csv", kept, scores[scored])
    results = _results(dataset, metric, plan, result, statistics)
    results["seconds"] = time.perf_counter() - started
    (out_dir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


def write_predictions(path: Path, items: list[Item], scores: np.ndarray) -> None:
    """One row per test item: its facts and the prediction (quality scale, higher is better)."""
    columns = ["item_id", "image", "content", "distortion", "level", "mos", "quality", "score"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for item, score in zip(items, scores, strict=True):
            writer.writerow(
                [
                    item.id,
                    str(item.image),
                    item.content,
                    item.distortion or "",
                    "" if item.level is None else item.level,
                    item.mos,
                    item.quality,
                    f"{float(score):.6f}",
                ]
            )


def _results(
    dataset: Dataset,
    metric: DeepMetric,
    plan: SplitPlan,
    result: TrainResult,
    statistics: dict[str, Any],
) -> dict[str, Any]:
    from dataclasses import asdict

    notes = list(dict.fromkeys([*result.notes, *metric.notes()]))
    if metric.left_out:
        notes.append(
            f"{len(metric.left_out)} unreadable image(s) left out, e.g. {metric.left_out[0]}"
        )
    if plan.mode == "random":
        notes.append(
            "image-level random split (the reference code's): distorted versions of one scene "
            "are on both sides, so the test figures are optimistic"
        )
    parameters, trainable = metric.parameter_counts()
    meta = metric.trained_meta()
    return {
        "schema": RESULTS_SCHEMA,
        "model": {
            "name": metric.name,
            "published": metric.published,
            "parameters": parameters,
            "trainable_parameters": trainable,
            "config": meta["architecture"],
            "backbone": meta["backbone"],
        },
        "dataset": {"name": dataset.name, "root": str(dataset.root), "n_images": len(dataset)},
        "split": plan.describe(dataset.contents),
        "stages": [s.describe() for s in metric.stages()],
        "runtime": {"device": result.runtime.describe(), "precision": result.runtime.precision},
        "selection": {"criterion": "validation SROCC", "best_epoch": result.final.best_epoch},
        "validation": asdict(result.final.best),
        "test": statistics,
        "notes": notes,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
    }
