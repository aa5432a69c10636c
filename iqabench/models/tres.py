"""TReS: multi-scale CNN features through a transformer encoder, trained with relative ranking
and flip self-consistency.

Paper: S. A. Golestaneh, S. Dadsetan and K. M. Kitani, "No-Reference Image Quality Assessment
via Transformers, Relative Ranking, and Self-Consistency", WACV 2022, pp. 3989-3999,
doi:10.1109/WACV51458.2022.00404. Official code github.com/isalirezag/TReS (``models.py``,
``transformers.py``, ``posencode.py``, ``args.py``, ``run.sh``); pyiqa's ``archs/tres_arch.py``
re-implements the network. Written from the paper and a reading of both, not copied.

Data flow for a batch of ``crop`` x ``crop`` RGB crops (224 in the paper), ``g = crop / 32``:

1. the backbone (ResNet-50; EfficientNet-Lite0 in the lite build) gives four stage maps at
   strides 4, 8, 16 and 32 (256, 512, 1024 and 2048 channels for ResNet-50);
2. each stage is L2-normalised over channels, L2-pooled (the 3x3 Hann window of
   :class:`~iqabench.models.layers.L2Pool`), dropped out (p 0.1, on the plain branch only) and
   average-pooled by 8, 4, 2 and 1 onto the ``g x g`` grid; concatenated they give
   ``d = 3840`` channels (496 for the lite backbone);
3. the ``g * g`` positions are tokens of a 2-layer pre-norm transformer encoder (d_model ``d``,
   16 heads, feed-forward width 64, ReLU, dropout 0.5, a final LayerNorm) whose queries and
   keys get DETR's normalised sine position encoding;
4. the encoder output, averaged over the grid and mapped linearly to the last stage's width, is
   concatenated with the averaged last stage, and one linear layer gives the score.

Training sees each batch twice, as is and mirrored (horizontal flip), and for each of the two
also computes the other orientation's features (:meth:`TReSNet.forward_pair`): the
self-consistency term compares the encoder output and the last stage map of an image with the
detached ones of its mirror, element for element as the official code does (the mirror's maps
are not flipped back); the objective is
:func:`iqabench.train.objectives.ranking.tres_objective`.

Input (official ``data_loader.py``): RGB in [0, 1] normalised with the ImageNet mean and standard
deviation, no resize for LIVE, CSIQ, TID2013, KADID-10k and CLIVE (KonIQ-10k 512x384, FLIVE
512x512); training: 50 random 224x224 crops per image per epoch, each a sample, with random
horizontal and vertical flips; testing: 50 random 224x224 crops, predictions averaged (pyiqa
takes 50 crops on a uniform grid).

Recipe (official solver, ``args.py`` and ``run.sh`` for ResNet-50): Adam, one parameter group
at lr 2e-5, weight decay 5e-4, batch 53, 3 epochs (5 on FLIVE); the learning rate is divided by
10 after every ``droplr = 1`` epochs (up to three times), the optimiser being rebuilt each time
(its moments reset). Loss: L1 on both orientations' scores, both self-consistency terms, 0.05
times the two triplet ranking losses and 0.5 times their symmetric L1 gap.

Parameters: the faithful build counts 152,452,265, the number of pyiqa's module and of the
official one, which keep torchvision's ResNet-50 whole: its ImageNet classifier (2,049,000
parameters) is counted but never evaluated. Departures: none in the network. The ``tres-lite``
configuration is not the published model: EfficientNet-Lite0 (24/40/112/320 channels, d_model
496, no classifier) replaces ResNet-50, on 160x160 crops (a 5x5 token grid), so that its four
backbone passes per training crop fit a CPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import stage_backbone, stage_channels, stage_features
from .backbones import BackboneWeights
from .layers import L2Pool


@dataclass(frozen=True)
class TReSConfig:
    """Architecture and input geometry of one TReS variant."""

    name: str
    #: A backbone of :mod:`~iqabench.models.backbones` with four stride-4..32 stages.
    backbone: str = "resnet50"
    #: Keep the backbone's (unused) ImageNet classifier, as the official network does.
    keep_classifier: bool = True
    crop: int = 224
    heads: int = 16
    encoder_layers: int = 2
    feedforward: int = 64
    dropout: float = 0.5
    feature_dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.crop % 32:
            raise ValueError(f"crop must be a multiple of 32, got {self.crop}")

    @property
    def grid(self) -> int:
        """Side of the last stage's map for one crop."""
        return self.crop // 32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TReSConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


#: The published model (152,452,265 parameters).
FULL = TReSConfig(name="tres")
#: EfficientNet-Lite0 backbone without classifier and 160-pixel crops, for CPUs; not the
#: published model.
LITE = TReSConfig(name="tres-lite", backbone="efficientnet_lite0", keep_classifier=False, crop=160)
CONFIGS: dict[str, TReSConfig] = {FULL.name: FULL, LITE.name: LITE}


