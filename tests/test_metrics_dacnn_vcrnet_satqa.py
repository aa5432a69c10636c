"""DACNN, VCRNet and SaTQA as deep metrics: registration, published counts, each lite build's
pretraining and quality stages on a tiny set, and pretraining that never sees a test scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from iqabench import api, registry
from iqabench.data import load_dataset
from iqabench.data import pairs as pairs_module
from iqabench.data.synthetic import build_synthetic_lwir
from iqabench.errors import MetricParameterError
from iqabench.metric import LabelledImage
from iqabench.models.backbones import build_backbone, resolve_backbone
from iqabench.protocol import content_splits

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Tiny stage settings: one epoch each, a few pairs.
TINY = {"epochs": 1, "crops": 1, "pretrain_epochs": 1, "pretrain_pairs": 4, "pretrain_crop": 80}
PUBLISHED = {
    "dacnn": (14_308_236, 2_812_099),
    "vcrnet": (16_659_282, 16_659_282),
    "satqa": (145_048_554 + 29_100_200, 58_471_682),
}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dacnn-vcrnet-satqa") / "set"
    return build_synthetic_lwir(root, seed=5, n_scenes=4, size=(96, 128))


def _records(root: Path) -> dict[str, list[LabelledImage]]:
    """Training, validation and test records of the tiny set, one scene group each."""
    dataset = load_dataset("synthetic-lwir", root)
    records = [
        LabelledImage(i.image, i.quality, i.content, i.ref, i.distortion, i.level)
        for i in dataset.items
    ]
    scenes = sorted({r.content for r in records})
    return {
        "train": [r for r in records if r.content in scenes[:2]][::5],
        "validation": [r for r in records if r.content == scenes[2]][::8],
        "test": [r for r in records if r.content == scenes[3]][::8],
    }


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_counts_through_the_registry(name: str) -> None:
    assert registry.create(name).parameter_counts() == PUBLISHED[name]


@pytest.mark.parametrize("name", ["dacnn", "dacnn-lite", "vcrnet", "satqa-lite"])
def test_two_stages_pretraining_first(name: str) -> None:
    metric = registry.create(name)
    stages = metric.stages()
    assert [s.select for s in stages] == ["last", "validation"]
    assert stages[0].data is not None and stages[-1].name == "quality"
    assert metric.input_spec.crop == metric.config.crop


def test_vcrnet_pretraining_crops_must_suit_the_restoration_network() -> None:
    with pytest.raises(MetricParameterError, match="multiple of 16"):
        registry.create("vcrnet-lite", pretrain_crop=72).stages()


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train(name: str, tiny_set: Path) -> tuple[object, object]:
    records = _records(tiny_set)
    metric = registry.create(name, **TINY)
    result = metric.train_model(records["train"], records["validation"], seed=0)
    assert [s.name for s in result.stages][-1] == "quality" and len(result.stages) == 2
    for stage in result.stages:
        assert np.isfinite(stage.history[-1].train_loss)
    scores = metric.predict([r.unlabelled() for r in records["test"]])
    assert scores.shape == (len(records["test"]),) and np.isfinite(scores).all()
    return metric, result


def test_dacnn_lite_pretrains_sdanet_and_keeps_adanet_as_imagenet(tiny_set: Path) -> None:
    _, result = _train("dacnn-lite", tiny_set)
    imagenet = _state(build_backbone(resolve_backbone("efficientnet_lite0")))
    net = result.net
    assert _same(_state(net.adanet.network), imagenet)
    assert not _same(_state(net.sdanet.features.network), imagenet)
    assert not any(p.requires_grad for p in net.sdanet.parameters())


def test_vcrnet_lite_pretrains_restoration_then_trains_everything(tiny_set: Path) -> None:
    _, result = _train("vcrnet-lite", tiny_set)
    imagenet = _state(build_backbone(resolve_backbone("efficientnet_lite0")))
    assert not _same(_state(result.net.backbone.network), imagenet)  # trained in quality
    assert result.stages[0].name == "restoration"


def test_satqa_lite_pretrains_the_encoder_and_keeps_its_backbone(tiny_set: Path) -> None:
    metric, result = _train("satqa-lite", tiny_set)
    imagenet = _state(build_backbone(resolve_backbone("efficientnet_lite0")))
    net = result.net
    assert _same(_state(net.backbone.network.network), imagenet)
    assert not _same(_state(net.encoder.stages.network), imagenet)
    assert not any(p.requires_grad for p in net.encoder.parameters())
    assert metric.pretrained_weights() is True


def test_pretraining_never_sees_a_test_scene(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the split's scene ids, in a real run: every reference a pretraining stage draws
    pairs from belongs to the training side of its split."""
    seen: list[set[str]] = []
    original = pairs_module.PairStageData.__call__

    def recording(self, inputs):  # noqa: ANN001, ANN202
        samples = original(self, inputs)
        seen.append(samples.pairs.contents())
        return samples

    monkeypatch.setattr(pairs_module.PairStageData, "__call__", recording)
    root = build_synthetic_lwir(tmp_path / "set", seed=6, n_scenes=3, size=(64, 80))
    dataset = load_dataset("synthetic-lwir", root)
    params = {"dacnn-lite": {**TINY, "pretrain_target": "ssim", "pretrain_crop": 64}}
    options = {"splits": 1, "seed": 3, "report": False, "bootstrap": 10}
    api.run(["dacnn-lite"], dataset, out=tmp_path / "run", params=params, **options)
    splits = content_splits(dataset.contents, n_splits=1, train_fraction=0.8, seed=3)
    assert len(seen) == len(splits)
    for split, scenes in zip(splits, seen, strict=True):
        test_scenes = {dataset.items[i].content for i in split.test}
        train_scenes = {dataset.items[i].content for i in split.train}
        assert scenes and scenes <= train_scenes and not scenes & test_scenes
