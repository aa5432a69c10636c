"""NAFNet, the nonlinear-activation-free restoration U-Net, with optional vector guidance.

Paper: L. Chen, X. Chu, X. Zhang and J. Sun, "Simple Baselines for Image Restoration", ECCV
2022, doi:10.1007/978-3-031-20071-7_2 (reference code github.com/megvii-research/NAFNet, read,
not copied). Hand-written here: no maintained library packages NAFNet.

A 3x3 convolution to ``width`` channels; per encoder level NAF blocks then a 2x2 stride-2
convolution doubling the channels; middle blocks; per decoder level a 1x1 convolution and pixel
shuffle halving the channels, the encoder skip added, NAF blocks; a 3x3 convolution back to the
image channels and a global residual (the output is the input plus the predicted correction).
Inputs are padded to a multiple of ``2 ** levels`` and the output cropped back.

A NAF block: LayerNorm over channels, 1x1 expansion x2, 3x3 depthwise convolution, SimpleGate
(the product of the two channel halves), simplified channel attention (global average, 1x1,
multiply), 1x1 back, a residual scaled by a learned per-channel ``beta`` (initially 0); then a
feed-forward half (LayerNorm, 1x1 x2, SimpleGate, 1x1) with its own learned scale ``gamma``.

Guidance (for DRI-IQA, :mod:`iqabench.models.dri_iqa`): when ``guide_dim`` is set, each block
also takes a vector ``g`` and modulates its first normalised input feature-wise,
``x * (1 + a(g)) + b(g)`` with ``(a, b)`` a linear map of ``g`` initialised to zero (so the
guided network starts as plain NAFNet). This guidance layer is this project's choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel of an ``(N, C, H, W)`` map."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """NAFNet's SimpleGate: the elementwise product of the two channel halves."""
    first, second = x.chunk(2, dim=1)
    return first * second


class NAFBlock(nn.Module):
    """One NAF block (see the module docstring), optionally modulated by a guide vector."""

    def __init__(self, channels: int, guide_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        c = channels
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, 2 * c, 1)
        self.conv2 = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1))
        self.conv3 = nn.Conv2d(c, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.dropout = nn.Dropout(dropout)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.guide = None
        if guide_dim is not None:
            self.guide = nn.Linear(guide_dim, 2 * c)
            nn.init.zeros_(self.guide.weight)
            nn.init.zeros_(self.guide.bias)

    def forward(self, x: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        y = self.norm1(x)
        if self.guide is not None:
            if guide is None:
                raise ValueError("a guided NAF block needs its guide vector")
            scale, shift = self.guide(guide)[:, :, None, None].chunk(2, dim=1)
            y = y * (1 + scale) + shift
        y = simple_gate(self.conv2(self.conv1(y)))
        y = self.conv3(y * self.sca(y))
        x = x + self.dropout(y) * self.beta
        y = self.conv5(simple_gate(self.conv4(self.norm2(x))))
        return x + self.dropout(y) * self.gamma


class NAFStage(nn.Module):
    """NAF blocks in sequence, all given the same guide."""

    def __init__(self, channels: int, blocks: int, guide_dim: int | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(NAFBlock(channels, guide_dim) for _ in range(blocks))

    def forward(self, x: torch.Tensor, guide: torch.Tensor | None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, guide)
        return x


class NAFNet(nn.Module):
    """NAFNet (see the module docstring): ``(N, C, H, W)`` in, the restored image out."""

    def __init__(
        self,
        channels: int = 3,
        width: int = 32,
        encoder_blocks: Sequence[int] = (2, 2, 4, 8),
        middle_blocks: int = 12,
        decoder_blocks: Sequence[int] = (2, 2, 2, 2),
        guide_dim: int | None = None,
    ) -> None:
        super().__init__()
        if len(encoder_blocks) != len(decoder_blocks):
            raise ValueError("NAFNet needs as many decoder levels as encoder levels")
        self.intro = nn.Conv2d(channels, width, 3, padding=1)
        self.ending = nn.Conv2d(width, channels, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        c = width
        for blocks in encoder_blocks:
            self.encoders.append(NAFStage(c, blocks, guide_dim))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = NAFStage(c, middle_blocks, guide_dim)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for blocks in decoder_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(NAFStage(c, blocks, guide_dim))
        self.multiple = 2 ** len(encoder_blocks)

    def forward(self, image: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        x = self.intro(F.pad(image, (0, pad_w, 0, pad_h)))
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x, guide)
            skips.append(x)
            x = down(x)
        x = self.middle(x, guide)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            x = decoder(up(x) + skip, guide)
        return self.ending(x)[..., :height, :width] + image
