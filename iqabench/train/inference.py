"""Scoring prepared images: the mean prediction over each image's evaluation samples."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .images import ImageSource
from .inputs import PIXEL_KEYS, to_network_input
from .runtime import Runtime
from .samples import EvalSamples, Sampler

Batch = dict[str, torch.Tensor]
#: How a model scores a batch on the device: ``(net, batch) -> (N,)`` scores.
Forward = Callable[[nn.Module, Batch], torch.Tensor]


def to_device(
    batch: Batch, mean: tuple[float, ...], std: tuple[float, ...], runtime: Runtime
) -> Batch:
    """A batch on the device: pixel entries normalised (see
    :func:`~iqabench.train.inputs.to_network_input`), the others moved as they are."""
    return {
        key: to_network_input(value, mean, std, runtime)
        if key in PIXEL_KEYS
        else value.to(runtime.device, non_blocking=True)
        for key, value in batch.items()
    }


@torch.no_grad()
def predict(
    net: nn.Module,
    forward: Forward,
    images: ImageSource,
    sampler: Sampler,
    runtime: Runtime,
    *,
    normalisation: tuple[tuple[float, ...], tuple[float, ...]],
    samples: int,
    seed: int,
    batch_size: int = 40,
    workers: int = 0,
) -> np.ndarray:
    """Score every image of ``images``: the mean of ``forward`` over its evaluation samples.

    The samples of an image depend on its pixels and ``seed`` only, so a score does not change
    with the batch it arrives in. Samples of consecutive images are batched together while
    their shapes agree (up to ``batch_size`` samples). Runs ``net`` in evaluation mode under
    the runtime's autocast.
    """
    if samples < 1:
        raise ValueError("samples must be at least 1")
    net.eval()
    mean, std = normalisation
    loader = DataLoader(
        EvalSamples(images, sampler, samples, seed),
        batch_size=None,
        num_workers=workers,
        pin_memory=runtime.is_cuda,
    )
    totals = np.zeros(len(images))
    counts = np.zeros(len(images))
    pending: list[tuple[int, Batch]] = []

    def flush() -> None:
        batch = {key: torch.cat([s[key] for _, s in pending]) for key in pending[0][1]}
        with runtime.autocast():
            scores = forward(net, to_device(batch, mean, std, runtime)).float().cpu().numpy()
        start = 0
        for position, sample in pending:
            n = len(next(iter(sample.values())))
            totals[position] += scores[start : start + n].sum(dtype=np.float64)
            counts[position] += n
            start += n
        pending.clear()

    queued = 0
    for position, sample in loader:
        if pending and _shapes(pending[-1][1]) != _shapes(sample):
            flush()
            queued = 0
        pending.append((position, sample))
        queued += len(next(iter(sample.values())))
        if queued >= batch_size:
            flush()
            queued = 0
    if pending:
        flush()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / counts, np.nan)


def _shapes(sample: Batch) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape[1:]) for key, value in sample.items()}
