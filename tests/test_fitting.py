"""Per-split fitting: the test scenes never reach fit, stored splits are reused, and an
unreadable image is left out of a learned metric's training with a note."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iqabench.data import load_dataset
from iqabench.fitting import feature_predictions, learned_predictions
from iqabench.imageio import content_key
from iqabench.metric import FeatureMetric, LabelledImage, LearnedMetric
from iqabench.progress import SilentProgress
from iqabench.protocol import content_splits
from iqabench.store import MetricKey, ScoreStore


class _MeanLine:
    def fit(self, X: np.ndarray, y: np.ndarray) -> _MeanLine:
        self.slope, self.intercept = np.polyfit(X[:, 0], y, 1)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.slope * X[:, 0] + self.intercept


class MeanBrightness(FeatureMetric):
    """Test double: one feature (mean brightness) and a line; records what it was fitted on."""

    name = "mean-brightness"
    family = "TR-NR"
    full_reference = False
    citation = "test double"

    def __init__(self) -> None:
        super().__init__()
        self.fitted_groups: list[list[str]] = []

    def features(self, images: Sequence[np.ndarray], refs=None) -> np.ndarray:  # noqa: ANN001
        return np.array([[image.mean()] for image in images])

    def make_regressor(self, seed: int, groups: Sequence[str] | None = None) -> _MeanLine:
        self.fitted_groups.append(list(groups or []))
        return _MeanLine()


class MeanBrightnessLearner(LearnedMetric):
    """Test double trained on images: remembers the scenes it saw."""

    name = "mean-brightness-learner"
    family = "DL-NR"
    full_reference = False
    citation = "test double"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[set[str]] = []

    def fit(
        self, train: Sequence[LabelledImage], validation: Sequence[LabelledImage], seed: int = 0
    ):  # noqa: ANN201
        self.seen.append({x.content for x in [*train, *validation]})
        read = [(x, self.read(x)) for x in train]
        means = np.array([pixels[0].mean() for _, pixels in read if pixels is not None])
        self.line = np.polyfit(means, [x.quality for x, pixels in read if pixels is not None], 1)
        return self

    def score(self, images, refs=None) -> np.ndarray:  # noqa: ANN001
        return np.polyval(self.line, [image.mean() for image in images])


@pytest.fixture
def dataset(tmp_path: Path):  # noqa: ANN201
    rows = ["image,mos,content"]
    for scene in range(6):
        for level in range(3):
            name = f"s{scene}_{level}.png"
            value = 40 * level + scene
            Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(tmp_path / name)
            rows.append(f"{name},{level + 1},scene{scene}")
    (tmp_path / "scores.csv").write_text("\n".join(rows) + "\n")
    return load_dataset("csv", tmp_path)


def _setup(dataset, tmp_path: Path):  # noqa: ANN001, ANN202
    keys = {item.id: content_key(item.image) for item in dataset}
    splits = content_splits(dataset.contents, n_splits=3, train_fraction=0.5, seed=1)
    return keys, splits, ScoreStore(tmp_path / "scores.db")


def test_feature_metric_never_fits_on_test_scenes_and_reuses_stored_splits(
    dataset, tmp_path: Path
) -> None:  # noqa: ANN001
    keys, splits, store = _setup(dataset, tmp_path)
    metric = MeanBrightness()
    features = {
        keys[i.id]: np.array([float(np.asarray(Image.open(i.image)).mean())]) for i in dataset
    }
    key = MetricKey(metric.name, "1", "p")
    bar = SilentProgress().task("fit", len(splits))
    predictions, _, tally = feature_predictions(
        store, metric, key, dataset.items, keys, features, splits, 0, bar
    )
    assert tally.scored == sum(len(s.test) for s in splits) and tally.reused == 0
    for split, groups in zip(splits, metric.fitted_groups, strict=True):
        test_scenes = {dataset.items[i].content for i in split.test}
        assert groups and not set(groups) & test_scenes
        assert set(predictions[split.index]) == {keys[dataset.items[i].id] for i in split.test}
    again, _, tally = feature_predictions(
        store, MeanBrightness(), key, dataset.items, keys, features, splits, 0, bar
    )
    assert again == predictions
    assert tally.scored == 0 and tally.reused == sum(len(s.test) for s in splits)


def test_learned_metric_leaves_unreadable_images_out_with_a_note(dataset, tmp_path: Path) -> None:  # noqa: ANN001
    keys, splits, store = _setup(dataset, tmp_path)
    broken = dataset.items[0].image
    broken.write_bytes(broken.read_bytes()[:30])  # truncated after its key was taken
    metric = MeanBrightnessLearner()
    key = MetricKey(metric.name, "1", "p")
    bar = SilentProgress().task("train", len(splits))
    usable = {item.id for item in dataset}
    predictions, notes, _ = learned_predictions(
        store, metric, key, dataset.items, keys, usable, splits, 0, bar
    )
    assert any("unreadable image(s) left out" in note and broken.name in note for note in notes)
    for split, seen in zip(splits, metric.seen, strict=True):
        assert not seen & {dataset.items[i].content for i in split.test}
        assert predictions[split.index]
