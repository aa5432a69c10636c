"""HyperNet and TReS as deep metrics: the official recipes as declared (parameter groups,
per-epoch rates, loss), and, on tiny builds of the lite networks (EfficientNet-Lite0 at 64x64
crops), that training lowers the loss, resumes where it stopped, round-trips through the generic
checkpoint and scores grey, RGB and 16-bit input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from iqabench.metric import LabelledImage
from iqabench.metrics.hypernet import HEAD_PREFIXES, HyperNet, HyperNetLite
from iqabench.metrics.tres import TReS, TReSLite, TReSObjective
from iqabench.models.hypernet import HyperNetConfig, HyperNetIQA
from iqabench.models.tres import TReSConfig, TReSNet
from iqabench.train.inputs import InputSpec
from iqabench.train.recipe import Step


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- the official recipes ----------------------------------------------------------------------


def official_hypernet_rates(epochs: int, lr: float = 2e-5, ratio: float = 10.0):  # noqa: ANN201
    """(backbone, rest) rates per epoch, stepping the official solver's update rule."""
    rates, rest = [], lr * ratio
    for t in range(epochs):
        rates.append((lr, rest))
        rest = lr / 10 ** (t // 6) * (ratio if t <= 8 else 1)
    return rates


def test_hypernet_recipe_is_the_official_one() -> None:
    recipe = HyperNet().recipe()
    assert (recipe.optimiser.kind, recipe.optimiser.lr, recipe.optimiser.weight_decay) == (
        "adam",
        2e-5,
        5e-4,
    )
    assert (recipe.epochs, recipe.batch_size, recipe.samples_per_image) == (16, 96, 25)
    with torch.device("meta"):
        net = HyperNetIQA(HyperNet().config)
    groups = {g["name"]: g for g in recipe.param_groups(net)}
    assert sum(p.numel() for p in groups["head"]["params"]) == 3_867_337
    assert sum(p.numel() for p in groups["rest"]["params"]) == 23_508_032  # the backbone
    assert all(
        name.startswith(HEAD_PREFIXES) != name.startswith("backbone.")
        for name, _ in net.named_parameters()
    )
    mine = [
        tuple(g["base_lr"] * recipe.schedule.factor(name, epoch) for name, g in groups.items())
        for epoch in range(16)
    ]
    ours_by_group = [(rest, head) for head, rest in mine]
    np.testing.assert_allclose(ours_by_group, official_hypernet_rates(16), rtol=1e-12)


def test_tres_recipe_is_the_official_one() -> None:
    metric = TReS()
    recipe = metric.recipe()
    assert (recipe.optimiser.kind, recipe.optimiser.lr, recipe.optimiser.weight_decay) == (
        "adam",
        2e-5,
        5e-4,
    )
    assert (recipe.epochs, recipe.batch_size, recipe.samples_per_image) == (3, 53, 50)
    assert recipe.schedule == Step(every=1, gamma=0.1)
    with torch.device("meta"):
        net = TReSNet(metric.config)
    groups = recipe.param_groups(net)
    assert {g["base_lr"] for g in groups} == {2e-5}  # one rate, as the official solver
    assert sum(p.numel() for g in groups for p in g["params"]) == 152_452_265
    lite = {g["name"]: g["base_lr"] for g in TReSLite().recipe().param_groups(net)}
    assert lite == {"head": pytest.approx(1e-3), "rest": pytest.approx(1e-4)}
    assert [recipe.schedule.factor("rest", e) for e in range(3)] == pytest.approx([1, 0.1, 0.01])
    assert metric.objective() == TReSObjective(1.0) and metric.eval_samples() == 50


@pytest.mark.parametrize("cls", [HyperNet, HyperNetLite, TReS, TReSLite])
def test_input_crops_fit_the_architecture(cls) -> None:  # noqa: ANN001
    assert cls.input_spec.crop == cls().config.crop
    assert cls.input_spec.mean is None  # the backbone weights' normalisation


# -- tiny builds through the framework ---------------------------------------------------------

TINY_HYPERNET = HyperNetConfig(
    name="hypernet-tiny",
    backbone="efficientnet_lite0",
    crop=64,
    lda_out=8,
    target_in=64,
    hyper_in=16,
    hyper_widths=(32, 16),
    target_widths=(16, 8, 8, 4),
)
TINY_TRES = TReSConfig(
    name="tres-tiny", backbone="efficientnet_lite0", keep_classifier=False, crop=64
)
TINY_SPEC = InputSpec(channels="rgb", crop=64, hflip=True, vflip=True)
TINY_PARAMS = {"epochs": 1, "batch_size": 6, "lr": 2e-4, "train_crops": 2, "crops": 2}


class TinyHyperNet(HyperNetLite):
    name: ClassVar[str] = "hypernet-tiny"
    input_spec: ClassVar[InputSpec] = TINY_SPEC
    default_params: ClassVar[dict[str, Any]] = {**HyperNetLite.default_params, **TINY_PARAMS}

    @property
    def config(self) -> HyperNetConfig:
        return TINY_HYPERNET


class TinyTReS(TReSLite):
    name: ClassVar[str] = "tres-tiny"
    input_spec: ClassVar[InputSpec] = TINY_SPEC
    default_params: ClassVar[dict[str, Any]] = {**TReSLite.default_params, **TINY_PARAMS}

    @property
    def config(self) -> TReSConfig:
        return TINY_TRES


def scene(index: int, level: int, shape: tuple[int, int] = (72, 88)) -> np.ndarray:
    """A smooth scene (0..255) with white noise growing with ``level`` (0 is pristine)."""
    field = gaussian_filter(np.random.default_rng(index).normal(size=shape), sigma=5.0)
    field = 40 + 170 * (field - field.min()) / np.ptp(field)
    noise = np.random.default_rng(100 + 10 * index + level).normal(size=shape)
    return np.clip(field + 30.0 * level * noise, 0, 255)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hypernet-tres-images")
    for s in range(5):
        for level in range(3):
            Image.fromarray(np.rint(scene(s, level)).astype(np.uint8)).save(
                folder / f"s{s}_{level}.png"
            )
    grey = np.rint(scene(9, 1)).astype(np.uint8)
    Image.fromarray(grey).save(folder / "grey.png")
    Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(folder / "rgb.png")
    Image.fromarray(grey.astype(np.uint16) * 200 + 1000).save(folder / "wide.png")  # 16-bit
    return folder


def items(folder: Path, scenes: range) -> list[LabelledImage]:
    return [
        LabelledImage(folder / f"s{s}_{level}.png", 3.0 - level, f"s{s}")
        for s in scenes
        for level in range(3)
    ]


@pytest.fixture(scope="module", params=[TinyHyperNet, TinyTReS], ids=["hypernet", "tres"])
def trained(request: pytest.FixtureRequest, images: Path, tmp_path_factory):  # noqa: ANN001, ANN201
    """A 1-epoch training, then the same run resumed to 2 epochs in the same folder."""
    cls = request.param
    out = tmp_path_factory.mktemp(cls.name)
    sides = items(images, range(4)), items(images, range(4, 5))
    first = cls()
    first_result = first.train_model(*sides, out_dir=out)
    resumed = cls(epochs=2)
    resumed_result = resumed.train_model(*sides, out_dir=out, resume=True)
    return cls, out, first_result, resumed, resumed_result


def test_training_lowers_the_loss_and_resumes(trained) -> None:  # noqa: ANN001
    cls, out, first, _, resumed = trained
    history = resumed.final.history
    assert [r.epoch for r in history] == [1, 2]
    assert history[0].train_loss == pytest.approx(first.final.history[0].train_loss, rel=1e-6)
    assert history[1].train_loss < history[0].train_loss
    recorded = json.loads((out / "metrics.json").read_text())["epochs"]
    if cls is TinyTReS:
        assert set(recorded[0]["losses"]) == {"regression", "consistency", "ranking", "ranking_gap"}


def test_checkpoint_round_trip_and_input_kinds(trained, images: Path) -> None:  # noqa: ANN001
    cls, out, _, metric, _ = trained
    paths = [images / name for name in ("grey.png", "rgb.png", "wide.png")]
    probe = [LabelledImage(p, np.nan, "x") for p in paths] + [
        item.unlabelled() for item in items(images, range(4, 5))
    ]
    scores = metric.predict(probe)
    assert np.isfinite(scores).all()
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)  # a grey RGB image is its grey
    assert scores[2] == pytest.approx(scores[0], rel=0.05)  # the same picture, 16 bits deep
    loaded = cls(checkpoint=str(out / "best.pt"))
    assert not loaded.requires_fit()
    np.testing.assert_allclose(loaded.predict(probe), scores, rtol=1e-5)
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["metric"] == cls.name and best["backbone"]["backbone"] == "efficientnet_lite0"
    assert best["architecture"] == loaded.config.to_dict()
