"""RADN as a deep metric: registration and measured counts, the official recipe, the aligned
patch-pair sampler, a tiny lite training that lowers its loss, checkpoints that predict the
same scores, grey/RGB/16-bit input, and the skip on a dataset without references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import THERMAL_REAL
from PIL import Image

from iqabench import api, registry
from iqabench.data import load_dataset
from iqabench.data.synthetic import build_synthetic_lwir
from iqabench.imageio import load_for_metric
from iqabench.metric import LabelledImage
from iqabench.metrics.radn import PatchPairs
from iqabench.train.inputs import prepare
from iqabench.train.recipe import Step

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COUNTS = {"radn": (21_881_812, 21_881_812), "radn-lite": (313_804, 313_804)}
#: One small training: 3 epochs of 3 batches of 6 images, 8 patch pairs each, at a third of the
#: default rate (at 1e-3 so few steps can overshoot: 12.1, 9.1, 48.3), halved
#: every 2 epochs.
TINY = {"epochs": 3, "batch_size": 6, "decay_every": 2, "lr": 3e-4}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[LabelledImage]]:
    """Training (17 images of 2 scenes), validation (5) and test (5, the third scene) records
    of a tiny synthetic set of 64x80 images."""
    root = build_synthetic_lwir(
        tmp_path_factory.mktemp("radn") / "set", seed=5, n_scenes=3, size=(64, 80)
    )
    dataset = load_dataset("synthetic-lwir", root)
    items = [
        LabelledImage(i.image, i.quality, i.content, i.ref, i.distortion, i.level)
        for i in dataset.items
    ]
    scenes = sorted({r.content for r in items})
    third = [r for r in items if r.content == scenes[2]]
    return {
        "train": [r for r in items if r.content in scenes[:2]][::3],
        "validation": third[::5],
        "test": third[2::5],
    }


@pytest.fixture(scope="module")
def trained(records, tmp_path_factory):  # noqa: ANN001, ANN201
    out = tmp_path_factory.mktemp("radn-lite")
    metric = registry.create("radn-lite", **TINY)
    result = metric.train_model(records["train"], records["validation"], seed=0, out_dir=out)
    return metric, result


# -- declarations ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(COUNTS))
def test_registered_with_their_counts_and_kind(name: str) -> None:
    metric = registry.create(name)
    assert metric.parameter_counts() == COUNTS[name]
    assert metric.family == "DL-FR" and metric.full_reference and metric.trainable
    assert metric.higher_is_better and "Region-Adaptive Deformable" in metric.citation
    assert metric.published is (name == "radn")
    assert ("not the published" in metric.variant_note) is (name == "radn-lite")
    # trains from scratch: no backbone, no pretrained file
    assert metric.backbone_name() is None and metric.model_files() == []
    assert metric.pretrained_weights() is None
    sampler = metric.sampler()
    assert sampler == PatchPairs(32, 32 if name == "radn" else 8)


def test_radn_recipe_is_the_official_one() -> None:
    metric = registry.create("radn")
    recipe = metric.recipe()
    assert recipe.optimiser.kind == "adam" and recipe.optimiser.lr == 1e-4
    assert recipe.optimiser.weight_decay == 0.0
    assert recipe.epochs == 200 and recipe.batch_size == 2
    assert recipe.schedule == Step(every=50, gamma=0.8)
    factors = [recipe.schedule.factor("rest", epoch) for epoch in (0, 49, 50, 100, 199)]
    assert np.allclose(factors, [1, 1, 0.8, 0.64, 0.512])
    assert metric.objective().loss == "mse"
    assert metric.gpu_recommended and not metric.trains_on_cpu
    lite = registry.create("radn-lite")
    assert lite.gpu_recommended and lite.trains_on_cpu  # named, it trains on a CPU
    assert lite.recipe().schedule == Step(every=20, gamma=0.5)
    assert lite.recipe().epochs == 40


# -- the sampler ----------------------------------------------------------------------------


def _pair(shape: tuple[int, int] = (64, 80)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 246, size=(3, *shape)).astype(np.uint8)
    return ref + 9, ref  # the distorted image is the reference plus 9 everywhere


def test_training_patches_are_aligned_and_seeded() -> None:
    sampler = PatchPairs(size=32, per_image=5)
    image, ref = _pair()
    sample = sampler.train(image, ref, np.random.default_rng(3))
    assert sample["image"].shape == sample["ref"].shape == (5, 3, 32, 32)
    assert np.array_equal(sample["image"], sample["ref"] + 9)  # the same places of both
    again = sampler.train(image, ref, np.random.default_rng(3))
    assert all(np.array_equal(sample[k], again[k]) for k in ("image", "ref"))
    other = sampler.train(image, ref, np.random.default_rng(4))
    assert not np.array_equal(sample["ref"], other["ref"])
    # every patch is one of the image's 32x32 windows
    windows = {
        (t, s): ref[:, t : t + 32, s : s + 32].tobytes() for t in range(33) for s in range(49)
    }
    assert all(p.tobytes() in windows.values() for p in sample["ref"])


def test_scoring_sample_is_every_non_overlapping_full_patch() -> None:
    sampler = PatchPairs(size=32, per_image=5)
    image, ref = _pair((70, 100))  # 2 rows and 3 columns of full patches
    sample = sampler.test(image, ref, count=7, rng=np.random.default_rng(0))
    assert sample["image"].shape == sample["ref"].shape == (1, 6, 3, 32, 32)
    corners = [(t, s) for t in (0, 32) for s in (0, 32, 64)]
    for patch, (t, s) in zip(sample["ref"][0], corners, strict=True):
        assert np.array_equal(patch, ref[:, t : t + 32, s : s + 32])
    assert np.array_equal(sample["image"], sample["ref"] + 9)
    # one side a multiple of 32 and the other not: the last full patch is still kept
    assert sampler.test(*_pair((64, 80)), 1, np.random.default_rng(0))["image"].shape[1] == 4
    same = sampler.test(image, ref, count=1, rng=np.random.default_rng(9))
    assert np.array_equal(same["image"], sample["image"])  # no randomness at test


def test_sampler_refuses_a_missing_or_mismatched_reference() -> None:
    sampler = PatchPairs()
    image, ref = _pair()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="reference"):
        sampler.train(image, None, rng)
    with pytest.raises(ValueError, match="reference"):
        sampler.test(image, None, 1, rng)
    with pytest.raises(ValueError, match="differ in size"):
        sampler.train(image, ref[:, :48], rng)
    with pytest.raises(ValueError, match="smaller than a 32-pixel patch"):
        sampler.test(image[:, :20], ref[:, :20], 1, rng)


# -- training, checkpoints, input kinds -----------------------------------------------------


def test_tiny_training_lowers_the_loss(trained, records) -> None:  # noqa: ANN001
    metric, result = trained
    losses = [record.train_loss for record in result.final.history]
    assert len(losses) == TINY["epochs"] and losses[-1] < losses[0]
    lrs = [record.lr for record in result.final.history]
    assert lrs == pytest.approx([3e-4, 3e-4, 1.5e-4])  # halved every 2 epochs
    scores = metric.predict([r.unlabelled() for r in records["test"]])
    assert scores.shape == (len(records["test"]),) and np.isfinite(scores).all()
    assert any("not the published" in note for note in metric.notes())
    largest = max(r.quality for r in records["train"])
    assert float(metric._net.quality_scale) == pytest.approx(largest)  # MOS / max MOS


def test_checkpoint_predicts_the_same_scores(trained, records) -> None:  # noqa: ANN001
    metric, result = trained
    test = [r.unlabelled() for r in records["test"]]
    loaded = registry.create("radn-lite", checkpoint=str(result.checkpoint))
    assert not loaded.requires_fit()
    assert np.allclose(loaded.predict(test), metric.predict(test), atol=1e-6)
    assert loaded.trained_meta()["architecture"] == metric.config.to_dict()
    assert float(loaded._net.quality_scale) == float(metric._net.quality_scale)


def test_score_is_the_network_on_every_patch_pair(trained, records) -> None:  # noqa: ANN001
    """The scored sample is the whole image's patch set, on 0..1 without normalisation."""
    metric, _ = trained
    item = records["test"][0]
    image, ref = load_for_metric(item.image, metric.colour, item.ref)
    score = metric.score([image], [ref])
    pixels = [prepare(a, metric.input_spec) for a in (image, ref)]
    sample = metric.sampler().test(*pixels, 1, np.random.default_rng(0))
    assert sample["image"].shape[1] == 4  # a 64x80 image
    net = metric._net.eval()
    with torch.no_grad():
        direct = net(*(torch.from_numpy(sample[k]).float() / 255 for k in ("image", "ref")))
    assert score[0] == pytest.approx(float(direct[0]), rel=1e-5)


