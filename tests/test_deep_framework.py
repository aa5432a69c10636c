"""The deep-model framework with tiny networks: the generic trainer lowers the loss, checkpoints
round-trip and resume exactly, grey/RGB/16-bit input scores, stages pretrain on the training
references only, frozen parameters stay put, objectives may run the network as they need, full-
reference models get aligned crops, and `iqabench train/predict/list models` take any deep
metric the registry knows.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch import nn
from torch.utils.data import Dataset

from iqabench.errors import UserError
from iqabench.metric import LabelledImage
from iqabench.metrics._deep import DEEP_PARAMS, DeepMetric
from iqabench.train.inputs import InputSpec
from iqabench.train.recipe import (
    Cosine,
    LossResult,
    Optimiser,
    ParamGroup,
    Recipe,
    Regression,
    Stage,
    StageInputs,
)
from iqabench.train.samples import RandomCrops


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- tiny models -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TinyConfig:
    name: str = "tiny"
    channels: int = 1
    width: int = 8


class TinyNet(nn.Module):
    """A frozen 'backbone' convolution, a trained one, and a linear head: one score per crop."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.stem = nn.Conv2d(config.channels, config.width, 3, stride=2)
        self.stem.requires_grad_(False)
        self.body = nn.Conv2d(config.width, config.width, 3, padding=1)
        self.head = nn.Linear(2 * config.width, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.body(torch.relu(self.stem(x))))
        return torch.cat([y.mean(dim=(2, 3)), y.std(dim=(2, 3))], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


class TinyFRNet(TinyNet):
    """Scores the feature difference of an aligned (distorted, reference) crop pair."""

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x) - self.features(ref)).squeeze(1)


class TinyIQA(DeepMetric):
    """Grey tiny model: 32x32 crops, Adam, two parameter groups, cosine schedule."""

    name: ClassVar[str] = "tiny-iqa"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    citation: ClassVar[str] = "test double"
    input_spec: ClassVar[InputSpec] = InputSpec(
        channels="grey", crop=32, depth="float32", mean=(0.5,), std=(0.25,)
    )
    default_params: ClassVar[dict[str, Any]] = {
        **DEEP_PARAMS,
        "epochs": 3,
        "batch_size": 8,
        "lr": 3e-2,
        "train_crops": 4,
        "crops": 3,
    }

    @property
    def config(self) -> TinyConfig:
        return TinyConfig(channels=self.input_spec.n_channels)

    def config_from_dict(self, data: dict[str, Any]) -> TinyConfig:
        return TinyConfig(**data)

    def build_network(self, config: TinyConfig, backbone: Any) -> nn.Module:
        return TinyNet(config)

    def recipe(self) -> Recipe:
        p = self.params
        return Recipe(
            optimiser=Optimiser("adam", float(p["lr"])),
            epochs=int(p["epochs"]),
            batch_size=int(p["batch_size"]),
            schedule=Cosine(t_max=10),
            groups=(ParamGroup("head", ("head.",), lr_scale=0.5),),
            samples_per_image=int(p["train_crops"]),
            eval_samples=self.eval_samples(),
        )


class TinyRGBIQA(TinyIQA):
    name: ClassVar[str] = "tiny-rgb-iqa"
    input_spec: ClassVar[InputSpec] = InputSpec(
        channels="rgb", resize=(40, 56), crop=32, mean=(0.5,) * 3, std=(0.25,) * 3
    )


