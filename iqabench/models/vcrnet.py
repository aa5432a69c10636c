"""VCRNet: no-reference quality through a visual compensation restoration network.

Paper: Z. Pan, F. Yuan, J. Lei, Y. Fang, X. Shao and S. Kwong, "VCRNet: Visual Compensation
Restoration Network for No-Reference Image Quality Assessment", IEEE Transactions on Image
Processing 31, 1613-1627, 2022, doi:10.1109/TIP.2022.3144892. Official code:
github.com/NUIST-Videocoding/VCRNet (read, not copied).

Data flow for a batch of ``crop`` x ``crop`` RGB crops on 0..1 (grey thermal frames replicated
to three channels), normalised inside the network with the mean and standard deviation of the
backbone's ImageNet weights (both networks see the normalised crop, as in the official code):

1. the restoration network (:class:`RestorationNet`) encodes the crop with five optimised
   asymmetric residual blocks (each convolution is a 3x3, a 3x1 and a 1x3 convolution summed,
   then batch normalisation; a block is two such convolutions with a residual connection, the
   last four at stride 2; 16, 32, 64, 256 and 512 channels), the first three joined by the
   visual compensation module (1x1 convolutions of the input max-pooled by 1, 2 and 4); a
   decoder of four transposed convolutions with skip connections gives four multi-level
   restoration features (512@1/8, 256@1/4, 128@1/2, 64@1/1 channels@scale) and a fifth
   transposed convolution the restored image;
2. an EfficientNet-B0 gives four endpoints (24@1/4, 40@1/8, 112@1/16, 1280@1/32);
3. each EfficientNet endpoint goes through an inception module (1x1, 3x3 and 3x3-then-3x3 paths
   at stride 2, batch normalisation, PReLU) and the matching restoration feature through one
   at stride 8; each pair is concatenated and globally pooled (144 channels per level);
4. the four pooled vectors (576) go through an MLP 576-512-512-1 with one shared PReLU and
   dropout 0.5.

Restoration pretraining: the paper pretrains the restoration network on distorted/reference
pairs (the Waterloo Exploration database) with an error-map-based mixed loss; its code is not
released. Here it is pretrained on pairs from :mod:`iqabench.data.pairs` (the split's training
references only) with :func:`iqabench.train.objectives.restoration.error_map_mixed_loss`,
whose terms are documented there as this project's reading of the paper.

Input: 3 channels on 0..1 (normalised inside); training on 25 random
224x224 crops per image with random horizontal flips; testing (official ``dataloader.py``) on
the image resized to 256x256, once. Recipe of the official code (``main.py``,
``IQASolver.py``): all parameters trained (backbone and restoration network included), Adam,
weight decay 0, batch 16, 16 epochs, L1 loss on MOS; learning rate 2e-3 in the first epoch
(``lr * lr_ratio``: 2e-4 x 10), then ``9 * 2e-4 / 10 ** (t // 10)`` from epoch ``t = 1``
(1.8e-3, then 1.8e-4 from epoch 10), with a fresh Adam optimiser every epoch. Restoration
pretraining in the official configuration: 64x64 patches at stride 64.

Parameters: 16,659,282 in the published build, reproduced exactly: the EfficientNet-B0 with its
unused ImageNet classifier (5,288,548), the restoration network with its restored-image
convolution (9,667,044) and the quality head (1,703,690).

Departures: timm's ``efficientnet_b0`` instead of ``efficientnet_pytorch`` (same architecture
and count, another ImageNet checkpoint); the MLP's dropout is off in evaluation (the official
``F.dropout`` also drops at test time); the restoration loss (see above). The ``-lite``
configuration uses an EfficientNet-Lite0, a restoration network a quarter as wide and narrow
heads; it is not the published model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .backbones import BackboneWeights
from .dacnn import EfficientNetEndpoints, backbone_network, normaliser


@dataclass(frozen=True)
class VCRNetConfig:
    """Architecture and input geometry of one VCRNet variant."""

    name: str
    #: Backbone of the quality branch (a name of :data:`iqabench.models.backbones.BACKBONES`).
    backbone: str = "efficientnet_b0"
    #: Channels of the restoration encoder's five asymmetric residual blocks.
    widths: tuple[int, int, int, int, int] = (16, 32, 64, 256, 512)
    #: Output channels of each of an inception module's three paths.
    fusion_width: int = 24
    hidden: int = 512
    dropout: float = 0.5
    crop: int = 224
    #: Side the whole image is resized to for testing (the official test transform).
    test_resize: int = 256

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VCRNetConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "widths" in known:
            known["widths"] = tuple(int(w) for w in known["widths"])
        return cls(**known)


#: The published model (16,659,282 parameters, all trained).
FULL = VCRNetConfig(name="vcrnet")
#: EfficientNet-Lite0, a restoration network a quarter as wide and narrow heads (CPU training).
LITE = VCRNetConfig(
    name="vcrnet-lite",
    backbone="efficientnet_lite0",
    widths=(4, 8, 16, 64, 128),
    fusion_width=8,
    hidden=128,
    crop=128,
    test_resize=128,
)
CONFIGS: dict[str, VCRNetConfig] = {FULL.name: FULL, LITE.name: LITE}


class AsymmetricConv(nn.Module):
    """A 3x3, a 3x1 and a 1x3 convolution of one input, summed, then batch normalisation."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.square = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.vertical = nn.Conv2d(
            in_channels, out_channels, (3, 1), stride=stride, padding=(1, 0), bias=False
        )
        self.horizontal = nn.Conv2d(
            in_channels, out_channels, (1, 3), stride=stride, padding=(0, 1), bias=False
        )
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.square(x) + self.vertical(x) + self.horizontal(x))


