"""ResNet-50 read out at its four stages (the NestConvNeXt-IQA backbone).

The backbone is ResNet-50 (He et al., CVPR 2016) as :mod:`iqabench.models.backbones` builds it
(timm's ``resnet50``, whose modules and keys are torchvision's), read out before its classifier:
it returns the four stage outputs (256, 512, 1024 and 2048 channels at strides 4, 8, 16 and 32)
and the globally pooled last stage. Its ImageNet weights come from
:func:`~iqabench.models.backbones.resolve_backbone` (``resnet50-0676ba61.pth`` or
``resnet50-11ad3fa6.pth``); without them it starts from random initialisation, and the
provenance says so.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import BackboneWeights, build_backbone

STAGE_CHANNELS: tuple[int, int, int, int] = (256, 512, 1024, 2048)


class ResNet50Stages(nn.Module):
    """ResNet-50, whole, read out at its four stages and its global pool.

    The module is kept intact (its ImageNet classifier included, so the torchvision checkpoint
    loads strictly and the parameter count matches the reference model) but the classifier is
    never evaluated: ``forward`` stops at the pooled last stage. ``weights=None`` builds it with
    random initialisation (as before a trained network's own weights are loaded over it).
    """

    def __init__(self, weights: BackboneWeights | None = None) -> None:
        super().__init__()
        if weights is None:
            self.resnet = build_backbone(BackboneWeights("resnet50", None, "", ""), load=False)
        else:
            self.resnet = build_backbone(weights)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        net = self.resnet
        x = net.maxpool(net.act1(net.bn1(net.conv1(x))))
        outputs = []
        for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
            x = stage(x)
            outputs.append(x)
        return outputs, x.mean(dim=(2, 3))
