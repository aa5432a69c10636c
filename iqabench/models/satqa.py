"""SaTQA: transformer-based no-reference quality assessment through supervised contrastive
learning.

Paper: J. Shi, P. Gao and J. Qin, "Transformer-Based No-Reference Image Quality Assessment via
Supervised Contrastive Learning", AAAI 2024 (Proceedings of the AAAI Conference on Artificial
Intelligence 38(5)), doi:10.1609/aaai.v38i5.28285, arXiv:2312.06995. Official code:
github.com/Srache/SaTQA (read, not copied).

Two networks. The supervised-contrastive encoder (:class:`SCLEncoder`) is a Siamese ResNet-50:
its four stage outputs are pooled to a 7x7 grid (the two deepest first reduced by 1x1
convolutions to 512 channels) and concatenated (256 + 512 + 512 + 512 = 1792 channels); for the
contrastive loss that map is L2-normalised over channels, averaged and projected by an MLP
1792-1024 (batch normalisation, ReLU)-128. It is pretrained with the supervised NT-Xent loss
(:func:`iqabench.train.objectives.contrastive.supervised_nt_xent`, temperature 0.1) on a
distorted image and its reference, one class per (distortion type, level) plus the pristine
class, then frozen.

The quality network (:class:`SaTQA`), for a batch of ``crop`` x ``crop`` RGB crops on 0..1
(grey thermal frames replicated to three channels):

1. a frozen ViT-B/8 (224x224 input, 28x28 tokens): the patch tokens after blocks 2, 3, 6 and 7
   (indices 1, 2, 5, 6) are concatenated (4 x 768) and projected to 768 without bias;
2. three stages of multi-stream blocks (:class:`MultiStreamBlock`; 1, 5 and 3 blocks at 28x28,
   14x14 and 7x7 tokens, a 3x3 stride-2 convolution between stages). A block adds to its CBAM
   (channel then spatial attention) residual the concatenation of a deformable-convolution
   branch (then a linear layer), a max-pool / depthwise-separable convolution / nearest
   upsampling branch and a multi-head self-attention branch (then a linear layer), whose widths
   sum to 768 (256/256/256, 192/192/384, 48/48/672 per stage);
3. the patch attention block: queries from the frozen encoder's 1792x7x7 map (a 1x1 convolution
   to 768), keys and values from the last stage's tokens, dropout 0.1 on the attention, a
   bias-free GELU feed-forward 768-3072-768 added to the attended tokens;
4. the 7x7 tokens averaged and regressed by an MLP 768-768 (ReLU)-1.

Input: 3 channels on 0..1, normalised inside each backbone with the mean and standard
deviation of its weights (the official loader feeds unnormalised 0..1 crops to both). Training
on 8 random 224x224 crops per image with random horizontal flips, testing on the mean of 8
random 224x224 crops. Recipe of the official code (``train.py``): AdamW over the trainable
parameters, lr 2e-5, weight decay 1e-2, cosine annealing with ``T_max`` 50 stepped every batch,
batch 8, 300 epochs, L1 loss on MOS. Encoder pretraining (``SCL Pre-training/train_scl.py``):
Adam, lr 3e-4, weight decay 1e-5, cosine annealing with ``T_max`` 50 stepped every batch, batch
110, 300 epochs, 224x224 random crops with horizontal and vertical flips of the distorted image
and (independently) of its reference, on KADIS-700k with 97 classes.

Parameters: the deployed quality network counts 145,048,554 (the ViT-B/8 86,576,872 frozen,
58,471,682 trainable) and the encoder 29,100,200 (ResNet-50 with its unused ImageNet classifier
25,557,032, pooling convolutions 1,573,888, projection MLP 1,969,280), reproduced exactly: as in
the official module, every multi-stream block carries the 36-to-49 linear layer that only the
7x7 stage uses (it restores the 7x7 grid after the 2x2 max-pool of 7x7 tokens gives 3x3).

Departures: the ViT runs only up to its seventh block (the later blocks feed nothing, so the
scores are those of the whole ViT); deformable convolution is torchvision's
``deform_conv2d`` (zero outside the map; the official hand-written one clamps sampling points to
the border, and orders its offset channels differently, which the offset convolution learns
either way), and the official backward hook meant to scale the offset gradient by 0.1 has no
effect, so none is used; each backbone gets the normalisation of its weights; frozen parts stay
in evaluation mode while the rest trains. The ``-lite`` configuration replaces both backbones by
EfficientNet-Lite0 (quality features: its four endpoints pooled to one token grid; encoder
features: the same endpoints, the two deepest reduced) with narrow blocks; it is not the
published model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import BackboneWeights
from .dacnn import EfficientNetEndpoints, FrozenBranches, backbone_network, freeze, normaliser

Widths = tuple[int, int, int]


@dataclass(frozen=True)
class SaTQAConfig:
    """Architecture and input geometry of one SaTQA variant (quality network and encoder)."""

    name: str
    #: Quality backbone: ``vit_b8`` (tokens of ``vit_layers``) or an EfficientNet (endpoints).
    backbone: str = "vit_b8"
    vit_layers: tuple[int, ...] = (1, 2, 5, 6)
    #: Side of the first stage's token grid (EfficientNet endpoints are pooled to it).
    grid: int = 28
    dim: int = 768
    depths: tuple[int, int, int] = (1, 5, 3)
    #: Widths of the deformable, depthwise and attention branches of each stage's blocks.
    branch_widths: tuple[Widths, Widths, Widths] = ((256, 256, 256), (192, 192, 384), (48, 48, 672))
    heads: int = 8
    channel_reduction: int = 16
    attention_dropout: float = 0.1
    #: Encoder backbone: ``resnet50`` or an EfficientNet.
    encoder_backbone: str = "resnet50"
    #: Channels the encoder's two deepest stages are reduced to before pooling.
    encoder_reduced: int = 512
    encoder_grid: int = 7
    projection: tuple[int, int] = (1024, 128)
    crop: int = 224

    def __post_init__(self) -> None:
        if any(sum(widths) != self.dim for widths in self.branch_widths):
            raise ValueError("each stage's branch widths must sum to dim")
        if self.dim % self.heads:
            raise ValueError("dim must be a multiple of heads")
        odd = [g for g in self.stage_grids[:-1] if g % 2]
        if odd:
            raise ValueError("only the last stage's token grid may have an odd side")

    @property
    def stage_grids(self) -> tuple[int, int, int]:
        """Token-grid side of each stage (a 3x3 stride-2 convolution between stages)."""
        second = (self.grid + 1) // 2
        return (self.grid, second, (second + 1) // 2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SaTQAConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("vit_layers", "depths", "projection"):
            if key in known:
                known[key] = tuple(int(v) for v in known[key])
        if "branch_widths" in known:
            known["branch_widths"] = tuple(tuple(int(v) for v in w) for w in known["branch_widths"])
        return cls(**known)


#: The published model (quality network 145,048,554 parameters, 58,471,682 trainable; encoder
#: 29,100,200).
FULL = SaTQAConfig(name="satqa")
#: EfficientNet-Lite0 backbones and narrow blocks, for CPU training; not the published model.
LITE = SaTQAConfig(
    name="satqa-lite",
    backbone="efficientnet_lite0",
    grid=16,
    dim=96,
    depths=(1, 2, 1),
    branch_widths=((32, 32, 32), (24, 24, 48), (8, 8, 80)),
    heads=4,
    encoder_backbone="efficientnet_lite0",
    encoder_reduced=64,
    projection=(256, 64),
    crop=128,
)
CONFIGS: dict[str, SaTQAConfig] = {FULL.name: FULL, LITE.name: LITE}


def tokens_to_map(tokens: torch.Tensor) -> torch.Tensor:
    """``(N, L, C)`` tokens of a square grid as an ``(N, C, side, side)`` map."""
    n, length, channels = tokens.shape
    side = int(round(length**0.5))
    return tokens.transpose(1, 2).reshape(n, channels, side, side)


def map_to_tokens(feature: torch.Tensor) -> torch.Tensor:
    """An ``(N, C, H, W)`` map as ``(N, H * W, C)`` tokens."""
    return feature.flatten(2).transpose(1, 2)


class ResNetStages(nn.Module):
    """A timm ResNet read out at its four stages (strides 4 to 32); kept whole (classifier
    included, never evaluated) so that its checkpoint loads strictly."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.channels = tuple(
            int(getattr(network, f"layer{i}")[-1].conv3.out_channels) for i in range(1, 5)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        net = self.network
        x = net.maxpool(net.act1(net.bn1(net.conv1(x))))
        stages = []
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            x = layer(x)
            stages.append(x)
        return stages


