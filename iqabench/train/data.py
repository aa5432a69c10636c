"""Images for training and scoring: decoded and resized once, then cut into crops.

NestConvNeXt-IQA sees every image resized to 512x512 and cut into random 224x224 crops (with
random horizontal and vertical flips for training). The resize follows the reference pipeline
(torchvision ``Resize`` on a PIL grey image): the image is rounded to 8 bits and resized with
PIL's bilinear filter, once, into a ``uint8`` cache; crops are sliced from the cache. Every
random draw is a pure function of ``(seed, epoch, sample)`` (training) or ``(seed, image
content)`` (evaluation), so results do not depend on worker count, batch order or how a caller
groups images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

# Distinct first words keep the seed sequences of the different random streams apart.
_PERMUTATION, _TRAIN_CROP, _EVAL_CROP = 1, 2, 3


def prepare_image(image: np.ndarray, size: int) -> np.ndarray:
    """A metric input (float 0..255, grey ``(H, W)`` or RGB) as a ``size`` x ``size`` uint8
    grey image, resized as the reference code does (8-bit PIL image, bilinear)."""
    from PIL import Image

    from ..imageio import rgb2gray

    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 3:
        pixels = rgb2gray(pixels)
    if pixels.ndim != 2:
        raise ValueError(f"expected a grey (H, W) image, got shape {pixels.shape}")
    grey = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    resized = Image.fromarray(grey).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def image_key(pixels: np.ndarray) -> int:
    """A 63-bit content key of a prepared image (seeds its evaluation crops)."""
    digest = hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass
class ImageSet:
    """Prepared images (``(N, S, S)`` uint8) with their quality labels (higher is better)."""

    images: np.ndarray
    quality: np.ndarray

    def __post_init__(self) -> None:
        self.quality = np.asarray(self.quality, dtype=np.float32).ravel()
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise ValueError("ImageSet.images must be an (N, S, S) uint8 array")
        if len(self.images) != len(self.quality):
            raise ValueError("ImageSet needs one quality value per image")

    @classmethod
    def from_images(
        cls, images: Sequence[np.ndarray], quality: Sequence[float], size: int
    ) -> ImageSet:
        """Prepare metric inputs (see :func:`prepare_image`)."""
        prepared = [prepare_image(image, size) for image in images]
        stacked = np.stack(prepared) if prepared else np.zeros((0, size, size), np.uint8)
        return cls(stacked, np.asarray(quality, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.images)

    def fingerprint(self) -> str:
        """SHA-256 over the prepared pixels and labels, in order."""
        digest = hashlib.sha256()
        for pixels, quality in zip(self.images, self.quality, strict=True):
            digest.update(pixels.tobytes())
            digest.update(np.float32(quality).tobytes())
        return digest.hexdigest()


def epoch_order(n_samples: int, seed: int, epoch: int) -> list[int]:
    """The shuffled sample order of one training epoch."""
    rng = np.random.default_rng((_PERMUTATION, seed, epoch))
    return rng.permutation(n_samples).tolist()


class TrainCrops(Dataset):
    """``crops_per_image`` random crops of every image per epoch, randomly flipped.

    Sample ``i`` is a crop of image ``i // crops_per_image``; its position and flips are drawn
    from ``(seed, epoch, i)``. Set :attr:`epoch` before each epoch's loader is created (workers
    receive a fresh copy of the dataset every epoch). Returns ``(crop, quality)`` with the crop
    a ``(1, crop, crop)`` uint8 tensor; normalisation happens on the device.
    """

    def __init__(self, data: ImageSet, crops_per_image: int, crop: int, seed: int) -> None:
        self.data = data
        self.crops_per_image = crops_per_image
        self.crop = crop
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.data) * self.crops_per_image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.data.images[index // self.crops_per_image]
        rng = np.random.default_rng((_TRAIN_CROP, self.seed, self.epoch, index))
        top, left = rng.integers(0, image.shape[0] - self.crop + 1, size=2)
        patch = image[top : top + self.crop, left : left + self.crop]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if rng.random() < 0.5:
            patch = patch[::-1, :]
        quality = self.data.quality[index // self.crops_per_image]
        return torch.from_numpy(np.ascontiguousarray(patch))[None], torch.tensor(quality)


def eval_crops(pixels: np.ndarray, n: int, crop: int, seed: int) -> np.ndarray:
    """``n`` random crops (no flips) of one prepared image, drawn from its content and seed."""
    rng = np.random.default_rng((_EVAL_CROP, seed, image_key(pixels)))
    corners = rng.integers(0, pixels.shape[0] - crop + 1, size=(n, 2))
    return np.stack([pixels[t : t + crop, s : s + crop] for t, s in corners])
