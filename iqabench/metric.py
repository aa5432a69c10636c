"""The one interface every metric implements, built-in or third-party.

A metric receives images as ``float64`` NumPy arrays on the 0..255 scale: ``(H, W)`` for grey,
``(H, W, 3)`` for RGB. The runner prepares them according to the metric's ``colour`` attribute
(see :func:`iqabench.imageio.to_metric_input`), so a metric never reads files and never sees a
dataset. Three kinds exist:

* :class:`Metric`: training-free; ``score`` maps images (and references) to numbers.
* :class:`FeatureMetric`: a regressor over per-image features (BRISQUE, GM-LOG, SCIQA...). The
  runner computes ``features`` once per image and caches them, then ``fit``/``predict`` per split.
* :class:`LearnedMetric`: a model trained end to end on images (deep networks); the runner calls
  ``fit`` on each split's training images and ``predict`` on its test images, both given as
  paths (:class:`LabelledImage`) that the metric reads itself.

Trainable metrics are always fitted on *quality* (higher is better, whatever the dataset's own
score direction), so their predictions are higher-is-better.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from .errors import MetricParameterError, NotFittedError
from .imageio import cached_file_sha256

Family = Literal["TR-FR", "DL-FR", "TR-NR", "DL-NR"]
FAMILIES: tuple[str, ...] = ("TR-FR", "DL-FR", "TR-NR", "DL-NR")
Colour = Literal["grey", "rgb", "native"]


def not_fitted_message(name: str) -> str:
    """What every entry point says of a trainable metric that has no model to score with."""
    return (
        f"metric {name!r} is trainable and has no trained model: `iqabench run` fits it on "
        "each training split (deep metrics: or `iqabench train` it and give checkpoint=PATH)"
    )


class Metric(ABC):
    """A training-free image quality metric.

    Subclasses set the class attributes below and implement :meth:`score`. Heavy libraries
    (torch, pyiqa) must be imported inside methods, never at module level, so that listing the
    registry stays fast.
    """

    #: Registry name, lower case, e.g. ``"ssim"``.
    name: ClassVar[str]
    #: One of :data:`FAMILIES`.
    family: ClassVar[Family]
    #: True when the metric needs a pristine reference image.
    full_reference: ClassVar[bool]
    #: True when a larger score means better quality.
    higher_is_better: ClassVar[bool]
    #: What the metric is given: ``"grey"`` (MATLAB ``rgb2gray`` of RGB input), ``"rgb"`` (grey
    #: input replicated to three channels) or ``"native"`` (grey or RGB as stored).
    colour: ClassVar[Colour] = "grey"
    #: Changes whenever the metric's numbers change; part of every score-store key.
    version: ClassVar[str] = "1"
    #: The paper, as one line of text (authors, title, venue, year, DOI).
    citation: ClassVar[str]
    #: Default values of every accepted parameter.
    default_params: ClassVar[Mapping[str, Any]] = {}
    #: Parameters naming files; their *content* (not their path) enters the cache key.
    file_params: ClassVar[tuple[str, ...]] = ()
    #: Parameters that change how, not what, is computed (e.g. ``device``); not in the cache key.
    runtime_params: ClassVar[tuple[str, ...]] = ()
    #: How many images the runner hands to :meth:`score` at once.
    batch_size: ClassVar[int] = 8
    #: Facts about each image besides its pixels that the metric needs, named as fields of the
    #: items table (e.g. ``("distortion",)`` for a distortion-specific metric). The runner then
    #: calls ``score(images, refs, metadata=[{"distortion": ...}, ...])`` (one mapping per image,
    #: a value None where the dataset does not say), skips the metric on a dataset that gives
    #: none of them, and keys its stored scores by those values as well as by the pixels.
    item_fields: ClassVar[tuple[str, ...]] = ()
    #: Per-image diagnostics (training-free metric classes, e.g. the flat-window share) the
    #: runner computes through the store and records beside this metric's scores.
    diagnostics: ClassVar[tuple[type[Metric], ...]] = ()
    #: The interval the scores can take, ``(low, high)`` (``math.inf`` for an open end); None
    #: when unknown. Trainable metrics predict quality on the training data's scale: None.
    score_range: ClassVar[tuple[float, float] | None] = None
    #: True for metrics that are impractically slow without a GPU (``run --metrics all`` skips
    #: them on a machine without one, and says so).
    gpu_recommended: ClassVar[bool] = False
    trainable: ClassVar[bool] = False
    #: How the conformance suite (:func:`iqabench.testing.check_metric`) exercises this metric:
    #: ``params`` (tiny settings: fewer epochs, a small network, a random-initialised backbone),
    #: ``size`` (``(height, width)`` of its test images, default ``(96, 128)``) and, for a
    #: :class:`LearnedMetric`, ``fit`` (True: train it on a dozen tiny images and check its
    #: scores; default False: only its interface and :class:`NotFittedError` are checked).
    conformance: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.default_params))
        if unknown:
            known = ", ".join(sorted(self.default_params)) or "none"
            raise MetricParameterError(
                f"metric {self.name!r} has no parameter {unknown[0]!r} (known: {known})"
            )
        self.params: dict[str, Any] = {**self.default_params, **params}

    @abstractmethod
    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        """Return one score per image (references are given, in order, for FR metrics)."""

    def model_files(self) -> list[Path]:
        """Model files the scores depend on (pristine models, network weights), resolved now.

        Raise :class:`~iqabench.errors.WeightsNotFoundError` when one is missing: the runner
        calls this before scoring, so a missing file skips the metric with that message. The
        files' content enters the cache key, so replacing a model file recomputes its scores.
        """
        return []

    def notes(self) -> list[str]:
        """Warnings to record with the results (e.g. a network without pretrained weights)."""
        return []

    def value_note(self) -> str | None:
        """How the value this metric returns relates to the published one, when it is not the
        published value itself (e.g. a score negated so that higher is better); else None."""
        return None

    def pretrained_weights(self) -> bool | None:
        """For metrics built on a network: whether it started from pretrained weights (True)
        or from random initialisation (False). None for metrics without a network."""
        return None

    def params_hash(self) -> str:
        """A short hash of what changes results: parameters (file parameters by content) and
        the content of the model files."""
        keyed: dict[str, Any] = {}
        for key, value in sorted(self.params.items()):
            if key in self.runtime_params:
                continue
            if key in self.file_params and value is not None:
                value = cached_file_sha256(Path(value))
            keyed[key] = value
        models = [cached_file_sha256(path) for path in self.model_files()]
        if models:
            keyed["__model_files__"] = models
        blob = json.dumps(keyed, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The interface facts, as plain data (for listings and results)."""
        return {
            "name": cls.name,
            "family": cls.family,
            "full_reference": cls.full_reference,
            "higher_is_better": cls.higher_is_better,
            "colour": cls.colour,
            "version": cls.version,
            "citation": cls.citation,
            "trainable": cls.trainable,
        }


