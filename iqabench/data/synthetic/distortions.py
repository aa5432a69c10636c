"""The LWIR-IQA distortion recipe: five types at five levels (1 mildest .. 5 worst).

Level parameters follow the LWIR-IQA database (Journal of Electrical Engineering 73(1), 2022,
doi 10.2478/jee-2022-0011) where its published sample images reveal them (see
``datasets/synthetic-lwir.yaml`` for how each value was obtained):

* AWGN: zero-mean Gaussian noise of variance 0.001, 0.003, 0.006, 0.010, 0.015 on the 0..1
  scale (MATLAB ``imnoise`` convention), i.e. sigma 8.06 .. 31.23 grey levels;
* BLU: Gaussian blur, sigma 0.6 .. 3.0 pixels;
* NU: fixed-pattern non-uniformity of an uncooled microbolometer (column and row offsets,
  per-pixel offsets, column gains, and a low-frequency offset and gain drift);
* JPG: JPEG at IJG quality 28, 20, 14, 8, 5 (Pillow/libjpeg);
* J2K: JPEG 2000 (Pillow/OpenJPEG, irreversible 9/7 wavelet, one rate layer) at compression
  ratios 32 .. 200 relative to 8 bits per pixel.

All amplitudes are in grey levels of the 0..255 display scale. A 16-bit frame is distorted in
float on its counts, with every amplitude multiplied by the counts per display grey level of its
display window (the reference's minimum..maximum mapped onto 0..255, as
:func:`iqabench.imageio.display_window` shows it to a metric), so a level looks equally severe
at either bit depth. JPEG (8-bit only) passes a 16-bit frame through that window quantised to
8 bits and maps the decoded result back to counts; JPEG 2000 encodes the 16-bit counts directly
at the same number of bytes as the 8-bit variant (twice the 8-bit compression ratio).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .fields import power_law_noise

Params = dict[str, float]


@dataclass(frozen=True)
class Frame:
    """A pristine frame in float, its storage depth and the window that displays it."""

    pixels: np.ndarray
    bit_depth: int
    max_value: float
    low: float
    scale: float

    @classmethod
    def of(cls, pixels: np.ndarray, max_value: float | None = None) -> Frame:
        """Wrap ``uint8`` or ``uint16`` pixels; ``max_value`` caps distorted 16-bit values."""
        if pixels.dtype == np.uint8:
            return cls(pixels.astype(np.float64), 8, 255.0, 0.0, 1.0)
        low, high = float(pixels.min()), float(pixels.max())
        scale = (high - low) / 255.0 if high > low else 1.0 / 255.0
        cap = float(max_value if max_value is not None else 65535)
        return cls(pixels.astype(np.float64), 16, cap, low, scale)

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        return np.uint8 if self.bit_depth == 8 else np.uint16

    def store(self, values: np.ndarray) -> np.ndarray:
        """Round and clip float values to this frame's integer type."""
        return np.clip(np.round(values), 0, self.max_value).astype(self.dtype)

    def to_display(self, values: np.ndarray) -> np.ndarray:
        """Values mapped through the display window onto 8 bits."""
        return np.clip(np.round((values - self.low) / self.scale), 0, 255).astype(np.uint8)

    def from_display(self, grey: np.ndarray) -> np.ndarray:
        """8-bit display values mapped back to this frame's scale (the inverse window)."""
        return self.low + grey.astype(np.float64) * self.scale


class Draws:
    """Random fields drawn from ``rng`` on first request and reused afterwards.

    Build passes one ``Draws`` to all five levels of a shared-pattern distortion (the same
    sensor's fixed pattern, only scaled) and a fresh one to each level of the others.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._fields: dict[str, np.ndarray] = {}

    def normal(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Standard normal values of ``shape``."""
        if name not in self._fields:
            self._fields[name] = self._rng.standard_normal(shape)
        return self._fields[name]

    def power_law(self, name: str, shape: tuple[int, int], exponent: float) -> np.ndarray:
        """A unit-variance field with amplitude spectrum 1/f**exponent (see power_law_noise)."""
        if name not in self._fields:
            self._fields[name] = power_law_noise(self._rng, shape, exponent)
        return self._fields[name]


Apply = Callable[[Frame, Params, Draws], np.ndarray]


@dataclass(frozen=True)
class Distortion:
    """One distortion type: its code, what its parameters mean, and its five levels."""

    code: str
    name: str
    parameters: str
    levels: tuple[Params, ...]
    apply: Apply
    #: True when all levels of a content share one Draws (a sensor's fixed pattern).
    shared_pattern: bool = False

    def __call__(self, frame: Frame, level: int, draws: Draws) -> np.ndarray:
        """The distorted frame, stored in the frame's integer type."""
        return frame.store(self.apply(frame, self.levels[level - 1], draws))


def _awgn(frame: Frame, params: Params, draws: Draws) -> np.ndarray:
    noise = draws.normal("noise", frame.pixels.shape)
    return frame.pixels + noise * (params["sigma"] * frame.scale)


def _blur(frame: Frame, params: Params, draws: Draws) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(frame.pixels, params["sigma"], mode="reflect", truncate=4.0)


