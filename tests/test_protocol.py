"""Splits: content-disjoint, seeded, of the requested size, and keyed stably."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iqabench.errors import UserError
from iqabench.protocol import Split, content_splits, random_splits, validation_split

# 12 scenes with 5 distorted images each, interleaved so that items of a scene are not adjacent.
CONTENTS = [f"scene{i % 12:02d}" for i in range(60)]


def _scenes(indices: np.ndarray, contents: list[str] = CONTENTS) -> set[str]:
    return {contents[i] for i in indices}


def test_content_splits_are_content_disjoint_and_cover_all_items() -> None:
    splits = content_splits(CONTENTS, n_splits=10, train_fraction=0.8, seed=3)
    assert [s.index for s in splits] == list(range(10))
    for split in splits:
        assert not _scenes(split.train) & _scenes(split.test)
        assert np.array_equal(np.sort(np.concatenate([split.train, split.test])), np.arange(60))
        assert np.all(np.diff(split.train) > 0) and np.all(np.diff(split.test) > 0)
        assert len(_scenes(split.train)) == round(0.8 * 12) == 10
        assert len(split.train) == 50 and len(split.test) == 10


def test_content_splits_are_seeded_and_differ() -> None:
    first = content_splits(CONTENTS, n_splits=10, seed=7)
    assert first == content_splits(CONTENTS, n_splits=10, seed=7)
    assert first != content_splits(CONTENTS, n_splits=10, seed=8)
    assert len({s.key for s in first}) == 10


def test_content_splits_do_not_depend_on_item_order() -> None:
    shuffled = CONTENTS[::-1]
    for a, b in zip(content_splits(CONTENTS, 5), content_splits(shuffled, 5), strict=True):
        assert _scenes(a.train) == _scenes(b.train, shuffled)


@pytest.mark.parametrize(
    ("n_contents", "fraction", "n_train"),
    [(2, 0.8, 1), (3, 0.5, 2), (5, 0.8, 4), (10, 0.7, 7), (4, 0.01, 1), (4, 0.99, 3)],
)
def test_content_splits_sizes(n_contents: int, fraction: float, n_train: int) -> None:
    contents = [f"c{i}" for i in range(n_contents)]
    for split in content_splits(contents, n_splits=4, train_fraction=fraction):
        assert len(split.train) == n_train
        assert len(split.test) == n_contents - n_train


def test_content_splits_repeat_only_when_partitions_run_out() -> None:
    contents = ["a", "b", "c", "d"]  # comb(4, 3) = 4 possible partitions
    splits = content_splits(contents, n_splits=6, train_fraction=0.75)
    keys = [s.key for s in splits]
    assert len(set(keys)) == math.comb(4, 3)
    assert keys[4:] == keys[:2]


@pytest.mark.parametrize("contents", [["only"] * 5, ["only"], []])
def test_content_splits_need_two_contents(contents: list[str]) -> None:
    with pytest.raises(UserError, match="at least 2 distinct contents"):
        content_splits(contents)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_bad_fraction_is_a_user_error(fraction: float) -> None:
    with pytest.raises(UserError, match="between 0 and 1"):
        content_splits(CONTENTS, train_fraction=fraction)
    with pytest.raises(UserError, match="between 0 and 1"):
        random_splits(10, train_fraction=fraction)


def test_bad_number_of_splits_is_a_user_error() -> None:
    with pytest.raises(UserError, match="n_splits"):
        content_splits(CONTENTS, n_splits=0)


def test_split_key_is_stable_and_depends_on_the_partition_only() -> None:
    a = Split(0, [3, 1, 2], [5, 4])
    b = Split(9, np.array([1, 2, 3]), np.array([4, 5]))
    assert a.key == b.key
    assert len(a.key) == 16 and int(a.key, 16) >= 0
    assert a.key != Split(0, [1, 2, 4], [3, 5]).key
    assert a.key != Split(0, [4, 5], [1, 2, 3]).key  # sides matter
    assert np.array_equal(a.train, [1, 2, 3])
    with pytest.raises(ValueError):
        a.train[0] = 7  # read-only
    assert a != b and a == Split(0, [1, 2, 3], [4, 5])
    assert hash(a) == hash(Split(0, [1, 2, 3], [4, 5]))


def test_validation_split_is_inside_train_and_content_disjoint() -> None:
    split = content_splits(CONTENTS, n_splits=1, seed=1)[0]
    train, validation = validation_split(split.train, CONTENTS, fraction=0.2, seed=5)
    assert not _scenes(train) & _scenes(validation)
    assert np.array_equal(np.sort(np.concatenate([train, validation])), split.train)
    assert not set(validation) & set(split.test)
    assert len(_scenes(validation)) == round(0.2 * 10) == 2
    again = validation_split(split.train, CONTENTS, fraction=0.2, seed=5)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], validation)


def test_validation_split_needs_two_training_contents() -> None:
    indices = [i for i, c in enumerate(CONTENTS) if c == "scene03"]
    with pytest.raises(UserError, match="at least 2 contents"):
        validation_split(indices, CONTENTS)


def test_random_splits_reproduce_image_level_splitting() -> None:
    splits = random_splits(60, n_splits=5, train_fraction=0.8, seed=2)
    assert splits == random_splits(60, n_splits=5, train_fraction=0.8, seed=2)
    assert len({s.key for s in splits}) == 5
    for split in splits:
        assert len(split.train) == 48 and len(split.test) == 12
        assert np.array_equal(np.sort(np.concatenate([split.train, split.test])), np.arange(60))
    # Scenes leak across the split: that is the point of offering it (and of not using it).
    assert any(_scenes(s.train) & _scenes(s.test) for s in splits)
    with pytest.raises(UserError, match="at least 2 items"):
        random_splits(1)