class Regressor(Protocol):
    """The scikit-learn estimator protocol that :class:`FeatureMetric` relies on."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Regressor: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


class FeatureMetric(Metric):
    """A metric that regresses quality from hand-crafted (or frozen deep) features.

    The runner caches :meth:`features` per image in the score store, then for each split calls
    :meth:`fit` on the training images' features and quality and :meth:`predict` on the test
    images' features. Hyper-parameters must be chosen inside :meth:`fit` (cross-validation on
    the training data only). :meth:`score` works once fitted, or unfitted when the metric has a
    published model (:meth:`pretrained_regressor`).
    """

    trainable: ClassVar[bool] = True
    higher_is_better: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._regressor: Regressor | None = None

    @abstractmethod
    def features(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        """Return an ``(N, D)`` feature matrix, one row per image."""

    @abstractmethod
    def make_regressor(self, seed: int, groups: Sequence[str] | None = None) -> Regressor:
        """A fresh, unfitted regressor for one split, its hyper-parameter search included.

        ``groups`` are the content ids (reference scenes) of the training rows, in order, for
        cross-validation folds that keep a scene on one side (see
        :func:`iqabench.metrics._cv.cv_folds`); None when unknown.
        """

    def pretrained_regressor(self) -> Regressor | None:
        """A published model usable without fitting, or ``None`` when there is none."""
        return None

    def fit(
        self,
        features: np.ndarray,
        quality: np.ndarray,
        seed: int = 0,
        groups: Sequence[str] | None = None,
    ) -> FeatureMetric:
        """Fit on training rows only (``groups``: their content ids, for grouped CV)."""
        self._regressor = self.make_regressor(seed, groups).fit(features, quality)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        regressor = self._regressor or self.pretrained_regressor()
        if regressor is None:
            raise NotFittedError(not_fitted_message(self.name))
        return np.asarray(regressor.predict(np.asarray(features)), dtype=np.float64).ravel()

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        return self.predict(self.features(images, refs))

    def value_note(self) -> str | None:
        """Unfitted, the published model's own note (e.g. that its score is negated)."""
        if self._regressor is not None:
            return None
        return getattr(self.pretrained_regressor(), "note", None)


