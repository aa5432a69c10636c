"""VTAMIQ as a learned full-reference metric (DL-FR), faithful and lite, pretrained inside each
split on preference pairs made from its training references.

Paper: A. Chubarau and J. Clark, "VTAMIQ: Transformers for Attention Modulated Image Quality
Assessment", arXiv:2110.01655 (2021), doi:10.48550/arXiv.2110.01655; reference code
github.com/ch-andrei/VTAMIQ. The network and its patch sampling are in
:mod:`iqabench.models.vtamiq` and :mod:`iqabench.models.vtamiq_sampling`; training, checkpoints
and scoring are the deep-metric framework's (:mod:`iqabench.metrics._deep`,
:mod:`iqabench.train`).

A sample is a pair cut to an aligned training window (the input spec's ``crop``; whole images
at test time) with ``N`` patch places drawn once for the pair by the context-aware stratified
sampler (:class:`AlignedPatches`): top-left ``corners`` inside the window and ``grid`` cells of
each patch's place in the whole image, so a window keeps the positional embeddings of its
place. The network cuts both sequences at the same corners.

Two stages per split. ``pretraining`` replaces the paper's KADIS-700k (VSI targets) and PieAPP
stages, which are not available here and would not be thermal: from the split's training
references only, :class:`~iqabench.data.pairs.LevelOrderedPairs` draws a window distorted by
one thermal-recipe type at two distinct levels (same noise draws); each image regresses a live
full-reference target (``pretrain_target``: FSIM by default, the gradient and phase-congruency
index that VSI extends, computed on the pair) by MAE, and the rank loss orders each pair, the
milder preferred (:class:`PreferenceLoss`); the last epoch is kept. ``quality``: MAE plus the
rank loss on the opinion scores (:class:`RankedRegression`), AdamW with weight decay 0.01, the
rate times ``lr_gamma`` after each of ``lr_milestones`` (:class:`MilestoneSchedule`), gradient
norm clipped at 1; the epoch with the best validation SROCC is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..train.inputs import InputSpec
from ._deep import DEEP_PARAMS, DeepMetric

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..data.pairs import LevelOrderedPairs, PairConfig
    from ..models.backbones import BackboneWeights
    from ..train.inference import Batch, Forward
    from ..train.recipe import LossResult, Recipe, Stage, StageInputs
    from ..train.samples import Sample

CITATION = (
    "A. Chubarau and J. Clark, VTAMIQ: Transformers for Attention Modulated Image Quality "
    "Assessment, arXiv:2110.01655, 2021, doi:10.48550/arXiv.2110.01655"
)

#: Entropy tag of the patch draws of pretraining pairs.
PATCH_STREAM = 11


@dataclass(frozen=True)
class MilestoneSchedule:
    """The rate times ``gamma`` after each epoch listed in ``milestones`` (torch's
    ``MultiStepLR``; the paper's 0.1 after epochs 14 and 18 of 20)."""

    milestones: tuple[int, ...]
    gamma: float
    per_step: bool = False

    def factor(self, group: str, epoch: float) -> float:
        return self.gamma ** sum(int(epoch) >= milestone for milestone in self.milestones)

    def describe(self) -> dict[str, Any]:
        return {"schedule": "milestones", "milestones": list(self.milestones), "gamma": self.gamma}


@dataclass(frozen=True)
class AlignedPatches:
    """VTAMIQ's samples: the distorted image and its reference with ``patches`` aligned patch
    places. Training cuts an aligned ``window`` (random place, the pair mirrored left-right at
    random) and draws ``train_patches`` in it; evaluation draws ``test_patches`` over the whole
    image, ``count`` independent sets. ``grid`` is the side of the positional grid."""

    window: int
    train_patches: int
    test_patches: int
    grid: int
    hflip: bool = True

    def train(self, image: np.ndarray, ref: np.ndarray | None, rng: np.random.Generator) -> Sample:
        reference = _needs_reference(ref)
        height, width = image.shape[1:]
        h, w = min(self.window, height), min(self.window, width)
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        distorted = image[:, top : top + h, left : left + w]
        reference = reference[:, top : top + h, left : left + w]
        if self.hflip and rng.random() < 0.5:
            distorted, reference = distorted[:, :, ::-1], reference[:, :, ::-1]
            left = width - left - w  # the window's place in the mirrored image
        return self._sample(distorted, reference, self.train_patches, (top, left), image, rng)

    def test(
        self, image: np.ndarray, ref: np.ndarray | None, count: int, rng: np.random.Generator
    ) -> Sample:
        reference = _needs_reference(ref)
        sets = [
            self._sample(image, reference, self.test_patches, (0, 0), image, rng)
            for _ in range(count)
        ]
        return {key: np.stack([s[key] for s in sets]) for key in sets[0]}

    def describe(self) -> dict[str, Any]:
        return {"sampler": "vtamiq-aligned-patches", **asdict(self)}

    def _sample(
        self,
        distorted: np.ndarray,
        reference: np.ndarray,
        count: int,
        offset: tuple[int, int],
        whole: np.ndarray,
        rng: np.random.Generator,
    ) -> Sample:
        from ..models.vtamiq_sampling import grid_positions, sample_patches

        places = sample_patches(reference[0], distorted[0], count, self.grid, rng)
        grid = grid_positions(places.corners + np.asarray(offset), whole.shape[1:], self.grid)
        return {
            "image": np.ascontiguousarray(distorted),
            "ref": np.ascontiguousarray(reference),
            "corners": places.corners.astype(np.int64),
            "grid": grid.astype(np.int64),
        }


def _needs_reference(ref: np.ndarray | None) -> np.ndarray:
    if ref is None:
        raise ValueError("VTAMIQ samples patches of a pair: the reference image is missing")
    return ref


class PreferenceSamples:
    """Level-ordered pairs as the trainer's dict samples: every entry stacked over the two
    pairs of an item, the milder first: ``image``/``ref`` ``(2, C, h, w)`` ``uint8``,
    ``corners``/``grid`` ``(2, N, 2)``, ``target`` ``(2,)``. Setting :attr:`epoch` sets the
    pairs' epoch."""

    def __init__(self, pairs: LevelOrderedPairs, sampler: AlignedPatches, channels: int) -> None:
        self.pairs = pairs
        self.sampler = sampler
        self.channels = channels

    @property
    def epoch(self) -> int:
        return self.pairs.pairs.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.pairs.pairs.epoch = int(value)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from ..train.samples import to_tensors

        rng = np.random.default_rng((PATCH_STREAM, self.pairs.pairs.seed, self.epoch, index))
        samples = []
        for pair in self.pairs[index]:
            image = np.repeat(pair.distorted[None], self.channels, axis=0)
            ref = np.repeat(pair.reference[None], self.channels, axis=0)
            sample = self.sampler.train(image, ref, rng)
            sample["target"] = np.float32(pair.target)
            samples.append(sample)
        return to_tensors({key: np.stack([s[key] for s in samples]) for key in samples[0]})


@dataclass(frozen=True)
class PreferencePairData:
    """The pretraining stage's data: ``items_per_epoch`` level-ordered pairs of ``config``
    (drawn afresh each epoch from the split's training references only, prepared like the
    model's images) with their patch places."""

    config: PairConfig
    items_per_epoch: int
    sampler: AlignedPatches
    #: How a checkpoint names this data.
    __name__: ClassVar[str] = "training-reference preference pairs"

    def __call__(self, inputs: StageInputs) -> PreferenceSamples:
        from ..data.pairs import DistortedPairs, LevelOrderedPairs, references_of

        spec = replace(inputs.spec, crop=self.config.crop)
        references = references_of(inputs.items, spec)
        pairs = DistortedPairs(references, self.config, inputs.seed, self.items_per_epoch)
        return PreferenceSamples(LevelOrderedPairs(pairs), self.sampler, inputs.spec.n_channels)


@dataclass(frozen=True)
class RankedRegression:
    """The quality loss: MAE between the scores and ``batch[target]`` plus ``rank_weight``
    times VTAMIQ's pairwise rank loss over the batch."""

    forward: Forward
    rank_weight: float = 1.0
    target: str = "quality"

    def __call__(self, net: nn.Module, batch: Batch) -> LossResult:
        import torch.nn.functional as F

        from ..train.objectives.ranking import vtamiq_rank_loss
        from ..train.recipe import LossResult

        scores = self.forward(net, batch).float()
        target = batch[self.target].float()
        mae, rank = F.l1_loss(scores, target), vtamiq_rank_loss(scores, target)
        parts = {"mae": mae, "rank": rank}
        return LossResult(mae + self.rank_weight * rank, scores, target, parts)

    def describe(self) -> dict[str, Any]:
        return {"objective": "mae+rank", "rank_weight": self.rank_weight}


@dataclass(frozen=True)
class PreferenceLoss:
    """The pretraining loss on batches of level-ordered pairs: MAE between every image's score
    and its full-reference target (images whose target is undefined, NaN, left out), plus
    ``rank_weight`` times the rank loss of each pair (the milder image preferred), averaged
    over the pairs."""

    forward: Forward
    rank_weight: float = 1.0

    def __call__(self, net: nn.Module, batch: Batch) -> LossResult:
        import torch
        import torch.nn.functional as F

        from ..train.objectives.ranking import vtamiq_rank_loss
        from ..train.recipe import LossResult

        pairs = batch["target"].shape[0]
        flat = {key: value.flatten(0, 1) for key, value in batch.items()}
        scores = self.forward(net, flat).float()
        target = flat["target"].float()
        preferred = torch.tensor([1.0, 0.0], device=scores.device)
        rank = torch.stack([vtamiq_rank_loss(s, preferred) for s in scores.view(pairs, 2)]).mean()
        defined = torch.isfinite(target)
        mae = F.l1_loss(scores[defined], target[defined]) if defined.any() else scores.sum() * 0
        parts = {"mae": mae, "rank": rank}
        loss = mae + self.rank_weight * rank
        return LossResult(loss, scores[defined], target[defined], parts)

    def describe(self) -> dict[str, Any]:
        return {"objective": "preference-mae+rank", "rank_weight": self.rank_weight}


class VTAMIQ(DeepMetric):
    """VTAMIQ, the paper-era configuration (ViT-B/16's first 6 layers, DiffNet of 4 groups of
    4 RCABs; 57,306,274 parameters), pretrained per split on the split's preference pairs."""

    name: ClassVar[str] = "vtamiq"
    family: ClassVar[str] = "DL-FR"
    full_reference: ClassVar[bool] = True
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = CITATION
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = False
    network: ClassVar[str] = "iqabench.models.vtamiq:VTAMIQNet"
    architecture: ClassVar[str] = "iqabench.models.vtamiq:FULL"
    #: Training windows of 256 (the short side of the usual 320x256 LWIR frame, which is
    #: then never enlarged); images smaller than a window are enlarged to fit, as for crops.
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=256, hflip=True)
    default_params: ClassVar[dict[str, Any]] = {
        **DEEP_PARAMS,
        "epochs": 20,
        "batch_size": 20,
        "lr": 1e-4,
        "weight_decay": 0.01,
        "lr_milestones": [14, 18],
        "lr_gamma": 0.1,
        "clip_grad_norm": 1.0,
        "rank_weight": 1.0,
        "train_patches": 256,
        "test_patches": 1024,
        "pretrain_epochs": 5,
        "pretrain_pairs": 2000,
        "pretrain_batch_size": 10,
        "pretrain_lr": 1e-4,
        "pretrain_target": "fsim",
    }

    def build_network(self, config: Any, backbone: BackboneWeights | None) -> nn.Module:
        from ..models.vtamiq import build_vtamiq

        return build_vtamiq(config, backbone)

    def sampler(self) -> AlignedPatches:
        assert self.input_spec.crop is not None
        return AlignedPatches(
            window=self.input_spec.crop,
            train_patches=int(self.params["train_patches"]),
            test_patches=int(self.params["test_patches"]),
            grid=int(self.config.grid),
            hflip=self.input_spec.hflip,
        )

    def score_batch(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        return net(batch["ref"], batch["image"], batch["corners"], batch["grid"])

    def recipe(self) -> Recipe:
        """The paper's recipe: AdamW, the rate cut at the milestones, gradient clipping."""
        from ..train.recipe import Optimiser

        p = self.params
        schedule = MilestoneSchedule(
            tuple(int(m) for m in p["lr_milestones"]), float(p["lr_gamma"])
        )
        return replace(
            super().recipe(),
            optimiser=Optimiser("adamw", float(p["lr"]), float(p["weight_decay"])),
            schedule=schedule,
            clip_grad_norm=float(p["clip_grad_norm"]),
        )

    def objective(self) -> RankedRegression:
        return RankedRegression(self.score_batch, float(self.params["rank_weight"]))

    def stages(self) -> list[Stage]:
        """Pretraining on the split's preference pairs, then quality on the labelled pairs."""
        from ..data.pairs import PairConfig
        from ..train.recipe import Optimiser, Recipe, Stage

        p = self.params
        sampler = self.sampler()
        pairs = PairConfig(crop=sampler.window, target=str(p["pretrain_target"]))
        pretraining = Stage(
            "pretraining",
            Recipe(
                Optimiser("adamw", float(p["pretrain_lr"]), float(p["weight_decay"])),
                epochs=int(p["pretrain_epochs"]),
                batch_size=int(p["pretrain_batch_size"]),
                clip_grad_norm=float(p["clip_grad_norm"]),
            ),
            PreferenceLoss(self.score_batch, float(p["rank_weight"])),
            data=PreferencePairData(pairs, int(p["pretrain_pairs"]), sampler),
            select="last",
        )
        return [pretraining, super().stages()[0]]


class VTAMIQLite(VTAMIQ):
    """VTAMIQ on a hybrid EfficientNet-Lite0 patch embedding with a 4-layer, 192-wide
    transformer and a short recipe, for CPUs. Not the published model."""

    name: ClassVar[str] = "vtamiq-lite"
    architecture: ClassVar[str] = "iqabench.models.vtamiq:LITE"
    trains_on_cpu: ClassVar[bool] = True
    published: ClassVar[bool] = False
    variant_note: ClassVar[str] = (
        "the CPU configuration (hybrid EfficientNet-Lite0 patch embedding, 4-layer 192-wide "
        "transformer, DiffNet of 1 group of 2 RCABs; 2.8 M parameters; 128x128 training "
        "windows, 64 patches in training and 256 at test; shortened recipe), not the published "
        "VTAMIQ (ViT-B/16 first 6 layers, 57.3 M)"
    )
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=128, hflip=True)
    default_params: ClassVar[dict[str, Any]] = {
        **VTAMIQ.default_params,
        "epochs": 3,
        "batch_size": 8,
        "lr": 3e-4,
        "lr_milestones": [2],
        "train_patches": 64,
        "test_patches": 256,
        "pretrain_epochs": 1,
        "pretrain_pairs": 96,
        "pretrain_batch_size": 4,
        "pretrain_lr": 3e-4,
    }
