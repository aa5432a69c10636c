"""Reading images the way the reference MATLAB code sees them, and hashing their content.

* 8-bit grey and RGB images keep their integer values; RGB becomes grey through MATLAB's
  ``rgb2gray`` (its exact coefficients, rounded back to integers as MATLAB does for uint8).
* 16-bit images (thermal radiometric frames, 16-bit PNG/TIFF) are mapped linearly onto the
  0..255 scale through a *display window*: the minimum and maximum of the image itself for a
  no-reference metric, of the reference for a full-reference pair (the same window for both
  images, so the pair stays comparable). No rounding or clipping is applied to 16-bit data.
* Palette and alpha images are flattened to RGB/grey; anything else is refused with one line.
* Float images must hold finite values: a NaN or infinite pixel is refused, never scored.
* An image declaring more pixels than ``IQABENCH_MAX_PIXELS`` (default
  :data:`DEFAULT_MAX_PIXELS`) is refused from its header, before anything is allocated, so a
  97 KB file declaring 10000x10000 pixels costs one input error, not gigabytes (Pillow's own
  decompression-bomb ceiling, about 179 megapixels, applies above that).
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ImageReadError, UserError, one_line

#: MATLAB ``rgb2gray`` weights: first row of inv([1 .956 .621; 1 -.272 -.647; 1 -1.106 1.703]).
RGB2GRAY_WEIGHTS = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


@dataclass(frozen=True)
class Image:
    """Decoded pixels (``uint8`` or ``uint16``; ``(H, W)`` or ``(H, W, 3)``) and their origin."""

    pixels: np.ndarray
    bit_depth: int
    path: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    @property
    def is_rgb(self) -> bool:
        return self.pixels.ndim == 3


#: Pixels an image may declare unless ``IQABENCH_MAX_PIXELS`` says otherwise (25 megapixels:
#: a 24-megapixel photograph passes, a forged header claiming 10000x10000 does not).
DEFAULT_MAX_PIXELS = 25_000_000


def max_pixels() -> int:
    """The largest image (in pixels) that is decoded: ``IQABENCH_MAX_PIXELS`` or the default."""
    text = os.environ.get("IQABENCH_MAX_PIXELS", "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"IQABENCH_MAX_PIXELS must be a whole number of pixels, got {text!r}")
    return value


def read_image(path: str | Path) -> Image:
    """Decode an image file; raise :class:`ImageReadError` naming the file on any failure
    (missing, not an image, truncated, forged, above :func:`max_pixels`, NaN pixels)."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"image not found: {path}")
    limit = max_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as handle:
                _check_size(handle.size, limit, path)
                handle.load()
                return _from_pil(handle, path)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"not a readable image: {path}") from None
    except PILImage.DecompressionBombError as exc:
        raise ImageReadError(
            f"image {path} is too large to decode safely ({exc}); the limit is {limit} "
            "pixels (IQABENCH_MAX_PIXELS)"
        ) from None
    except Exception as exc:  # Pillow raises many kinds for a truncated or forged file
        raise ImageReadError(f"cannot decode image {path}: {one_line(exc)}") from None


def _check_size(size: tuple[int, int], limit: int, path: Path) -> None:
    """Refuse an image whose header declares more than ``limit`` pixels."""
    width, height = size
    if width * height > limit:
        raise ImageReadError(
            f"image {path} declares {width}x{height} pixels, above the limit of {limit} "
            "(set IQABENCH_MAX_PIXELS to decode larger images)"
        )


def decode_pil(handle, path: Path | None = None) -> Image:  # noqa: ANN001 - PIL image
    """An open PIL image as :class:`Image`, by the same rules as :func:`read_image`."""
    return _from_pil(handle, path)


