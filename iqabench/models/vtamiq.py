"""VTAMIQ: a full-reference quality network on sequences of sampled patches (ViT + DiffNet).

Paper: A. Chubarau and J. Clark (McGill University), "VTAMIQ: Transformers for Attention
Modulated Image Quality Assessment", arXiv:2110.01655 (2021), doi:10.48550/arXiv.2110.01655.
Reference code: github.com/ch-andrei/VTAMIQ (read, not copied; the paper-era build is commit
``c67f036``, 2021-10, with ``run_config.py``'s VTAMIQ settings).

Data flow for a pair (reference ``R``, distorted ``D``):

1. ``N`` spatially aligned 16x16 patch places are sampled once for the pair
   (:mod:`.vtamiq_sampling`: perceptual difference, centre bias and a uniform part, stratified);
   the network cuts the patches from both images at the same corners (:func:`cut_patches`), and
   each patch carries its cell on the 24x24 positional grid;
2. each sequence goes through the same transformer: patch embedding, plus the positional
   embedding *of the patch's own grid cell* (index ``1 + 24 row + col`` of the 577-entry table
   of ViT-B/16 at 384; the class token keeps entry 0), the class token prepended, the first 6 of
   ViT-B/16's 12 encoder layers and the final LayerNorm; the class token is read out;
3. the difference ``cls(R) - cls(D)`` goes through DiffNet: 4 residual groups, each 4 residual
   channel-attention blocks (RCAB: PReLU, 1x1, channel attention with reduction 16 and PReLU)
   and a 1x1 convolution with a group-level skip, then one more 1x1 convolution. On a 1x1 map a
   1x1 convolution is a linear layer, which is what is used here (same parameters);
4. an MLP (dropout 0.2, 768 -> 192, PReLU, dropout, 192 -> 1) gives the score.

Input spec: grey frames repeated to 3 channels, on 0..1, normalised with the backbone weights'
own mean and standard deviation, with the ``(N, 2)`` corners and grid cells of the sample
(the metric, :mod:`iqabench.metrics.vtamiq`, samples 256 patches per pair in training with
random horizontal flips of the pair, 1024 at test time).

Training recipe (paper and reference ``run_config.py``): AdamW, learning rate 1e-4, weight
decay 0.01, 20 epochs with the learning rate times 0.1 after epochs 14 and 18, batch 20 pairs,
gradient norm clipped at 1; loss = MAE + the pairwise rank loss
(:func:`iqabench.train.objectives.ranking.vtamiq_rank_loss`). The paper pretrains on
KADIS-700k (VSI as target) and PieAPP before fine-tuning. The reference code also adds 0.2 x a
Pearson term and decays the MAE weight by 0.975 per epoch; the paper names MAE and rank only.

Parameters: the paper-era build counts 57,306,274 (paper: 57.3 M), of which the ViT part is
43,563,264 (43.6 M: patch embedding 590,592, class token 768, 577 x 768 positional table,
6 x 7,087,872 encoder layers, final LayerNorm 1,536), DiffNet 13,595,168 and the MLP 147,842.
That build has no reference-aware "difference embedding" (``use_diff_embedding=False`` there).

Departures: the ViT is timm's (``vit_base_patch16_384`` layout; weights through
:mod:`iqabench.models.backbones`, whose ViT-B/16 files are at 224, so their 14x14 positional
table is resampled to 24x24, as the reference code itself does when sizes differ; the paper
used Google's ImageNet-21k+1k 384 checkpoint). timm's dropout 0.1 acts after the attention
projection as well as in the MLP (the reference: MLP only); the reference's embedding dropout
0.2 is kept. The lite configuration is not the published model (:data:`LITE`): it keeps the
design (a transformer over a sampled, position-aligned patch set, grid positional embeddings,
class-token difference, DiffNet, MLP) but embeds patches with EfficientNet-Lite0 read at each
patch's centre, because no small ViT's ImageNet weights can be installed here while
EfficientNet-Lite0's ship in a pip package; running the CNN on each 16x16 patch alone was
about five times slower on a CPU than one pass over the image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .vtamiq_sampling import PATCH

if TYPE_CHECKING:
    from .backbones import BackboneWeights


@dataclass(frozen=True)
class VTAMIQConfig:
    """Architecture and input geometry of one VTAMIQ variant."""

    name: str
    #: Backbone of :mod:`iqabench.models.backbones` the patch embedding (and, for ``vit``, the
    #: transformer) comes from.
    backbone: str
    #: ``vit``: the ViT's own linear patch embedding and encoder layers; ``cnn``: a hybrid
    #: patch embedding (the backbone's stride-16 feature map read at each patch) and a freshly
    #: initialised transformer.
    tokenizer: Literal["vit", "cnn"]
    #: A ``cnn`` tokenizer's ImageNet layers kept frozen (and in evaluation mode); its
    #: projection to ``dim`` trains.
    freeze_cnn: bool = False
    dim: int = 768
    #: Encoder layers kept (the first ``depth``) or built.
    depth: int = 6
    heads: int = 12
    #: Side of the positional-embedding grid (384 / 16 for ViT-B/16 at 384).
    grid: int = 24
    residual_groups: int = 4
    blocks_per_group: int = 4
    reduction: int = 16
    predictor_dropout: float = 0.2
    embedding_dropout: float = 0.2
    mlp_dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.dim % self.heads or self.dim % self.reduction:
            raise ValueError("dim must be divisible by heads and by the attention reduction")
        if min(self.depth, self.grid, self.residual_groups) < 1:
            raise ValueError("depth, grid and residual groups must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VTAMIQConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


#: The paper-era model: ViT-B/16 (first 6 layers), DiffNet 4x4, 57,306,274 parameters.
FULL = VTAMIQConfig(name="vtamiq", backbone="vit_b16", tokenizer="vit")
#: CPU configuration: a hybrid patch embedding (EfficientNet-Lite0, genuine ImageNet weights
#: from a pip package, to stride 16 on the whole image, read at each sampled patch's centre and
#: projected to 192), a 4-layer, 192-wide transformer, 1 residual group of 2 RCABs (reduction
#: 8), the CNN frozen (its backward pass was most of a training step on a CPU). Not the
#: published model.
LITE = VTAMIQConfig(
    name="vtamiq-lite",
    backbone="efficientnet_lite0",
    tokenizer="cnn",
    freeze_cnn=True,
    dim=192,
    depth=4,
    heads=3,
    residual_groups=1,
    blocks_per_group=2,
    reduction=8,
)
CONFIGS: dict[str, VTAMIQConfig] = {FULL.name: FULL, LITE.name: LITE}

#: EfficientNet-Lite0 channels at stride 16 (end of its fifth block stage).
CNN_TOKEN_CHANNELS = 112
CNN_STAGES_TO_STRIDE_16 = 5


class ChannelAttention(nn.Module):
    """RCAN's channel attention on a vector (a 1x1 map: global pooling is the identity):
    ``x * sigmoid(W2 PReLU(W1 x))`` with ``W1`` reducing by ``reduction``."""

    def __init__(self, dim: int, reduction: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.Linear(dim, dim // reduction),
            nn.PReLU(),
            nn.Linear(dim // reduction, dim),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class RCAB(nn.Module):
    """Residual channel-attention block (Zhang et al., ECCV 2018) as VTAMIQ uses it:
    ``x + CA(W PReLU(x))``, no batch norm."""

    def __init__(self, dim: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.PReLU(), nn.Linear(dim, dim), ChannelAttention(dim, reduction))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """``blocks`` RCABs and a linear layer, with a skip over the group."""

    def __init__(self, dim: int, blocks: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *(RCAB(dim, reduction) for _ in range(blocks)), nn.Linear(dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DiffNet(nn.Module):
    """VTAMIQ's difference-modulation network: residual groups, then one linear layer."""

    def __init__(self, dim: int, groups: int, blocks: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *(ResidualGroup(dim, blocks, reduction) for _ in range(groups)), nn.Linear(dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def cut_patches(images: torch.Tensor, corners: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """The ``(B, N, C, patch, patch)`` patches of ``images`` ``(B, C, H, W)`` whose top-left
    corners are ``corners`` ``(B, N, 2)`` (row, col)."""
    offsets = torch.arange(patch, device=images.device)
    rows = corners[..., 0, None, None] + offsets[:, None]
    cols = corners[..., 1, None, None] + offsets[None, :]
    batch = torch.arange(images.shape[0], device=images.device)[:, None, None, None]
    return images.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 1, 4, 2, 3)


class LinearPatchEmbedding(nn.Module):
    """The ViT's linear patch embedding (a 16x16, stride-16 convolution) on each sampled
    patch."""

    def __init__(self, proj: nn.Conv2d) -> None:
        super().__init__()
        self.proj = proj

    def forward(self, images: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
        patches = cut_patches(images, corners)
        batch, count = patches.shape[:2]
        tokens = self.proj(patches.reshape(batch * count, *patches.shape[2:]))
        return tokens.reshape(batch, count, -1)


class CNNPatchEmbedding(nn.Module):
    """A hybrid patch embedding (the "hybrid" ViT of Dosovitskiy et al., ICLR 2021): an
    EfficientNet's stem and block stages up to stride 16 run once on the whole image, each
    sampled patch's token is the feature map read (bilinearly) at the patch's centre, then
    mapped linearly to ``dim``."""

    def __init__(self, backbone: nn.Module, dim: int, frozen: bool = False) -> None:
        super().__init__()
        self.stem = nn.Sequential(backbone.conv_stem, backbone.bn1)
        self.stages = nn.Sequential(*list(backbone.blocks)[:CNN_STAGES_TO_STRIDE_16])
        self.project = nn.Linear(CNN_TOKEN_CHANNELS, dim)
        self.frozen = frozen
        if frozen:
            self.stem.requires_grad_(False)
            self.stages.requires_grad_(False)

    def train(self, mode: bool = True) -> CNNPatchEmbedding:
        super().train(mode)
        if self.frozen:  # frozen ImageNet layers keep their BatchNorm statistics
            self.stem.eval()
            self.stages.eval()
        return self

    def forward(self, images: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(images))
        height, width = images.shape[-2:]
        centres = corners.to(features.dtype) + PATCH / 2
        # grid_sample's (x, y) in [-1, 1], pixel edges at +-1 (align_corners=False)
        where = torch.stack([2 * centres[..., 1] / width - 1, 2 * centres[..., 0] / height - 1], -1)
        tokens = F.grid_sample(features, where[:, :, None], align_corners=False)
        return self.project(tokens.squeeze(3).transpose(1, 2))


def _grid_table(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """A ViT's ``(1, 1 + g*g, D)`` positional table resampled to ``grid`` x ``grid`` (bicubic,
    timm's routine); the class-token entry is kept as it is."""
    from timm.layers import resample_abs_pos_embed

    return resample_abs_pos_embed(pos_embed, (grid, grid), num_prefix_tokens=1)


class VTAMIQNet(nn.Module):
    """VTAMIQ: one score per pair of aligned patch sequences (higher: closer to the reference).

    ``backbone`` is the module :func:`iqabench.models.backbones.build_backbone` returns for
    ``config.backbone`` (with or without its ImageNet weights): a timm ViT-B/16 for the
    ``vit`` tokenizer (its patch embedding, class token, positional table resampled to the
    grid, first ``depth`` layers and final norm are taken; the rest is dropped) or a timm
    EfficientNet for ``cnn``.
    """

    def __init__(self, config: VTAMIQConfig, backbone: nn.Module) -> None:
        super().__init__()
        self.config = c = config
        if c.tokenizer == "vit":
            self.embed: nn.Module = LinearPatchEmbedding(backbone.patch_embed.proj)
            self.cls_token = backbone.cls_token
            self.pos_embed = nn.Parameter(_grid_table(backbone.pos_embed.data, c.grid))
            self.blocks = nn.Sequential(*list(backbone.blocks)[: c.depth])
            self.norm = backbone.norm
            for block in self.blocks:
                block.mlp.drop1.p = block.mlp.drop2.p = block.attn.proj_drop.p = c.mlp_dropout
        else:
            from timm.models.vision_transformer import Block

            self.embed = CNNPatchEmbedding(backbone, c.dim, frozen=c.freeze_cnn)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + c.grid * c.grid, c.dim))
            self.blocks = nn.Sequential(
                *(Block(c.dim, c.heads, proj_drop=c.mlp_dropout) for _ in range(c.depth))
            )
            self.norm = nn.LayerNorm(c.dim, eps=1e-6)
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            nn.init.trunc_normal_(self.cls_token, std=1e-6)
        if len(self.blocks) != c.depth:
            raise ValueError(f"the backbone has {len(self.blocks)} layers, fewer than {c.depth}")
        self.embedding_dropout = nn.Dropout(c.embedding_dropout)
        self.diffnet = DiffNet(c.dim, c.residual_groups, c.blocks_per_group, c.reduction)
        self.predictor = nn.Sequential(
            nn.Dropout(c.predictor_dropout),
            nn.Linear(c.dim, c.dim // 4),
            nn.PReLU(),
            nn.Dropout(c.predictor_dropout),
            nn.Linear(c.dim // 4, 1),
        )

    def vit_parameters(self) -> int:
        """Parameters of the transformer part (embeddings, encoder layers, final norm)."""
        parts = (self.embed, self.blocks, self.norm)
        own = self.cls_token.numel() + self.pos_embed.numel()
        return own + sum(p.numel() for part in parts for p in part.parameters())

    def encode(self, images: torch.Tensor, corners: torch.Tensor, grid: torch.Tensor):
        """Class token ``(B, dim)`` of the patch sequences of ``images`` (``(B, 3, H, W)``,
        normalised) with top-left ``corners`` and positional ``grid`` cells (``(B, N, 2)``
        long, row and column)."""
        tokens = self.embed(images, corners)
        index = 1 + grid[..., 0] * self.config.grid + grid[..., 1]
        tokens = tokens + self.pos_embed[0, index]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(images.shape[0], -1, -1)
        x = self.embedding_dropout(torch.cat([cls, tokens], dim=1))
        return self.norm(self.blocks(x))[:, 0]

    def forward(
        self,
        reference: torch.Tensor,
        distorted: torch.Tensor,
        corners: torch.Tensor,
        grid: torch.Tensor,
    ) -> torch.Tensor:
        """Scores ``(B,)`` of image pairs, both sequences cut at the same ``corners``."""
        if reference.shape != distorted.shape or corners.shape != grid.shape:
            raise ValueError("reference, distorted, corners and grid must describe one sample")
        difference = self.encode(reference, corners, grid) - self.encode(distorted, corners, grid)
        return self.predictor(self.diffnet(difference)).squeeze(1)


def build_vtamiq(config: VTAMIQConfig, weights: BackboneWeights | None = None) -> VTAMIQNet:
    """VTAMIQ on its backbone from :mod:`iqabench.models.backbones`: with the ImageNet file
    ``weights`` names (from :func:`~iqabench.models.backbones.resolve_backbone`), or with random
    initialisation when ``weights`` is None (as before loading a trained network)."""
    from .backbones import backbone_spec, build_backbone

    if weights is None:
        return VTAMIQNet(config, backbone_spec(config.backbone).create())
    return VTAMIQNet(config, build_backbone(weights))


__all__ = [
    "CONFIGS",
    "FULL",
    "LITE",
    "PATCH",
    "VTAMIQConfig",
    "VTAMIQNet",
    "build_vtamiq",
    "cut_patches",
]
