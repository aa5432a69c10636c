"""On-the-fly distorted/reference pairs from a split's training references, for pretraining.

Several deep models pretrain a part of their network on synthetic distortions of pristine
images that the benchmark dataset does not contain (DACNN's SDANet regresses a pseudo-quality,
VCRNet's restoration network learns to undo distortions, SaTQA's encoder learns distortion
classes by supervised contrast). Doing that on an outside image collection would leak nothing,
but LWIR-IQA's distorted images are made from the same scenes as its tests, so here pretraining
draws pairs from the **training references of the split being trained, and nothing else**:
:func:`references_of` keeps the references that reached a metric's ``fit`` (the runner never
passes a test image there), :func:`split_references` reads those of a split's training side
from a dataset.

A pair is made by the LWIR-IQA thermal recipe of :mod:`iqabench.data.synthetic.distortions`
(white noise, blur, non-uniformity, JPEG, JPEG 2000) applied to an aligned square crop of a
reference, at discrete levels 1..5 or at continuous levels, where each parameter is linearly
interpolated between the recipe's two neighbouring levels (JPEG's quality factor rounded). A
pair may carry a chain of several distortions of distinct types applied in turn (for models
that learn from compound degradations), or none at all (the pristine class). Its live
full-reference target is any registered full-reference metric of this project computed on the
pair (``vif`` by default: the wavelet-domain VIF of Sheikh & Bovik, IEEE TIP 15(2), 2006).

Interface (a map-style dataset, usable directly by ``torch.utils.data.DataLoader`` with
``collate_fn=collate_pairs``)::

    refs = references_of(train)                    # or split_references(dataset, split)
    pairs = DistortedPairs(refs, PairConfig(crop=224, levels="continuous"), seed=split_seed,
                           length=1000)
    pairs.epoch = epoch                            # a fresh draw per epoch (optional)
    pair = pairs[i]                                # Pair: uint8 crops, steps, label, target
    batch = collate_pairs([pairs[i] for i in range(8)])   # PairBatch of torch tensors
    samples = PairSamples(pairs, channels=3)       # dict samples for iqabench's trainer

:class:`PairSamples` serves pairs as the deep-model trainer's stage data (see
``docs/deep-models.md``): ``image`` (distorted) and ``ref`` as ``(C, h, w)`` ``uint8`` on
0..255, ``target`` and ``label`` when the pairs have them; its ``epoch`` is the pairs'.

Pair ``i`` of epoch ``e`` depends only on ``(seed, e, i)`` and the references, so pairs are
reproducible and can be drawn in any order or worker. Crops are taken before the distortion is
applied (cheaper than distorting the whole frame; JPEG blocks are then aligned with the crop).
References are grey on the 0..255 display scale, as metrics receive them (a 16-bit reference
arrives through its display window), and are distorted as 8-bit frames.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from ..errors import DatasetError, UserError
from .synthetic.distortions import DISTORTIONS, N_LEVELS, RECIPE, Draws, Frame, Params

if TYPE_CHECKING:
    import torch

    from ..metric import LabelledImage, Metric
    from ..protocol import Split
    from ..train.inputs import InputSpec
    from ..train.recipe import StageInputs
    from .items import Dataset

#: Entropy tag of the pair random streams (the synthetic dataset uses 2 for its distortions).
PAIR_STREAM = 7
#: Class index of an undistorted pair (SaTQA's pristine class).
PRISTINE_CLASS = 0
#: Entropy tag of the level-ordered (preference) pair streams.
LEVEL_PAIR_STREAM = 8

LevelMode = Literal["discrete", "continuous"]


@dataclass(frozen=True)
class Reference:
    """A pristine training frame: its scene id and grey pixels (``uint8``, display scale)."""

    content: str
    pixels: np.ndarray

    @classmethod
    def of(cls, content: str, pixels: np.ndarray) -> Reference:
        """A reference from metric-input pixels (``float64`` 0..255, grey or RGB)."""
        values = np.asarray(pixels, dtype=np.float64)
        if values.ndim == 3:
            from ..imageio import RGB2GRAY_WEIGHTS

            values = values[..., :3] @ RGB2GRAY_WEIGHTS
        grey = np.clip(np.round(values), 0, 255).astype(np.uint8)
        grey.setflags(write=False)
        return cls(str(content), grey)

    @property
    def digest(self) -> str:
        """SHA-256 of the pixels (tells identical references apart from different ones)."""
        return hashlib.sha256(self.pixels.tobytes() + str(self.pixels.shape).encode()).hexdigest()


def references_of(items: Sequence[LabelledImage], spec: InputSpec | None = None) -> list[Reference]:
    """The distinct references of a metric's training records (read from disk), sorted by
    scene; with ``spec``, each prepared as the model prepares its images (resized, enlarged to
    fit the crop; see :func:`iqabench.train.inputs.prepare`), in grey.

    These are the only pristine images a learned metric's ``fit`` receives (and what a
    pretraining stage's :class:`~iqabench.train.recipe.StageInputs` carries), so pretraining on
    them cannot see a test scene. Raises :class:`~iqabench.errors.DatasetError` when no record
    has a reference (a dataset without references, such as TIIQAD).
    """
    pairs = ((item.ref, item.content) for item in items if item.ref is not None)
    found = read_references(pairs, spec)
    if not found:
        raise DatasetError(
            "pretraining needs pristine references, and none of the training images has one "
            "(this dataset has no references)"
        )
    return found


def split_references(dataset: Dataset, split: Split) -> list[Reference]:
    """The distinct references of the training side of ``split`` of ``dataset``; the test
    side's items are never opened."""
    items = [dataset.items[int(index)] for index in split.train]
    found = read_references((item.ref, item.content) for item in items if item.ref is not None)
    if not found:
        raise DatasetError(
            f"dataset {dataset.name!r} has no reference image on the training side of split "
            f"{split.index}: pretraining needs pristine references"
        )
    return found


