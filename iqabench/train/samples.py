"""What a network is fed: samples cut from prepared images, and the datasets that serve them.

A :class:`Sampler` turns one prepared image (and its aligned reference, for full-reference
models) into a sample: a dict of arrays whose ``image``/``ref`` entries are pixels (normalised
later, on the device) and whose other entries (patch positions, masks...) pass through as they
are. :class:`RandomCrops` is the usual one: random square crops, randomly flipped for training,
the same window cut from the image and its reference. A model with other needs (RADN's sets of
patch pairs, VTAMIQ's context-aware patch sequences) declares its own sampler; nothing else in
the trainer changes.

Every random draw is a pure function of ``(seed, epoch, sample)`` for training and of ``(seed,
image content)`` for evaluation, so results do not depend on worker count, batch order or how
a caller groups images.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from .images import ImageSource

Sample = dict[str, np.ndarray]

# Distinct first words keep the seed sequences of the different random streams apart.
_PERMUTATION, _TRAIN_SAMPLE, _EVAL_SAMPLE = 1, 2, 3


class Sampler(Protocol):
    """Cuts samples from a prepared ``(C, H, W)`` image and its reference (None for NR)."""

    def train(self, image: np.ndarray, ref: np.ndarray | None, rng: np.random.Generator) -> Sample:
        """One training sample (arrays without a batch axis)."""
        ...

    def test(
        self, image: np.ndarray, ref: np.ndarray | None, count: int, rng: np.random.Generator
    ) -> Sample:
        """``count`` evaluation samples (or as many as the sampler defines), stacked on a first
        axis; the image's score is the mean of their predictions."""
        ...

    def describe(self) -> dict[str, Any]:
        """The sampler's settings as plain data (recorded in checkpoints)."""
        ...


@dataclass(frozen=True)
class RandomCrops:
    """Random ``size`` x ``size`` crops: training crops are flipped at random (left-right with
    ``hflip``, up-down with ``vflip``); evaluation crops are not. With a reference the same window
    (and flip) is cut from both."""

    size: int
    hflip: bool = True
    vflip: bool = False

    def train(self, image: np.ndarray, ref: np.ndarray | None, rng: np.random.Generator) -> Sample:
        bounds = np.array(image.shape[1:]) - self.size + 1
        top, left = rng.integers(0, bounds)
        flip_lr, flip_ud = rng.random() < 0.5, rng.random() < 0.5
        out = {"image": self._cut(image, top, left, flip_lr, flip_ud)}
        if ref is not None:
            out["ref"] = self._cut(ref, top, left, flip_lr, flip_ud)
        return out

    def test(
        self, image: np.ndarray, ref: np.ndarray | None, count: int, rng: np.random.Generator
    ) -> Sample:
        bounds = np.array(image.shape[1:]) - self.size + 1
        corners = rng.integers(0, bounds, size=(count, 2))
        out = {"image": np.stack([self._cut(image, t, s, False, False) for t, s in corners])}
        if ref is not None:
            out["ref"] = np.stack([self._cut(ref, t, s, False, False) for t, s in corners])
        return out

    def describe(self) -> dict[str, Any]:
        return {"sampler": "random-crops", **asdict(self)}

    def _cut(self, pixels: np.ndarray, top: int, left: int, lr: bool, ud: bool) -> np.ndarray:
        patch = pixels[:, top : top + self.size, left : left + self.size]
        if lr and self.hflip:
            patch = patch[:, :, ::-1]
        if ud and self.vflip:
            patch = patch[:, ::-1, :]
        return np.ascontiguousarray(patch)


def pixel_key(pixels: np.ndarray) -> int:
    """A 63-bit content key of a prepared image (seeds its evaluation samples)."""
    digest = hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def epoch_order(n_samples: int, seed: int, epoch: int) -> list[int]:
    """The shuffled sample order of one training epoch."""
    rng = np.random.default_rng((_PERMUTATION, seed, epoch))
    return rng.permutation(n_samples).tolist()


def to_tensors(sample: Sample) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in sample.items()}


class TrainSamples(Dataset):
    """``per_image`` samples of every image per epoch, each with its image's quality.

    Sample ``i`` comes from image ``i // per_image``; its randomness is drawn from ``(seed,
    epoch, i)``. Set :attr:`epoch` before each epoch's loader is created (workers receive a
    fresh copy of the dataset every epoch).
    """

    def __init__(
        self,
        images: ImageSource,
        quality: np.ndarray,
        sampler: Sampler,
        per_image: int,
        seed: int,
    ) -> None:
        if len(images) != len(quality):
            raise ValueError("TrainSamples needs one quality value per image")
        self.images = images
        self.quality = np.asarray(quality, dtype=np.float32)
        self.sampler = sampler
        self.per_image = per_image
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images) * self.per_image

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = index // self.per_image
        image, ref = self.images.load(position)
        rng = np.random.default_rng((_TRAIN_SAMPLE, self.seed, self.epoch, index))
        sample = to_tensors(self.sampler.train(image, ref, rng))
        sample["quality"] = torch.tensor(self.quality[position])
        return sample


class EvalSamples(Dataset):
    """All evaluation samples of one image per item (read with ``batch_size=None``), with the
    image's position: ``(position, stacked samples)``."""

    def __init__(self, images: ImageSource, sampler: Sampler, count: int, seed: int) -> None:
        self.images = images
        self.sampler = sampler
        self.count = count
        self.seed = seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, position: int) -> tuple[int, dict[str, torch.Tensor]]:
        image, ref = self.images.load(position)
        rng = np.random.default_rng((_EVAL_SAMPLE, self.seed, pixel_key(image)))
        return position, to_tensors(self.sampler.test(image, ref, self.count, rng))
