"""Random fields used by the scene synthesis and the non-uniformity model."""

from __future__ import annotations

import numpy as np


def power_law_noise(
    rng: np.random.Generator, shape: tuple[int, int], exponent: float
) -> np.ndarray:
    """A zero-mean, unit-variance Gaussian field whose amplitude spectrum falls as 1/f**exponent.

    ``exponent=1`` is the "1/f" texture of natural scenes (power spectrum 1/f^2); larger
    exponents give smoother fields (2 or more: slow drifts). The field is periodic, as any
    FFT-synthesised field is. ``shape`` may be ``(1, n)`` for a 1-D profile.
    """
    height, width = shape
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freq = np.hypot(fy, fx)
    freq[0, 0] = 1.0
    amplitude = freq**-exponent
    amplitude[0, 0] = 0.0
    spectrum_shape = (height, width // 2 + 1)
    spectrum = rng.standard_normal(spectrum_shape) + 1j * rng.standard_normal(spectrum_shape)
    field = np.fft.irfft2(spectrum * amplitude, s=shape)
    field -= field.mean()
    spread = field.std()
    return field / spread if spread > 0 else field
