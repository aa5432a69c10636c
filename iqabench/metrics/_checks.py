"""Input checks shared by the built-in metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import SizeMismatchError, UserError


def require_pairs(
    name: str, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Zip distorted images with their references, refusing a missing or mis-sized reference."""
    if refs is None or len(refs) != len(images):
        raise UserError(f"{name} is a full-reference metric: every image needs a reference")
    pairs = []
    for image, ref in zip(images, refs, strict=True):
        if image.shape != ref.shape:
            raise SizeMismatchError(
                f"{name}: distorted image is {_dims(image)} but its reference is {_dims(ref)}"
            )
        pairs.append((image, ref))
    return pairs


def _dims(array: np.ndarray) -> str:
    height, width = array.shape[:2]
    channels = "" if array.ndim == 2 else f"x{array.shape[2]}"
    return f"{width}x{height}{channels}"
