"""RADN: full-reference quality from aligned patch pairs through a deformable, attentive WResNet.

Paper: Shi, Bai, Cao, Xia, Wang, Chen and Yang, "Region-Adaptive Deformable Network for Image
Quality Assessment", IEEE/CVF CVPR Workshops (NTIRE) 2021, arXiv 2104.11599 (doi
10.48550/arXiv.2104.11599); official code github.com/IIGROUP/RADN (read, not copied).

Data flow for one image, cut into ``P`` aligned 32x32 patch pairs (distorted, reference):

1. both patches of every pair run through the same early WResNet trunk: four residual stages
   (64, 128, 256 and 256 channels at 32, 16, 8 and 8 pixels), each a 3x3 convolution (stride 2
   where the size halves) followed by three 3x3 convolutions, a ReLU after every convolution,
   no BatchNorm, and a shortcut from the stage's first convolution to its fourth;
2. reference-oriented deformable convolution: a 3x3 convolution of the *reference* features
   predicts the offsets of a 3x3 kernel (18 channels), which two deformable 3x3 convolutions
   (``torchvision.ops.deform_conv2d``, one per branch) apply to the distorted and to the
   reference features alike, so both are resampled at the same reference-chosen positions;
3. the late trunk, per branch and shared by both: a residual stage to 512 channels (stride 2,
   4x4), a 3x3 stride-2 convolution and a 3x3 convolution (2x2), average pooling to a
   512-vector per patch;
4. patch-level attention: a non-local block (embedded Gaussian, softmax over patches, 256
   inner channels, output projection zero-initialised so that it starts as the identity) lets
   the patches of one image exchange information, one block per branch;
5. per patch, ``[d - r, d, r]`` (1536) feeds a score head and a weight head (each 512 hidden
   units, ReLU, dropout 0.5); the image score is the weighted mean of the patch scores, the
   weights being ``ReLU(w) + 1e-6``.

Input spec (as the official code): RGB patches on the 0..1 scale (``to_tensor``), no mean/std
normalisation; grey images are given as three equal channels. Training: 32 random aligned
patch pairs per image per step; testing: every non-overlapping 32x32 patch pair of the image.

Training recipe of the paper and official code: L2 loss (mean squared error) against MOS
divided by the dataset's largest MOS; Adam, learning rate 1e-4 (the regression heads and the
trunk in two groups at the same rate), no weight decay; the rate multiplied by 0.8 every 50
epochs (``StepLR``), 200 epochs, batches of 2 images x 32 patch pairs; the model kept is the
one with the lowest validation RMSE. No pretrained weights: it trains from scratch.

Parameters: the faithful configuration counts 21,881,812, exactly the official ``RADN``
module; its WResNet layers (the five residual stages and the two heads) count 14,889,410,
exactly the official ``WResNet`` baseline. The count is measured here, in the tests.

Departures (none in the faithful configuration's layers, widths or initialisation):

* the patches of an image are processed as one batch and the non-local block is written with
  linear layers over the patch axis; the official code loops over images and uses 1x1
  convolutions on a ``(1, 512, P, 1)`` tensor, which is the same computation and the same
  parameters;
* the pooling after the last convolution is a mean over the remaining grid (2x2 for 32-pixel
  patches, exactly the official ``avg_pool2d(., 2)``), so other patch sizes also work;
* offsets: the official code leaves the offset convolution at PyTorch's default
  initialisation, so the offsets are small but *not* zero at the start (unlike Dai et al.'s
  deformable networks, which zero-initialise them); the faithful configuration keeps that;
* the image score is multiplied by a fixed ``quality_scale`` buffer, the training set's
  largest quality: regressing ``scale x output`` on the quality with Adam is the official
  regression of the output on MOS divided by its maximum (Adam is blind to the constant factor
  in the loss), and the scores come out on the quality scale;
* the lite configuration (an eighth of the widths, 8 patch pairs per training sample) is not
  the published model, and these iqabench choices make a short CPU training learn. Zero offsets
  (``zero_offsets``: it starts from a plain convolution) and Kaiming-normal initialisation of
  the trunk (``he_init``): with PyTorch's default initialisation, which shrinks activations at
  every layer of this normalisation-free trunk, a narrow network learned nothing in a few
  hundred steps. One deformable convolution and one attention block for both branches
  (``shared_branches``): with a pair of them, as in the official code, ``d - r`` at
  initialisation is about 69% of ``r`` whatever the distortion, and even from identical
  copies the two drift apart in training until their difference, applied to the content,
  drowns the distortion. The heads read ``50 (d - r)`` alone (``head_inputs``,
  ``difference_gain``): at initialisation ``|d - r|`` is 1e-3 to 5e-2 of a feature scale of
  about 0.7, the content terms ``d`` and ``r`` dominate the heads' input, and the lite
  network's training did not learn or collapsed to a constant score (measured on
  synthetic-lwir, a plain loop of 300-400 steps for each of these settings; with all of them,
  per-type test SROCC 0.95-0.98 after 1,000 steps). No dropout in the narrow heads, which
  learned faster without it (``registry/radn-lite.yaml``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import DeformConv2d

#: The 3x3 kernel whose sampling positions the offsets move: (dy, dx) per tap.
KERNEL = 3
OFFSET_CHANNELS = 2 * KERNEL * KERNEL
#: Added to every patch weight so that an image's weights never sum to zero.
WEIGHT_FLOOR = 1e-6


@dataclass(frozen=True)
class RADNConfig:
    """Architecture and input geometry of one RADN variant."""

    name: str
    #: Channels of the residual stages: stage 1, stage 2, stages 3-4 (and the deformable
    #: convolutions), stage 5 and the last two convolutions.
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    #: Hidden units of the score and weight heads.
    head_width: int = 512
    #: Inner channels of the patch-level attention.
    attention_width: int = 256
    dropout: float = 0.5
    in_channels: int = 3
    #: Side of the square patches, and how many random patch pairs an image gives per step.
    patch_size: int = 32
    train_patches: int = 32
    #: Zero-initialise the offset convolution (Dai et al.'s practice; not the official code's).
    zero_offsets: bool = False
    #: Kaiming-normal initialisation (He et al., ICCV 2015; fan-in, ReLU gain, zero biases) of
    #: the trunk's convolutions instead of PyTorch's default (the official code's).
    he_init: bool = False
    #: One deformable convolution and one patch attention serve both branches (a Siamese
    #: network, so ``d - r`` is the difference of one function of the two patches); the
    #: official code gives each branch its own.
    shared_branches: bool = False
    #: What the score and weight heads read per patch: ``"all"``, ``[d - r, d, r]`` (the
    #: official code), or ``"difference"``, ``difference_gain * (d - r)`` alone.
    head_inputs: str = "all"
    difference_gain: float = 1.0
    #: Whether training needs a GPU to finish in reasonable time (CPU only when asked).
    gpu_recommended: bool = True

    def __post_init__(self) -> None:
        if self.patch_size % 16:
            raise ValueError("patch_size must be a multiple of 16 (four halvings)")
        if self.head_inputs not in ("all", "difference"):
            raise ValueError("head_inputs must be 'all' or 'difference'")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RADNConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "widths" in known:
            known["widths"] = tuple(int(w) for w in known["widths"])
        return cls(**known)


#: The published model (21,881,812 parameters, as the official module).
FULL = RADNConfig(name="radn")
#: An eighth of the widths (8/16/32/64, heads 64, attention 32) and 8 patch pairs per training
#: sample, for CPU training in minutes.
LITE = RADNConfig(
    name="radn-lite",
    widths=(8, 16, 32, 64),
    head_width=64,
    attention_width=32,
    train_patches=8,
    zero_offsets=True,
    he_init=True,
    shared_branches=True,
    head_inputs="difference",
    difference_gain=50.0,
    dropout=0.0,
    gpu_recommended=False,
)
CONFIGS: dict[str, RADNConfig] = {FULL.name: FULL, LITE.name: LITE}


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, KERNEL, stride=stride, padding=KERNEL // 2)


class ResidualStage(nn.Module):
    """WResNet's modified residual block: an entry 3x3 convolution (``stride``), three more,
    a ReLU after each and no normalisation; the entry's output is added to the fourth's."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.entry = _conv(cin, cout, stride)
        self.body = nn.ModuleList(_conv(cout, cout) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = F.relu(self.entry(x))
        y = shortcut
        for conv in self.body:
            y = F.relu(conv(y))
        return y + shortcut


class PatchAttention(nn.Module):
    """Non-local block (Wang et al., CVPR 2018; embedded Gaussian) over the patches of each
    image: ``x + W softmax(theta(x) phi(x)^T) g(x)``, with ``W`` zero-initialised."""

    def __init__(self, channels: int, inner: int, output_bias: bool = True) -> None:
        super().__init__()
        self.theta = nn.Linear(channels, inner)
        self.phi = nn.Linear(channels, inner)
        self.g = nn.Linear(channels, inner)
        self.out = nn.Linear(inner, channels, bias=output_bias)
        nn.init.zeros_(self.out.weight)
        if output_bias:
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, P, C)`` patch features of ``B`` images; returns the same shape."""
        affinity = self.theta(x) @ self.phi(x).transpose(1, 2)
        return x + self.out(torch.softmax(affinity, dim=-1) @ self.g(x))


def _head(features: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
    )


class RADN(nn.Module):
    """The Region-Adaptive Deformable Network: one score per image from its patch pairs."""

    def __init__(self, config: RADNConfig = FULL) -> None:
        super().__init__()
        self.config = config
        w1, w2, w3, w4 = config.widths
        self.early = nn.Sequential(
            ResidualStage(config.in_channels, w1, 1),
            ResidualStage(w1, w2, 2),
            ResidualStage(w2, w3, 2),
            ResidualStage(w3, w3, 1),
        )
        self.offsets = _conv(w3, OFFSET_CHANNELS)
        if config.zero_offsets:
            nn.init.zeros_(self.offsets.weight)
            nn.init.zeros_(self.offsets.bias)
        self.deform_distorted = DeformConv2d(w3, w3, KERNEL, padding=KERNEL // 2)
        self.deform_reference = (
            self.deform_distorted
            if config.shared_branches
            else DeformConv2d(w3, w3, KERNEL, padding=KERNEL // 2)
        )
        self.late = nn.Sequential(
            ResidualStage(w3, w4, 2),
            _conv(w4, w4, 2),
            nn.ReLU(),
            _conv(w4, w4),
            nn.ReLU(),
        )
        # Shared by both branches and read through d - r alone, the output bias would cancel:
        # it is left out.
        difference_only = config.shared_branches and config.head_inputs == "difference"
        self.attention_distorted = PatchAttention(
            w4, config.attention_width, output_bias=not difference_only
        )
        self.attention_reference = (
            self.attention_distorted
            if config.shared_branches
            else PatchAttention(w4, config.attention_width)
        )
        head_features = w4 if config.head_inputs == "difference" else 3 * w4
        self.score_head = _head(head_features, config.head_width, config.dropout)
        self.weight_head = _head(head_features, config.head_width, config.dropout)
        #: The image score is the weighted patch mean times this (the training set's largest
        #: quality; a buffer, so checkpoints keep it): the official recipe's regression of MOS
        #: divided by the largest MOS, written so that scores come out on the quality scale.
        self.register_buffer("quality_scale", torch.tensor(1.0))
        if config.he_init:
            for conv in (*self.early.modules(), *self.late.modules()):
                if isinstance(conv, nn.Conv2d):
                    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                    nn.init.zeros_(conv.bias)

    def wresnet_modules(self) -> list[nn.Module]:
        """The layers RADN shares with the WResNet baseline (its five stages and two heads)."""
        return [*self.early, self.late[0], self.score_head, self.weight_head]

    def patch_outputs(
        self, distorted: torch.Tensor, reference: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-patch scores and weights, each ``(B, P)``, of ``(B, P, C, H, W)`` patch pairs."""
        batch, patches = distorted.shape[:2]
        both = torch.cat([distorted.flatten(0, 1), reference.flatten(0, 1)])
        features_d, features_r = self.early(both).chunk(2)
        offsets = self.offsets(features_r)
        aligned = torch.cat(
            [
                self.deform_distorted(features_d, offsets),
                self.deform_reference(features_r, offsets),
            ]
        )
        vectors_d, vectors_r = self.late(aligned).mean(dim=(2, 3)).chunk(2)
        d = self.attention_distorted(vectors_d.view(batch, patches, -1))
        r = self.attention_reference(vectors_r.view(batch, patches, -1))
        if self.config.head_inputs == "difference":
            joint = self.config.difference_gain * (d - r)
        else:
            joint = torch.cat([d - r, d, r], dim=-1)
        scores = self.score_head(joint).squeeze(-1)
        weights = F.relu(self.weight_head(joint).squeeze(-1)) + WEIGHT_FLOOR
        return scores, weights

    def forward(self, distorted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """``(B, P, C, H, W)`` aligned patch pairs on the 0..1 scale; returns ``(B,)`` scores."""
        scores, weights = self.patch_outputs(distorted, reference)
        return self.quality_scale * (scores * weights).sum(dim=1) / weights.sum(dim=1)


def parameter_count(modules: nn.Module | list[nn.Module]) -> int:
    """Number of parameters of a module (or of a list of modules)."""
    if isinstance(modules, nn.Module):
        modules = [modules]
    return sum(p.numel() for module in modules for p in module.parameters())