def test_grey_rgb_and_16_bit_input_score(trained, tmp_path: Path) -> None:  # noqa: ANN001
    metric, _ = trained
    rng = np.random.default_rng(0)
    grey = rng.uniform(40, 200, size=(64, 80))
    noisy = np.clip(grey + rng.normal(0, 12, size=grey.shape), 0, 255)
    pictures = {
        "grey": lambda a: Image.fromarray(a.astype(np.uint8)),
        "rgb-of-grey": lambda a: Image.fromarray(np.repeat(a[..., None], 3, -1).astype(np.uint8)),
        "rgb": lambda a: Image.fromarray(
            np.stack([a, a * 0.9, np.minimum(a * 1.1, 255)], -1).astype(np.uint8)
        ),
        "16-bit": lambda a: Image.fromarray((a * 200 + 3000).astype(np.uint16)),
    }  # fmt: skip
    scores = {}
    for kind, make in pictures.items():
        make(noisy).save(tmp_path / f"{kind}.png")
        make(grey).save(tmp_path / f"{kind}-ref.png")
        image, ref = load_for_metric(
            tmp_path / f"{kind}.png", metric.colour, tmp_path / f"{kind}-ref.png"
        )
        scores[kind] = metric.score([image], [ref])
        assert scores[kind].shape == (1,) and np.isfinite(scores[kind]).all(), kind
    assert scores["grey"][0] == pytest.approx(scores["rgb-of-grey"][0], rel=1e-6)


def test_skipped_on_a_dataset_without_references(shared: Path, tmp_path: Path) -> None:
    """TIIQAD has no references: radn-lite is skipped with its reason, nothing trained."""
    dataset = load_dataset("TIIQAD", THERMAL_REAL / "tiiqad_sample")
    result = api.run(
        ["radn-lite"],
        dataset,
        out=tmp_path / "run",
        splits=1,
        report=False,
        params={"radn-lite": {"epochs": 1}},
        seed=0,
        bootstrap=10,
    )
    entry = result.summary["metrics"]["radn-lite"]
    assert entry["status"] == "skipped"
    assert "no reference images" in entry["reason"]
