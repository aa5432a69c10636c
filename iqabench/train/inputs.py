"""How a deep model sees an image: preparation (once per image) and normalisation (per batch).

An :class:`InputSpec` is part of what a deep metric declares. Preparation turns a metric input
(``float64`` on the 0..255 scale, grey ``(H, W)`` or RGB ``(H, W, 3)``, see
:func:`iqabench.imageio.to_metric_input`) into a channel-first array ``(C, H, W)`` on the same
scale: ``C`` is 1 for ``channels="grey"`` and 3 for ``"rgb"`` (grey replicated), the image is
resized once to ``resize`` (PIL bilinear per channel, as the reference pipelines' torchvision
``Resize`` on PIL images), enlarged if needed so that a ``crop`` fits, and stored as ``uint8``
(rounded, as an 8-bit PIL pipeline sees it) or ``float32`` (16-bit precision kept).
Normalisation happens on the device: ``(v / 255 - mean) / std`` per channel.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import torch

    from .runtime import Runtime

#: Keys of a batch that hold pixels (normalised on the device); everything else passes as is.
PIXEL_KEYS = ("image", "ref")


@dataclass(frozen=True)
class InputSpec:
    """Channels, geometry, storage and normalisation of a deep model's input."""

    channels: Literal["grey", "rgb"] = "rgb"
    #: ``(height, width)`` every image is resized to once; None keeps the image's own size.
    resize: tuple[int, int] | None = None
    #: Side of the square crops the default sampler cuts (an image is enlarged, keeping its
    #: aspect ratio, when it is smaller); None for samplers that need no crop.
    crop: int | None = 224
    #: Random flips of the training crops: horizontal (left-right) and vertical (up-down).
    hflip: bool = True
    vflip: bool = False
    #: ``uint8`` (rounded to 8 bits) or ``float32`` (the 0..255 values as read).
    depth: Literal["uint8", "float32"] = "uint8"
    #: Per-channel mean and standard deviation on the 0..1 scale; None: those the backbone's
    #: ImageNet weights were trained with.
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.channels not in ("grey", "rgb"):
            raise ValueError(f"channels must be grey or rgb, not {self.channels!r}")
        if self.depth not in ("uint8", "float32"):
            raise ValueError(f"depth must be uint8 or float32, not {self.depth!r}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither (the backbone's)")
        if self.crop is not None and self.resize is not None and self.crop > min(self.resize):
            raise ValueError("crop must be no larger than the resized image")

    @property
    def n_channels(self) -> int:
        return 1 if self.channels == "grey" else 3

    def normalisation(
        self, backbone: tuple[tuple[float, ...], tuple[float, ...]] | None
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The (mean, std) to use: the spec's own, else the backbone weights' ``backbone``."""
        if self.mean is not None and self.std is not None:
            mean, std = self.mean, self.std
        elif backbone is not None:
            mean, std = backbone
        else:
            raise ValueError("an input spec without mean/std needs a backbone's normalisation")
        if len(mean) != self.n_channels or len(std) != self.n_channels:
            raise ValueError(f"{self.channels} input needs {self.n_channels} mean/std values")
        return tuple(float(m) for m in mean), tuple(float(s) for s in std)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("resize", "mean", "std"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data

    def preparation_key(self) -> str:
        """A short hash of what preparation depends on (names cached prepared images)."""
        keyed = {k: self.to_dict()[k] for k in ("channels", "resize", "crop", "depth")}
        return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]


def prepare(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A metric input (float 0..255, ``(H, W)`` or ``(H, W, 3)``) as ``spec`` stores it:
    ``(C, H', W')``, ``uint8`` or ``float32``, on the 0..255 scale."""
    from ..imageio import rgb2gray

    data = np.asarray(pixels, dtype=np.float64)
    if data.ndim == 3 and spec.channels == "grey":
        data = rgb2gray(data)
    if data.ndim == 2:
        data = data[None] if spec.channels == "grey" else np.repeat(data[None], 3, axis=0)
    elif data.ndim == 3 and data.shape[2] == 3:
        data = np.moveaxis(data, 2, 0)
    else:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {data.shape}")
    if spec.depth == "uint8":
        data = np.clip(np.rint(data), 0, 255).astype(np.uint8)
    else:
        data = data.astype(np.float32)
    size = _target_size(data.shape[1:], spec)
    if size != data.shape[1:]:
        data = np.stack([_resize_plane(plane, size) for plane in data])
    return np.ascontiguousarray(data)


def _target_size(shape: tuple[int, ...], spec: InputSpec) -> tuple[int, int]:
    height, width = spec.resize if spec.resize is not None else (int(shape[0]), int(shape[1]))
    if spec.crop is not None and min(height, width) < spec.crop:
        scale = spec.crop / min(height, width)
        height, width = max(spec.crop, round(height * scale)), max(spec.crop, round(width * scale))
    return int(height), int(width)


def _resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One channel resized with PIL's bilinear filter (8-bit mode L, or 32-bit float mode F)."""
    from PIL import Image

    height, width = size
    resized = Image.fromarray(plane).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=plane.dtype)


def to_network_input(
    pixels: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    runtime: Runtime,
) -> torch.Tensor:
    """``(..., C, H, W)`` pixels on 0..255 -> float on the device, ``(v / 255 - mean) / std``
    (computed as ``v / (255 std) - mean / std``), channels-last for 4-D batches on GPUs."""
    import torch

    x = pixels.to(runtime.device, non_blocking=True).float()
    shape = (-1, 1, 1)
    scale = torch.tensor([255.0 * s for s in std], device=x.device).view(shape)
    shift = torch.tensor([m / s for m, s in zip(mean, std, strict=True)], device=x.device)
    x = x.div_(scale).sub_(shift.view(shape))
    if runtime.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
