"""DRI-IQA: no-reference quality from dual (degradation, quality) representations, assisted by a
guided restoration network.

Paper: J. Yue, X. Lin, Z. Yang and C. Ren (Sichuan University), "Dual-Representation
Interaction Driven Image Quality Assessment with Restoration Assistance", WACV 2025,
pp. 3138-3147; arXiv:2411.17390, doi:10.48550/arXiv.2411.17390. The authors' repository
(github.com/Jingtong0527/DRI-IQA) holds only a README, so this is built from the paper's
description; every place where it is silent is a choice made here, listed below and in the
cards.

Parts and data flow for a crop ``x`` (grey, 0..1, ``(B, C, H, W)``):

1. the **dual-representation extractor** (:class:`DualRepresentationExtractor`): a residual
   convolutional encoder in the manner of the degradation encoders of DASR and AirNet
   (3x3 stem block, two stride-2 residual blocks, global average pooling) whose pooled vector is
   split into a *degradation* half ``d`` and a *quality* half ``q``. It is trained MoCo-style
   (:class:`MomentumContrast`: a momentum key encoder and a queue of negatives) with InfoNCE on
   the degradation half through a projection MLP: the two crops of one degraded image are
   positives, the queue holds negatives;
2. the **restoration network** (:class:`~iqabench.models.nafnet.NAFNet`, guided): every NAF
   block is modulated by ``d``; it outputs the restored crop ``x_r``;
3. the **score predictor** (:class:`QualityGuidedPredictor`, MANIQA-style): backbone features
   of ``x`` and of ``x_r`` (faithful: ViT-B/8 tokens of layers 7-10 concatenated, MANIQA's
   choice; lite: EfficientNet-Lite0 at stride 16) are combined as ``[F(x), F(x) - F(x_r)]``
   (the restoration's degradation evidence), passed through two transposed-attention blocks
   (attention across channels), a 1x1 reduction, a Swin stage, another 1x1 reduction and a
   second Swin stage; per-location scores are pooled with attention weights whose query is the
   quality vector ``q`` (the quality representation guides attention over the image features),
   giving the score.

Losses (:mod:`iqabench.train.objectives`): InfoNCE (``contrastive.info_nce``); restoration L1
between ``x_r`` and the reference; the representation-based semantic (RS) loss
(``restoration.representation_semantic_loss``): L1 between the degradation representation of
the restored crop and that of the reference (zero for a perfect restoration); the score loss
(L1 to the opinion score).

Two-stage recipe (paper's structure; the metric, :mod:`iqabench.metrics.dri_iqa`, holds the
values chosen here where it is silent): stage 1 trains the extractor (InfoNCE) and the restorer
(restoration + RS) on crops of randomly degraded images; stage 2 trains the extractor, the
backbone and the predictor for the score (score + InfoNCE), the restorer fixed. On a dataset
without references (TIIQAD) stage 1 has InfoNCE only and the restorer stays the identity it
starts as (its last convolution is zero-initialised here, unlike NAFNet's own).

Input spec: grey crops repeated to the backbone's 3 channels and normalised with its weights'
mean and standard deviation for the predictor's backbone; the extractor and restorer see the
crop on 0..1 (faithful: 3 channels, as the published NAFNet; lite: 1). Faithful 224x224 crops
(MANIQA), lite 160x160; the test score is the mean over random crops.

Choices where the paper is silent: encoder widths 64/128/256 (a 128 + 128 split), a
256-entry-wide projection-free split with a 2-layer projection head for InfoNCE, temperature
0.07, momentum 0.999 and a 4096-key queue (MoCo v1 defaults); NAFNet-width32 in its SIDD
layout (encoder 2/2/4/8, middle 12, decoder 2/2/2/2) with feature-wise guidance; the MANIQA
head's widths (768, 384), Swin depth 2 with 4 heads and window 4; attention pooling with 4
heads. MANIQA's transposed attention scrambles its output with a reshape; it is written here as
the plain attention its paper describes.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .nafnet import NAFNet

if TYPE_CHECKING:
    from .backbones import BackboneWeights

Normalisation = tuple[float, float, float]


@dataclass(frozen=True)
class DRIIQAConfig:
    """Architecture and input geometry of one DRI-IQA variant."""

    name: str
    #: Backbone of :mod:`iqabench.models.backbones` under the score predictor.
    backbone: str
    #: ``vit``: concatenated tokens of ``vit_layers``; ``cnn``: EfficientNet stages to stride 16.
    features: Literal["vit", "cnn"]
    vit_layers: tuple[int, ...] = (6, 7, 8, 9)
    crop: int = 224
    image_channels: int = 3
    extractor_widths: tuple[int, int, int] = (64, 128, 256)
    projection_dim: int = 128
    queue_size: int = 4096
    temperature: float = 0.07
    momentum: float = 0.999
    nafnet_width: int = 32
    nafnet_encoder: tuple[int, ...] = (2, 2, 4, 8)
    nafnet_middle: int = 12
    nafnet_decoder: tuple[int, ...] = (2, 2, 2, 2)
    transposed_blocks: int = 2
    head_dims: tuple[int, int] = (768, 384)
    swin_depth: int = 2
    swin_heads: int = 4
    window: int = 4
    pooling_heads: int = 4
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.extractor_widths[-1] % 2:
            raise ValueError("the extractor's last width must be even (two halves)")
        if len(self.nafnet_encoder) != len(self.nafnet_decoder):
            raise ValueError("NAFNet needs as many decoder levels as encoder levels")

    @property
    def representation_dim(self) -> int:
        """Size of each half (degradation, quality) of the extractor's output."""
        return self.extractor_widths[-1] // 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DRIIQAConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key, value in known.items():
            if isinstance(value, list):
                known[key] = tuple(value)
        return cls(**known)


