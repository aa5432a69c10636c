"""ResNet-50 stage extractor with ImageNet weights resolved locally (never downloaded here).

The NestConvNeXt-IQA backbone is torchvision's ResNet-50 (He et al., CVPR 2016) read out before
its classifier: it returns the four stage outputs (256, 512, 1024 and 2048 channels at strides 4, 8,
16 and 32) and the globally pooled last stage. The ImageNet checkpoint is looked up by
torchvision's file names through :mod:`iqabench.weights` (``IQABENCH_WEIGHTS``, the iqabench
cache, the torch hub cache); torchvision's downloading API is never called. Without a file the
backbone starts from random initialisation and :func:`resolve_imagenet_weights` says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsNotFoundError
from ..weights import WeightsFile, resolve, search_dirs

#: torchvision's ImageNet ResNet-50 checkpoints, preferred first. V1 is the one the reference
#: code loads (``models.resnet50(pretrained=True)``). Each name carries the first 8 hex digits
#: of the file's SHA-256, which is checked after resolution.
IMAGENET_RESNET50: tuple[WeightsFile, ...] = (
    WeightsFile("resnet50-0676ba61.pth", "ImageNet ResNet-50 (torchvision IMAGENET1K_V1)"),
    WeightsFile("resnet50-11ad3fa6.pth", "ImageNet ResNet-50 (torchvision IMAGENET1K_V2)"),
)

STAGE_CHANNELS: tuple[int, int, int, int] = (256, 512, 1024, 2048)


@dataclass(frozen=True)
class BackboneWeights:
    """Where the backbone's initial weights came from."""

    path: Path | None
    note: str

    @property
    def pretrained(self) -> bool:
        return self.path is not None

    @property
    def label(self) -> str:
        """A short identity (file name or ``random-init``) for cache keys and model cards."""
        return self.path.name if self.path else "random-init"


def resolve_imagenet_weights() -> BackboneWeights:
    """Find a local ImageNet ResNet-50 checkpoint; a missing one gives a loud note instead."""
    for spec in IMAGENET_RESNET50:
        try:
            path = resolve(spec)
        except WeightsNotFoundError:
            continue
        return BackboneWeights(path, f"backbone initialised from {spec.description} ({path})")
    looked = ", ".join(str(d) for d in search_dirs())
    names = " or ".join(spec.relpath for spec in IMAGENET_RESNET50)
    return BackboneWeights(
        None,
        f"WARNING: ImageNet ResNet-50 weights not found ({names}; looked in {looked}): the "
        "backbone starts from RANDOM initialisation, so results are far below the published "
        "model's. Put the torchvision file in a directory named by IQABENCH_WEIGHTS.",
    )


def load_imagenet_state(path: Path) -> dict[str, torch.Tensor]:
    """Read a torchvision ResNet-50 checkpoint (tensors only) after checking its hash prefix."""
    prefix = path.stem.rsplit("-", 1)[-1]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if len(prefix) == 8 and not digest.startswith(prefix):
        raise WeightsNotFoundError(
            f"{path} is corrupt: its SHA-256 starts {digest[:8]}, the file name says {prefix}"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


class ResNet50Stages(nn.Module):
    """torchvision's ResNet-50, whole, read out at its four stages and its global pool.

    The module is kept intact (its ImageNet classifier included, so the torchvision checkpoint
    loads strictly and the parameter count matches the reference model) but the classifier is
    never evaluated: ``forward`` stops at the pooled last stage.
    """

    def __init__(self, weights: Path | None = None) -> None:
        super().__init__()
        from torchvision.models import resnet50

        self.resnet = resnet50(weights=None)
        if weights is not None:
            self.resnet.load_state_dict(load_imagenet_state(weights), strict=True)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        net = self.resnet
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        outputs = []
        for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
            x = stage(x)
            outputs.append(x)
        return outputs, x.mean(dim=(2, 3))
