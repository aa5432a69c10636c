"""The pretraining pair generator: reproducible, true to the recipe, blind to test scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from iqabench.data import load_dataset
from iqabench.data.pairs import (
    PRISTINE_CLASS,
    DistortedPairs,
    PairConfig,
    PairSamples,
    Reference,
    Step,
    class_index,
    collate_pairs,
    distort,
    level_params,
    references_of,
    split_references,
)
from iqabench.data.synthetic import RECIPE, build_synthetic_lwir
from iqabench.data.synthetic.distortions import Draws, Frame
from iqabench.errors import DatasetError, UserError
from iqabench.imageio import load_for_metric
from iqabench.metric import LabelledImage
from iqabench.protocol import content_splits

SIZE = (80, 96)
CROP = 72


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pairs") / "set"
    return build_synthetic_lwir(root, seed=3, n_scenes=5, size=SIZE)


def _references(n: int = 2) -> list[Reference]:
    rng = np.random.default_rng(0)
    return [Reference.of(f"scene{i}", rng.uniform(0, 255, SIZE)) for i in range(n)]


def _contains(frame: np.ndarray, crop: np.ndarray) -> bool:
    """Whether ``crop`` (or its mirror image) is a sub-array of ``frame``."""
    side = crop.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(frame, crop.shape)
    for candidate in (crop, crop[:, ::-1]):
        if np.any(np.all(windows == candidate, axis=(2, 3))):
            return True
    return side == 0


def test_integer_levels_are_the_recipe_and_fractions_interpolate() -> None:
    for code, distortion in RECIPE.items():
        for level, params in enumerate(distortion.levels, start=1):
            assert level_params(code, float(level)) == pytest.approx(params)
    assert level_params("BLU", 2.5)["sigma"] == pytest.approx((1.2 + 1.8) / 2)
    assert level_params("JPG", 1.5)["quality"] == 24.0  # (28 + 20) / 2, an integer factor
    with pytest.raises(UserError):
        level_params("BLU", 5.5)


def test_distort_at_an_integer_level_matches_the_dataset_recipe() -> None:
    pixels = _references(1)[0].pixels
    for code in ("BLU", "JPG"):
        expected = RECIPE[code](Frame.of(pixels), 3, Draws(np.random.default_rng(1)))
        got = distort(pixels, [Step(code, 3.0)], np.random.default_rng(1))
        np.testing.assert_array_equal(got, expected)


def test_classes_are_type_and_level_plus_pristine() -> None:
    assert PairConfig().n_classes == 26
    assert class_index(()) == PRISTINE_CLASS
    assert class_index([Step("AWGN", 1.0)]) == 1
    assert class_index([Step("J2K", 5.0)]) == 25
    assert class_index([Step("BLU", 2.4)]) == 1 + 5 + 1
    assert class_index([Step("BLU", 2.0), Step("JPG", 1.0)]) is None


def test_pairs_are_reproducible_per_seed_epoch_and_index() -> None:
    config = PairConfig(crop=CROP, levels="continuous", target=None)
    first = DistortedPairs(_references(), config, seed=5, length=6)
    again = DistortedPairs(_references(), config, seed=5, length=6)
    for index in range(6):
        np.testing.assert_array_equal(first[index].distorted, again[index].distorted)
        assert first[index].steps == again[index].steps
    other_seed = DistortedPairs(_references(), config, seed=6, length=6)
    assert [p.steps for p in (first[i] for i in range(6))] != [
        p.steps for p in (other_seed[i] for i in range(6))
    ]
    steps = [first[i].steps for i in range(6)]
    first.epoch = 1
    assert [first[i].steps for i in range(6)] != steps
    with pytest.raises(IndexError):
        first[6]


def test_pair_content_and_labels() -> None:
    config = PairConfig(crop=CROP, pristine_fraction=0.3, target="ssim")
    pairs = DistortedPairs(_references(), config, seed=0, length=12)
    drawn = [pairs[i] for i in range(12)]
    assert {p.content for p in drawn} == {"scene0", "scene1"}
    assert all(p.distorted.shape == (CROP, CROP) == p.reference.shape for p in drawn)
    assert all(p.distorted.dtype == np.uint8 for p in drawn)
    pristine = [p for p in drawn if not p.steps]
    assert pristine, "pristine_fraction 0.3 drew no pristine pair in 12"
    for pair in pristine:
        assert pair.label == PRISTINE_CLASS
        np.testing.assert_array_equal(pair.distorted, pair.reference)
        assert pair.target == pytest.approx(1.0)  # SSIM of an image with itself
    for pair in drawn:
        if pair.steps:
            assert pair.label == class_index(pair.steps)
            assert pair.target is not None and pair.target < 1.0


def test_chains_use_distinct_types() -> None:
    config = PairConfig(crop=CROP, chain=(2, 3), target=None)
    pairs = DistortedPairs(_references(), config, seed=0, length=8)
    for index in range(8):
        steps = pairs[index].steps
        assert 2 <= len(steps) <= 3
        assert len({s.code for s in steps}) == len(steps)
        assert pairs[index].label is None


def test_pair_samples_are_the_trainers_dict_samples() -> None:
    pairs = DistortedPairs(_references(), PairConfig(crop=CROP, target=None), seed=0, length=2)
    samples = PairSamples(pairs, channels=3)
    sample = samples[1]
    assert set(sample) == {"image", "ref", "label"}
    assert tuple(sample["image"].shape) == (3, CROP, CROP) and sample["image"].dtype == torch.uint8
    np.testing.assert_array_equal(sample["ref"][2].numpy(), pairs[1].reference)
    samples.epoch = 3
    assert pairs.epoch == 3 and samples.epoch == 3
    assert len(samples) == 2


def test_collate_gives_float_tensors_on_the_display_scale() -> None:
    pairs = DistortedPairs(_references(), PairConfig(crop=CROP, target="ssim"), 0, 3)
    batch = collate_pairs([pairs[i] for i in range(3)])
    assert tuple(batch.distorted.shape) == (3, 1, CROP, CROP)
    assert batch.reference.dtype == batch.distorted.dtype
    assert float(batch.distorted.max()) <= 255.0 and batch.labels is not None
    assert batch.targets is not None and batch.targets.shape == (3,)
    chained = DistortedPairs(_references(), PairConfig(CROP, chain=(2, 2), target=None), 0, 2)
    assert collate_pairs([chained[0], chained[1]]).labels is None


@pytest.mark.parametrize(
    "options",
    [
        {"distortions": ("XYZ",)},
        {"levels": "ordinal"},
        {"level_range": (0.0, 3.0)},
        {"chain": (0, 1)},
        {"pristine_fraction": 1.0},
        {"crop": 4},
    ],
)
def test_bad_configurations_are_user_errors(options: dict) -> None:
    with pytest.raises(UserError):
        PairConfig(**options)


def test_references_must_fit_the_crop_and_must_exist() -> None:
    with pytest.raises(DatasetError, match="scene0"):
        DistortedPairs(_references(1), PairConfig(crop=SIZE[0] + 1), seed=0, length=1)
    with pytest.raises(DatasetError, match="no references"):
        references_of([LabelledImage(Path("a.png"), 1.0, "a")])
    with pytest.raises(UserError, match="full-reference"):
        DistortedPairs(_references(1), PairConfig(crop=CROP, target="niqe"), 0, 1)[0]


def test_pretraining_never_sees_a_test_scene(small_set: Path) -> None:
    """Through the split's scene ids: the pairs come from the training scenes' references
    only, and no pair's pixels can be found in any test scene's reference."""
    dataset = load_dataset("synthetic-lwir", small_set)
    contents = dataset.contents
    split = content_splits(contents, n_splits=1, train_fraction=0.6, seed=4)[0]
    train_scenes = {contents[i] for i in split.train}
    test_scenes = {contents[i] for i in split.test}
    assert train_scenes and test_scenes and not train_scenes & test_scenes

    from_split = split_references(dataset, split)
    train_items = [dataset.items[i] for i in split.train]
    labelled = [LabelledImage(i.image, i.quality, i.content, i.ref) for i in train_items]
    from_fit = references_of(labelled)
    assert [r.digest for r in from_split] == [r.digest for r in from_fit]
    assert {r.content for r in from_split} == train_scenes

    test_refs = {}
    for index in split.test:
        item = dataset.items[index]
        test_refs[item.content] = load_for_metric(item.ref, "grey")[0].astype(np.uint8)
    pairs = DistortedPairs(from_fit, PairConfig(crop=CROP, target=None), seed=1, length=10)
    assert pairs.contents() == train_scenes
    by_scene = {r.content: r.pixels for r in from_fit}
    for index in range(len(pairs)):
        pair = pairs[index]
        assert pair.content in train_scenes
        assert _contains(by_scene[pair.content], pair.reference)
        assert not any(_contains(ref, pair.reference) for ref in test_refs.values())
