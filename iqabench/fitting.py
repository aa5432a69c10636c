"""Per-split fit and predict for trainable metrics, with stored predictions.

For each content-disjoint split the metric is fitted on the training items only and predicts
the test items; the test items never reach ``fit``. A split's predictions are stored in one
transaction under a key that covers the split, the seed, and the training items' content and
quality, so a rerun never refits and a changed dataset never reuses stale predictions. The
cross-dataset protocol is one such split (the training dataset against the test datasets, see
:func:`iqabench.protocol.cross_dataset_split`) whose predictions are stored under
:func:`cross_fit_key`, the training dataset's fingerprint. Each function returns the
predictions by split, the notes recorded while fitting, and a tally of the predictions computed
now or reused from the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .data.items import Item
from .metric import FeatureMetric, LabelledImage, LearnedMetric, Metric
from .progress import Task
from .protocol import Split, validation_split
from .scoring import Tally
from .store import MetricKey, ScoreStore

if TYPE_CHECKING:
    from .executors import Executor

Predictions = dict[str, float]
#: Share of a training set's scenes held out for a learned metric's model selection.
VALIDATION_FRACTION = 0.2


def fit_key(split: Split, seed: int, items: Sequence[Item], keys: Mapping[str, str]) -> str:
    """Store key of one split's predictions."""
    digest = hashlib.sha256(f"{split.key}|{seed}".encode())
    for index in split.train:
        item = items[index]
        digest.update(f"T{keys.get(item.id)}={item.quality!r};".encode())
    for index in split.test:
        digest.update(f"E{keys.get(items[index].id)};".encode())
    return f"split{split.index}:{digest.hexdigest()[:20]}"


def cross_fit_key(train_fingerprint: str, seed: int, test_keys: Iterable[str]) -> str:
    """Store key of a cross-dataset fit's predictions: the training dataset's fingerprint (the
    content of its images and their labels), the seed, and the test images it predicts, so a
    rerun neither retrains nor rescores and another training set never reuses them."""
    digest = hashlib.sha256(f"{train_fingerprint}|{seed}".encode())
    for key in sorted(set(test_keys)):
        digest.update(f"E{key};".encode())
    return f"cross:{train_fingerprint[:16]}:{digest.hexdigest()[:20]}"


def feature_predictions(
    store: ScoreStore,
    metric: FeatureMetric,
    key: MetricKey,
    items: Sequence[Item],
    keys: Mapping[str, str],
    features: Mapping[str, np.ndarray],
    splits: Sequence[Split],
    seed: int,
    bar: Task,
    executor: Executor | None = None,
    split_key: Callable[[Split], str] | None = None,
) -> tuple[dict[int, Predictions], list[str], Tally]:
    """Test predictions of every split (by item key), fitting where not stored yet.

    ``features`` maps item keys to feature vectors (e.g. :meth:`ScoreStore.features`, which
    reads them from the store as each split's task is built); ``split_key`` names a split's
    stored predictions (default :func:`fit_key`)."""

    def task(split: Split, split_key: str) -> FeatureFit:
        train = [items[i] for i in split.train if keys.get(items[i].id) in features]
        test = [items[i] for i in split.test if keys.get(items[i].id) in features]
        if len(train) < 2 or not test:
            return FeatureFit(split.index, split_key, seed + split.index)
        return FeatureFit(
            split.index,
            split_key,
            seed + split.index,
            train=np.stack([features[keys[i.id]] for i in train]),
            quality=np.array([i.quality for i in train]),
            groups=tuple(i.content for i in train),
            test=np.stack([features[keys[i.id]] for i in test]),
            test_keys=tuple(keys[i.id] for i in test),
        )

    return _per_split(store, metric, key, items, keys, splits, seed, bar, task, executor, split_key)


def learned_predictions(
    store: ScoreStore,
    metric: LearnedMetric,
    key: MetricKey,
    items: Sequence[Item],
    keys: Mapping[str, str],
    usable: set[str],
    splits: Sequence[Split],
    seed: int,
    bar: Task,
    executor: Executor | None = None,
    split_key: Callable[[Split], str] | None = None,
) -> tuple[dict[int, Predictions], list[str], Tally]:
    """Train a fresh model per split on its training scenes (with a content-disjoint
    validation hold-out for model selection) and predict its test items.

    The metric receives paths (:class:`~iqabench.metric.LabelledImage`), never decoded pixels,
    and the test items with their quality hidden; images it cannot read are left out of the
    split with one note. ``split_key`` as for :func:`feature_predictions`."""
    contents = [item.content for item in items]

    def records(indices: Sequence[int]) -> tuple[LabelledImage, ...]:
        return tuple(labelled(items[i]) for i in indices if items[i].id in usable)

    def task(split: Split, split_key: str) -> LearnedFit:
        train_idx, valid_idx = validation_split(
            split.train, contents, fraction=VALIDATION_FRACTION, seed=seed + split.index
        )
        test = [items[i] for i in split.test if items[i].id in usable]
        return LearnedFit(
            split.index,
            split_key,
            seed + split.index,
            train=records(train_idx),
            validation=records(valid_idx),
            test=tuple(labelled(item).unlabelled() for item in test),
            test_keys=tuple(keys[item.id] for item in test),
        )

    return _per_split(store, metric, key, items, keys, splits, seed, bar, task, executor, split_key)