@dataclass(frozen=True)
class LabelledImage:
    """One image for a :class:`LearnedMetric`: where it is (and its reference), its quality
    (NaN when the metric must predict it) and what the dataset knows about it. Pixels are read
    by the metric, so that training memory does not grow with the dataset."""

    image: Path
    quality: float
    content: str
    ref: Path | None = None
    distortion: str | None = None
    level: int | None = None

    def unlabelled(self) -> LabelledImage:
        """The same image with its quality hidden (NaN), as the images to predict are given."""
        return replace(self, quality=math.nan)


class LearnedMetric(Metric):
    """A model trained end to end on images (a deep network).

    The runner calls :meth:`fit` with each split's training images (the test images never reach
    it; ``validation`` is drawn from the training scenes for model selection), then
    :meth:`predict` on the test images (their quality hidden). Both receive
    :class:`LabelledImage` records, paths rather than pixels: the metric reads them (through
    :meth:`read`, or a streaming loader of its own). An image it cannot read is left out, its
    one-line error appended to :attr:`left_out` (the runner reports them with the split). A model
    given a checkpoint parameter scores unfitted.
    """

    trainable: ClassVar[bool] = True
    higher_is_better: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        #: One-line errors of the images left out since the runner last cleared the list.
        self.left_out: list[str] = []

    @abstractmethod
    def fit(
        self,
        train: Sequence[LabelledImage],
        validation: Sequence[LabelledImage],
        seed: int = 0,
    ) -> LearnedMetric:
        """Train on ``train``, select the model on ``validation``; return self."""

    def predict(self, items: Sequence[LabelledImage]) -> np.ndarray:
        """One score per item, NaN for an item that cannot be read (its error goes to
        :attr:`left_out`). The default reads each image and calls :meth:`score` in batches."""
        scores = np.full(len(items), np.nan)
        step = max(1, self.batch_size)
        for start in range(0, len(items), step):
            chunk = list(range(start, min(start + step, len(items))))
            read = {i: self.read(items[i]) for i in chunk}
            ok = [i for i in chunk if read[i] is not None]
            if not ok:
                continue
            images = [read[i][0] for i in ok]  # type: ignore[index]
            refs = [read[i][1] for i in ok]  # type: ignore[index]
            scores[ok] = self.score(images, refs if self.full_reference else None)
        return scores

    def read(self, item: LabelledImage) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The item's image (and reference) prepared for this metric's ``colour``, or None when
        it cannot be read (its error appended to :attr:`left_out`)."""
        from .errors import UserError
        from .imageio import load_for_metric

        try:
            return load_for_metric(item.image, self.colour, item.ref)
        except UserError as exc:
            self.left_out.append(str(exc))
            return None

    def requires_fit(self) -> bool:
        """False when the metric was given a trained model (e.g. a checkpoint) and scores as is."""
        return True
