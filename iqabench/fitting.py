"""Per-split fit and predict for trainable metrics, with stored predictions.

For each content-disjoint split the metric is fitted on the training items only and predicts
the test items; the test items never reach ``fit``. A split's predictions are stored in one
transaction under a key that covers the split, the seed, and the training items' content and
quality, so a rerun never refits and a changed dataset never reuses stale predictions. Each
function returns the predictions by split, the notes recorded while fitting, and a tally of
the predictions computed now or reused from the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .data.items import Item
from .metric import FeatureMetric, LabelledImage, LearnedMetric
from .progress import Task
from .protocol import Split, validation_split
from .scoring import Tally
from .store import MetricKey, ScoreStore

Predictions = dict[str, float]


def fit_key(split: Split, seed: int, items: Sequence[Item], keys: Mapping[str, str]) -> str:
    """Store key of one split's predictions."""
    digest = hashlib.sha256(f"{split.key}|{seed}".encode())
    for index in split.train:
        item = items[index]
        digest.update(f"T{keys.get(item.id)}={item.quality!r};".encode())
    for index in split.test:
        digest.update(f"E{keys.get(items[index].id)};".encode())
    return f"split{split.index}:{digest.hexdigest()[:20]}"


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
) -> tuple[dict[int, Predictions], list[str], Tally]:
    """Test predictions of every split (by item key), fitting where not stored yet."""

    def fit_and_predict(split: Split) -> tuple[Predictions, list[str]]:
        train = [items[i] for i in split.train if keys.get(items[i].id) in features]
        test = [items[i] for i in split.test if keys.get(items[i].id) in features]
        if len(train) < 2 or not test:
            return {}, [f"split {split.index}: too few scorable items to fit"]
        x_train = np.stack([features[keys[i.id]] for i in train])
        y_train = np.array([i.quality for i in train])
        groups = [i.content for i in train]
        metric.fit(x_train, y_train, seed=seed + split.index, groups=groups)
        predicted = metric.predict(np.stack([features[keys[i.id]] for i in test]))
        return {keys[i.id]: float(p) for i, p in zip(test, predicted, strict=True)}, []

    return _per_split(store, key, items, keys, splits, seed, bar, fit_and_predict)


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
) -> tuple[dict[int, Predictions], list[str], Tally]:
    """Train a fresh model per split on its training scenes (with a content-disjoint
    validation hold-out for model selection) and predict its test items.

    The metric receives paths (:class:`~iqabench.metric.LabelledImage`), never decoded pixels,
    and the test items with their quality hidden; images it cannot read are left out of the
    split with one note."""
    contents = [item.content for item in items]

    def records(indices: Sequence[int]) -> list[LabelledImage]:
        return [labelled(items[i]) for i in indices if items[i].id in usable]

    def fit_and_predict(split: Split) -> tuple[Predictions, list[str]]:
        train_idx, valid_idx = validation_split(
            split.train, contents, fraction=0.2, seed=seed + split.index
        )
        metric.left_out.clear()
        metric.fit(records(train_idx), records(valid_idx), seed=seed + split.index)
        test = [items[i] for i in split.test if items[i].id in usable]
        values = metric.predict([labelled(item).unlabelled() for item in test])
        predicted: Predictions = {
            keys[item.id]: float(value)
            for item, value in zip(test, values, strict=True)
            if np.isfinite(value)
        }
        notes = list(metric.notes())
        if metric.left_out:
            notes.append(
                f"split {split.index}: {len(metric.left_out)} unreadable image(s) left out, "
                f"e.g. {metric.left_out[0]}"
            )
        elif len(predicted) < len(test):
            notes.append(
                f"split {split.index}: {len(test) - len(predicted)} test image(s) got no finite "
                "prediction and were left out"
            )
        return predicted, notes

    return _per_split(store, key, items, keys, splits, seed, bar, fit_and_predict)


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
    key: MetricKey,
    items: Sequence[Item],
    keys: Mapping[str, str],
    splits: Sequence[Split],
    seed: int,
    bar: Task,
    fit_and_predict: Callable[[Split], tuple[Predictions, list[str]]],
) -> tuple[dict[int, Predictions], list[str], Tally]:
    results: dict[int, Predictions] = {}
    notes: list[str] = []
    tally = Tally()
    for split in splits:
        split_key = fit_key(split, seed, items, keys)
        stored = store.get_predictions(key, split_key)
        if stored is None:
            predicted, split_notes = fit_and_predict(split)
            if predicted:
                store.put_predictions(key, split_key, predicted, split_notes)
            tally.scored += len(predicted)
        else:
            predicted, split_notes = stored, store.get_notes(key, split_key)
            tally.reused += len(predicted)
        results[split.index] = predicted
        notes.extend(n for n in split_notes if n not in notes)
        bar.advance(1)
    return results, notes, tally
