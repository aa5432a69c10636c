"""One NestConvNeXt-IQA experiment on a dataset: split, train, select, test, write results.

The default protocol splits by reference scene: 80% of the scenes train (20% of those held out
for validation, i.e. model selection) and 20% test, so no scene is seen on both sides. The
``random`` mode reproduces the reference code's image-level 80/20 split, in which distorted
versions of one scene land on both sides; its figures are optimistic and are reported as such.
In both modes the epoch is selected on validation only and the test split is scored once.

A run folder holds ``best.pt``, ``last.pt``, ``metrics.csv``/``metrics.json`` (per epoch),
``predictions.csv`` (the test items' predictions) and ``results.json`` (schema
``iqabench.train/1``: split, recipe, selected epoch, test statistics, notes).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError
from ..models.nestconvnext import NestConvNeXtConfig, parameter_count
from .data import ImageSet, prepare_image
from .inference import predict
from .loop import TrainConfig, TrainResult, correlation, train

if TYPE_CHECKING:
    from ..data.items import Dataset
    from ..progress import Progress

SPLIT_MODES = ("content", "random")
RESULTS_SCHEMA = "iqabench.train/1"


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


def decode_images(
    dataset: Dataset, indices: set[int], size: int, progress: Progress
) -> dict[int, np.ndarray]:
    """Read and prepare the listed items once (grey, resized to ``size`` x ``size``, uint8)."""
    from ..imageio import load_for_metric

    cache: dict[int, np.ndarray] = {}
    with progress.task("decoding images", total=len(indices)) as bar:
        for index in sorted(indices):
            image, _ = load_for_metric(dataset.items[index].image, "grey")
            cache[index] = prepare_image(image, size)
            bar.advance(1)
    return cache


def run_experiment(
    dataset: Dataset,
    model_config: NestConvNeXtConfig,
    config: TrainConfig,
    plan: SplitPlan,
    images: dict[int, np.ndarray],
    out_dir: Path,
    *,
    resume: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train on ``plan.train``, select on ``plan.validation``, score ``plan.test``; write the
    run folder and return the ``results.json`` content."""
    from ..evaluate import evaluate

    started = time.perf_counter()

    def image_set(indices: np.ndarray) -> ImageSet:
        pixels = [images[i] for i in indices]
        size = model_config.resize
        stacked = np.stack(pixels) if pixels else np.zeros((0, size, size), np.uint8)
        return ImageSet(stacked, np.array([dataset.items[i].quality for i in indices]))

    held_out = image_set(plan.validation)
    result = train(
        model_config,
        config,
        image_set(plan.train),
        held_out if len(held_out) else None,
        out_dir=out_dir,
        resume=resume,
        progress=progress,
    )
    test_items = [dataset.items[i] for i in plan.test]
    scores = predict(
        result.net,
        [images[i] for i in plan.test],
        result.runtime,
        crops=config.eval_crops,
        crop=model_config.crop,
        seed=config.seed,
        batch_size=config.batch_size,
    )
    quality = np.array([item.quality for item in test_items])
    statistics = evaluate(
        scores, quality, [item.distortion for item in test_items], seed=config.seed
    )
    statistics["overall"]["plcc_linear"] = correlation("plcc", scores, quality)
    write_predictions(out_dir / "predictions.csv", test_items, scores)
    results = _results(dataset, model_config, config, plan, result, statistics)
    results["seconds"] = time.perf_counter() - started
    (out_dir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


def write_predictions(path: Path, items: list[Any], scores: np.ndarray) -> None:
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
    model_config: NestConvNeXtConfig,
    config: TrainConfig,
    plan: SplitPlan,
    result: TrainResult,
    statistics: dict[str, Any],
) -> dict[str, Any]:
    notes = list(result.notes)
    if plan.mode == "random":
        notes.append(
            "image-level random split (the reference code's): distorted versions of one scene "
            "are on both sides, so the test figures are optimistic"
        )
    if model_config.name != "nestconvnext":
        notes.append(f"{model_config.name} is not the published NestConvNeXt-IQA configuration")
    return {
        "schema": RESULTS_SCHEMA,
        "model": {
            "name": model_config.name,
            "parameters": parameter_count(result.net),
            "config": model_config.to_dict(),
            "backbone_init": result.backbone_init,
        },
        "dataset": {"name": dataset.name, "root": str(dataset.root), "n_images": len(dataset)},
        "split": plan.describe(dataset.contents),
        "recipe": config.recipe(),
        "runtime": {"device": result.runtime.describe(), "precision": result.runtime.precision},
        "selection": {"criterion": "validation SROCC", "best_epoch": result.best_epoch},
        "validation": asdict(result.best),
        "test": statistics,
        "notes": notes,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
    }