def sine_position_encoding(channels: int, side: int, temperature: float = 10000.0) -> torch.Tensor:
    """DETR's normalised sine encoding of a ``side x side`` grid, ``(1, channels, side, side)``.

    Row positions fill the first half of the channels and column positions the second; within
    a half, even channels hold sines and odd ones cosines of the position (``1..side`` scaled to
    ``(0, 2 pi]``) over the frequencies ``temperature ** (2 floor(i / 2) / half)``.
    """
    half = channels // 2
    if channels % 4:
        raise ValueError(f"the encoding needs a channel count divisible by 4, got {channels}")
    positions = torch.arange(1, side + 1, dtype=torch.float32) / (side + 1e-6) * (2 * math.pi)
    steps = torch.div(torch.arange(half, dtype=torch.float32), 2, rounding_mode="trunc")
    frequencies = temperature ** (2 * steps / half)
    angles = positions[:, None] / frequencies
    encoded = torch.empty_like(angles)
    encoded[:, 0::2] = angles[:, 0::2].sin()
    encoded[:, 1::2] = angles[:, 1::2].cos()
    rows = encoded.t()[:, :, None].expand(half, side, side)
    columns = encoded.t()[:, None, :].expand(half, side, side)
    return torch.cat([rows, columns]).unsqueeze(0)


class PositionalEncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer with positions added to queries and keys only."""

    def __init__(self, width: int, heads: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.expand = nn.Linear(width, feedforward)
        self.project = nn.Linear(feedforward, width)
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = nn.Dropout(dropout)
        self.output_dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        normed = self.norm1(tokens)
        keyed = normed + positions
        attended = self.attention(keyed, keyed, normed, need_weights=False)[0]
        tokens = tokens + self.attention_dropout(attended)
        hidden = self.dropout(F.relu(self.expand(self.norm2(tokens))))
        return tokens + self.output_dropout(self.project(hidden))


class PositionalEncoder(nn.Module):
    """A stack of :class:`PositionalEncoderLayer` and a final LayerNorm, on ``(N, C, H, W)``
    maps whose positions are the tokens."""

    def __init__(self, width: int, heads: int, feedforward: int, layers: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(
            PositionalEncoderLayer(width, heads, feedforward, dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(width)
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)

    def forward(self, grid: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        batch, width, height, breadth = grid.shape
        tokens = grid.flatten(2).transpose(1, 2)
        keys = positions.flatten(2).transpose(1, 2)
        for layer in self.layers:
            tokens = layer(tokens, keys)
        return self.norm(tokens).transpose(1, 2).reshape(batch, width, height, breadth)


class TReSBranch(NamedTuple):
    """One orientation's outputs: scores ``(N,)``, the encoder's output map ``(N, d, g, g)``
    and the last backbone stage ``(N, C4, g, g)`` (the self-consistency representations)."""

    score: torch.Tensor
    tokens: torch.Tensor
    last_stage: torch.Tensor


class TReSNet(nn.Module):
    """TReS: one quality score per normalised RGB crop of ``config.crop`` pixels."""

    def __init__(self, config: TReSConfig = FULL, weights: BackboneWeights | None = None):
        super().__init__()
        self.config = config
        c = config
        self.backbone = stage_backbone(c.backbone, weights, keep_classifier=c.keep_classifier)
        channels = stage_channels(self.backbone)
        width = sum(channels)
        if width % c.heads:
            raise ValueError(f"{width} feature channels do not split over {c.heads} heads")
        self.l2pool = nn.ModuleList(L2Pool(ch) for ch in channels)
        self.feature_dropout = nn.Dropout(c.feature_dropout)
        self.encoder = PositionalEncoder(width, c.heads, c.feedforward, c.encoder_layers, c.dropout)
        self.register_buffer("positions", sine_position_encoding(width, c.grid), persistent=False)
        self.token_projection = nn.Linear(width, channels[-1])
        self.head = nn.Linear(2 * channels[-1], 1)

    def branch(self, x: torch.Tensor, feature_dropout: bool = True) -> TReSBranch:
        """Score one orientation; ``feature_dropout`` drops out the pooled stage features (the
        official network does so on the plain branch, not on the mirrored one)."""
        if x.shape[-2:] != (self.config.crop, self.config.crop):
            raise ValueError(f"TReS takes {self.config.crop}-pixel crops, got {x.shape[-2:]}")
        stages = stage_features(self.backbone, x)
        grid = []
        for index, (stage, l2pool) in enumerate(zip(stages, self.l2pool, strict=True)):
            feature = l2pool(F.normalize(stage, dim=1))
            if feature_dropout:
                feature = self.feature_dropout(feature)
            factor = 2 ** (len(stages) - 1 - index)
            grid.append(F.avg_pool2d(feature, factor) if factor > 1 else feature)
        tokens = self.encoder(torch.cat(grid, dim=1), self.positions)
        summary = self.token_projection(tokens.mean(dim=(2, 3)))
        last = stages[-1]
        score = self.head(torch.cat([summary, last.mean(dim=(2, 3))], dim=1)).squeeze(1)
        return TReSBranch(score, tokens, last)

    def forward_pair(self, x: torch.Tensor) -> tuple[TReSBranch, TReSBranch]:
        """The plain branch of ``x`` and the branch of its horizontal mirror (no feature
        dropout), as one call of the official network computes them."""
        return self.branch(x), self.branch(torch.flip(x, dims=[3]), feature_dropout=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, 3, crop, crop)`` normalised crops; returns ``(N,)`` scores."""
        return self.branch(x).score