@dataclass(frozen=True)
class FeatureFit:
    """One split of a feature metric: fit its regressor on the training rows' features and
    quality (``groups``: their scenes, for grouped cross-validation), predict the test rows.
    With fewer than two training rows or no test row there is nothing to fit."""

    split: int
    key: str
    seed: int
    train: np.ndarray | None = None
    quality: np.ndarray | None = None
    groups: tuple[str, ...] = ()
    test: np.ndarray | None = None
    test_keys: tuple[str, ...] = ()

    def run(self, metric: FeatureMetric) -> tuple[Predictions, list[str]]:
        if self.train is None or self.test is None:
            return {}, [f"split {self.split}: too few scorable items to fit"]
        metric.fit(self.train, self.quality, seed=self.seed, groups=list(self.groups))
        predicted = metric.predict(self.test)
        return {k: float(p) for k, p in zip(self.test_keys, predicted, strict=True)}, []


@dataclass(frozen=True)
class LearnedFit:
    """One split of a learned metric: train on ``train`` (selecting on ``validation``), predict
    ``test`` (quality hidden), keyed by ``test_keys``; images are paths the metric reads."""

    split: int
    key: str
    seed: int
    train: tuple[LabelledImage, ...]
    validation: tuple[LabelledImage, ...]
    test: tuple[LabelledImage, ...]
    test_keys: tuple[str, ...]

    def run(self, metric: LearnedMetric) -> tuple[Predictions, list[str]]:
        metric.left_out.clear()
        metric.fit(list(self.train), list(self.validation), seed=self.seed)
        values = metric.predict(list(self.test))
        predicted: Predictions = {
            key: float(value)
            for key, value in zip(self.test_keys, values, strict=True)
            if np.isfinite(value)
        }
        notes = list(metric.notes())
        if metric.left_out:
            notes.append(
                f"split {self.split}: {len(metric.left_out)} unreadable image(s) left out, "
                f"e.g. {metric.left_out[0]}"
            )
        elif len(predicted) < len(self.test):
            notes.append(
                f"split {self.split}: {len(self.test) - len(predicted)} test image(s) got no "
                "finite prediction and were left out"
            )
        return predicted, notes


def labelled(item: Item) -> LabelledImage:
    """An item as a learned metric receives it: paths, quality and what is known of it."""
    return LabelledImage(
        image=item.image,
        quality=item.quality,
        content=item.content,
        ref=item.ref,
        distortion=item.distortion,
        level=item.level,
    )


def _per_split(
    store: ScoreStore,
    metric: Metric,
    key: MetricKey,
    items: Sequence[Item],
    keys: Mapping[str, str],
    splits: Sequence[Split],
    seed: int,
    bar: Task,
    task: Callable[[Split, str], FeatureFit | LearnedFit],
    executor: Executor | None,
    split_key: Callable[[Split], str] | None = None,
) -> tuple[dict[int, Predictions], list[str], Tally]:
    """Every split's predictions: stored ones reused, the others fitted on ``executor``
    (default: this process) from tasks built one at a time as the executor asks for them, and
    stored as each completes. Notes are gathered in split order whatever the completion
    order."""
    from .executors import InProcess

    results: dict[int, Predictions] = {}
    notes_by_split: dict[int, list[str]] = {}
    tally = Tally()
    todo: list[tuple[Split, str]] = []
    for split in splits:
        stored_as = split_key(split) if split_key else fit_key(split, seed, items, keys)
        stored = store.get_predictions(key, stored_as)
        if stored is None:
            todo.append((split, stored_as))
            continue
        results[split.index], notes_by_split[split.index] = stored, store.get_notes(key, stored_as)
        tally.reused += len(stored)
        bar.advance(1)
    tasks = (task(split, stored_as) for split, stored_as in todo)
    for done, (predicted, split_notes) in (executor or InProcess()).fit(metric, tasks):
        if predicted:
            store.put_predictions(key, done.key, predicted, split_notes)
        tally.scored += len(predicted)
        results[done.split], notes_by_split[done.split] = predicted, split_notes
        bar.advance(1)
    notes: list[str] = []
    for split in splits:
        notes.extend(n for n in notes_by_split.get(split.index, []) if n not in notes)
    return {split.index: results[split.index] for split in splits}, notes, tally
