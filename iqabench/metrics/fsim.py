"""FSIM and FSIMc: Feature Similarity index (Zhang, Zhang, Mou & Zhang, 2011)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metric import Metric
from ._checks import require_pairs
from ._torch import as_tensor

#: RGB to YIQ as the authors' FeatureSIM.m writes it (three decimals; piq uses four).
YIQ_WEIGHTS = np.array(
    [
        [0.299, 0.587, 0.114],
        [0.596, -0.274, -0.322],
        [0.211, -0.523, 0.312],
    ]
)
#: The paper's fixed constants: phase congruency, gradient, I and Q stabilisers, chroma exponent.
T1, T2, T3, T4, LAMBDA = 0.85, 160.0, 200.0, 200.0, 0.03


class FSIM(Metric):
    """Feature Similarity index: FSIM for grey input, FSIMc for RGB input.

    L. Zhang, L. Zhang, X. Mou and D. Zhang, "FSIM: A Feature Similarity Index for Image Quality
    Assessment", IEEE Transactions on Image Processing 20(8), 2378-2386, 2011,
    doi:10.1109/TIP.2011.2109730.

    Phase congruency and gradient maps come from piq (``piq.fsim`` building blocks, ``float64``);
    the rest follows the authors' FeatureSIM.m where piq departs from it: the YIQ coefficients
    above, the ``F x F`` box average kept at every ``F``-th pixel from the first (``conv2 'same'``,
    zero outside; ``F = round(min(H, W) / 256)`` rounding halves up), and the chroma factor
    ``real((S_I * S_Q) ** 0.03)`` (piq takes the modulus where the product is negative).
    """

    name = "fsim"
    family = "TR-FR"
    full_reference = True
    higher_is_better = True
    colour = "native"
    version = "1"
    citation = (
        "L. Zhang, L. Zhang, X. Mou, D. Zhang. FSIM: A Feature Similarity Index for Image Quality "
        "Assessment. IEEE Transactions on Image Processing 20(8), 2011. "
        "doi:10.1109/TIP.2011.2109730"
    )
    default_params = {}
    batch_size = 8

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        pairs = require_pairs(self.name, images, refs)
        return np.array([_fsim(image, ref) for image, ref in pairs], dtype=np.float64)


def _fsim(image: np.ndarray, ref: np.ndarray) -> float:
    """FSIM of a grey pair, FSIMc of an RGB pair (both 0..255)."""
    import torch
    from piq.fsim import _construct_filters, _phase_congruency
    from piq.functional import gradient_map, scharr_filter

    factor = max(1, int(np.floor(min(image.shape[:2]) / 256 + 0.5)))
    if image.ndim == 3:
        image, ref = image @ YIQ_WEIGHTS.T, ref @ YIQ_WEIGHTS.T
        channels = [
            (_box_down(image[..., c], factor), _box_down(ref[..., c], factor)) for c in range(3)
        ]
    else:
        channels = [(_box_down(image, factor), _box_down(ref, factor))]

    luma = torch.cat([as_tensor(channels[0][0]), as_tensor(channels[0][1])])
    congruency = _phase_congruency(luma, _construct_filters(luma))
    kernel = scharr_filter(dtype=luma.dtype)
    gradient = gradient_map(luma, torch.stack([kernel, kernel.transpose(-1, -2)]))
    pc_image, pc_ref = congruency.numpy()[:, 0]
    gm_image, gm_ref = gradient.numpy()[:, 0]

    pc_max = np.maximum(pc_image, pc_ref)
    similarity = _similarity(pc_image, pc_ref, T1) * _similarity(gm_image, gm_ref, T2) * pc_max
    if len(channels) == 3:
        chroma = _similarity(*channels[1], T3) * _similarity(*channels[2], T4)
        similarity = similarity * np.real(chroma.astype(np.complex128) ** LAMBDA)
    return float(similarity.sum() / pc_max.sum())


def _similarity(a: np.ndarray, b: np.ndarray, constant: float) -> np.ndarray:
    return (2 * a * b + constant) / (a**2 + b**2 + constant)


def _box_down(channel: np.ndarray, factor: int) -> np.ndarray:
    """MATLAB ``conv2(x, ones(F)/F^2, 'same')`` sampled at ``(1:F:end, 1:F:end)``."""
    if factor == 1:
        return channel
    # conv2 'same' puts the window for output i over inputs i + F//2 - F + 1 .. i + F//2.
    before, after = factor - 1 - factor // 2, factor // 2
    padded = np.pad(channel, ((before, after), (before, after)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (factor, factor))
    return windows[::factor, ::factor].mean(axis=(-2, -1))