def _from_pil(handle, path: Path) -> Image:  # noqa: ANN001 - PIL image
    mode = handle.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return Image(np.asarray(handle, dtype=np.uint16), 16, path)
    if mode in ("I", "F"):
        data = np.asarray(handle)
        if not np.isfinite(data).all():
            raise ImageReadError(f"image {path} has NaN or infinite pixels")
        if data.min() < 0 or data.max() > 65535:
            raise ImageReadError(f"unsupported pixel range in {path} (mode {mode})")
        if data.max() <= 255 and mode == "I" and handle.format not in ("PNG", "TIFF"):
            return Image(data.astype(np.uint8), 8, path)
        return Image(np.round(data).astype(np.uint16), 16, path)
    if mode in ("1", "L", "LA", "P", "PA") or mode.startswith("I;"):
        if mode in ("P", "PA"):
            handle = handle.convert("RGBA" if "transparency" in handle.info else "RGB")
            return _from_pil(handle, path)
        return Image(np.asarray(handle.convert("L"), dtype=np.uint8), 8, path)
    if mode in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return Image(np.asarray(handle.convert("RGB"), dtype=np.uint8), 8, path)
    raise ImageReadError(f"unsupported image mode {mode!r}: {path}")


def rgb2gray(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray``: integer input is rounded back to its integer type, float is not."""
    grey = rgb[..., :3].astype(np.float64) @ RGB2GRAY_WEIGHTS
    if np.issubdtype(rgb.dtype, np.integer):
        info = np.iinfo(rgb.dtype)
        return np.clip(np.floor(grey + 0.5), info.min, info.max).astype(rgb.dtype)
    return grey


DisplayWindow = tuple[float, float]


def display_window(image: Image) -> DisplayWindow | None:
    """The linear window that maps a 16-bit image onto 0..255 (``None`` for 8-bit data)."""
    if image.bit_depth <= 8:
        return None
    low, high = float(image.pixels.min()), float(image.pixels.max())
    return (low, high if high > low else low + 1.0)


def to_metric_input(image: Image, colour: str, window: DisplayWindow | None = None) -> np.ndarray:
    """Pixels as a metric receives them: ``float64`` on the 0..255 scale.

    ``colour`` is the metric's attribute: ``"grey"`` gives ``(H, W)`` (MATLAB ``rgb2gray`` of
    RGB input), ``"rgb"`` gives ``(H, W, 3)`` (grey replicated), ``"native"`` keeps the stored
    layout. ``window`` overrides the display window of 16-bit data (full-reference pairs pass
    the reference's window for both images).
    """
    pixels = image.pixels
    if colour == "grey" and pixels.ndim == 3:
        pixels = rgb2gray(pixels)
    elif colour == "rgb" and pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    elif colour not in ("grey", "rgb", "native"):
        raise ValueError(f"unknown colour convention {colour!r}")
    data = pixels.astype(np.float64)
    if image.bit_depth > 8:
        low, high = window or display_window(image) or (0.0, 255.0)
        data = (data - low) * 255.0 / (high - low)
    return data


def load_for_metric(
    path: str | Path, colour: str, ref_path: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image (and its reference) and prepare both for a metric with ``colour``.

    Raises :class:`~iqabench.errors.SizeMismatchError` when the pair differs in size.
    """
    from .errors import SizeMismatchError

    image = read_image(path)
    if ref_path is None:
        return to_metric_input(image, colour), None
    ref = read_image(ref_path)
    if ref.size != image.size:
        raise SizeMismatchError(
            f"distorted image {path} is {image.size[1]}x{image.size[0]} but its reference "
            f"{ref_path} is {ref.size[1]}x{ref.size[0]}"
        )
    if colour == "native" and image.is_rgb != ref.is_rgb:
        colour = "rgb"  # a grey/RGB pair is compared in RGB, the grey one replicated
    window = display_window(ref)
    return to_metric_input(image, colour, window), to_metric_input(ref, colour, window)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cached_file_sha256(path: Path) -> str:
    """:func:`file_sha256`, remembered per (path, size, modification time) in this process."""
    stat = Path(path).stat()
    return _memo_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _memo_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(Path(path))


def content_key(image: Path, ref: Path | None = None) -> str:
    """The score-store key of an item: content hashes of the image and of its reference."""
    key = file_sha256(image)[:32]
    return key if ref is None else f"{key}:{file_sha256(ref)[:32]}"
