"""Torch helpers shared by the metric modules that wrap torch libraries (pyiqa, piq).

Importing this module does not import torch; only calling :func:`as_tensor` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def as_tensor(image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
    """A ``float64`` tensor of shape ``(1, C, H, W)`` holding ``image * scale``.

    ``image`` is ``(H, W)`` (one channel) or ``(H, W, C)``; ``scale=1/255`` turns the metric
    input range 0..255 into the 0..1 range that most torch IQA libraries expect.
    """
    import torch

    data = np.asarray(image, dtype=np.float64) * scale
    data = data[None] if data.ndim == 2 else np.moveaxis(data, 2, 0)
    return torch.from_numpy(np.ascontiguousarray(data))[None]