#: The configuration chosen from the paper's description (see the module docstring).
FULL = DRIIQAConfig(name="dri-iqa", backbone="vit_b8", features="vit")
#: CPU configuration: EfficientNet-Lite0 features (genuine ImageNet weights from a pip
#: package), a narrow extractor and NAFNet, one-channel crops of 160. Not the published design.
LITE = DRIIQAConfig(
    name="dri-iqa-lite",
    backbone="efficientnet_lite0",
    features="cnn",
    crop=160,
    image_channels=1,
    extractor_widths=(16, 32, 64),
    projection_dim=32,
    queue_size=256,
    momentum=0.99,
    nafnet_width=8,
    nafnet_encoder=(1, 1, 1),
    nafnet_middle=1,
    nafnet_decoder=(1, 1, 1),
    transposed_blocks=1,
    head_dims=(96, 48),
    swin_heads=3,
    window=5,
    pooling_heads=2,
)
CONFIGS: dict[str, DRIIQAConfig] = {FULL.name: FULL, LITE.name: LITE}

CNN_CHANNELS = 112
#: The parts a training stage may train (the momentum copy follows the extractor).
TRAINABLE_PARTS = ("extractor", "restorer", "features", "predictor")
CNN_STAGES_TO_STRIDE_16 = 5


class ResidualBlock(nn.Module):
    """3x3 conv, BN, LeakyReLU(0.1), 3x3 conv, BN, plus a 1x1 conv + BN shortcut; then
    LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


@dataclass(frozen=True)
class DualRepresentation:
    """The extractor's two halves, ``(B, D)`` each, and the InfoNCE projection of ``d``."""

    degradation: torch.Tensor
    quality: torch.Tensor
    projection: torch.Tensor