def read_references(
    paths: Iterable[tuple[str | Path, str]], spec: InputSpec | None = None
) -> list[Reference]:
    """The distinct images of ``(path, scene)`` pairs as grey references on the display scale
    (a 16-bit one through its display window; prepared as ``spec`` says when given), sorted by
    scene; each file is read once."""
    from ..imageio import read_image, to_metric_input

    grey = None if spec is None else replace(spec, channels="grey", depth="uint8")
    scenes: dict[str, str] = {}
    for path, content in paths:
        scenes.setdefault(str(path), str(content))
    found: dict[str, Reference] = {}
    for path, content in sorted(scenes.items()):
        pixels = to_metric_input(read_image(path), "grey")
        if grey is not None:
            from ..train.inputs import prepare

            pixels = prepare(pixels, grey)[0]
        reference = Reference.of(content, pixels)
        found.setdefault(reference.digest, reference)
    return sorted(found.values(), key=lambda r: (r.content, r.digest))


@dataclass(frozen=True)
class Step:
    """One distortion applied to a frame: its recipe code and level (1 mildest .. 5 worst)."""

    code: str
    level: float


@dataclass(frozen=True)
class PairConfig:
    """What pairs to draw.

    ``crop``: side of the aligned square crop (None: whole frames, which must then all have one
    size to be batched). ``levels``: integers drawn uniformly in ``level_range`` or real values
    drawn uniformly in it. ``chain``: the least and most distortions per pair (distinct types,
    random order). ``pristine_fraction``: share of pairs left undistorted. ``target``: name of
    the full-reference metric computed on each pair (None: no target). ``flip``: random
    horizontal flips (of both images together).
    """

    crop: int | None = 224
    distortions: tuple[str, ...] = DISTORTIONS
    levels: LevelMode = "discrete"
    level_range: tuple[float, float] = (1.0, float(N_LEVELS))
    chain: tuple[int, int] = (1, 1)
    pristine_fraction: float = 0.0
    target: str | None = "vif"
    flip: bool = True

    def __post_init__(self) -> None:
        unknown = [code for code in self.distortions if code not in RECIPE]
        if unknown or not self.distortions or len(set(self.distortions)) < len(self.distortions):
            raise UserError(
                f"pair distortions must be distinct codes among {', '.join(DISTORTIONS)}, not "
                f"{', '.join(self.distortions) or 'none'}"
            )
        if self.levels not in ("discrete", "continuous"):
            raise UserError(f"pair levels must be 'discrete' or 'continuous', not {self.levels!r}")
        low, high = self.level_range
        if not 1.0 <= low <= high <= N_LEVELS:
            raise UserError(f"pair level range must lie within 1..{N_LEVELS}, not {low}..{high}")
        shortest, longest = self.chain
        if not 1 <= shortest <= longest <= len(self.distortions):
            raise UserError(
                f"pair chain length must lie within 1..{len(self.distortions)}, not "
                f"{shortest}..{longest}"
            )
        if not 0.0 <= self.pristine_fraction < 1.0:
            raise UserError(f"pristine fraction must lie in [0, 1), not {self.pristine_fraction}")
        if self.crop is not None and self.crop < 8:
            raise UserError(f"pair crop must be at least 8 pixels, not {self.crop}")

    @property
    def n_classes(self) -> int:
        """Number of distortion classes: one per (type, level) plus the pristine class."""
        return 1 + len(self.distortions) * N_LEVELS


