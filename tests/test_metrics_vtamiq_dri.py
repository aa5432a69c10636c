"""VTAMIQ and DRI-IQA as deep metrics: registration and published counts, their stages, the
level-ordered pairs and VTAMIQ's patch samples, a tiny two-stage training of each lite build
that lowers its loss, checkpoints (save, exact resume, predict), grey/RGB/16-bit input,
pretraining that never sees a test scene, and a dataset without references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import THERMAL_REAL

from iqabench import api, registry
from iqabench.data import load_dataset
from iqabench.data.pairs import DistortedPairs, LevelOrderedPairs, PairConfig, Reference
from iqabench.data.synthetic import build_synthetic_lwir
from iqabench.errors import MetricParameterError
from iqabench.imageio import load_for_metric
from iqabench.metric import LabelledImage
from iqabench.metrics import dri_iqa, vtamiq
from iqabench.models.vtamiq_sampling import grid_positions
from iqabench.protocol import content_splits
from iqabench.train.recipe import StageInputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PUBLISHED = {
    "vtamiq": (57_306_274, 57_306_274),
    "vtamiq-lite": (2_787_382, 2_086_614),
    "dri-iqa": (124_290_580, 123_069_204),
    "dri-iqa-lite": (1_155_602, 1_078_674),
}
#: Tiny settings: one batch per epoch, two pretraining and three quality epochs, few patches.
TINY = {
    "vtamiq-lite": {
        "epochs": 3, "batch_size": 6, "lr": 1e-3, "pretrain_epochs": 2, "pretrain_pairs": 3,
        "pretrain_batch_size": 3, "pretrain_lr": 1e-3, "train_patches": 16, "test_patches": 16,
        "pretrain_target": "ssim",
    },
    "dri-iqa-lite": {
        "epochs": 3, "batch_size": 6, "lr": 1e-3, "crops": 1, "pretrain_epochs": 2,
        "pretrain_pairs": 4, "pretrain_batch_size": 4, "pretrain_window": 160,
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[LabelledImage]]:
    """Training (6), validation (3) and test (3) records of a tiny set, one scene group each,
    with several levels among the training images."""
    root = build_synthetic_lwir(
        tmp_path_factory.mktemp("vtamiq-dri") / "set", seed=5, n_scenes=4, size=(96, 128)
    )
    dataset = load_dataset("synthetic-lwir", root)
    items = [
        LabelledImage(i.image, i.quality, i.content, i.ref, i.distortion, i.level)
        for i in dataset.items
    ]
    scenes = sorted({r.content for r in items})
    return {
        "train": [r for r in items if r.content in scenes[:2]][::9],
        "validation": [r for r in items if r.content == scenes[2]][::9],
        "test": [r for r in items if r.content == scenes[3]][::9],
    }


def _trained(name: str, records, out: Path, **params):  # noqa: ANN001, ANN202
    metric = registry.create(name, **{**TINY[name], **params})
    result = metric.train_model(records["train"], records["validation"], seed=0, out_dir=out)
    return metric, result


@pytest.fixture(scope="module")
def vtamiq_lite(records, tmp_path_factory):  # noqa: ANN001, ANN201
    return _trained("vtamiq-lite", records, tmp_path_factory.mktemp("vtamiq-lite"))


@pytest.fixture(scope="module")
def dri_lite(records, tmp_path_factory):  # noqa: ANN001, ANN201
    return _trained("dri-iqa-lite", records, tmp_path_factory.mktemp("dri-lite"))


# -- declarations ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_registered_with_their_counts_and_kinds(name: str) -> None:
    metric = registry.create(name)
    assert metric.parameter_counts() == PUBLISHED[name]
    assert metric.family == ("DL-FR" if name.startswith("vtamiq") else "DL-NR")
    assert metric.full_reference is name.startswith("vtamiq")
    stages = metric.stages()
    assert [s.name for s in stages][-1] == "quality" and len(stages) == 2
    assert [s.select for s in stages] == ["last", "validation"] and stages[0].data is not None


def test_vtamiq_quality_recipe_is_the_papers() -> None:
    recipe = registry.create("vtamiq").recipe()
    assert recipe.optimiser.kind == "adamw" and recipe.optimiser.weight_decay == 0.01
    assert recipe.epochs == 20 and recipe.batch_size == 20 and recipe.clip_grad_norm == 1.0
    factors = [recipe.schedule.factor("rest", epoch) for epoch in (0, 13, 14, 17, 18, 19)]
    assert np.allclose(factors, [1, 1, 0.1, 0.1, 0.01, 0.01])


def test_dri_pretraining_window_must_hold_a_crop() -> None:
    with pytest.raises(MetricParameterError, match="pretrain_window"):
        registry.create("dri-iqa-lite", pretrain_window=128).stages()


# -- data -----------------------------------------------------------------------------------


def _references() -> list[Reference]:
    rng = np.random.default_rng(1)
    return [Reference.of(f"s{k}", rng.uniform(20, 230, size=(48, 64))) for k in range(2)]


def test_level_ordered_pairs_differ_only_in_level() -> None:
    config = PairConfig(crop=32, target="psnr")
    ordered = LevelOrderedPairs(DistortedPairs(_references(), config, seed=3, length=6))
    for index in range(6):
        milder, worse = ordered[index]
        assert np.array_equal(milder.reference, worse.reference)
        assert [s.code for s in milder.steps] == [s.code for s in worse.steps]
        assert all(a.level < b.level for a, b in zip(milder.steps, worse.steps, strict=True))
        assert milder.target is not None and worse.target is not None
    again = LevelOrderedPairs(DistortedPairs(_references(), config, seed=3, length=6))
    assert np.array_equal(again[2][1].distorted, ordered[2][1].distorted)
    with pytest.raises(Exception, match="all distorted"):
        LevelOrderedPairs(
            DistortedPairs(_references(), PairConfig(crop=32, pristine_fraction=0.2), 0, 2)
        )


def test_vtamiq_samples_keep_the_window_aligned_and_its_place() -> None:
    sampler = vtamiq.AlignedPatches(window=32, train_patches=12, test_patches=20, grid=24)
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 255, size=(3, 48, 64)).astype(np.uint8)
    image = np.clip(ref.astype(int) + 9, 0, 255).astype(np.uint8)
    for seed in range(4):
        sample = sampler.train(image, ref, np.random.default_rng(seed))
        assert sample["image"].shape == sample["ref"].shape == (3, 32, 32)
        assert sample["corners"].shape == sample["grid"].shape == (12, 2)
        assert sample["corners"].min() >= 0 and sample["corners"].max() <= 32 - 16
        # the window is the same place of both images (the difference survives cropping)
        same = np.clip(sample["ref"].astype(int) + 9, 0, 255)
        assert np.array_equal(sample["image"], same)
        assert sample["grid"].max() < 24
    whole = sampler.test(image, ref, 3, np.random.default_rng(1))
    assert whole["image"].shape == (3, 3, 48, 64) and whole["corners"].shape == (3, 20, 2)
    assert np.array_equal(whole["grid"][0], grid_positions(whole["corners"][0], (48, 64), 24))
    with pytest.raises(ValueError, match="reference"):
        sampler.train(image, None, rng)


def test_dri_without_references_trains_infonce_alone(records) -> None:  # noqa: ANN001
    """Stage 1 on a split without references: two views of the training images, InfoNCE
    only; the results say so."""
    metric = registry.create("dri-iqa-lite", **TINY["dri-iqa-lite"])
    from iqabench.train.images import PreparedImages

    unreferenced = [LabelledImage(r.image, r.quality, r.content) for r in records["train"][:4]]
    images, _, _ = PreparedImages(metric.input_spec).add(unreferenced)
    inputs = StageInputs(unreferenced, images, (), metric.input_spec, seed=0)
    stage = metric.stages()[0]
    data = stage.data(inputs)
    assert isinstance(data, dri_iqa.ImageViews) and len(data) == 4
    sample = data[0]
    assert set(sample) == {"image"} and sample["image"].shape == (2, 1, 160, 160)
    torch.manual_seed(0)
    net = metric.build_network(metric.config, None)
    batch = {"image": torch.stack([data[i]["image"] for i in range(3)]).float() / 255}
    result = stage.objective(net, batch)
    assert set(result.parts) == {"info_nce"} and torch.isfinite(result.loss)
    assert metric.training_notes(unreferenced) == [dri_iqa.NO_REFERENCES]
    assert metric.training_notes(records["train"]) == []


# -- training -------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["vtamiq_lite", "dri_lite"])
def test_two_stage_training_lowers_the_loss(fixture: str, request, records) -> None:  # noqa: ANN001
    metric, result = request.getfixturevalue(fixture)
    pretraining, quality = result.stages
    assert pretraining.name in ("pretraining", "representation") and quality.name == "quality"
    losses = [record.train_loss for record in quality.history]
    assert losses[-1] < losses[0]
    goal = "mae" if fixture == "vtamiq_lite" else "restoration"
    assert pretraining.history[-1].losses[goal] < pretraining.history[0].losses[goal]
    scores = metric.predict([r.unlabelled() for r in records["test"]])
    assert scores.shape == (len(records["test"]),) and np.isfinite(scores).all()


@pytest.mark.parametrize("fixture", ["vtamiq_lite", "dri_lite"])
def test_checkpoint_predicts_the_same_scores(fixture: str, request, records) -> None:  # noqa: ANN001
    metric, result = request.getfixturevalue(fixture)
    test = [r.unlabelled() for r in records["test"]]
    # scoring settings (patches, crops) are parameters, the network comes from the file
    loaded = registry.create(metric.name, **TINY[metric.name], checkpoint=str(result.checkpoint))
    assert not loaded.requires_fit()
    assert np.allclose(loaded.predict(test), metric.predict(test), atol=1e-6)


def test_dri_resumes_exactly_with_its_queue(dri_lite, records, tmp_path: Path) -> None:  # noqa: ANN001
    """An interrupted run (one quality epoch, then resumed to three) ends where the
    uninterrupted one did: the MoCo queue and its pointer travel in the checkpoints."""
    metric, _ = dri_lite
    _trained("dri-iqa-lite", records, tmp_path, epochs=1)
    resumed = registry.create("dri-iqa-lite", **TINY["dri-iqa-lite"])
    resumed.train_model(
        records["train"], records["validation"], seed=0, out_dir=tmp_path, resume=True
    )
    assert torch.equal(resumed._net.contrast.queue, metric._net.contrast.queue)
    test = [r.unlabelled() for r in records["test"]]
    assert np.allclose(resumed.predict(test), metric.predict(test), atol=1e-6)


@pytest.mark.parametrize("fixture", ["vtamiq_lite", "dri_lite"])
def test_grey_rgb_and_16_bit_input_score(fixture: str, request, tmp_path: Path) -> None:  # noqa: ANN001
    from PIL import Image

    metric, _ = request.getfixturevalue(fixture)
    rng = np.random.default_rng(0)
    grey = rng.uniform(40, 200, size=(96, 128))
    files = {
        "grey": Image.fromarray(grey.astype(np.uint8)),
        "rgb": Image.fromarray(np.stack([grey, grey * 0.9, grey * 1.1], -1).astype(np.uint8)),
        "16-bit": Image.fromarray((grey * 200 + 3000).astype(np.uint16)),
    }  # fmt: skip
    for kind, picture in files.items():
        path = tmp_path / f"{kind}.png"
        picture.save(path)
        reference = path if metric.full_reference else None
        image, ref = load_for_metric(path, metric.colour, reference)
        refs = [ref] if metric.full_reference else None
        score = metric.score([image], refs)
        assert score.shape == (1,) and np.isfinite(score).all(), kind


class _Recorded(Exception):
    """Stops a training once its pretraining data has been recorded."""


def test_pretraining_never_sees_a_test_scene(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the split's scene ids, in a real run: every reference a pretraining stage draws
    from belongs to the training side of its split (each training stops there: the data is
    what is checked)."""
    seen: dict[str, list[set[str]]] = {"vtamiq-lite": [], "dri-iqa-lite": []}

    def recording(name: str, data_class: type) -> None:
        original = data_class.__call__

        def call(self, inputs):  # noqa: ANN001, ANN202
            seen[name].append(original(self, inputs).pairs.contents())
            raise _Recorded(name)

        monkeypatch.setattr(data_class, "__call__", call)

    recording("vtamiq-lite", vtamiq.PreferencePairData)
    recording("dri-iqa-lite", dri_iqa.RepresentationData)
    root = build_synthetic_lwir(tmp_path / "set", seed=6, n_scenes=4, size=(96, 128))
    dataset = load_dataset("synthetic-lwir", root)
    options = {"splits": 1, "seed": 3, "report": False, "bootstrap": 10}
    result = api.run(list(TINY), dataset, out=tmp_path / "run", params=TINY, **options)
    splits = content_splits(dataset.contents, n_splits=1, train_fraction=0.8, seed=3)
    for name in TINY:
        assert "_Recorded" in result.summary["metrics"][name]["reason"]
        assert len(seen[name]) == len(splits)
        for split, scenes in zip(splits, seen[name], strict=True):
            test_scenes = {dataset.items[i].content for i in split.test}
            train_scenes = {dataset.items[i].content for i in split.train}
            assert scenes and scenes <= train_scenes and not scenes & test_scenes


def test_on_a_dataset_without_references(shared: Path, tmp_path: Path) -> None:
    """TIIQAD: VTAMIQ is skipped with its reason; DRI-IQA trains on the score and InfoNCE
    terms only, and its results say so."""
    dataset = load_dataset("TIIQAD", THERMAL_REAL / "tiiqad_sample")
    params = {
        "dri-iqa-lite": {
            **TINY["dri-iqa-lite"],
            "epochs": 1,
            "pretrain_epochs": 1,
            "batch_size": 12,
        }
    }
    options = {"splits": 1, "seed": 0, "report": False, "bootstrap": 10}
    result = api.run(
        ["vtamiq-lite", "dri-iqa-lite"], dataset, out=tmp_path, params=params, **options
    )
    entries = result.summary["metrics"]
    assert entries["vtamiq-lite"]["status"] == "skipped"
    assert "no reference images" in entries["vtamiq-lite"]["reason"]
    assert entries["dri-iqa-lite"]["status"] == "ok", entries["dri-iqa-lite"]["reason"]
    assert dri_iqa.NO_REFERENCES in entries["dri-iqa-lite"]["notes"]