class FlipConsistency:
    """L1 plus the squared difference of the scores of a batch and of its mirror image: an
    objective that runs the network twice and reports its two terms."""

    def __init__(self, forward: Any) -> None:
        self.forward = forward

    def __call__(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> LossResult:
        scores = self.forward(net, batch).float()
        mirrored = net(batch["image"].flip(-1)).float()
        fit = torch.nn.functional.l1_loss(scores, batch["quality"])
        consistency = (scores - mirrored).pow(2).mean()
        return LossResult(
            fit + consistency, scores, batch["quality"], {"fit": fit, "flip": consistency}
        )

    def describe(self) -> dict[str, Any]:
        return {"objective": "flip-consistency"}


class ReferenceDenoising(Dataset):
    """A pretraining set built from the split's training references: noisy crops of them, the
    target being the noise level. Records what it was given."""

    seen: ClassVar[list[tuple[Path, ...]]] = []

    def __init__(self, inputs: StageInputs) -> None:
        from iqabench.imageio import load_for_metric
        from iqabench.train.inputs import prepare

        ReferenceDenoising.seen.append(inputs.references)
        self.frames = [
            prepare(load_for_metric(r, "grey")[0], inputs.spec) for r in inputs.references
        ]
        self.seed = inputs.seed
        self.epoch = 0

    def __len__(self) -> int:
        return 4 * len(self.frames)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        frame = self.frames[index % len(self.frames)]
        level = float(rng.integers(0, 3))
        top, left = rng.integers(0, np.array(frame.shape[1:]) - 31)
        crop = frame[:, top : top + 32, left : left + 32] + rng.normal(0, 20 * level, (1, 32, 32))
        return {"image": torch.from_numpy(crop.astype(np.float32)), "level": torch.tensor(level)}


class TwoStageIQA(TinyIQA):
    """Pretrains the body on generated noisy reference crops (the last epoch kept), then trains
    quality with a flip-consistency objective."""

    name: ClassVar[str] = "two-stage-iqa"

    def stages(self) -> list[Stage]:
        pretrain = Stage(
            "denoise",
            Recipe(Optimiser("sgd", 1e-3), epochs=2, batch_size=8),
            Regression(lambda net, batch: net(batch["image"]), loss="mse", target="level"),
            data=ReferenceDenoising,
            select="last",
            trains=lambda net: net.body,
        )
        return [pretrain, Stage("quality", self.recipe(), FlipConsistency(self.score_batch))]


class TinyFRIQA(TinyIQA):
    name: ClassVar[str] = "tiny-fr-iqa"
    family: ClassVar[str] = "DL-FR"
    full_reference: ClassVar[bool] = True

    def build_network(self, config: TinyConfig, backbone: Any) -> nn.Module:
        return TinyFRNet(config)


# -- data --------------------------------------------------------------------------------------


def scene(index: int, level: int, shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A smooth scene (0..255) with white noise growing with ``level`` (0 is pristine)."""
    field = gaussian_filter(np.random.default_rng(index).normal(size=shape), sigma=4.0)
    field = 40 + 170 * (field - field.min()) / np.ptp(field)
    noise = np.random.default_rng(100 + 10 * index + level).normal(size=shape)
    return np.clip(field + 30.0 * level * noise, 0, 255)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("deep-images")
    for s in range(6):
        for level in range(4):
            Image.fromarray(np.rint(scene(s, level)).astype(np.uint8)).save(
                folder / f"s{s}_{level}.png"
            )
    return folder


def items(folder: Path, scenes: range, fr: bool = False) -> list[LabelledImage]:
    return [
        LabelledImage(
            folder / f"s{s}_{level}.png",
            4.0 - level,
            f"s{s}",
            ref=folder / f"s{s}_0.png" if fr else None,
        )
        for s in scenes
        for level in range(1 if fr else 0, 4)
    ]


def srocc(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


@pytest.fixture(scope="module")
def trained(images: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TinyIQA, Path]:
    out = tmp_path_factory.mktemp("tiny-run")
    metric = TinyIQA(epochs=6)
    metric.train_model(items(images, range(4)), items(images, range(4, 5)), out_dir=out)
    return metric, out


# -- training ----------------------------------------------------------------------------------


def test_generic_trainer_lowers_the_loss_and_learns_to_rank(trained, images: Path) -> None:
    metric, out = trained
    history = json.loads((out / "metrics.json").read_text())["epochs"]
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    test = items(images, range(5, 6))
    scores = metric.predict([item.unlabelled() for item in test])
    assert srocc(scores, [item.quality for item in test]) > 0.6
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,lr,train_loss,train_srocc,val_srocc,val_plcc")


def test_parameter_groups_schedule_and_frozen_parameters() -> None:
    net = TinyNet(TinyConfig())
    recipe = TinyIQA().recipe()
    groups = {g["name"]: g for g in recipe.param_groups(net)}
    assert set(groups) == {"head", "rest"}
    assert groups["head"]["base_lr"] == pytest.approx(0.5 * groups["rest"]["base_lr"])
    trained = {id(p) for g in groups.values() for p in g["params"]}
    assert not {id(p) for p in net.stem.parameters()} & trained  # frozen: never optimised
    torch_rates = []
    optimizer = torch.optim.SGD(net.head.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    for _ in range(5):
        torch_rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    mine = [recipe.schedule.factor("rest", epoch) for epoch in range(5)]
    np.testing.assert_allclose(mine, torch_rates, rtol=1e-12)


def test_resume_continues_exactly_and_refuses_a_changed_recipe(
    trained, images: Path, tmp_path: Path
) -> None:
    _, out = trained
    uninterrupted = json.loads((out / "metrics.json").read_text())["epochs"]
    sides = items(images, range(4)), items(images, range(4, 5))
    TinyIQA(epochs=3).train_model(*sides, out_dir=tmp_path)
    resumed = TinyIQA(epochs=6).train_model(*sides, out_dir=tmp_path, resume=True)
    assert [r.epoch for r in resumed.final.history] == list(range(1, 7))
    for mine, theirs in zip(resumed.final.history, uninterrupted, strict=True):
        assert mine.train_loss == pytest.approx(theirs["train_loss"], rel=1e-6)
    with pytest.raises(UserError, match="optimiser.lr"):
        TinyIQA(epochs=6, lr=1e-3).train_model(*sides, out_dir=tmp_path, resume=True)


def test_checkpoint_round_trip_scores_like_the_trained_metric(trained, images: Path) -> None:
    metric, out = trained
    test = [item.unlabelled() for item in items(images, range(5, 6))]
    loaded = TinyIQA(checkpoint=str(out / "best.pt"))
    assert not loaded.requires_fit()
    np.testing.assert_allclose(loaded.predict(test), metric.predict(test), rtol=1e-6)
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["format"] == "iqabench.deep/1" and best["metric"] == "tiny-iqa"
    assert best["architecture"] == {"name": "tiny", "channels": 1, "width": 8}
    assert best["input"]["normalisation"] == [[0.5], [0.25]]
    assert best["stage"]["recipe"]["schedule"] == {
        "schedule": "cosine",
        "t_max": 10,
        "floor": 0.0,
        "per_step": False,
    }
    with pytest.raises(UserError, match="holds a tiny-iqa model, not tiny-rgb-iqa"):
        TinyRGBIQA(checkpoint=str(out / "best.pt")).predict(test)


def test_grey_rgb_and_16_bit_input_score(trained, images: Path, tmp_path: Path) -> None:
    metric, _ = trained
    grey = np.rint(scene(5, 2)).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(tmp_path / "rgb.png")
    wide = grey.astype(np.uint16) * 200 + 1000  # a 16-bit frame with a display window
    Image.fromarray(wide).save(tmp_path / "wide.png")
    paths = [tmp_path / name for name in ("grey.png", "rgb.png", "wide.png")]
    scores = metric.predict([LabelledImage(p, np.nan, "x") for p in paths])
    assert np.isfinite(scores).all()
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)  # rgb2gray of a grey RGB image
    assert scores[2] == pytest.approx(scores[0], rel=0.05)  # the same picture, 16 bits deep
    rgb_model = TinyRGBIQA(epochs=1)
    rgb_model.train_model(items(images, range(3)), items(images, range(3, 4)))
    rgb_scores = rgb_model.predict([LabelledImage(p, np.nan, "x") for p in paths])
    assert np.isfinite(rgb_scores).all()


def test_stages_pretrain_on_training_references_only(images: Path, tmp_path: Path) -> None:
    ReferenceDenoising.seen.clear()
    train = items(images, range(3))
    train_refs = [
        LabelledImage(i.image, i.quality, i.content, ref=images / f"{i.content}_0.png")
        for i in train
    ]
    metric = TwoStageIQA(epochs=2)
    torch.manual_seed(0)  # as training seeds itself (seed parameter 0, split seed 0)
    before = metric.build_network(metric.config, None).state_dict()
    result = metric.train_model(train_refs, items(images, range(3, 4)), out_dir=tmp_path)
    assert ReferenceDenoising.seen == [tuple(images / f"s{s}_0.png" for s in range(3))]
    assert [s.name for s in result.stages] == ["denoise", "quality"]
    assert (tmp_path / "denoise" / "last.pt").is_file() and (tmp_path / "best.pt").is_file()
    history = json.loads((tmp_path / "metrics.json").read_text())["epochs"]
    assert set(history[0]["losses"]) == {"fit", "flip"}
    assert "loss.flip" in (tmp_path / "metrics.csv").read_text().splitlines()[0]
    torch.testing.assert_close(result.net.stem.weight.cpu(), before["stem.weight"])  # frozen
    again = TwoStageIQA(epochs=2).train_model(
        train_refs, items(images, range(3, 4)), out_dir=tmp_path, resume=True
    )
    assert [len(s.history) for s in again.stages] == [2, 2]
    assert len(ReferenceDenoising.seen) == 2  # the dataset is built, no epoch is rerun


def test_full_reference_models_get_aligned_crops(images: Path) -> None:
    sampler = RandomCrops(8, hflip=True, vflip=True)
    image = np.arange(2 * 20 * 24, dtype=np.float32).reshape(2, 20, 24)
    for seed in range(5):
        sample = sampler.train(image, image + 1, np.random.default_rng(seed))
        np.testing.assert_array_equal(sample["ref"], sample["image"] + 1)
    metric = TinyFRIQA(epochs=4)
    result = metric.train_model(
        items(images, range(4), fr=True), items(images, range(4, 5), fr=True)
    )
    assert result.final.history[-1].train_loss < result.final.history[0].train_loss
    scores = metric.predict([i.unlabelled() for i in items(images, range(5, 6), fr=True)])
    assert np.isfinite(scores).all()


def test_unreadable_images_are_left_out_with_their_error(images: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes((images / "s0_1.png").read_bytes()[:40])
    metric = TinyIQA(epochs=1)
    train = [*items(images, range(3)), LabelledImage(broken, 1.0, "s9")]
    metric.train_model(train, items(images, range(3, 4)))
    assert len(metric.left_out) == 1 and "broken.png" in metric.left_out[0]
    scores = metric.predict([LabelledImage(broken, np.nan, "s9"), *items(images, range(4, 5))])
    assert np.isnan(scores[0]) and np.isfinite(scores[1:]).all()


def test_prepared_image_cache_stays_within_its_bound(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iqabench.train.images import PreparedImages

    monkeypatch.setenv("IQABENCH_PREPARED_CACHE_GB", str(40_000 / 2**30))  # ~3 images
    cache = PreparedImages(TinyIQA.input_spec, root=tmp_path)
    first, _, _ = cache.add(items(images, range(2)))
    second, _, _ = cache.add(items(images, range(2, 3)))
    kept = sorted(tmp_path.glob("*.npy"))
    assert {e.image for e in second.entries} <= set(kept)
    assert len(kept) < len(first.entries) + len(second.entries)
    assert sum(p.stat().st_size for p in kept) <= 40_000 or len(kept) == len(second.entries)


# -- the commands ------------------------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny models as if a plugin had registered them."""
    from iqabench import registry

    known = dict(registry.entries())
    for cls in (TinyIQA, TinyFRIQA):
        known[cls.name] = registry.MetricEntry(cls.name, f"tests:{cls.__name__}", "tests", cls)
    monkeypatch.setattr(registry, "entries", lambda: known)


def _cli(command: str, *arguments: str) -> str:
    from iqabench.commands import list_cmd, predict_cmd, train_cmd

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    {"train": train_cmd, "predict": predict_cmd, "list": list_cmd}[command].add_parser(sub, command)
    args = parser.parse_args([command, *arguments])
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert args.handler(args) == 0
    return buffer.getvalue()


def test_train_and_predict_commands_take_any_deep_metric(
    registered, images: Path, tmp_path: Path
) -> None:
    rows = ["image,mos,content,distortion,level,ref"]
    for s in range(5):
        for level in range(1, 4):
            rows.append(f"s{s}_{level}.png,{4 - level},s{s},AWGN,{level},s{s}_0.png")
    table = tmp_path / "scores.csv"
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    printed = _cli(
        "train", "--model", "tiny-fr-iqa", "--dataset", "csv", "--data-root", str(images),
        "--csv", str(table), "--epochs", "2", "--crops", "2", "--device", "cpu",
        "--option", "batch_size=4", "--test-fraction", "0.2", "--out", str(out),
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["name"] == "tiny-fr-iqa" and "tiny-fr-iqa" in printed
    assert results["stages"][0]["recipe"]["batch_size"] == 4
    test = [r for r in (out / "predictions.csv").read_text().splitlines()[1:]]
    image = test[0].split(",")[1]
    ref = str(images / (Path(image).name.split("_")[0] + "_0.png"))
    scored = json.loads(
        _cli("predict", "--checkpoint", str(out / "best.pt"), "--ref", ref, "--json", image)
    )
    assert scored["model"] == "tiny-fr-iqa"
    assert scored["scores"][0]["score"] == pytest.approx(float(test[0].split(",")[-1]), abs=1e-5)
    with pytest.raises(UserError, match="not a deep metric"):
        _cli("train", "--model", "psnr", "--dataset", "csv", "--data-root", str(images))
    with pytest.raises(UserError, match="one --ref per image"):
        _cli("predict", "--checkpoint", str(out / "best.pt"), image)


def test_list_models_shows_measured_sizes(registered) -> None:
    printed = _cli("list", "models")
    assert "nestconvnext" in printed and "299,885,002" in printed and "20,455,274" in printed
    assert "tiny-iqa" in printed and "resnet50" in printed


def test_cards_state_the_measured_parameter_counts() -> None:
    from iqabench.cards import metric_card
    from iqabench.metrics._deep import deep_metric_class, deep_metric_names

    for name in deep_metric_names():
        card = metric_card(name)
        assert card is not None, f"{name} has no card"
        total, _ = deep_metric_class(name)().parameter_counts()
        assert str(card.get("parameter_count")).startswith(f"{total:,}"), name
