"""The cross-dataset protocol: train on every image of one dataset, test on every image of another.

Within-dataset splits answer how a metric does on scenes it has not seen, of distortions it has;
the cross-dataset protocol asks whether a metric trained on one thermal set (say, synthetic
distortions) predicts opinion on another (authentic ones). Every trainable metric is fitted on
the whole training dataset (a learned one carves its validation scenes from it, as the split
protocol does) and scores every image of each test dataset; training-free metrics are simply
scored there, so one table compares all; the logistic mapping of the statistics is fitted on
the test dataset, as for any other set.

This module holds what the runner needs to know of it, apart from the datasets' pixels: the
:func:`fingerprint` of a dataset (the content of its images and their labels: what a trained
model depends on), the fields a metric's training needs (:func:`training_refusal`), the check
that no test image or reference is one of the training set's (:func:`check_disjoint`), and the
:class:`CrossPlan` of one metric: the training items and the test items of every test dataset
as one item list with its one split (:func:`iqabench.protocol.cross_dataset_split`), so that
the per-split fitting of :mod:`iqabench.fitting` runs unchanged and the test items never reach
``fit``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from .data.items import Dataset, Item
from .errors import UserError
from .metric import Metric
from .protocol import Split, cross_dataset_split

#: The protocol's name in ``summary.json`` and the report.
PROTOCOL = "cross-dataset"
#: What a training need is called in a one-line refusal.
NEED_NAMES = {"ref": "reference images", "distortion": "distortion types", "level": "levels"}


def fingerprint(items: Sequence[Item], images: Mapping[str, str], refs: Mapping[str, str]) -> str:
    """SHA-256 of a dataset's content and labels: each item's image and reference content
    hashes (by item id), quality, scene, distortion type and level, in a stable order. Two
    folders with the same images and labels have the same fingerprint wherever they lie."""
    lines = sorted(
        f"{images.get(item.id)}|{refs.get(item.id)}|{item.quality!r}|{item.content}|"
        f"{item.distortion}|{item.level}"
        for item in items
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def training_needs(metric: Metric) -> tuple[str, ...]:
    """The item fields every training image of ``metric`` must come with: its reference for a
    full-reference metric (and for a deep model that pretrains on reference pairs), and the
    facts it reads besides pixels (``item_fields``)."""
    from .metrics._deep import DeepMetric

    needs = ["ref"] if metric.full_reference else []
    if isinstance(metric, DeepMetric):
        needs += metric.training_fields()
    needs += metric.item_fields
    return tuple(dict.fromkeys(needs))


def training_refusal(metric: Metric, train: Dataset) -> str | None:
    """Why ``metric`` cannot be trained on ``train`` (one line), or None when it can."""
    for need in training_needs(metric):
        if not any(getattr(item, need) is not None for item in train.items):
            what = NEED_NAMES.get(need, f"each image's {need}")
            return (
                f"its training needs {what}, and the training dataset {train.name} "
                f"({train.root}) has none"
            )
    return None


def check_disjoint(
    train_files: Mapping[str, str], test_files: Mapping[str, str], test: Dataset
) -> None:
    """Refuse a test dataset sharing an image or reference with the training dataset.

    ``train_files`` and ``test_files`` map content hashes (images and references) to a path
    holding them. A shared file would let a trained metric recognise what it was trained on."""
    shared = [path for digest, path in test_files.items() if digest in train_files]
    if shared:
        raise UserError(
            f"{len(shared)} image(s) or reference(s) of the test dataset {test.name} are also "
            f"in the training dataset, e.g. {sorted(shared)[0]}: a cross-dataset test must not "
            "see its training images"
        )


@dataclass(frozen=True)
class CrossPlan:
    """One metric's cross-dataset fit as one item list: the training items (ids and scenes
    prefixed ``train/``), then the test items of every test dataset (ids prefixed
    ``testK/``, each test image once), with their store keys and the one split."""

    items: list[Item]
    keys: dict[str, str]
    split: Split
    #: Training items offered to ``fit`` (their image and any reference the metric needs found).
    n_train: int

    @property
    def test_keys(self) -> list[str]:
        return [self.keys[self.items[i].id] for i in self.split.test]


def cross_plan(
    train: Sequence[Item],
    train_keys: Mapping[str, str],
    tests: Sequence[tuple[Sequence[Item], Mapping[str, str]]],
) -> CrossPlan:
    """The plan of one metric from the items it can use: ``train`` with their store keys, and
    each test dataset's items with theirs (an item without a key is left out; a test image in
    several test datasets is predicted once)."""
    items, keys = [], {}
    for item in train:
        if item.id in train_keys:
            items.append(replace(item, id=f"train/{item.id}", content=f"train/{item.content}"))
            keys[items[-1].id] = train_keys[item.id]
    n_train, seen = len(items), set()
    for k, (test_items, test_keys) in enumerate(tests):
        for item in test_items:
            key = test_keys.get(item.id)
            if key is None or key in seen:
                continue
            seen.add(key)
            items.append(replace(item, id=f"test{k}/{item.id}", content=f"test{k}/{item.content}"))
            keys[items[-1].id] = key
    return CrossPlan(items, keys, cross_dataset_split(n_train, len(items) - n_train), n_train)
