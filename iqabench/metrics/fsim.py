"""FSIM and FSIMc: Feature Similarity index (Zhang, Zhang, Mou & Zhang, 2011)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..metric import Metric
from ._checks import require_pairs

if TYPE_CHECKING:
    import torch

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

    Hand-written in ``float64`` NumPy/OpenCV after the authors' FeatureSIM.m: the log-Gabor
    bank is :func:`log_gabor_bank` (built once per image size, with the terms that depend only
    on the size), phase congruency is :func:`_phase_congruency` and the gradient
    :func:`_gradient_magnitude` with the Scharr kernel, several times faster than piq's
    ``fsim`` on one core. Where piq departs from FeatureSIM.m, this follows FeatureSIM.m: the
    orientation of the filter bank, phase congruency's epsilon, the YIQ coefficients above,
    the ``F x F`` box average kept at every ``F``-th pixel from the first (``conv2 'same'``,
    zero outside; ``F = round(min(H, W) / 256)`` rounding halves
    up), the chroma factor ``real((S_I * S_Q) ** 0.03)`` (piq takes the modulus where the
    product is negative), and MATLAB's median in the noise estimate (piq takes the lower middle
    value).
    """

    name = "fsim"
    family = "TR-FR"
    full_reference = True
    higher_is_better = True
    score_range = (0.0, 1.0)
    colour = "native"
    version = "2"
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
    factor = max(1, int(np.floor(min(image.shape[:2]) / 256 + 0.5)))
    if image.ndim == 3:
        image, ref = image @ YIQ_WEIGHTS.T, ref @ YIQ_WEIGHTS.T
        channels = [
            (_box_down(image[..., c], factor), _box_down(ref[..., c], factor)) for c in range(3)
        ]
    else:
        channels = [(_box_down(image, factor), _box_down(ref, factor))]

    luma_image, luma_ref = channels[0]
    pc_image, pc_ref = _phase_congruency(luma_image), _phase_congruency(luma_ref)
    gm_image, gm_ref = _gradient_magnitude(luma_image), _gradient_magnitude(luma_ref)

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
        return np.ascontiguousarray(channel)
    # conv2 'same' puts the window for output i over inputs i + F//2 - F + 1 .. i + F//2: the
    # kept windows are the F x F blocks of the padded channel, summed here one offset at a time.
    before, after = factor - 1 - factor // 2, factor // 2
    padded = np.pad(channel, ((before, after), (before, after)))
    rows, cols = -(-channel.shape[0] // factor), -(-channel.shape[1] // factor)
    total = np.zeros((rows, cols))
    for i in range(factor):
        for j in range(factor):
            total += padded[i : i + rows * factor : factor, j : j + cols * factor : factor]
    return total / (factor * factor)


#: Phase congruency settings of FeatureSIM.m: log-Gabor scales and
#: orientations, and the noise threshold in standard deviations of the noise energy.
SCALES, ORIENTATIONS, NOISE_K = 4, 4, 2.0
#: FeatureSIM.m's ``epsilon``, added to the local energy's modulus (piq adds machine epsilon).
PC_EPSILON = 1e-4
#: FeatureSIM.m's Scharr kernel (x direction, up to the sign conv2's flip gives); y: transpose.
SCHARR_X = np.array([[-3.0, 0.0, 3.0], [-10.0, 0.0, 10.0], [-3.0, 0.0, 3.0]]) / 16


class _FilterBank(NamedTuple):
    """What phase congruency needs of the filter bank for one image size."""

    #: The log-Gabor filters in the frequency domain, ``(1, orientations * scales, H, W)``.
    filters: torch.Tensor
    #: Per orientation: sum of the squared finest-scale filter (noise estimation).
    finest_energy: np.ndarray
    #: Per orientation: sum over scales and pixels of the squared spatial filters.
    sum_an2: np.ndarray
    #: Per orientation: sum over scale pairs and pixels of the products of spatial filters.
    sum_ai_aj: np.ndarray


#: Log-Gabor bank of FeatureSIM.m's phasecong2: smallest wavelength, scale factor, bandwidth
#: (sigma over centre frequency), angular spacing over angular sigma, and the low-pass filter
#: (cut-off, order) that keeps the bank away from the FFT's corners.
MIN_WAVELENGTH, MULT, SIGMA_ON_F, D_THETA_ON_SIGMA = 6.0, 2.0, 0.55, 1.2
LOWPASS_CUTOFF, LOWPASS_ORDER = 0.45, 15


def log_gabor_bank(rows: int, cols: int) -> torch.Tensor:
    """The frequency-domain log-Gabor filters of FeatureSIM.m (``phasecong2``), in ``float64``.

    Hand-written after the authors' code (P. Kovesi's phase congruency as L. Zhang adapted
    it): normalised frequencies ``[-n/2 : n/2-1] / n`` (``[-(n-1)/2 : (n-1)/2] / (n-1)`` for
    odd ``n``), quadrant-shifted (``ifftshift``); per scale ``s`` a radial log-Gabor
    ``exp(-log(r / f_s)^2 / (2 log(0.55)^2))``, ``f_s = 1 / (6 * 2^s)``, times the low-pass
    ``1 / (1 + (r / 0.45)^30)``, zero at the DC term; per orientation ``o pi / 4`` (the
    angle ``atan2(-y, x)``, ``x`` along the columns, as FeatureSIM.m; piq measures it from the
    row axis, which differs in the Nyquist terms and moves FSIM by about 3e-6) an angular
    Gaussian of the wrapped angle difference with sigma ``pi / (4 * 1.2)``. Computed with
    torch's element-wise functions in ``float64``.
    Returns ``(1, ORIENTATIONS * SCALES, rows, cols)``, orientation-major.
    """
    import torch

    def frequencies(n: int) -> torch.Tensor:
        if n % 2:
            return torch.arange(-(n - 1) / 2, n / 2, dtype=torch.float64) / (n - 1)
        return torch.arange(-n / 2, n / 2, dtype=torch.float64) / n

    x, y = torch.meshgrid(frequencies(cols), frequencies(rows), indexing="xy")
    radius = torch.sqrt(x**2 + y**2)
    theta = torch.fft.ifftshift(torch.atan2(-y, x))
    lowpass = torch.fft.ifftshift(1.0 / (1.0 + (radius / LOWPASS_CUTOFF) ** (2 * LOWPASS_ORDER)))
    radius = torch.fft.ifftshift(radius)
    radius[0, 0] = 1.0
    radial = []
    for scale in range(SCALES):
        centre = 1.0 / (MIN_WAVELENGTH * MULT**scale)
        component = torch.exp(-(torch.log(radius / centre) ** 2) / (2 * math.log(SIGMA_ON_F) ** 2))
        component = component * lowpass
        component[0, 0] = 0.0
        radial.append(component)
    theta_sigma = math.pi / (ORIENTATIONS * D_THETA_ON_SIGMA)
    sin_theta, cos_theta = torch.sin(theta), torch.cos(theta)
    bank = []
    for orientation in range(ORIENTATIONS):
        angle = orientation * math.pi / ORIENTATIONS
        d_sin = sin_theta * math.cos(angle) - cos_theta * math.sin(angle)
        d_cos = cos_theta * math.cos(angle) + sin_theta * math.sin(angle)
        spread = torch.exp(-(torch.abs(torch.atan2(d_sin, d_cos)) ** 2) / (2 * theta_sigma**2))
        bank.extend(spread * component for component in radial)
    return torch.stack(bank)[None]


@functools.lru_cache(maxsize=8)
def _filter_bank(rows: int, cols: int) -> _FilterBank:
    """:func:`log_gabor_bank` for an image of ``rows x cols`` and its size-only terms."""
    import torch

    filters = log_gabor_bank(rows, cols)
    spatial = torch.fft.ifft2(filters).real.numpy() * np.sqrt(rows * cols)
    spatial = spatial.reshape(ORIENTATIONS, SCALES, rows, cols)
    pairs = sum(
        (spatial[:, s : s + 1] * spatial[:, s + 1 :]).sum(axis=1) for s in range(SCALES - 1)
    )
    finest = filters.numpy().reshape(ORIENTATIONS, SCALES, rows, cols)[:, 0]
    return _FilterBank(
        filters,
        (finest**2).sum(axis=(-2, -1)),
        (spatial**2).sum(axis=1).sum(axis=(-2, -1)),
        pairs.sum(axis=(-2, -1)),
    )


def _phase_congruency(luma: np.ndarray) -> np.ndarray:
    """Phase congruency map of a grey image as FeatureSIM.m's phasecong2 computes it: MATLAB's
    median (the mean of the two middle values), ``epsilon = 1e-4`` added to the modulus of the
    summed responses and none in the final ratio (piq departs on all three).

    Kovesi's measure over the log-Gabor bank: per orientation, the local energy along the
    mean phase direction, ``sum_s (e_s m_e + o_s m_o - |e_s m_o - o_s m_e|)`` (the real part
    of each complex response times the conjugate mean direction, less the modulus of its
    imaginary part), less a noise threshold estimated from the median of the finest
    scale's squared amplitude, floored at 0; summed over orientations and divided by the summed
    amplitudes. The responses come from torch's FFT, as in piq: on a flat image every response
    is an FFT rounding residue and the map is a ratio of such residues, which another FFT
    library would round differently. One orientation at a time, so the data stays in cache.
    """
    import torch

    rows, cols = luma.shape
    bank = _filter_bank(rows, cols)
    spectrum = torch.fft.fft2(torch.from_numpy(luma)[None, None])
    responses = torch.fft.ifft2(spectrum * bank.filters).numpy()
    responses = responses.reshape(ORIENTATIONS, SCALES, rows, cols)

    amplitude = np.zeros((rows, cols))
    energy = np.empty((ORIENTATIONS, rows, cols))
    finest_power = np.empty((ORIENTATIONS, rows * cols))
    for orientation, bands in enumerate(responses):
        magnitudes = np.abs(bands)
        amplitude += magnitudes.sum(axis=0)
        finest_power[orientation] = magnitudes[0].ravel() ** 2
        summed = bands.sum(axis=0)
        projected = bands * (np.conj(summed) / (np.abs(summed) + PC_EPSILON))
        energy[orientation] = (projected.real - np.abs(projected.imag)).sum(axis=0)

    median = np.median(finest_power, axis=1)  # MATLAB's median: mean of the middle two
    noise_power = -median / math.log(0.5) / bank.finest_energy
    tau = np.sqrt((2 * noise_power * bank.sum_an2 + 4 * noise_power * bank.sum_ai_aj) / 2)
    threshold = tau * math.sqrt(math.pi / 2) + NOISE_K * np.sqrt((2 - math.pi / 2) * tau**2)
    threshold = threshold / 1.7

    energy = np.maximum(energy - threshold[:, None, None], 0.0)
    return energy.sum(axis=0) / amplitude


def _gradient_magnitude(luma: np.ndarray) -> np.ndarray:
    """Scharr gradient magnitude (3x3 correlation, zero padding), as piq's ``gradient_map``."""
    import cv2

    gx = cv2.filter2D(luma, cv2.CV_64F, SCHARR_X, borderType=cv2.BORDER_CONSTANT)
    gy = cv2.filter2D(luma, cv2.CV_64F, SCHARR_X.T.copy(), borderType=cv2.BORDER_CONSTANT)
    return np.sqrt(gx * gx + gy * gy)