class AsymmetricResidualBlock(nn.Module):
    """Two asymmetric convolutions with a residual connection (a strided 1x1 convolution when
    the block downsamples). ``forward`` takes the activation: the network has one shared PReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.first = AsymmetricConv(in_channels, out_channels, stride)
        self.second = AsymmetricConv(out_channels, out_channels)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        )

    def forward(self, x: torch.Tensor, act: nn.Module) -> torch.Tensor:
        return act(self.shortcut(x) + self.second(act(self.first(x))))


#: The restoration network halves the resolution four times and concatenates skips.
SIDE_MULTIPLE = 16


class RestorationNet(nn.Module):
    """The visual restoration network: asymmetric residual encoder, visual compensation module,
    decoder with skip connections. ``forward`` returns the four multi-level decoder features
    (coarsest first) and the restored image."""

    def __init__(self, widths: tuple[int, int, int, int, int] = FULL.widths) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.act = nn.PReLU()
        self.stem = nn.Conv2d(3, w0, 3, padding=1)
        self.compensation = nn.ModuleList(nn.Conv2d(3, w, 1) for w in (w0, w1, w2))
        self.encoder = nn.ModuleList(
            AsymmetricResidualBlock(cin, cout, stride)
            for cin, cout, stride in (
                (w0, w0, 1),
                (2 * w0, w1, 2),
                (2 * w1, w2, 2),
                (2 * w2, w3, 2),
                (w3, w4, 2),
            )
        )
        skips = (w3, 2 * w2, 2 * w1, 2 * w0)
        inputs = (w4, 2 * w3, 4 * w2, 4 * w1)
        self.decoder = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(cin, skip, 3, stride=2, padding=1, output_padding=1),
                nn.BatchNorm2d(skip),
            )
            for cin, skip in zip(inputs, skips, strict=True)
        )
        self.restore = nn.ConvTranspose2d(4 * w0, 3, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        if x.shape[-2] % SIDE_MULTIPLE or x.shape[-1] % SIDE_MULTIPLE:
            raise ValueError(
                f"the VCRNet restoration network needs sides that are multiples of "
                f"{SIDE_MULTIPLE}, got {x.shape[-2]}x{x.shape[-1]}"
            )
        compensation = [
            conv(x if scale == 1 else nn.functional.max_pool2d(x, scale))
            for conv, scale in zip(self.compensation, (1, 2, 4), strict=True)
        ]
        skips = []
        h = self.stem(x)
        for index, block in enumerate(self.encoder):
            h = block(h, self.act)
            if index < len(compensation):
                h = torch.cat([compensation[index], h], dim=1)
            skips.append(h)
        features = []
        for up, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            h = torch.cat([self.act(up(h)), skip], dim=1)
            features.append(h)
        return features, self.restore(h)


class Inception(nn.Module):
    """1x1, 3x3 and 3x3-then-3x3 paths at ``stride`` (padding 1 at stride 2, none at stride 8,
    as in the official modules), concatenated, batch normalisation, PReLU."""

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        padding = 1 if stride == 2 else 0
        self.pointwise = nn.Conv2d(in_channels, width, 1, stride=stride)
        self.single = nn.Conv2d(in_channels, width, 3, stride=stride, padding=padding)
        self.double_first = nn.Conv2d(in_channels, width, 3, stride=stride, padding=padding)
        self.double_second = nn.Conv2d(width, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(3 * width)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.double_second(self.double_first(x))
        return self.act(self.norm(torch.cat([self.pointwise(x), self.single(x), deep], dim=1)))


class VCRNet(nn.Module):
    """The VCRNet quality network: one score per crop."""

    def __init__(
        self,
        config: VCRNetConfig = FULL,
        backbone: BackboneWeights | None = None,
    ) -> None:
        """The backbone starts from ``backbone``'s ImageNet weights (random initialisation
        when None); the restoration network is pretrained, then everything trains."""
        super().__init__()
        self.config = config
        self.normalise = normaliser(config.backbone, backbone)
        self.backbone = EfficientNetEndpoints(backbone_network(config.backbone, backbone))
        self.restoration = RestorationNet(config.widths)
        w0, w1, w2, w3, _ = config.widths
        decoder_channels = (4 * w0, 4 * w1, 4 * w2, 2 * w3)  # finest first
        width = config.fusion_width
        self.backbone_paths = nn.ModuleList(
            Inception(ch, width, stride=2) for ch in self.backbone.channels
        )
        self.restoration_paths = nn.ModuleList(
            Inception(ch, width, stride=8) for ch in decoder_channels
        )
        pooled = 2 * len(self.backbone_paths) * 3 * width
        self.fc1 = nn.Linear(pooled, config.hidden)
        self.fc2 = nn.Linear(config.hidden, config.hidden)
        self.fc3 = nn.Linear(config.hidden, 1)
        self.act = nn.PReLU()
        self.dropout = nn.Dropout(config.dropout)

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """The restoration network's image of 0..1 crops ``x``, back on the 0..1 scale (what its
        pretraining compares with the reference)."""
        _, restored = self.restoration(self.normalise(x))
        return self.normalise.invert(restored)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, 3, H, W)`` crops on 0..1; returns ``(N,)`` scores."""
        x = self.normalise(x)
        endpoints = self.backbone(x)
        features, _ = self.restoration(x)
        pooled = []
        for endpoint, feature, path_b, path_r in zip(
            endpoints,
            reversed(features),
            self.backbone_paths,
            self.restoration_paths,
            strict=True,
        ):
            joined = torch.cat([path_b(endpoint), path_r(feature)], dim=1)
            pooled.append(joined.mean(dim=(2, 3)))
        q = self.dropout(self.act(self.fc1(torch.cat(pooled, dim=1))))
        q = self.act(self.fc2(q))
        return self.fc3(q).squeeze(1)