def stage_extractor(name: str, weights: BackboneWeights | None) -> nn.Module:
    """The four-stage reader of backbone ``name`` (ResNet stages or EfficientNet endpoints)."""
    network = backbone_network(name, weights)
    return ResNetStages(network) if name.startswith("resnet") else EfficientNetEndpoints(network)


class SCLEncoder(nn.Module):
    """The supervised-contrastive encoder: a quality-aware feature map and, for pretraining,
    a projected embedding."""

    def __init__(self, config: SaTQAConfig = FULL, backbone: BackboneWeights | None = None) -> None:
        """The stages start from ``backbone``'s ImageNet weights (random when None)."""
        super().__init__()
        self.grid = config.encoder_grid
        self.normalise = normaliser(config.encoder_backbone, backbone)
        self.stages = stage_extractor(config.encoder_backbone, backbone)
        c1, c2, c3, c4 = self.stages.channels
        reduced = config.encoder_reduced
        self.reduce3 = nn.Conv2d(c3, reduced, 1)
        self.reduce4 = nn.Conv2d(c4, reduced, 1)
        self.channels = c1 + c2 + 2 * reduced
        hidden, out = config.projection
        self.projector = nn.Sequential(
            nn.Linear(self.channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(N, channels, grid, grid)`` feature map of 0..1 crops ``x``."""
        s1, s2, s3, s4 = self.stages(self.normalise(x))
        parts = (s1, s2, self.reduce3(s3), self.reduce4(s4))
        return torch.cat([F.adaptive_avg_pool2d(p, self.grid) for p in parts], dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The projected embedding of ``x`` that the contrastive loss compares; ``(N, out)``."""
        feature = F.normalize(self(x), dim=1)
        return self.projector(feature.mean(dim=(2, 3)))


class ChannelAttention(nn.Module):
    """CBAM channel attention: a shared bias-free MLP of the max- and mean-pooled map."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled_max = self.mlp(F.adaptive_max_pool2d(x, 1))
        pooled_mean = self.mlp(F.adaptive_avg_pool2d(x, 1))
        return x * torch.sigmoid(pooled_max + pooled_mean)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: a bias-free 3x3 convolution of the channel mean and maximum."""

    def __init__(self, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        summary = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(summary))


class DeformableConv(nn.Module):
    """A 3x3 deformable convolution (Dai et al., ICCV 2017) without bias, its offsets predicted
    by a 3x3 convolution initialised to zero weights (torchvision's ``deform_conv2d``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        from torchvision.ops import DeformConv2d

        self.offsets = nn.Conv2d(in_channels, 2 * 9, 3, padding=1)
        nn.init.zeros_(self.offsets.weight)
        self.conv = DeformConv2d(in_channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x, self.offsets(x))


class MultiStreamBlock(nn.Module):
    """One multi-stream block on ``grid`` x ``grid`` tokens of width ``dim`` (see the module
    docstring). ``last_grid`` sizes the linear layer that restores an odd grid after the
    depthwise branch's 2x2 max-pool and upsampling; every block carries it, as officially."""

    def __init__(
        self, dim: int, widths: Widths, heads: int, reduction: int, grid: int, last_grid: int
    ) -> None:
        super().__init__()
        from timm.models.vision_transformer import Attention

        deform, depthwise, attention = widths
        self.grid = grid
        self.channel_attention = ChannelAttention(dim, reduction)
        self.spatial_attention = SpatialAttention(3)
        self.deform = DeformableConv(dim, deform)
        self.deform_proj = nn.Linear(deform, deform)
        self.depthwise = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.pointwise = nn.Conv2d(dim, depthwise, 1)
        self.attention = Attention(dim, num_heads=heads, qkv_bias=False)
        self.attention_proj = nn.Linear(dim, attention)
        even = (last_grid // 2) * 2
        self.regrid = nn.Linear(even * even, last_grid * last_grid)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        feature = tokens_to_map(tokens)
        residual = map_to_tokens(self.spatial_attention(self.channel_attention(feature)))
        deform = self.deform_proj(map_to_tokens(self.deform(feature)))
        pooled = self.pointwise(self.depthwise(F.max_pool2d(feature, 2)))
        upsampled = F.interpolate(pooled, scale_factor=2, mode="nearest").flatten(2)
        if upsampled.shape[-1] != tokens.shape[1]:
            upsampled = self.regrid(upsampled)
        attention = self.attention_proj(self.attention(tokens))
        return torch.cat([deform, upsampled.transpose(1, 2), attention], dim=2) + residual


class DownSample(nn.Module):
    """A 3x3 stride-2 convolution of the token grid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, stride=2, padding=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return map_to_tokens(self.conv(tokens_to_map(tokens)))


class BackboneTokens(nn.Module):
    """The quality backbone's features as ``(N, grid**2, C)`` tokens: the patch tokens of some
    ViT blocks, or EfficientNet endpoints average-pooled to ``grid`` and concatenated."""

    def __init__(self, config: SaTQAConfig, backbone: BackboneWeights | None) -> None:
        super().__init__()
        self.is_vit = config.backbone.startswith("vit")
        self.layers = list(config.vit_layers)
        self.grid = config.grid
        if self.is_vit:
            self.network = backbone_network(config.backbone, backbone)
            self.channels = len(self.layers) * int(self.network.embed_dim)
        else:
            self.network = EfficientNetEndpoints(backbone_network(config.backbone, backbone))
            self.channels = sum(self.network.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_vit:
            blocks = self.network.forward_intermediates(
                x, indices=self.layers, stop_early=True, output_fmt="NLC", intermediates_only=True
            )
            return torch.cat(blocks, dim=2)
        endpoints = [F.adaptive_avg_pool2d(e, self.grid) for e in self.network(x)]
        return map_to_tokens(torch.cat(endpoints, dim=1))


class SaTQA(FrozenBranches):
    """The SaTQA quality network with its frozen encoder: one score per crop."""

    frozen_names = ("backbone", "encoder")

    def __init__(
        self,
        config: SaTQAConfig = FULL,
        backbone: BackboneWeights | None = None,
        encoder_backbone: BackboneWeights | None = None,
    ) -> None:
        """The quality backbone starts from ``backbone``'s ImageNet weights and the encoder's
        stages from ``encoder_backbone``'s (random initialisation for either when None); the
        encoder is then pretrained (see :class:`SCLEncoder`)."""
        super().__init__()
        c = config
        self.config = c
        self.normalise = normaliser(c.backbone, backbone)
        self.backbone = freeze(BackboneTokens(c, backbone))
        self.encoder = freeze(SCLEncoder(c, encoder_backbone))
        self.feature_proj = nn.Linear(self.backbone.channels, c.dim, bias=False)
        last_grid = c.stage_grids[-1]
        stages: list[nn.Module] = []
        for index, (depth, widths, grid) in enumerate(
            zip(c.depths, c.branch_widths, c.stage_grids, strict=True)
        ):
            if index:
                stages.append(DownSample(c.dim))
            stages.extend(
                MultiStreamBlock(c.dim, widths, c.heads, c.channel_reduction, grid, last_grid)
                for _ in range(depth)
            )
        self.blocks = nn.Sequential(*stages)
        self.query_proj = nn.Conv2d(self.encoder.channels, c.dim, 1)
        self.w_q = nn.Linear(c.dim, c.dim, bias=False)
        self.w_k = nn.Linear(c.dim, c.dim, bias=False)
        self.w_v = nn.Linear(c.dim, c.dim, bias=False)
        self.attention_dropout = nn.Dropout(c.attention_dropout)
        self.ffn = nn.Sequential(
            nn.Linear(c.dim, 4 * c.dim, bias=False),
            nn.GELU(),
            nn.Linear(4 * c.dim, c.dim, bias=False),
            nn.GELU(),
        )
        self.head = nn.Sequential(nn.Linear(c.dim, c.dim), nn.ReLU(), nn.Linear(c.dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, 3, H, W)`` crops on 0..1; returns ``(N,)`` scores."""
        with torch.no_grad():
            tokens = self.backbone(self.normalise(x))
            quality_map = self.encoder(x)
        tokens = self.blocks(self.feature_proj(tokens))
        queries = self.w_q(map_to_tokens(self.query_proj(quality_map)))
        keys, values = self.w_k(tokens), self.w_v(tokens)
        weights = (queries @ keys.transpose(1, 2)) * self.config.dim**-0.5
        attended = self.attention_dropout(weights.softmax(dim=-1)) @ values
        attended = attended + self.ffn(attended)
        return self.head(attended.mean(dim=1)).squeeze(1)