@dataclass(frozen=True)
class Pair:
    """One training pair: aligned ``uint8`` grey crops, how the first was made, and labels.

    ``label`` is the (type, level) class of a single-step pair (level rounded), 0 for a pristine
    pair, None for a chain of several distortions. ``target`` is the full-reference score of
    the pair (None when the configuration asks for none).
    """

    distorted: np.ndarray
    reference: np.ndarray
    steps: tuple[Step, ...]
    label: int | None
    target: float | None
    content: str


@dataclass(frozen=True)
class PairBatch:
    """Pairs collated into tensors: ``(N, 1, H, W)`` float32 images on the 0..255 scale."""

    distorted: torch.Tensor
    reference: torch.Tensor
    labels: torch.Tensor | None
    targets: torch.Tensor | None
    steps: tuple[tuple[Step, ...], ...]
    contents: tuple[str, ...]


def level_params(code: str, level: float) -> Params:
    """The recipe parameters of distortion ``code`` at a (possibly fractional) level: each
    parameter interpolated linearly between the two neighbouring levels, integer-valued ones
    (JPEG quality, JPEG 2000 ratio) rounded."""
    levels = RECIPE[code].levels
    if not 1.0 <= level <= len(levels):
        raise UserError(f"level {level} of {code} is outside 1..{len(levels)}")
    below = min(int(np.floor(level)), len(levels) - 1)
    weight = level - below
    low, high = levels[below - 1], levels[below]
    params: Params = {}
    for key, value in low.items():
        mixed = (1.0 - weight) * value + weight * high[key]
        integer = float(value).is_integer() and float(high[key]).is_integer()
        params[key] = float(round(mixed)) if integer else mixed
    return params


def distort(pixels: np.ndarray, steps: Sequence[Step], rng: np.random.Generator) -> np.ndarray:
    """``uint8`` grey pixels after applying ``steps`` in turn (each stored back to 8 bits)."""
    values = np.asarray(pixels, dtype=np.uint8)
    for step in steps:
        frame = Frame.of(values)
        params = level_params(step.code, step.level)
        values = frame.store(RECIPE[step.code].apply(frame, params, Draws(rng)))
    return values


def class_index(steps: Sequence[Step], distortions: Sequence[str] = DISTORTIONS) -> int | None:
    """The (type, level) class of a pair: 0 when pristine, ``1 + type * 5 + level - 1`` for one
    step (``type`` indexing ``distortions``, the level rounded), None for a chain."""
    if not steps:
        return PRISTINE_CLASS
    if len(steps) > 1:
        return None
    step = steps[0]
    level = int(np.clip(np.floor(step.level + 0.5), 1, N_LEVELS))
    return 1 + list(distortions).index(step.code) * N_LEVELS + level - 1