class DualRepresentationExtractor(nn.Module):
    """Residual encoder whose pooled vector splits into degradation and quality halves, with a
    projection head on the degradation half for contrastive learning."""

    def __init__(self, channels: int, widths: tuple[int, int, int], projection_dim: int) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.encoder = nn.Sequential(
            ResidualBlock(channels, w1, stride=1),
            ResidualBlock(w1, w2, stride=2),
            ResidualBlock(w2, w3, stride=2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        half = w3 // 2
        self.projection = nn.Sequential(
            nn.Linear(half, half), nn.LeakyReLU(0.1, inplace=True), nn.Linear(half, projection_dim)
        )

    def forward(self, x: torch.Tensor) -> DualRepresentation:
        degradation, quality = self.encoder(x).chunk(2, dim=1)
        return DualRepresentation(
            degradation, quality, F.normalize(self.projection(degradation), dim=1)
        )


class MomentumContrast(nn.Module):
    """MoCo's key side (He et al., CVPR 2020): a momentum copy of the extractor and a queue of
    past keys (the negatives). :meth:`keys` encodes without gradient, :meth:`update` moves the
    copy towards the query extractor, :meth:`enqueue` replaces the oldest keys."""

    def __init__(self, extractor: DualRepresentationExtractor, queue_size: int, momentum: float):
        super().__init__()
        self.key_extractor = copy.deepcopy(extractor)
        for parameter in self.key_extractor.parameters():
            parameter.requires_grad_(False)
        dim = extractor.projection[-1].out_features
        self.momentum = momentum
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def keys(self, x: torch.Tensor) -> torch.Tensor:
        return self.key_extractor(x).projection

    @torch.no_grad()
    def update(self, extractor: DualRepresentationExtractor) -> None:
        pairs = zip(self.key_extractor.parameters(), extractor.parameters(), strict=True)
        for key, query in pairs:
            key.mul_(self.momentum).add_(query.detach(), alpha=1.0 - self.momentum)
        for key, query in zip(self.key_extractor.buffers(), extractor.buffers(), strict=True):
            key.copy_(query)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        size = self.queue.shape[0]
        index = (self.pointer + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[index] = keys.detach().to(self.queue.dtype)
        self.pointer.copy_((self.pointer + keys.shape[0]) % size)


class ViTTaps(nn.Module):
    """A timm ViT read out at several layers: patch tokens (class token dropped) of each tapped
    layer, concatenated along channels into a ``(B, C * taps, H/p, W/p)`` map; later layers are
    dropped."""

    def __init__(self, vit: nn.Module, layers: tuple[int, ...]) -> None:
        super().__init__()
        self.patch_embed = vit.patch_embed
        self.cls_token = vit.cls_token
        self.pos_embed = vit.pos_embed
        self.blocks = nn.Sequential(*list(vit.blocks)[: max(layers) + 1])
        self.layers = frozenset(layers)
        self.channels = vit.embed_dim * len(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x)
        side = int(tokens.shape[1] ** 0.5)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed
        taps = []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in self.layers:
                taps.append(tokens[:, 1:])
        grid = torch.cat(taps, dim=2)
        return grid.transpose(1, 2).reshape(x.shape[0], -1, side, side)


class CNNStages(nn.Module):
    """An EfficientNet's stem and block stages up to stride 16."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Sequential(backbone.conv_stem, backbone.bn1)
        self.stages = nn.Sequential(*list(backbone.blocks)[:CNN_STAGES_TO_STRIDE_16])
        self.channels = CNN_CHANNELS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class TransposedAttention(nn.Module):
    """MANIQA's transposed attention block: attention across channels, each channel's token
    vector (length ``tokens``) as its feature, with a residual. Input ``(B, C, N)``."""

    def __init__(self, tokens: int, dropout: float) -> None:
        super().__init__()
        self.query = nn.Linear(tokens, tokens)
        self.key = nn.Linear(tokens, tokens)
        self.value = nn.Linear(tokens, tokens)
        self.dropout = nn.Dropout(dropout)
        self.scale = tokens**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = (self.query(x) @ self.key(x).transpose(1, 2) * self.scale).softmax(dim=-1)
        return x + self.dropout(attention @ self.value(x))


class GuidedAttentionPooling(nn.Module):
    """Per-location scores pooled by multi-head attention whose query is a guide vector (the
    quality representation) and whose keys are the image tokens; heads are averaged."""

    def __init__(self, dim: int, guide_dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError("token width must be divisible by the pooling heads")
        self.heads = heads
        self.query = nn.Linear(guide_dim, dim)
        self.key = nn.Linear(dim, dim)
        self.score = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, 1), nn.ReLU()
        )

    def forward(self, tokens: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        batch, count, dim = tokens.shape
        head = dim // self.heads
        query = self.query(guide).reshape(batch, self.heads, 1, head)
        keys = self.key(tokens).reshape(batch, count, self.heads, head).transpose(1, 2)
        weights = (query @ keys.transpose(2, 3) * head**-0.5).softmax(dim=-1)
        scores = self.score(tokens).reshape(batch, 1, count, 1)
        return (weights @ scores).mean(dim=1).reshape(batch)


class QualityGuidedPredictor(nn.Module):
    """The MANIQA-style head over ``[F(x), F(x) - F(x_r)]`` with quality-guided pooling."""

    def __init__(self, config: DRIIQAConfig, channels: int, side: int) -> None:
        super().__init__()
        from timm.models.swin_transformer import SwinTransformerStage

        c = config
        tokens = side * side
        first, second = c.head_dims
        self.transposed = nn.Sequential(
            *(TransposedAttention(tokens, c.dropout) for _ in range(c.transposed_blocks))
        )
        self.reduce1 = nn.Conv2d(2 * channels, first, 1)
        self.reduce2 = nn.Conv2d(first, second, 1)
        self.swin1, self.swin2 = (
            SwinTransformerStage(
                dim,
                dim,
                (side, side),
                depth=c.swin_depth,
                downsample=False,
                num_heads=c.swin_heads,
                window_size=c.window,
                mlp_ratio=first / dim,
                proj_drop=c.dropout,
            )
            for dim in (first, second)
        )
        self.pooling = GuidedAttentionPooling(
            second, c.representation_dim, c.pooling_heads, c.dropout
        )

    def forward(self, features: torch.Tensor, restored: torch.Tensor, quality: torch.Tensor):
        x = torch.cat([features, features - restored], dim=1)
        batch, channels, height, width = x.shape
        x = self.transposed(x.reshape(batch, channels, height * width))
        x = self.reduce1(x.reshape(batch, channels, height, width))
        x = self.swin1(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = self.swin2(self.reduce2(x).permute(0, 2, 3, 1))
        return self.pooling(x.reshape(batch, height * width, -1), quality)


@dataclass(frozen=True)
class DRIOutput:
    """What one forward pass gives: scores ``(B,)``, the restored crops, and the extractor's
    representations of the input."""

    score: torch.Tensor
    restored: torch.Tensor
    representation: DualRepresentation


class DRIIQANet(nn.Module):
    """DRI-IQA (see the module docstring). ``backbone`` is the module
    :func:`iqabench.models.backbones.build_backbone` returns for ``config.backbone``; ``mean``
    and ``std`` are its weights' normalisation."""

    def __init__(
        self,
        config: DRIIQAConfig,
        backbone: nn.Module,
        mean: Normalisation = (0.5, 0.5, 0.5),
        std: Normalisation = (0.5, 0.5, 0.5),
    ) -> None:
        super().__init__()
        self.config = c = config
        self.extractor = DualRepresentationExtractor(
            c.image_channels, c.extractor_widths, c.projection_dim
        )
        self.contrast = MomentumContrast(self.extractor, c.queue_size, c.momentum)
        self.restorer = NAFNet(
            c.image_channels,
            c.nafnet_width,
            c.nafnet_encoder,
            c.nafnet_middle,
            c.nafnet_decoder,
            guide_dim=c.representation_dim,
        )
        # The restorer starts as the identity (its last convolution zero), so that an untrained
        # one (a dataset without references) leaves F(x) - F(x_r) at zero.
        nn.init.zeros_(self.restorer.ending.weight)
        nn.init.zeros_(self.restorer.ending.bias)
        if c.features == "vit":
            self.features: nn.Module = ViTTaps(backbone, c.vit_layers)
            side = c.crop // backbone.patch_embed.patch_size[0]
        else:
            self.features = CNNStages(backbone)
            side = -(-c.crop // 16)
        self.predictor = QualityGuidedPredictor(c, self.features.channels, side)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def backbone_input(self, x: torch.Tensor) -> torch.Tensor:
        """A 0..1 crop as the backbone expects it (3 channels, its normalisation)."""
        return (x.expand(-1, 3, -1, -1) - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> DRIOutput:
        """``x``: ``(B, image_channels, crop, crop)`` on 0..1."""
        representation = self.extractor(x)
        restored = self.restorer(x, representation.degradation)
        return DRIOutput(self.assess(x, restored, representation.quality), restored, representation)

    def assess(
        self, x: torch.Tensor, restored: torch.Tensor, quality: torch.Tensor
    ) -> torch.Tensor:
        """Scores ``(B,)`` of crops ``x`` given their restorations and quality halves."""
        return self.predictor(
            self.features(self.backbone_input(x)),
            self.features(self.backbone_input(restored)),
            quality,
        )

    def train_only(self, *parts: str) -> DRIIQANet:
        """The network with only the named parts (attributes: ``extractor``, ``restorer``,
        ``features``, ``predictor``) trainable, every other parameter frozen (the momentum copy
        always); what a training stage optimises."""
        unknown = set(parts) - set(TRAINABLE_PARTS)
        if unknown:
            raise ValueError(f"unknown parts {sorted(unknown)}; known: {TRAINABLE_PARTS}")
        for name in TRAINABLE_PARTS:
            getattr(self, name).requires_grad_(name in parts)
        return self

    def part_parameters(self) -> dict[str, int]:
        """Parameters of each part (the momentum copy counted apart: it is not used to
        score)."""
        parts = {
            "extractor": self.extractor,
            "momentum_extractor": self.contrast,
            "restorer": self.restorer,
            "backbone": self.features,
            "predictor": self.predictor,
        }
        return {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}


def build_dri_iqa(config: DRIIQAConfig, weights: BackboneWeights | None = None) -> DRIIQANet:
    """DRI-IQA on its backbone from :mod:`iqabench.models.backbones`: with the ImageNet file
    ``weights`` names, or with random initialisation when ``weights`` is None."""
    from .backbones import backbone_spec, build_backbone

    if weights is None:
        spec = backbone_spec(config.backbone)
        mean, std = spec.normalisation
        return DRIIQANet(config, spec.create(), mean, std)
    return DRIIQANet(config, build_backbone(weights), weights.mean, weights.std)
