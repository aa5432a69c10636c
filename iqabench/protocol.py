"""Train/test splits for trainable metrics: by content, so that no scene is seen twice.

A learned metric evaluated on distorted versions of scenes it was trained on is rewarded for
recognising the scene rather than judging quality. The splits here therefore assign whole
reference scenes (the ``content`` of each item, see :mod:`iqabench.data.items`) to one side,
as in the LIVE/TID protocol of repeated 80/20 content splits (e.g. Mittal, Moorthy and Bovik,
BRISQUE, IEEE TIP 21(12), 2012). :func:`validation_split` carves a content-disjoint hold-out
from a training set for model selection, so the test items never reach ``fit``;
:func:`random_splits` reproduces the image-level random split some reference code uses, which
lets scenes leak across the split. :func:`cross_dataset_split` is the one split of the
cross-dataset protocol: every image of one dataset to train on, every image of another to test.

Everything is seeded with :func:`numpy.random.default_rng` and returns item indices only.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .errors import UserError


def _index_array(values: ArrayLike) -> np.ndarray:
    """Sorted, read-only int64 copy of some item indices."""
    arr = np.sort(np.asarray(values, dtype=np.int64).ravel())
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Split:
    """One train/test split: sorted item indices of each side; ``index`` counts from 0."""

    index: int
    train: np.ndarray
    test: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", _index_array(self.train))
        object.__setattr__(self, "test", _index_array(self.test))

    @property
    def key(self) -> str:
        """Stable 16-hex-digit hash of the sorted train and test indices.

        The same partition of the same item list always gets the same key, whatever the split's
        position or the seed that drew it, so predictions stored under it can be found again.
        """
        text = "train:" + ",".join(map(str, self.train)) + ";test:" + ",".join(map(str, self.test))
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Split):
            return NotImplemented
        return (
            self.index == other.index
            and np.array_equal(self.train, other.train)
            and np.array_equal(self.test, other.test)
        )

    def __hash__(self) -> int:
        return hash((self.index, self.key))


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise UserError(f"{name} must lie strictly between 0 and 1, not {value}")


def _side_size(fraction: float, total: int) -> int:
    """``round(fraction * total)`` (Python's rounding, halves to even), within 1..total-1."""
    return min(max(round(fraction * total), 1), total - 1)


def content_splits(
    contents: Sequence[str],
    n_splits: int = 10,
    train_fraction: float = 0.8,
    seed: int = 0,
) -> list[Split]:
    """Repeated content-disjoint train/test splits of the items.

    ``contents`` gives each item's content id (reference scene). Each split puts
    ``round(train_fraction * n_contents)`` distinct contents (at least one, and at least one
    left over) and all their items in train, the other contents' items in test. Contents are
    taken in sorted order before shuffling, so the result depends on the seed and the content
    ids, not on the item order. Splits are distinct partitions as long as there are enough
    possible ones (``comb(n_contents, n_train)``); when there are fewer than ``n_splits``, the
    distinct ones are repeated in turn.

    Raises :class:`~iqabench.errors.UserError` with fewer than two distinct contents, a fraction
    outside (0, 1) or ``n_splits < 1``.
    """
    _check_fraction("train_fraction", train_fraction)
    if n_splits < 1:
        raise UserError(f"n_splits must be at least 1, not {n_splits}")
    names, codes = np.unique(np.asarray(list(contents), dtype=str), return_inverse=True)
    if names.size < 2:
        raise UserError(
            f"content-disjoint splits need at least 2 distinct contents (reference scenes); "
            f"found {names.size} among {len(contents)} items"
        )
    n_train = _side_size(train_fraction, names.size)
    n_distinct = min(n_splits, math.comb(names.size, n_train))
    rng = np.random.default_rng(seed)
    partitions: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    while len(partitions) < n_distinct:
        chosen = tuple(sorted(rng.permutation(names.size)[:n_train].tolist()))
        if chosen not in seen:
            seen.add(chosen)
            partitions.append(chosen)
    splits = []
    for index in range(n_splits):
        in_train = np.isin(codes, partitions[index % n_distinct])
        splits.append(Split(index, np.flatnonzero(in_train), np.flatnonzero(~in_train)))
    return splits


def validation_split(
    split_train_indices: ArrayLike,
    contents: Sequence[str],
    fraction: float = 0.2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole contents of a training set for model selection.

    ``split_train_indices`` are item indices of a split's training side and ``contents`` the
    content id of *every* item (indexed like the dataset). ``round(fraction * n)`` of the ``n``
    distinct training contents (at least one, and at least one left) go to validation. Returns
    sorted item indices ``(train, validation)``, both drawn from ``split_train_indices`` and
    content-disjoint; the test side of the split is never touched.

    Raises :class:`~iqabench.errors.UserError` when the training set holds fewer than two
    contents or ``fraction`` is outside (0, 1).
    """
    _check_fraction("fraction", fraction)
    indices = np.asarray(split_train_indices, dtype=np.int64).ravel()
    item_contents = np.asarray([contents[i] for i in indices], dtype=str)
    names = np.unique(item_contents)
    if names.size < 2:
        raise UserError(
            f"a content-disjoint validation split needs at least 2 contents in the training "
            f"set; found {names.size}"
        )
    rng = np.random.default_rng(seed)
    held_out = rng.permutation(names)[: _side_size(fraction, names.size)]
    in_validation = np.isin(item_contents, held_out)
    return _index_array(indices[~in_validation]), _index_array(indices[in_validation])


def random_splits(
    n_items: int,
    n_splits: int = 10,
    train_fraction: float = 0.8,
    seed: int = 0,
) -> list[Split]:
    """Image-level random splits, **not** content-disjoint, to reproduce reference code.

    Some published code splits images at random, so that distorted versions of one scene sit
    on both sides and a learned metric partly recognises scenes it was trained on; its numbers
    are optimistic. Offered only to reproduce such results; use :func:`content_splits` for
    evaluation. Each split puts ``round(train_fraction * n_items)`` items (at least one on each
    side) in train.

    Raises :class:`~iqabench.errors.UserError` with fewer than two items, a fraction outside
    (0, 1) or ``n_splits < 1``.
    """
    _check_fraction("train_fraction", train_fraction)
    if n_splits < 1:
        raise UserError(f"n_splits must be at least 1, not {n_splits}")
    if n_items < 2:
        raise UserError(f"a train/test split needs at least 2 items, not {n_items}")
    n_train = _side_size(train_fraction, n_items)
    rng = np.random.default_rng(seed)
    splits = []
    for index in range(n_splits):
        order = rng.permutation(n_items)
        splits.append(Split(index, order[:n_train], order[n_train:]))
    return splits


def cross_dataset_split(n_train: int, n_test: int) -> Split:
    """The one split of the cross-dataset protocol, over the training dataset's items followed
    by the test datasets' items: the first ``n_train`` indices train, the next ``n_test`` test.

    A trainable metric is fitted on the whole training dataset (a learned one carves its
    validation scenes from it with :func:`validation_split`) and scores every test image; the
    two sides are different datasets, so no scene is seen twice by construction.

    Raises :class:`~iqabench.errors.UserError` when either side is empty.
    """
    if n_train < 1 or n_test < 1:
        raise UserError(
            f"a cross-dataset split needs training and test images; got {n_train} and {n_test}"
        )
    return Split(0, np.arange(n_train), np.arange(n_train, n_train + n_test))
