"""DRI-IQA as a learned no-reference metric (DL-NR), faithful and lite, with its dual-
representation extractor and restorer pretrained inside each split.

Paper: J. Yue, X. Lin, Z. Yang and C. Ren, "Dual-Representation Interaction Driven Image
Quality Assessment with Restoration Assistance", WACV 2025, arXiv:2411.17390,
doi:10.48550/arXiv.2411.17390. The authors' repository holds only a README and only the paper's
abstract could be read here, so the design follows the description in iqabench's issue 13 and
the choices listed in :mod:`iqabench.models.dri_iqa` (the network) and the cards. Training,
checkpoints and scoring are the deep-metric framework's (:mod:`iqabench.metrics._deep`,
:mod:`iqabench.train`).

Two stages per split, as the paper's two-stage recipe. ``representation``: the extractor learns
MoCo-style with InfoNCE on two crops of one hybrid-degraded window (a chain of one to three
thermal-recipe distortions at continuous levels, :mod:`iqabench.data.pairs`, from the split's
training references only), and the guided restorer learns to restore the first crop (L1 to
its reference crop) with the representation-based semantic (RS) loss between the degradation
representations of the restored crop and of the reference; the last epoch is kept.
``quality``: the extractor, the predictor's backbone and the predictor learn the opinion score
(L1) with the InfoNCE term kept on two crops of each training image, the restorer fixed; the
epoch with the best validation SROCC is kept. On a dataset without references (TIIQAD) the
restoration and RS terms cannot apply: the first stage runs InfoNCE alone on two crops of the
training images, the restorer stays the identity it starts as, and the results say so.

MoCo's momentum update and queue run inside the objectives, in the order of MoCo's own forward
pass: the key extractor moves towards the query extractor (as the last optimiser step left
it), encodes the keys, the loss uses a copy of the queue, then the keys are enqueued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..train.inputs import InputSpec
from ._deep import DEEP_PARAMS, DeepMetric
from .dacnn import UNIT_RANGE

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..data.pairs import DistortedPairs, PairConfig
    from ..metric import LabelledImage
    from ..models.backbones import BackboneWeights
    from ..train.images import ImageSource
    from ..train.inference import Batch
    from ..train.recipe import LossResult, Recipe, Stage, StageInputs
    from ..train.samples import Sample

CITATION = (
    "J. Yue, X. Lin, Z. Yang and C. Ren, Dual-Representation Interaction Driven Image Quality "
    "Assessment with Restoration Assistance, WACV 2025, arXiv:2411.17390, "
    "doi:10.48550/arXiv.2411.17390"
)

#: Entropy tag of the crop draws of the representation stage.
VIEW_STREAM = 12

NO_REFERENCES = (
    "trained without reference images: only the score and InfoNCE terms applied (no "
    "restoration or RS loss; the restorer stayed the identity it starts as)"
)


@dataclass(frozen=True)
class TwoViews:
    """Two random crops of one image, stacked ``(2, C, size, size)`` (InfoNCE's positives; the
    first also the one scored and restored), with the same windows cut from the reference when
    there is one; evaluation: ``count`` random crops, as :class:`RandomCrops`."""

    size: int
    hflip: bool = True
    vflip: bool = False

    def train(self, image: np.ndarray, ref: np.ndarray | None, rng: np.random.Generator) -> Sample:
        views = [self._crops().train(image, ref, rng) for _ in range(2)]
        return {key: np.stack([view[key] for view in views]) for key in views[0]}

    def test(
        self, image: np.ndarray, ref: np.ndarray | None, count: int, rng: np.random.Generator
    ) -> Sample:
        return self._crops().test(image, None, count, rng)

    def describe(self) -> dict[str, Any]:
        return {"sampler": "two-views", **asdict(self)}

    def _crops(self) -> Any:
        from ..train.samples import RandomCrops

        return RandomCrops(self.size, self.hflip, self.vflip)


class ReferenceViews:
    """The representation stage's samples from degraded training references: two views of
    each pair's degraded window (``image``) and of its reference window (``ref``), ``(2, C, s,
    s)`` ``uint8``. Setting :attr:`epoch` sets the pairs' epoch."""

    def __init__(self, pairs: DistortedPairs, views: TwoViews, channels: int) -> None:
        self.pairs = pairs
        self.views = views
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
        from ..train.samples import to_tensors

        pair = self.pairs[index]
        rng = np.random.default_rng((VIEW_STREAM, self.pairs.seed, self.epoch, index))
        image = np.repeat(pair.distorted[None], self.channels, axis=0)
        ref = np.repeat(pair.reference[None], self.channels, axis=0)
        return to_tensors(self.views.train(image, ref, rng))