def _non_uniformity(frame: Frame, params: Params, draws: Draws) -> np.ndarray:
    """Microbolometer fixed-pattern noise: offsets and gains per column, row and pixel, and a
    slow drift across the array (one pattern per content, scaled by the level).

    ``out = x + scale * offsets + (x - mean(x)) * gains``: the gain pattern multiplies the signal
    about its mean, so the frame's brightness is kept while its local contrast varies.
    """
    height, width = frame.pixels.shape
    column = draws.normal("column", (width,))[None, :]
    row = draws.normal("row", (height,))[:, None]
    pixel = draws.normal("pixel", (height, width))
    column_gain = draws.normal("column_gain", (width,))[None, :]
    drift = draws.power_law("drift", (height, width), 2.5)
    drift_gain = draws.power_law("drift_gain", (height, width), 2.5)
    offsets = (
        params["column_offset"] * column
        + params["row_offset"] * row
        + params["pixel_offset"] * pixel
        + params["drift_offset"] * drift
    )
    gains = params["column_gain"] * column_gain + params["drift_gain"] * drift_gain
    signal = frame.pixels
    return signal + offsets * frame.scale + (signal - signal.mean()) * gains


def _jpeg(frame: Frame, params: Params, draws: Draws) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame.to_display(frame.pixels)).save(
        buffer, format="JPEG", quality=int(params["quality"])
    )
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return frame.from_display(np.asarray(decoded.convert("L")))


def _jpeg2000(frame: Frame, params: Params, draws: Draws) -> np.ndarray:
    from PIL import Image

    stored = frame.store(frame.pixels)
    height, width = stored.shape
    ratio = params["ratio"] * frame.bit_depth / 8.0
    buffer = io.BytesIO()
    Image.fromarray(stored).save(
        buffer,
        format="JPEG2000",
        quality_mode="rates",
        quality_layers=[ratio],
        irreversible=True,
        num_resolutions=int(np.clip(np.log2(min(height, width)), 1, 6)),
    )
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return np.asarray(decoded).astype(np.float64)


def _levels(key: str, values: tuple[float, ...]) -> tuple[Params, ...]:
    return tuple({key: value} for value in values)


#: Variances of MATLAB ``imnoise(I, 'gaussian', 0, v)`` on the 0..1 scale, one per level.
AWGN_VARIANCES = (0.001, 0.003, 0.006, 0.01, 0.015)
_AWGN_SIGMAS = tuple(round(255.0 * float(np.sqrt(v)), 2) for v in AWGN_VARIANCES)

_NU_BASE = {
    "column_offset": 1.0,
    "row_offset": 0.5,
    "pixel_offset": 0.4,
    "drift_offset": 1.5,
    "column_gain": 0.004,
    "drift_gain": 0.02,
}
_NU_MULTIPLIERS = (1.0, 1.6, 2.5, 4.0, 6.3)

RECIPE: dict[str, Distortion] = {
    d.code: d
    for d in (
        Distortion(
            "AWGN",
            "additive white Gaussian noise",
            "sigma: standard deviation in grey levels of the 0..255 display scale",
            _levels("sigma", _AWGN_SIGMAS),
            _awgn,
        ),
        Distortion(
            "BLU",
            "Gaussian blur",
            "sigma: standard deviation of the Gaussian kernel in pixels (truncated at 4 sigma)",
            _levels("sigma", (0.6, 1.2, 1.8, 2.4, 3.0)),
            _blur,
        ),
        Distortion(
            "NU",
            "non-uniformity (microbolometer fixed-pattern noise)",
            "standard deviations: column_offset, row_offset, pixel_offset, drift_offset in grey "
            "levels; column_gain, drift_gain as fractions of the signal about its mean; drift is "
            "a smooth field with amplitude spectrum 1/f^2.5",
            tuple(
                {key: round(value * m, 4) for key, value in _NU_BASE.items()}
                for m in _NU_MULTIPLIERS
            ),
            _non_uniformity,
            shared_pattern=True,
        ),
        Distortion(
            "JPG",
            "JPEG compression",
            "quality: IJG quality factor (libjpeg through Pillow; 8-bit only)",
            _levels("quality", (28, 20, 14, 8, 5)),
            _jpeg,
        ),
        Distortion(
            "J2K",
            "JPEG 2000 compression",
            "ratio: compression ratio relative to 8 bits per pixel (OpenJPEG rate layer through "
            "Pillow, irreversible 9/7 wavelet)",
            _levels("ratio", (32, 48, 72, 120, 200)),
            _jpeg2000,
        ),
    )
}

#: Distortion codes in recipe order.
DISTORTIONS: tuple[str, ...] = tuple(RECIPE)
#: Number of levels of every distortion.
N_LEVELS = 5


def recipe_description() -> dict[str, dict[str, object]]:
    """The full recipe as plain data (for manifest.json): every level's parameters."""
    return {
        code: {
            "name": d.name,
            "parameters": d.parameters,
            "levels": {str(i): dict(p) for i, p in enumerate(d.levels, start=1)},
        }
        for code, d in RECIPE.items()
    }
