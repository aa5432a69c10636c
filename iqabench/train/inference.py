"""Scoring prepared images: the mean prediction over random crops (10 in the reference)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .data import eval_crops
from .runtime import Runtime


def to_network_input(crops: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """``(N, 1, H, W)`` uint8 crops -> float on the device, normalised with mean 0.5 and std
    0.5 (``v / 255`` mapped to [-1, 1]), channels-last on GPUs."""
    x = crops.to(runtime.device, non_blocking=True).float().div_(127.5).sub_(1.0)
    if runtime.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@torch.no_grad()
def predict(
    net: nn.Module,
    images: Sequence[np.ndarray],
    runtime: Runtime,
    *,
    crops: int,
    crop: int,
    seed: int,
    batch_size: int = 40,
) -> np.ndarray:
    """Score prepared ``uint8`` images: the mean over ``crops`` random crops of each.

    The crops of an image depend on its pixels and ``seed`` only, so a score does not change
    with the batch it arrives in. Runs ``net`` in evaluation mode (dropout off, BatchNorm
    frozen) under the runtime's autocast.
    """
    if crops < 1:
        raise ValueError("crops must be at least 1")
    net.eval()
    batch_size = max(batch_size, 1)
    outputs: list[torch.Tensor] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        batch = torch.from_numpy(np.concatenate(pending))[:, None]
        with runtime.autocast():
            outputs.append(net(to_network_input(batch, runtime)).float().cpu())
        pending.clear()

    queued = 0
    for pixels in images:
        pending.append(eval_crops(pixels, crops, crop, seed))
        queued += crops
        if queued >= batch_size:
            flush()
            queued = 0
    if pending:
        flush()
    if not outputs:
        return np.zeros(0, dtype=np.float64)
    scores = torch.cat(outputs).numpy().astype(np.float64)
    return scores.reshape(len(images), crops).mean(axis=1)