class ImageViews:
    """The representation stage's samples on a dataset without references: two views
    (``image``, ``(2, C, s, s)``) of the split's prepared training images, ``length`` per
    epoch, image ``i mod n`` for sample ``i``."""

    def __init__(self, images: ImageSource, views: TwoViews, seed: int, length: int) -> None:
        self.images = images
        self.views = views
        self.seed = seed
        self.length = length
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from ..train.samples import to_tensors

        image, _ = self.images.load(index % len(self.images))
        rng = np.random.default_rng((VIEW_STREAM, self.seed, self.epoch, index))
        return to_tensors(self.views.train(image, None, rng))


@dataclass(frozen=True)
class RepresentationData:
    """The representation stage's data: ``items_per_epoch`` samples of degraded windows of
    ``config`` from the split's training references (prepared like the model's images), or,
    when the split has none, of its training images."""

    config: PairConfig
    items_per_epoch: int
    views: TwoViews
    #: How a checkpoint names this data.
    __name__: ClassVar[str] = "training-reference degraded views"

    def __call__(self, inputs: StageInputs) -> ReferenceViews | ImageViews:
        from ..data.pairs import DistortedPairs, references_of

        if not inputs.references:
            return ImageViews(inputs.images, self.views, inputs.seed, self.items_per_epoch)
        spec = replace(inputs.spec, crop=self.config.crop)
        references = references_of(inputs.items, spec)
        pairs = DistortedPairs(references, self.config, inputs.seed, self.items_per_epoch)
        return ReferenceViews(pairs, self.views, inputs.spec.n_channels)


def momentum_contrast(net: nn.Module, projection: torch.Tensor, key_views: torch.Tensor):
    """InfoNCE of the queries' ``projection`` against the keys of ``key_views`` and the queue,
    with MoCo's momentum update before the keys and the enqueue after them."""
    from ..train.objectives.contrastive import info_nce

    contrast = net.contrast
    contrast.update(net.extractor)
    keys = contrast.keys(key_views).float()
    loss = info_nce(projection.float(), keys, contrast.queue.clone(), net.config.temperature)
    contrast.enqueue(keys)
    return loss


@dataclass(frozen=True)
class RepresentationLoss:
    """The first stage: ``nce_weight`` x InfoNCE, plus (with references) restoration L1 and
    ``rs_weight`` x the RS loss."""

    nce_weight: float = 1.0
    rs_weight: float = 1.0

    def __call__(self, net: nn.Module, batch: Batch) -> LossResult:
        import torch

        from ..train.objectives.restoration import representation_semantic_loss, restoration_l1
        from ..train.recipe import LossResult

        query, key = batch["image"][:, 0], batch["image"][:, 1]
        representation = net.extractor(query)
        nce = momentum_contrast(net, representation.projection, key)
        parts = {"info_nce": nce}
        loss = self.nce_weight * nce
        if "ref" in batch:
            reference = batch["ref"][:, 0]
            restored = net.restorer(query, representation.degradation)
            with torch.no_grad():
                target = net.extractor(reference).degradation
            parts["restoration"] = restoration_l1(restored.float(), reference.float())
            parts["rs"] = representation_semantic_loss(
                net.extractor(restored).degradation.float(), target.float()
            )
            loss = loss + parts["restoration"] + self.rs_weight * parts["rs"]
        return LossResult(loss, parts=parts)

    def describe(self) -> dict[str, Any]:
        return {"objective": "infonce+restoration+rs", **asdict(self)}


@dataclass(frozen=True)
class QualityLoss:
    """The second stage: L1 between the first view's score and its quality, plus
    ``nce_weight`` x InfoNCE over the two views; the restoration (and its guidance) fixed."""

    nce_weight: float = 0.1

    def __call__(self, net: nn.Module, batch: Batch) -> LossResult:
        import torch
        import torch.nn.functional as F

        from ..train.recipe import LossResult

        query, key = batch["image"][:, 0], batch["image"][:, 1]
        representation = net.extractor(query)
        with torch.no_grad():
            restored = net.restorer(query, representation.degradation)
        scores = net.assess(query, restored, representation.quality).float()
        target = batch["quality"].float()
        score = F.l1_loss(scores, target)
        nce = momentum_contrast(net, representation.projection, key)
        parts = {"score": score, "info_nce": nce}
        return LossResult(score + self.nce_weight * nce, scores, target, parts)

    def describe(self) -> dict[str, Any]:
        return {"objective": "score+infonce", **asdict(self)}


