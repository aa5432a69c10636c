"""Building blocks of NestConvNeXt-IQA: L2 pooling, the ConvNeXt block, the nested
residual-dense decoder levels and the dual-attention distillation block (DASB).

Paper: "No-Reference LWIR Image Quality Assessment via NestConvNeXt and Lightweight Dual
Attention Networks" (reference code: github.com/LMZouaoui/NestConvNeXt-IQA). Written from the
paper's description and a reading of that code; layer order, widths and constants follow it so
that the parameter count (about 300.9 M for the full model) matches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class L2Pool(nn.Module):
    """L2 pooling: square root of the Hann-filtered squares, stride 1, same size out.

    The window is the 3x3 outer product of the inner taps of a 5-tap Hann window
    (``[0.5, 1, 0.5]``), normalised to sum 1, applied per channel. Used on every backbone stage
    (after channel-wise L2 normalisation) to remove aliasing before the spatial averaging.
    """

    def __init__(self, channels: int, taps: int = 5) -> None:
        super().__init__()
        window = np.hanning(taps)[1:-1]
        kernel = torch.tensor(np.outer(window, window) / np.outer(window, window).sum())
        self.channels = channels
        self.padding = (kernel.shape[-1] - 1) // 2
        self.register_buffer(
            "kernel",
            kernel.float().expand(channels, 1, *kernel.shape).contiguous(),
            persistent=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In fp32 even under autocast: in fp16 the 1e-12 guard underflows, and the square root
        # of an all-zero neighbourhood (common after ReLU) would give an infinite gradient.
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            filtered = F.conv2d(x * x, self.kernel, padding=self.padding, groups=self.channels)
            return torch.sqrt(filtered + 1e-12)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block (Liu et al., CVPR 2022): 7x7 depthwise conv, LayerNorm, 4x MLP with GELU,
    layer scale, residual. No stochastic depth (the reference uses drop-path 0)."""

    def __init__(self, dim: int, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.expand = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.project = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.gamma * self.project(self.act(self.expand(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class DenseConvNeXtLayer(nn.Module):
    """One dense layer: 3x3 conv to ``growth`` channels, GELU, then a single ConvNeXt block
    applied ``repeats`` times with shared weights; the result is concatenated to the input."""

    def __init__(self, in_channels: int, growth: int, repeats: int, layer_scale: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, growth, kernel_size=3, padding=1)
        self.act = nn.GELU()
        self.block = ConvNeXtBlock(growth, layer_scale)
        self.repeats = repeats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv(x))
        for _ in range(self.repeats):
            y = self.block(y)
        return torch.cat([x, y], dim=1)


class NestLevel(nn.Module):
    """One level of the nested (UNet++-like) residual-dense ConvNeXt decoder.

    ``layers`` dense layers are chained densely: layer ``k`` (``k >= 1``) sees everything layer
    ``k - 1`` saw and produced, plus one output of the deeper level (``side`` channels). After
    each dense layer a 1x1 convolution fuses the accumulated features back to ``growth``
    channels; those fused maps are the level's outputs, in order (only the last one with
    ``last_only``: the shallowest level feeds no other level). With ``residual`` (the deepest
    level: one layer, ``growth == in_channels``) the input is added to the output (local
    residual learning).

    Channel bookkeeping (``c`` input, ``g`` growth, ``s`` side): dense layer ``k`` takes
    ``c + k (g + s)`` channels; fusion ``k`` takes ``c + (k + 1) g + k s``.
    """

    def __init__(
        self,
        in_channels: int,
        growth: int,
        side: int,
        layers: int,
        repeats: int,
        layer_scale: float,
        residual: bool = False,
        last_only: bool = False,
    ) -> None:
        super().__init__()
        if residual and (layers != 1 or growth != in_channels):
            raise ValueError("a residual level has one dense layer and growth == in_channels")
        self.dense = nn.ModuleList(
            DenseConvNeXtLayer(in_channels + k * (growth + side), growth, repeats, layer_scale)
            for k in range(layers)
        )
        fused = range(layers - 1, layers) if last_only else range(layers)
        self.fuse = nn.ModuleDict(
            {str(k): nn.Conv2d(in_channels + (k + 1) * growth + k * side, growth, 1) for k in fused}
        )
        self.residual = residual

    def forward(self, x: torch.Tensor, sides: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(sides) != len(self.dense) - 1:
            raise ValueError(f"level expects {len(self.dense) - 1} side inputs, got {len(sides)}")
        outputs = []
        features = x
        for k, dense in enumerate(self.dense):
            features = dense(features if k == 0 else torch.cat([features, sides[k - 1]], dim=1))
            if str(k) in self.fuse:
                outputs.append(self.fuse[str(k)](features))
        if self.residual:
            outputs[-1] = outputs[-1] + x
        return outputs


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: global average, 1x1 to C/r, ReLU, 1x1 back, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, channels // reduction, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class PixelAttention(nn.Module):
    """Per-pixel gate: 1x1 to C/r, SiLU, 1x1 to one map, sigmoid."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, kernel_size=1),
            nn.SiLU(inplace=True),
            nn.Conv2d(channels // reduction, 1, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class DualAttention(nn.Module):
    """1x1 conv to ``2 * expansion * C`` channels, 7x7 depthwise conv, split in two halves:
    channel attention on one, pixel attention on the other; concatenate and fuse back to C."""

    def __init__(self, channels: int, expansion: int = 2, reduction: int = 8) -> None:
        super().__init__()
        hidden = channels * expansion
        self.expand = nn.Conv2d(channels, 2 * hidden, kernel_size=1)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, kernel_size=7, padding=3, groups=2 * hidden)
        self.channel = ChannelAttention(hidden, reduction)
        self.pixel = PixelAttention(hidden, reduction)
        self.fuse = nn.Conv2d(2 * hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        to_channel, to_pixel = self.dwconv(self.expand(x)).chunk(2, dim=1)
        return self.fuse(torch.cat([self.channel(to_channel), self.pixel(to_pixel)], dim=1))


class DASB(nn.Module):
    """Dual-attention distillation block: half the channels ("distilled") go through a 3x3 conv
    and :class:`DualAttention`; they are concatenated with the untouched half and the block
    input is added."""

    def __init__(self, channels: int, expansion: int = 2, reduction: int = 8) -> None:
        super().__init__()
        self.distilled = channels // 2
        self.conv = nn.Conv2d(self.distilled, self.distilled, kernel_size=3, padding=1)
        self.attention = DualAttention(self.distilled, expansion, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled, remaining = x[:, : self.distilled], x[:, self.distilled :]
        return x + torch.cat([self.attention(self.conv(distilled)), remaining], dim=1)
