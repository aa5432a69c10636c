"""VTAMIQ's input: spatially aligned 16x16 patches sampled with context-aware probabilities.

Paper: A. Chubarau and J. Clark, "VTAMIQ: Transformers for Attention Modulated Image Quality
Assessment", arXiv:2110.01655 (2021), doi:10.48550/arXiv.2110.01655; reference code
github.com/ch-andrei/VTAMIQ (``data/patch_sampling.py``, read, not copied).

A pair's patches are drawn once and cut at the same places from the reference and the
distorted image, so both sequences share positions. The probability of a patch's top-left
corner is the mean, over the patch, of a per-pixel weight

    w = w_diff * D / max(D) + w_centre * C / max(C) + w_uniform

where ``D = |ref - dist|**p`` is the perceptual-difference term (both images min-max normalised
first, ``p = 2`` as in the paper-era code), ``C`` a centre bias and the constant a uniform part
(defaults 5, 2 and 0.25: the paper-era reference configuration). Sampling is stratified: the
corner positions are split into a grid of cells (about 16 patches a cell, at least 4x4 cells),
each cell receives its share of the patches in proportion to its probability mass (largest
remainders), and within a cell corners are drawn from the cell's own probabilities. Everything
random comes from the ``numpy`` generator passed in, so a seed fixes the sample.

Each patch also gets its position on the positional-embedding grid (24x24 for ViT-B/16 at 384):
its corner divided by the largest corner ``(H - 16, W - 16)`` and scaled to the grid, as the
reference code does, so the grid position is the patch's own place in the image whatever the
image size.

Departures: the centre bias is an isotropic Gaussian over the normalised image (sigma a quarter
of each side) instead of DeepGaze II's MIT1003 centre-bias map the reference loads; within a
cell corners are drawn from the probabilities rather than placed on a Halton sequence; the
remainders are rounded deterministically instead of trimmed at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter

PATCH = 16
#: Patches per stratification cell and the fewest cells along a side (reference heuristics).
PATCHES_PER_CELL = 16
MIN_CELLS = 4


@dataclass(frozen=True)
class SamplingWeights:
    """Weights of the three parts of the sampling probability (reference defaults)."""

    difference: float = 5.0
    centre: float = 2.0
    uniform: float = 0.25
    difference_power: float = 2.0
    centre_sigma: float = 0.25

    def __post_init__(self) -> None:
        parts = (self.difference, self.centre, self.uniform)
        if min(parts) < 0 or sum(parts) <= 0:
            raise ValueError("sampling weights must be non-negative and not all zero")


@dataclass(frozen=True)
class PatchSample:
    """Where a pair's patches are: top-left corners and positional-grid cells, ``(N, 2)`` ints
    as (row, column)."""

    corners: np.ndarray
    grid: np.ndarray


def _normalised(image: np.ndarray) -> np.ndarray:
    values = np.asarray(image, dtype=np.float64)
    if values.ndim == 3:
        values = values.mean(axis=-1)
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


def _centre_bias(shape: tuple[int, int], sigma: float) -> np.ndarray:
    rows = (np.arange(shape[0]) + 0.5) / shape[0] - 0.5
    cols = (np.arange(shape[1]) + 0.5) / shape[1] - 0.5
    return np.exp(-(rows[:, None] ** 2 + cols[None, :] ** 2) / (2.0 * sigma**2))


def pixel_weights(
    reference: np.ndarray, distorted: np.ndarray | None, weights: SamplingWeights
) -> np.ndarray:
    """The per-pixel sampling weight of a pair (``distorted`` None: no difference term, as for
    a lone image)."""
    shape = np.asarray(reference).shape[:2]
    total = np.full(shape, weights.uniform, dtype=np.float64)
    if weights.centre > 0:
        total += weights.centre * _centre_bias(shape, weights.centre_sigma)
    if weights.difference > 0 and distorted is not None:
        if np.asarray(distorted).shape[:2] != shape:
            raise ValueError("reference and distorted images must have the same size")
        diff = np.abs(_normalised(reference) - _normalised(distorted)) ** weights.difference_power
        if diff.max() > 1e-12:
            total += weights.difference * diff / diff.max()
    return total


def corner_probabilities(pixel: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """Probability of each top-left corner: the mean pixel weight under the patch, normalised
    to sum 1; shape ``(H - patch + 1, W - patch + 1)``."""
    height, width = pixel.shape
    if height < patch or width < patch:
        raise ValueError(f"image of {height}x{width} is smaller than one {patch}x{patch} patch")
    means = uniform_filter(pixel, size=patch, mode="nearest", origin=-(patch // 2))
    corners = np.clip(means[: height - patch + 1, : width - patch + 1], 0.0, None)
    return corners / corners.sum()


def _allocate(masses: np.ndarray, count: int) -> np.ndarray:
    """Split ``count`` samples over cells in proportion to ``masses`` (largest remainders)."""
    expected = masses / masses.sum() * count
    counts = np.floor(expected).astype(int)
    short = count - counts.sum()
    order = np.argsort(-(expected - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def stratified_corners(
    probabilities: np.ndarray, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` top-left corners ``(N, 2)`` drawn from ``probabilities`` by stratified sampling
    (see the module docstring)."""
    if count < 1:
        raise ValueError("need at least one patch")
    side = max(MIN_CELLS, int(round(np.sqrt(count / PATCHES_PER_CELL))))
    row_bands = np.array_split(np.arange(probabilities.shape[0]), min(side, probabilities.shape[0]))
    col_bands = np.array_split(np.arange(probabilities.shape[1]), min(side, probabilities.shape[1]))
    cells = [(rows, cols) for rows in row_bands for cols in col_bands]
    masses = np.array([probabilities[np.ix_(rows, cols)].sum() for rows, cols in cells])
    corners = []
    for (rows, cols), n in zip(cells, _allocate(masses, count), strict=True):
        if n == 0:
            continue
        local = probabilities[np.ix_(rows, cols)].ravel()
        local = local / local.sum()
        replace = n > np.count_nonzero(local)
        picks = rng.choice(local.size, size=n, replace=replace, p=local)
        corners.append(np.stack([rows[picks // cols.size], cols[picks % cols.size]], axis=1))
    return np.concatenate(corners)[rng.permutation(count)]


def grid_positions(
    corners: np.ndarray, shape: tuple[int, int], grid: int, patch: int = PATCH
) -> np.ndarray:
    """The positional-embedding cell ``(row, col)`` in ``[0, grid)`` of each corner."""
    span = np.maximum(np.array(shape[:2]) - patch, 1)
    cells = np.floor(corners / span * grid).astype(int)
    return np.clip(cells, 0, grid - 1)


def sample_patches(
    reference: np.ndarray,
    distorted: np.ndarray | None,
    count: int,
    grid: int,
    rng: np.random.Generator,
    weights: SamplingWeights = SamplingWeights(),
    patch: int = PATCH,
) -> PatchSample:
    """Draw ``count`` aligned patch places for a pair (see the module docstring)."""
    probabilities = corner_probabilities(pixel_weights(reference, distorted, weights), patch)
    corners = stratified_corners(probabilities, count, rng)
    return PatchSample(corners, grid_positions(corners, np.asarray(reference).shape, grid, patch))


def cut_patches(image: np.ndarray, corners: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """The ``(N, patch, patch[, C])`` patches of ``image`` (``(H, W[, C])``) at ``corners``."""
    offsets = np.arange(patch)
    rows = corners[:, 0, None, None] + offsets[None, :, None]
    cols = corners[:, 1, None, None] + offsets[None, None, :]
    return np.asarray(image)[rows, cols]