class DistortedPairs:
    """A map-style dataset of pairs drawn from ``references`` (see the module docstring).

    ``length`` pairs per epoch; pair ``i`` uses reference ``i mod len(references)``, so every
    reference is used equally. Setting :attr:`epoch` draws that epoch's pairs (0 by default).
    ``cache=True`` keeps the pairs drawn so far in memory (about ``2 * crop**2`` bytes each), so
    an epoch drawn again costs nothing.
    """

    def __init__(
        self,
        references: Sequence[Reference],
        config: PairConfig,
        seed: int,
        length: int,
        cache: bool = False,
    ) -> None:
        if not references:
            raise DatasetError("pretraining pairs need at least one reference")
        if length < 1:
            raise UserError(f"the number of pairs per epoch must be at least 1, not {length}")
        self.references = tuple(references)
        self.config = config
        self.seed = int(seed)
        self.length = int(length)
        #: The epoch whose pairs are drawn (a trainer sets it before every epoch).
        self.epoch = 0
        self._check_sizes()
        self._cache: dict[tuple[int, int], Pair] | None = {} if cache else None
        self._target: Metric | None = None

    def __len__(self) -> int:
        return self.length

    def contents(self) -> set[str]:
        """The scene ids the pairs are drawn from."""
        return {reference.content for reference in self.references}

    def __getitem__(self, index: int) -> Pair:
        if not 0 <= index < self.length:
            raise IndexError(index)
        key = (int(self.epoch), int(index))
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        pair = self._draw(*key)
        if self._cache is not None:
            self._cache[key] = pair
        return pair

    def _draw(self, epoch: int, index: int) -> Pair:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, PAIR_STREAM, epoch, index]))
        reference = self.references[index % len(self.references)]
        crop = self._crop(reference.pixels, rng)
        steps = self._steps(rng)
        distorted = distort(crop, steps, rng)
        crop.setflags(write=False)
        distorted.setflags(write=False)
        return Pair(
            distorted=distorted,
            reference=crop,
            steps=steps,
            label=class_index(steps, self.config.distortions),
            target=self._score(distorted, crop),
            content=reference.content,
        )

    def _crop(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        side = self.config.crop
        if side is None:
            crop = pixels
        else:
            top = int(rng.integers(0, pixels.shape[0] - side + 1))
            left = int(rng.integers(0, pixels.shape[1] - side + 1))
            crop = pixels[top : top + side, left : left + side]
        if self.config.flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        return np.ascontiguousarray(crop)

    def _steps(self, rng: np.random.Generator) -> tuple[Step, ...]:
        c = self.config
        if c.pristine_fraction and rng.random() < c.pristine_fraction:
            return ()
        count = int(rng.integers(c.chain[0], c.chain[1] + 1))
        codes = rng.choice(len(c.distortions), size=count, replace=False)
        low, high = c.level_range
        steps = []
        for code in codes:
            if c.levels == "discrete":
                level = float(rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1))
            else:
                level = float(rng.uniform(low, high))
            steps.append(Step(c.distortions[int(code)], level))
        return tuple(steps)

    def _score(self, distorted: np.ndarray, reference: np.ndarray) -> float | None:
        if self.config.target is None:
            return None
        if self._target is None:
            self._target = _target_metric(self.config.target)
        value = self._target.score([distorted.astype(np.float64)], [reference.astype(np.float64)])
        return float(np.asarray(value).ravel()[0])

    def _check_sizes(self) -> None:
        side = self.config.crop
        for reference in self.references:
            height, width = reference.pixels.shape
            if side is not None and min(height, width) < side:
                raise DatasetError(
                    f"reference of scene {reference.content!r} is {height}x{width}, smaller than "
                    f"the {side}x{side} pretraining crop"
                )
        if side is None and len({r.pixels.shape for r in self.references}) > 1:
            raise DatasetError("whole-frame pairs need references of one size; give a crop size")


def _target_metric(name: str) -> Metric:
    from .. import registry

    metric = registry.create(name)
    if not metric.full_reference:
        raise UserError(f"the pair target must be a full-reference metric; {name!r} is not")
    return metric


def target_higher_is_better(name: str) -> bool:
    """Whether a larger target of metric ``name`` means a better distorted image."""
    from .. import registry

    return bool(registry.get(name).higher_is_better)