class DRIIQA(DeepMetric):
    """DRI-IQA in the configuration chosen from the paper's description (ViT-B/8 predictor
    backbone, NAFNet-width32 restorer; 124,290,580 parameters measured)."""

    name: ClassVar[str] = "dri-iqa"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = CITATION
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = False
    network: ClassVar[str] = "iqabench.models.dri_iqa:DRIIQANet"
    architecture: ClassVar[str] = "iqabench.models.dri_iqa:FULL"
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=224, hflip=True, **UNIT_RANGE)
    default_params: ClassVar[dict[str, Any]] = {
        **DEEP_PARAMS,
        "epochs": 50,
        "batch_size": 8,
        "lr": 1e-5,
        "weight_decay": 1e-5,
        "t_max": 50,
        "train_crops": 1,
        "crops": 20,
        "quality_nce_weight": 0.1,
        "pretrain_epochs": 20,
        "pretrain_pairs": 2000,
        "pretrain_batch_size": 16,
        "pretrain_lr": 2e-4,
        "pretrain_window": 320,
        "nce_weight": 1.0,
        "rs_weight": 1.0,
    }

    def build_network(self, config: Any, backbone: BackboneWeights | None) -> nn.Module:
        from ..models.dri_iqa import build_dri_iqa

        return build_dri_iqa(config, backbone)

    def sampler(self) -> TwoViews:
        assert self.input_spec.crop is not None
        return TwoViews(self.input_spec.crop, self.input_spec.hflip, self.input_spec.vflip)

    def score_batch(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        return net(batch["image"]).score

    def recipe(self) -> Recipe:
        """AdamW with weight decay and cosine annealing (MANIQA's optimiser family)."""
        from ..train.recipe import Cosine, Optimiser

        p = self.params
        return replace(
            super().recipe(),
            optimiser=Optimiser("adamw", float(p["lr"]), float(p["weight_decay"])),
            schedule=Cosine(t_max=float(p["t_max"])),
        )

    def objective(self) -> QualityLoss:
        return QualityLoss(float(self.params["quality_nce_weight"]))

    def stages(self) -> list[Stage]:
        """The representation stage (extractor and restorer), then quality (the restorer
        fixed)."""
        from ..data.pairs import PairConfig
        from ..errors import MetricParameterError
        from ..train.recipe import Optimiser, Recipe, Stage

        p = self.params
        views = self.sampler()
        if int(p["pretrain_window"]) < views.size:
            raise MetricParameterError(
                f"{self.name}: pretrain_window must hold a {views.size}x{views.size} crop, not "
                f"{p['pretrain_window']}"
            )
        pairs = PairConfig(
            crop=int(p["pretrain_window"]), levels="continuous", chain=(1, 3), target=None
        )
        representation = Stage(
            "representation",
            Recipe(
                Optimiser("adam", float(p["pretrain_lr"])),
                epochs=int(p["pretrain_epochs"]),
                batch_size=int(p["pretrain_batch_size"]),
            ),
            RepresentationLoss(float(p["nce_weight"]), float(p["rs_weight"])),
            data=RepresentationData(pairs, int(p["pretrain_pairs"]), views),
            select="last",
            trains=lambda net: net.train_only("extractor", "restorer"),
        )
        quality = Stage(
            "quality",
            self.recipe(),
            self.objective(),
            trains=lambda net: net.train_only("extractor", "features", "predictor"),
        )
        return [representation, quality]

    def training_notes(self, train: Sequence[LabelledImage]) -> list[str]:
        return [] if any(item.ref is not None for item in train) else [NO_REFERENCES]


class DRIIQALite(DRIIQA):
    """DRI-IQA on EfficientNet-Lite0 features with a narrow extractor and NAFNet, one-channel
    crops of 160 and a short recipe, for CPUs. Not the published design."""

    name: ClassVar[str] = "dri-iqa-lite"
    architecture: ClassVar[str] = "iqabench.models.dri_iqa:LITE"
    trains_on_cpu: ClassVar[bool] = True
    published: ClassVar[bool] = False
    variant_note: ClassVar[str] = (
        "the CPU configuration (EfficientNet-Lite0 predictor features, narrow extractor and "
        "NAFNet, one-channel 160x160 crops; 1.2 M parameters; shortened recipe), not the "
        "configuration chosen for DRI-IQA (ViT-B/8, NAFNet-width32; 124.3 M)"
    )
    input_spec: ClassVar[InputSpec] = InputSpec(
        channels="grey", crop=160, hflip=True, mean=(0.0,), std=(1.0,)
    )
    default_params: ClassVar[dict[str, Any]] = {
        **DRIIQA.default_params,
        "epochs": 3,
        "lr": 3e-4,
        "crops": 4,
        "pretrain_epochs": 2,
        "pretrain_pairs": 96,
        "pretrain_batch_size": 8,
        "pretrain_lr": 1e-3,
        "pretrain_window": 224,
    }
