"""HyperNet (hyperIQA): a hyper network that writes the weights of a small quality regressor.

Paper: S. Su, Q. Yan, Y. Zhu, C. Zhang, X. Ge, J. Sun and Y. Zhang, "Blindly Assess Image
Quality in the Wild Guided by a Self-Adaptive Hyper Network", CVPR 2020, pp. 3664-3673,
doi:10.1109/CVPR42600.2020.00372. Official code github.com/SSL92/hyperIQA (``models.py``,
``HyerIQASolver.py``, ``train_test_IQA.py``); pyiqa's ``archs/hypernet_arch.py`` re-implements
it. Written from the paper and a reading of both, not copied.

Data flow for a batch of ``crop`` x ``crop`` RGB crops (224 in the paper), ``g = crop / 32``:

1. the backbone (ResNet-50; EfficientNet-Lite0 in the lite build) gives four stage maps at
   strides 4, 8, 16 and 32 (``8g``, ``4g``, ``2g`` and ``g`` on a side);
2. local distortion-aware (LDA) modules: stages 1-3 go through a bias-free 1x1 convolution
   (to 16, 32 and 64 channels), average pooling with window and stride ``g`` (leaving 8x8, 4x4
   and 2x2) and a linear layer to 16 values each; stage 4 is pooled to 1x1 and mapped linearly
   to the remaining ``224 - 3 * 16 = 176`` values. Concatenated, they are the 224-long input
   vector of the target network;
3. the hyper network: stage 4 through three 1x1 convolutions with ReLU (2048 -> 1024 -> 512 ->
   112 channels); 3x3 convolutions of that ``112 x g x g`` map, reshaped, give the weight
   matrices of the target network's first four layers (224->112->56->28->14), and linear layers
   on its spatial mean give the last layer's weights (14->1) and all five bias vectors;
4. the target network, per image with its own weights: four fully connected layers with
   sigmoids and a last linear layer give the score.

Input (official ``data_loader.py``): RGB in [0, 1] normalised with the ImageNet mean and
standard deviation, no resize for LIVE, CSIQ and TID2013 (KonIQ-10k is resized to 512x384);
training: 25 random 224x224 crops per image per epoch, each a sample, with random horizontal
flips; testing: 25 random 224x224 crops, predictions averaged.

Recipe (official solver): L1 loss on the score; Adam with weight decay 5e-4, batch 96,
16 epochs; two parameter groups, the backbone at lr 2e-5 and everything else at lr ``2e-5 x
10``. After epoch ``t`` (counted from 0) the optimiser is rebuilt (its moments reset) with the
non-backbone rate ``2e-5 / 10 ** (t // 6)`` times 10 while ``t <= 8`` and times 1 after; the
backbone rate stays 2e-5. Initialisation as the official code:
Kaiming-normal weights for the LDA layers and the weight/bias generators, default for the rest.

Parameters: the faithful build counts 27,375,369, the number of pyiqa's module and of the
official one (ResNet-50 without its ImageNet classifier, which neither has). Departures: none in
the network. The ``hypernet-lite`` configuration is not the published model: EfficientNet-Lite0
(24/40/112/320 channels) replaces ResNet-50 and the hyper network's 1x1 reductions are narrowed
to 512 and 256 channels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .backbone import stage_backbone, stage_channels, stage_features
from .backbones import BackboneWeights

#: Side of the pooled LDA maps of stages 1, 2 and 3 (their strides over stage 4's).
LDA_SIDES: tuple[int, int, int] = (8, 4, 2)


@dataclass(frozen=True)
class HyperNetConfig:
    """Architecture and input geometry of one HyperNet variant."""

    name: str
    #: A backbone of :mod:`~iqabench.models.backbones` with four stride-4..32 stages.
    backbone: str = "resnet50"
    crop: int = 224
    #: 1x1 reductions of stages 1-3 in the LDA modules, and the length each one contributes.
    lda_channels: tuple[int, int, int] = (16, 32, 64)
    lda_out: int = 16
    #: Length of the target network's input vector.
    target_in: int = 224
    #: Channels of the hyper network's input map and the 1x1 reductions leading to it.
    hyper_in: int = 112
    hyper_widths: tuple[int, int] = (1024, 512)
    #: Widths of the target network's hidden layers (its output is one score).
    target_widths: tuple[int, int, int, int] = (112, 56, 28, 14)

    def __post_init__(self) -> None:
        if self.crop % 32:
            raise ValueError(f"crop must be a multiple of 32, got {self.crop}")
        if self.target_in <= 3 * self.lda_out:
            raise ValueError("target_in must exceed three LDA outputs")
        cells = self.grid**2
        sizes = (self.target_in, *self.target_widths)
        for fan_in, fan_out in zip(sizes, sizes[1:], strict=False):
            if (fan_in * fan_out) % cells:
                raise ValueError(
                    f"a {fan_in}x{fan_out} target layer does not split over a {self.grid}x"
                    f"{self.grid} grid: choose widths whose products divide by {cells}"
                )

    @property
    def grid(self) -> int:
        """Side of the last stage's map for one crop."""
        return self.crop // 32

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HyperNetConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in known.items()})


