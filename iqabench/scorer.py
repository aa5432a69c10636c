"""A metric as a callable object, for notebooks and scripts.

>>> import iqabench
>>> niqe = iqabench.create_metric("niqe")                      # doctest: +SKIP
>>> niqe("frame.png")                                           # doctest: +SKIP
4.41
>>> ssim = iqabench.create_metric("ssim")                       # doctest: +SKIP
>>> ssim(["a.png", "b.png"], ref=["a_ref.png", "b_ref.png"])    # doctest: +SKIP
array([0.91, 0.78])

The object accepts what people hold in memory, one image or a batch:

* a path (``str`` or :class:`~pathlib.Path`), read the way a run reads it
  (:func:`iqabench.imageio.load_for_metric`: MATLAB ``rgb2gray``, 16-bit display window);
* a NumPy array ``(H, W)`` or ``(H, W, C)`` with ``C`` in 1, 3, 4: ``uint8`` and ``uint16``
  as stored in an image file; floating point on the metric scale, 0..255 (the convention every
  iqabench metric receives);
* a PIL image;
* a torch tensor ``(C, H, W)`` or ``(N, C, H, W)``: floating point on 0..1 (the torchvision
  and pyiqa convention), integer tensors as stored;
* a list or tuple of any of these, or an ``(N, H, W, C)`` array / ``(N, C, H, W)`` tensor:
  a batch, scored in the metric's own batch size, giving an array of scores.

One image gives a ``float``, a batch a ``float64`` array. ``higher_is_better``,
``score_range`` and ``full_reference`` say how to read the numbers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ImageReadError, NotFittedError, SizeMismatchError, UserError
from .imageio import Image, display_window, load_for_metric, to_metric_input
from .metric import FeatureMetric, LearnedMetric, Metric, not_fitted_message

__all__ = ["Scorer", "create_metric"]


def create_metric(name: str, **params: Any) -> Scorer:
    """The metric ``name`` (see ``iqabench list metrics``) with ``params``, as a callable."""
    from . import registry

    return Scorer(registry.create(name, **params))


class Scorer:
    """One metric instance wrapped for direct use: ``scorer(images, ref=None)``."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    @property
    def name(self) -> str:
        return self.metric.name

    @property
    def full_reference(self) -> bool:
        return bool(self.metric.full_reference)

    @property
    def higher_is_better(self) -> bool:
        return bool(self.metric.higher_is_better)

    @property
    def score_range(self) -> tuple[float, float]:
        """The interval the scores can take (``-inf``/``inf`` where unbounded or unknown)."""
        declared = getattr(self.metric, "score_range", None)
        if declared is None:
            return (-math.inf, math.inf)
        return (float(declared[0]), float(declared[1]))

    @property
    def value_note(self) -> str | None:
        """Says how the printed value relates to the published one, when it is transformed."""
        return self.metric.value_note()

    def __repr__(self) -> str:
        return (
            f"Scorer({self.name!r}, higher_is_better={self.higher_is_better}, "
            f"full_reference={self.full_reference})"
        )

    def __call__(self, images: Any, ref: Any = None) -> float | np.ndarray:
        """Score one image (a ``float``) or a batch (an array), with references for FR."""
        refuse_unfitted(self.metric)
        batch, single = _as_batch(images)
        refs: list[Any] | None = None
        if self.full_reference:
            if ref is None:
                raise UserError(f"{self.name} is a full-reference metric: give ref=")
            refs, _ = _as_batch(ref)
            if len(refs) == 1 and len(batch) > 1:
                refs = refs * len(batch)
            if len(refs) != len(batch):
                raise UserError(f"{len(batch)} images but {len(refs)} references")
        prepared = [
            self._prepare(image, None if refs is None else refs[i]) for i, image in enumerate(batch)
        ]
        pixels = [p for p, _ in prepared]
        references = [r for _, r in prepared] if self.full_reference else None
        size = max(1, int(self.metric.batch_size))
        scores = []
        for start in range(0, len(pixels), size):
            chunk_refs = None if references is None else references[start : start + size]
            scores.append(self.metric.score(pixels[start : start + size], chunk_refs))
        values = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in scores])
        return float(values[0]) if single else values

    def _prepare(self, image: Any, ref: Any) -> tuple[np.ndarray, np.ndarray | None]:
        colour = self.metric.colour
        if _is_path(image) and (ref is None or _is_path(ref)):
            return load_for_metric(image, colour, ref)
        decoded = _decode(image)
        if ref is None:
            return to_metric_input(decoded, colour), None
        reference = _decode(ref)
        if reference.size != decoded.size:
            raise SizeMismatchError(
                f"image is {decoded.size[1]}x{decoded.size[0]} but its reference is "
                f"{reference.size[1]}x{reference.size[0]}"
            )
        if colour == "native" and decoded.is_rgb != reference.is_rgb:
            colour = "rgb"
        window = display_window(reference)
        return to_metric_input(decoded, colour, window), to_metric_input(reference, colour, window)


def refuse_unfitted(metric: Metric) -> None:
    """Raise the one NotFittedError message when ``metric`` cannot score as it stands."""
    if isinstance(metric, LearnedMetric) and metric.requires_fit():
        raise NotFittedError(not_fitted_message(metric.name))
    if isinstance(metric, FeatureMetric) and metric.pretrained_regressor() is None:
        if getattr(metric, "_regressor", None) is None:
            raise NotFittedError(not_fitted_message(metric.name))


# -- inputs -----------------------------------------------------------------------------------
def _is_path(value: Any) -> bool:
    return isinstance(value, (str, Path))


def _as_batch(value: Any) -> tuple[list[Any], bool]:
    """``(items, single)``: a list of single images, and whether one image was given."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise UserError("no image given")
        return list(value), False
    if _is_path(value):
        return [value], True
    if _is_tensor(value):
        if value.ndim == 4:
            return list(value), False
        return [value], True
    if isinstance(value, np.ndarray):
        if value.ndim == 4:
            return list(value), False
        return [value], True
    return [value], True


def _is_tensor(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("torch") and hasattr(value, "detach")


def _decode(value: Any) -> Image:
    """An in-memory image as :class:`~iqabench.imageio.Image` (8-bit, 16-bit or float)."""
    if _is_tensor(value):
        return _from_tensor(value)
    if isinstance(value, np.ndarray):
        return _from_array(value)
    if type(value).__module__.startswith("PIL."):
        from .imageio import decode_pil

        return decode_pil(value, None)
    raise UserError(
        f"cannot score a {type(value).__name__}: give a path, a NumPy array, a PIL image or a "
        "torch tensor"
    )


def _from_tensor(tensor: Any) -> Image:
    array = tensor.detach().cpu().numpy()
    if array.ndim != 3:
        raise UserError(f"a tensor image must be (C, H, W), got shape {tuple(array.shape)}")
    array = np.moveaxis(array, 0, -1)
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64) * 255.0
    return _from_array(array)


def _from_array(array: np.ndarray) -> Image:
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., 0] if array.shape[2] == 1 else array[..., :3]
    if array.ndim not in (2, 3):
        raise UserError(f"an image array must be (H, W) or (H, W, C), got shape {array.shape}")
    if array.dtype == np.uint8:
        return Image(array, 8)
    if array.dtype == np.uint16:
        return Image(array, 16)
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        return Image(array.astype(np.float64), 8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ImageReadError("the image array holds NaN or infinite values")
        return Image(array.astype(np.float64), 8)
    raise UserError(f"unsupported image array dtype {array.dtype}")