class LevelOrderedPairs:
    """Preference pairs for rank losses (VTAMIQ's pretraining, in the manner of PieAPP's
    pairwise preferences): item ``i`` is two :class:`Pair` of one crop of a reference, made by
    the same distortion types with the same noise draws at two distinct levels per type, the
    milder (preferred) first. Crops, types and levels follow ``pairs``' configuration (each
    type's two levels sorted; discrete levels differ); each pair carries its own target.
    ``pairs.epoch`` selects the epoch; item ``i`` of epoch ``e`` depends only on ``(seed, e,
    i)`` and the references."""

    def __init__(self, pairs: DistortedPairs) -> None:
        low, high = pairs.config.level_range
        if pairs.config.pristine_fraction:
            raise UserError("level-ordered pairs are all distorted: set pristine_fraction to 0")
        discrete = pairs.config.levels == "discrete"
        if (discrete and np.floor(high) - np.ceil(low) < 1) or low == high:
            raise UserError(f"level-ordered pairs need two levels in {low}..{high}")
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def contents(self) -> set[str]:
        """The scene ids the pairs are drawn from."""
        return self.pairs.contents()

    def __getitem__(self, index: int) -> tuple[Pair, Pair]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        p = self.pairs
        seed = np.random.SeedSequence([p.seed, LEVEL_PAIR_STREAM, p.epoch, index])
        rng = np.random.default_rng(seed)
        reference = p.references[index % len(p.references)]
        crop = p._crop(reference.pixels, rng)
        crop.setflags(write=False)
        codes = [step.code for step in p._steps(rng)]
        levels = [self._two_levels(rng) for _ in codes]
        noise = int(rng.integers(2**63))
        milder = [Step(code, pair[0]) for code, pair in zip(codes, levels, strict=True)]
        worse = [Step(code, pair[1]) for code, pair in zip(codes, levels, strict=True)]
        return (
            self._pair(crop, reference.content, milder, noise),
            self._pair(crop, reference.content, worse, noise),
        )

    def _two_levels(self, rng: np.random.Generator) -> tuple[float, float]:
        low, high = self.pairs.config.level_range
        if self.pairs.config.levels == "discrete":
            choices = np.arange(int(np.ceil(low)), int(np.floor(high)) + 1)
            first, second = np.sort(rng.choice(choices, size=2, replace=False))
        else:
            first, second = np.sort(rng.uniform(low, high, size=2))
        return float(first), float(second)

    def _pair(self, crop: np.ndarray, content: str, steps: list[Step], noise: int) -> Pair:
        distorted = distort(crop, steps, np.random.default_rng(noise))
        distorted.setflags(write=False)
        return Pair(
            distorted=distorted,
            reference=crop,
            steps=tuple(steps),
            label=class_index(steps, self.pairs.config.distortions),
            target=self.pairs._score(distorted, crop),
            content=content,
        )


def collate_pairs(pairs: Sequence[Pair]) -> PairBatch:
    """Stack pairs of one size into a :class:`PairBatch` (labels and targets when all have
    them)."""
    import torch

    def images(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(arrays).astype(np.float32)).unsqueeze(1)

    labels: Any = [p.label for p in pairs]
    targets: Any = [p.target for p in pairs]
    return PairBatch(
        distorted=images([p.distorted for p in pairs]),
        reference=images([p.reference for p in pairs]),
        labels=None if None in labels else torch.tensor(labels, dtype=torch.long),
        targets=None if None in targets else torch.tensor(targets, dtype=torch.float32),
        steps=tuple(p.steps for p in pairs),
        contents=tuple(p.content for p in pairs),
    )


class PairSamples:
    """``pairs`` as dict samples of tensors for the deep-model trainer's stages: ``image`` (the
    distorted crop) and ``ref`` as ``(channels, h, w)`` ``uint8`` (grey repeated), ``target``
    (``float32``) and ``label`` (``int64``) when the pairs carry them. Setting :attr:`epoch`
    sets the pairs' epoch."""

    def __init__(self, pairs: DistortedPairs, channels: int = 1) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {channels}")
        self.pairs = pairs
        self.channels = channels

    @property
    def epoch(self) -> int:
        return self.pairs.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.pairs.epoch = int(value)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        import torch

        pair = self.pairs[index]

        def planes(pixels: np.ndarray) -> torch.Tensor:
            stacked = np.repeat(pixels[None], self.channels, axis=0)
            return torch.from_numpy(np.ascontiguousarray(stacked))

        sample = {"image": planes(pair.distorted), "ref": planes(pair.reference)}
        if pair.target is not None:
            sample["target"] = torch.tensor(pair.target, dtype=torch.float32)
        if pair.label is not None:
            sample["label"] = torch.tensor(pair.label, dtype=torch.long)
        return sample


@dataclass(frozen=True)
class PairStageData:
    """A pretraining stage's data (``Stage(data=PairStageData(...))``, see
    ``docs/deep-models.md``): ``pairs_per_epoch`` pairs of ``config`` per epoch, drawn afresh
    each epoch from the stage inputs' training references only, prepared like the model's
    training images (the input spec's resize; enlarged to fit the pair crop), seeded by the
    split's training seed, served as :class:`PairSamples` with the spec's channels."""

    config: PairConfig
    pairs_per_epoch: int
    #: How a checkpoint names this data.
    __name__: ClassVar[str] = "training-reference pairs"

    def __call__(self, inputs: StageInputs) -> PairSamples:
        crop = self.config.crop
        spec = inputs.spec if crop is None else replace(inputs.spec, crop=crop)
        references = references_of(inputs.items, spec)
        pairs = DistortedPairs(references, self.config, inputs.seed, self.pairs_per_epoch)
        return PairSamples(pairs, channels=inputs.spec.n_channels)
