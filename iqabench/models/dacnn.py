"""DACNN: blind image quality assessment through a distortion-aware convolutional network.

Paper: Z. Pan, H. Zhang, J. Lei, Y. Fang, X. Shao, N. Ling and S. Kwong, "DACNN: Blind Image
Quality Assessment via a Distortion-Aware Convolutional Neural Network", IEEE Transactions on
Circuits and Systems for Video Technology 32(11), 2022, doi:10.1109/TCSVT.2022.3188991.
Official code: github.com/NUIST-Videocoding/DACNN (read, not copied).

Data flow for a batch of ``crop`` x ``crop`` RGB crops on 0..1 (grey thermal frames replicated
to three channels), normalised inside the network with the mean and standard deviation of the
backbone's ImageNet weights:

1. ADANet (authentic-distortion branch: an ImageNet EfficientNet-B0) and SDANet (synthetic-
   distortion branch: an EfficientNet-B0 pretrained as below) are both frozen; each gives four
   endpoints, the last block output at strides 4, 8 and 16 (24, 40 and 112 channels) and the
   1x1 head convolution at stride 32 (1280 channels);
2. at each of the four levels, one multi-scale fusion block (MSFB: a 1x1 stride-2 convolution,
   a 3x3 stride-2 one and a 3x3 stride-2 followed by a 3x3, concatenated) per branch, then the
   weight generation block (WGB: two 3x3 convolutions of the concatenated pair, each a sigmoid
   gate on one branch), then a third MSFB and global average pooling (72 channels);
3. the four pooled vectors (288) go through an MLP 288-512-512-1 with PReLU and dropout 0.5.

SDANet pretraining (:meth:`SDANet.pair_quality`): the branch sees a distorted image and its
reference, the difference of their stride-32 head features is pooled and regressed by a
1280-512-512-1 ReLU MLP onto a pseudo-quality of the distorted image, with an L1 loss. The paper
uses pseudo-MOS labels of a large synthetic database; here the pairs come from
:mod:`iqabench.data.pairs` (the split's training references only) and the target is a
full-reference score computed live (see the metric's card).

Input: 3 channels on 0..1 (normalised inside), no resize; training on 25
random 224x224 crops per image with random horizontal flips, testing on the mean of 25 random
224x224 crops. Recipe of the official code (``train_test.py``, ``IQASolver.py``): Adam over all
parameters (the frozen branches receive no gradient), weight decay 0, batch 16, 30 epochs, L1
loss on MOS; learning rate 2e-4 in the first epoch (``lr * lr_ratio`` with lr 2e-5, ratio 10),
then ``9 * 2e-5 / 10 ** (t // 10)`` from epoch ``t = 1`` (1.8e-4, then 1.8e-5 from epoch 10 and
1.8e-6 from epoch 20), with a fresh Adam optimiser (moments reset) every epoch. SDANet
pretraining (``pretrain_model/``): Adam, lr 2e-3 (``2e-4 * 10``) divided by 10 every 200 epochs,
the ratio 10 dropped after epoch 500, 3000 epochs, batch 16, images resized to 256x256 and
centre-cropped to 224, L1 loss.

Parameters: 14,308,236 in the published build (2,812,099 trainable), reproduced exactly here:
two whole EfficientNet-B0 (5,288,548 each, their unused ImageNet classifiers included as in the
official module), SDANet's pretraining MLP (919,041, unused after pretraining), the fusion
blocks and the MLP (2,812,099).

Departures: the backbones are timm's ``efficientnet_b0`` (symmetric padding) instead of
``efficientnet_pytorch`` (TensorFlow "same" padding), same architecture and parameter count;
SDANet starts from ImageNet weights (the official pretraining starts from random
initialisation) because a split's training scenes are far fewer than the paper's database; the
frozen branches stay in evaluation mode while the rest trains (the official ``model.train()``
puts their batch normalisation back in training mode, so their running statistics drift); the
MLP's dropout is off in evaluation (the official ``F.dropout`` call also drops at test time,
making its test scores random). The ``-lite`` configuration uses EfficientNet-Lite0 branches
with narrow fusion blocks and MLPs and is not the published model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .backbones import BackboneWeights, Normalisation, backbone_spec, build_backbone


@dataclass(frozen=True)
class DACNNConfig:
    """Architecture and input geometry of one DACNN variant."""

    name: str
    #: Backbone of both branches (a name of :data:`iqabench.models.backbones.BACKBONES`).
    backbone: str = "efficientnet_b0"
    #: Output channels of each of an MSFB's three paths (the block gives three times this).
    fusion_width: int = 24
    #: Width of the quality MLP's hidden layers.
    hidden: int = 512
    #: Width of SDANet's pretraining MLP's hidden layers.
    pretrain_hidden: int = 512
    dropout: float = 0.5
    crop: int = 224

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DACNNConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


#: The published model (14,308,236 parameters, 2,812,099 trainable).
FULL = DACNNConfig(name="dacnn")
#: EfficientNet-Lite0 branches and narrow heads, for CPU training; not the published model.
LITE = DACNNConfig(
    name="dacnn-lite",
    backbone="efficientnet_lite0",
    fusion_width=8,
    hidden=128,
    pretrain_hidden=128,
    crop=128,
)
CONFIGS: dict[str, DACNNConfig] = {FULL.name: FULL, LITE.name: LITE}


class EfficientNetEndpoints(nn.Module):
    """A timm EfficientNet (B0 or Lite) read out where the NUIST models read it.

    ``forward`` returns the last block output at strides 4, 8 and 16 and the activated 1x1 head
    convolution at stride 32, as ``efficientnet_pytorch``'s ``extract_endpoints`` names
    ``reduction_2``..``reduction_4`` and the head endpoint. The network is kept whole (its
    ImageNet classifier included, never evaluated) so that its checkpoint loads strictly.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        by_stride = {info["reduction"]: info for info in network.feature_info}
        self._last_blocks = [int(by_stride[s]["module"].split(".")[1]) for s in (4, 8, 16)]
        self.channels: tuple[int, int, int, int] = (
            *(int(by_stride[s]["num_chs"]) for s in (4, 8, 16)),
            int(network.conv_head.out_channels),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        net = self.network
        x = net.bn1(net.conv_stem(x))
        endpoints = []
        for index, block in enumerate(net.blocks):
            x = block(x)
            if index in self._last_blocks:
                endpoints.append(x)
        endpoints.append(net.bn2(net.conv_head(x)))
        return endpoints


def backbone_network(name: str, weights: BackboneWeights | None) -> nn.Module:
    """Backbone ``name`` with its ImageNet file loaded when ``weights`` names one; built with
    random initialisation when ``weights`` is None (as when a trained checkpoint is about to be
    loaded over it)."""
    if weights is None:
        return backbone_spec(name).create()
    if weights.backbone != name:
        raise ValueError(f"weights of {weights.backbone} given for backbone {name}")
    return build_backbone(weights)


class Normalise(nn.Module):
    """Per-channel ``(x - mean) / std`` of 0..1 RGB input (constants as buffers)."""

    def __init__(self, mean: Normalisation, std: Normalisation) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised values back on 0..1."""
        return x * self.std + self.mean


def normaliser(name: str, weights: BackboneWeights | None) -> Normalise:
    """The input normalisation of backbone ``name``: that of the weights file loaded, else
    that of its preferred weights."""
    if weights is not None:
        return Normalise(weights.mean, weights.std)
    return Normalise(*backbone_spec(name).normalisation)


def freeze(module: nn.Module) -> nn.Module:
    """Switch off the gradients of ``module`` and put it in evaluation mode."""
    module.requires_grad_(False)
    return module.eval()


class FrozenBranches(nn.Module):
    """Base of networks with frozen branches (``frozen_names``) that stay in evaluation mode
    while the rest trains, their batch statistics and dropout as pretrained. A pretraining
    stage trains one of them through :meth:`unfreeze`; :meth:`refreeze` restores the frozen
    state the network is built in (the quality stage's)."""

    frozen_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self._frozen = set(self.frozen_names)

    def train(self, mode: bool = True) -> FrozenBranches:
        super().train(mode)
        for name in self._frozen:
            getattr(self, name).eval()
        return self

    def unfreeze(self, name: str) -> nn.Module:
        """Make branch ``name`` trainable (for its pretraining stage) and return it."""
        if name not in self.frozen_names:
            raise ValueError(f"{type(self).__name__} has no frozen branch {name!r}")
        branch = getattr(self, name)
        branch.requires_grad_(True)
        self._frozen.discard(name)
        return branch

    def refreeze(self) -> FrozenBranches:
        """Freeze every frozen branch again and return the network (for the quality stage)."""
        for name in self.frozen_names:
            freeze(getattr(self, name))
        self._frozen = set(self.frozen_names)
        return self


class MSFB(nn.Module):
    """Multi-scale fusion block: 1x1, 3x3 and 3x3-then-3x3 paths at stride 2, concatenated."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(in_channels, width, 1, stride=2)
        self.single = nn.Conv2d(in_channels, width, 3, stride=2, padding=1)
        self.double_first = nn.Conv2d(in_channels, width, 3, stride=2, padding=1)
        self.double_second = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.double_second(self.double_first(x))
        return torch.cat([self.pointwise(x), self.single(x), deep], dim=1)


class WGB(nn.Module):
    """Weight generation block: each branch gated by a sigmoid map computed from both."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gate_a = nn.Conv2d(2 * channels, channels, 3, padding=1)
        self.gate_s = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def forward(self, authentic: torch.Tensor, synthetic: torch.Tensor) -> torch.Tensor:
        both = torch.cat([authentic, synthetic], dim=1)
        gated_a = authentic * torch.sigmoid(self.gate_a(both))
        gated_s = synthetic * torch.sigmoid(self.gate_s(both))
        return torch.cat([gated_a, gated_s], dim=1)


class FusionLevel(nn.Module):
    """One level of the distortion fusion module: MSFB per branch, WGB, MSFB, global pool."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        fused = 3 * width
        self.msfb_a = MSFB(in_channels, width)
        self.msfb_s = MSFB(in_channels, width)
        self.wgb = WGB(fused)
        self.msfb_fused = MSFB(2 * fused, width)

    def forward(self, authentic: torch.Tensor, synthetic: torch.Tensor) -> torch.Tensor:
        gated = self.wgb(self.msfb_a(authentic), self.msfb_s(synthetic))
        return self.msfb_fused(gated).mean(dim=(2, 3))


class SDANet(nn.Module):
    """The synthetic-distortion branch with its pretraining head."""

    def __init__(self, config: DACNNConfig, backbone: BackboneWeights | None = None) -> None:
        super().__init__()
        self.normalise = normaliser(config.backbone, backbone)
        self.features = EfficientNetEndpoints(backbone_network(config.backbone, backbone))
        head = self.features.channels[-1]
        hidden = config.pretrain_hidden
        self.regressor = nn.Sequential(
            nn.Linear(head, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four endpoints of 0..1 crops ``x`` (what DACNN reads)."""
        return self.features(self.normalise(x))

    def pair_quality(self, distorted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Pretraining: the pseudo-quality regressed from the pooled difference of the pair's
        stride-32 head features (0..1 crops); ``(N,)``."""
        difference = self(distorted)[-1] - self(reference)[-1]
        return self.regressor(difference.mean(dim=(2, 3))).squeeze(1)


class DACNN(FrozenBranches):
    """The DACNN quality network: one score per crop."""

    frozen_names = ("adanet", "sdanet")

    def __init__(self, config: DACNNConfig = FULL, backbone: BackboneWeights | None = None) -> None:
        """Both branches start from ``backbone``'s ImageNet weights (random initialisation
        when None); SDANet is then pretrained (see :class:`SDANet`)."""
        super().__init__()
        self.config = config
        self.normalise = normaliser(config.backbone, backbone)
        self.adanet = freeze(EfficientNetEndpoints(backbone_network(config.backbone, backbone)))
        self.sdanet = freeze(SDANet(config, backbone))
        width = config.fusion_width
        self.levels = nn.ModuleList(FusionLevel(ch, width) for ch in self.adanet.channels)
        pooled = len(self.levels) * 3 * width
        self.fc1 = nn.Linear(pooled, config.hidden)
        self.fc2 = nn.Linear(config.hidden, config.hidden)
        self.fc3 = nn.Linear(config.hidden, 1)
        self.act1 = nn.PReLU()
        self.act2 = nn.PReLU()
        self.dropout = nn.Dropout(config.dropout)
        for layer in (self.fc1, self.fc2, self.fc3):
            nn.init.kaiming_normal_(layer.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, 3, H, W)`` crops on 0..1; returns ``(N,)`` scores."""
        with torch.no_grad():
            authentic = self.adanet(self.normalise(x))
            synthetic = self.sdanet(x)
        pooled = [
            level(a, s) for level, a, s in zip(self.levels, authentic, synthetic, strict=True)
        ]
        q = self.dropout(self.act1(self.fc1(torch.cat(pooled, dim=1))))
        q = self.act2(self.fc2(q))
        return self.fc3(q).squeeze(1)


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters) of ``model``."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