#: The published model (27,375,369 parameters).
FULL = HyperNetConfig(name="hypernet")
#: EfficientNet-Lite0 backbone and a narrower hyper network, for CPUs; not the published model.
LITE = HyperNetConfig(name="hypernet-lite", backbone="efficientnet_lite0", hyper_widths=(512, 256))
CONFIGS: dict[str, HyperNetConfig] = {FULL.name: FULL, LITE.name: LITE}


def local_distortion_modules(channels: tuple[int, ...], config: HyperNetConfig) -> nn.ModuleList:
    """The four LDA modules: per stage, a pooled and flattened map mapped to a vector."""
    grid = config.grid
    modules = [
        nn.Sequential(
            nn.Conv2d(in_channels, reduced, kernel_size=1, bias=False),
            nn.AvgPool2d(grid, stride=grid),
            nn.Flatten(),
            nn.Linear(reduced * side * side, config.lda_out),
        )
        for in_channels, reduced, side in zip(
            channels[:3], config.lda_channels, LDA_SIDES, strict=True
        )
    ]
    last_out = config.target_in - len(LDA_SIDES) * config.lda_out
    modules.append(
        nn.Sequential(
            nn.AvgPool2d(grid, stride=grid), nn.Flatten(), nn.Linear(channels[-1], last_out)
        )
    )
    return nn.ModuleList(modules)


def target_network(
    vector: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]
) -> torch.Tensor:
    """Run the per-image fully connected target network.

    ``vector``: ``(N, in)``; ``weights[k]``: ``(N, out_k, in_k)``; ``biases[k]``: ``(N, out_k)``.
    Every layer but the last is followed by a sigmoid; returns ``(N,)``.
    """
    x = vector
    last = len(weights) - 1
    for index, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
        x = torch.bmm(weight, x.unsqueeze(2)).squeeze(2) + bias
        if index < last:
            x = torch.sigmoid(x)
    return x.squeeze(1)


class HyperNetIQA(nn.Module):
    """HyperNet: one quality score per normalised RGB crop of ``config.crop`` pixels."""

    def __init__(self, config: HyperNetConfig = FULL, weights: BackboneWeights | None = None):
        super().__init__()
        self.config = config
        c = config
        self.backbone = stage_backbone(c.backbone, weights)
        channels = stage_channels(self.backbone)
        self.lda = local_distortion_modules(channels, c)
        wide, narrow = c.hyper_widths
        self.hyper_stem = nn.Sequential(
            nn.Conv2d(channels[-1], wide, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(wide, narrow, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(narrow, c.hyper_in, 1),
            nn.ReLU(inplace=True),
        )
        sizes = (c.target_in, *c.target_widths)
        cells = c.grid**2
        self.weight_generators = nn.ModuleList(
            nn.Conv2d(c.hyper_in, fan_in * fan_out // cells, 3, padding=1)
            for fan_in, fan_out in zip(sizes, sizes[1:], strict=False)
        )
        self.last_weight_generator = nn.Linear(c.hyper_in, c.target_widths[-1])
        self.bias_generators = nn.ModuleList(
            nn.Linear(c.hyper_in, width) for width in (*c.target_widths, 1)
        )
        self._initialise()

    def _initialise(self) -> None:
        """Kaiming-normal weights for the LDA layers and the generators (official init)."""
        generators = [*self.weight_generators, self.last_weight_generator, *self.bias_generators]
        lda_layers = [m for m in self.lda.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        for module in generators + lda_layers:
            nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, 3, crop, crop)`` normalised crops; returns ``(N,)`` scores."""
        if x.shape[-2:] != (self.config.crop, self.config.crop):
            raise ValueError(f"HyperNet takes {self.config.crop}-pixel crops, got {x.shape[-2:]}")
        stages = stage_features(self.backbone, x)
        vector = torch.cat([lda(stage) for lda, stage in zip(self.lda, stages, strict=True)], 1)
        hyper = self.hyper_stem(stages[-1])
        pooled = hyper.mean(dim=(2, 3))
        batch = x.shape[0]
        sizes = (self.config.target_in, *self.config.target_widths)
        weights = [
            generator(hyper).reshape(batch, fan_out, fan_in)
            for generator, fan_in, fan_out in zip(
                self.weight_generators, sizes, sizes[1:], strict=False
            )
        ]
        weights.append(self.last_weight_generator(pooled).reshape(batch, 1, -1))
        biases = [generator(pooled) for generator in self.bias_generators]
        return target_network(vector, weights, biases)
