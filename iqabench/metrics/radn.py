"""RADN as a learned full-reference metric (DL-FR), faithful and lite.

Paper: Shi, Bai, Cao, Xia, Wang, Chen and Yang, "Region-Adaptive Deformable Network for Image
Quality Assessment", IEEE/CVF CVPR Workshops (NTIRE) 2021, arXiv 2104.11599 (doi
10.48550/arXiv.2104.11599); official code github.com/IIGROUP/RADN. The network is in
:mod:`iqabench.models.radn`; training, checkpoints and scoring are the deep-metric framework's.

What this model declares: RGB input (grey replicated) kept at its own size, 8-bit, on the 0..1
scale without mean/std normalisation (the official ``to_tensor``); its own sampler,
:class:`PatchPairs`: random aligned 32x32 patch pairs per training sample (32 in the published
configuration, 8 in the lite one), every non-overlapping full patch pair of the image (one
sample) for scoring; the official recipe: L2 loss, Adam at 1e-4 without weight decay, the rate
times 0.8 every 50 epochs, 200 epochs, batches of 2 images. RADN needs no pretrained file: it
trains from scratch.

The official regression on MOS divided by the training set's largest MOS is kept in an
equivalent form: the network's output is multiplied by that largest quality (its
``quality_scale``, set here before training) and regressed on the quality as given, the same
loss up to a constant factor, to which Adam is blind. Departure from the official training
code: the epoch kept is the one with the best validation SROCC, as for every iqabench deep
metric (the official code keeps the lowest validation RMSE).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..train.inputs import InputSpec
from ._deep import DEEP_PARAMS, DeepMetric

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torch import nn

    from ..metric import LabelledImage
    from ..models.backbones import BackboneWeights
    from ..train.recipe import Objective, Recipe
    from ..train.samples import Sample
    from ..train.trainer import TrainResult

CITATION = (
    "Shi, Bai, Cao, Xia, Wang, Chen and Yang, Region-Adaptive Deformable Network for Image "
    "Quality Assessment, IEEE/CVF CVPR Workshops (NTIRE) 2021, arXiv 2104.11599, "
    "doi 10.48550/arXiv.2104.11599"
)


@dataclass(frozen=True)
class PatchPairs:
    """RADN's samples: aligned ``size`` x ``size`` patches of an image and its reference.

    Training: ``per_image`` patch pairs at independent random positions (the official
    ``RandomCropPatches``), stacked as ``(per_image, C, size, size)``. Scoring: every
    non-overlapping patch pair from the top-left corner, as one sample ``(1, P, C, size,
    size)`` (the whole image is one set, over which the network's attention and weighted
    average run). Here every full patch is kept; the official ``NonOverlappingCropPatches``,
    when only one side is a multiple of ``size``, also drops the last full patch along that
    side (a 64x80 image gives it 2 patches, 4 here).
    """

    size: int = 32
    per_image: int = 32

    def train(self, image: np.ndarray, ref: np.ndarray | None, rng: np.random.Generator) -> Sample:
        ref = self._check(image, ref)
        height, width = image.shape[1:]
        tops = rng.integers(0, height - self.size + 1, self.per_image)
        lefts = rng.integers(0, width - self.size + 1, self.per_image)
        return {
            "image": self._cut(image, tops, lefts),
            "ref": self._cut(ref, tops, lefts),
        }

    def test(
        self, image: np.ndarray, ref: np.ndarray | None, count: int, rng: np.random.Generator
    ) -> Sample:
        ref = self._check(image, ref)
        height, width = image.shape[1:]
        grid = np.arange(0, height - self.size + 1, self.size)
        columns = np.arange(0, width - self.size + 1, self.size)
        tops, lefts = (a.ravel() for a in np.meshgrid(grid, columns, indexing="ij"))
        return {
            "image": self._cut(image, tops, lefts)[None],
            "ref": self._cut(ref, tops, lefts)[None],
        }

    def describe(self) -> dict[str, Any]:
        return {"sampler": "radn-patch-pairs", **asdict(self)}

    def _check(self, image: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
        if ref is None:
            raise ValueError("RADN is full-reference: every sample needs its reference")
        if ref.shape != image.shape:
            raise ValueError(f"image {image.shape} and reference {ref.shape} differ in size")
        if min(image.shape[1:]) < self.size:
            raise ValueError(f"image {image.shape[1:]} is smaller than a {self.size}-pixel patch")
        return ref

    def _cut(self, pixels: np.ndarray, tops: np.ndarray, lefts: np.ndarray) -> np.ndarray:
        s = self.size
        return np.stack(
            [pixels[:, t : t + s, left : left + s] for t, left in zip(tops, lefts, strict=True)]
        )


class RADNIQA(DeepMetric):
    """RADN, the published configuration (21,881,812 parameters), with the official recipe."""

    name: ClassVar[str] = "radn"
    family: ClassVar[str] = "DL-FR"
    full_reference: ClassVar[bool] = True
    higher_is_better: ClassVar[bool] = True
    # 2: the output scaled by the training set's largest quality (the official MOS / max MOS).
    version: ClassVar[str] = "2"
    citation: ClassVar[str] = CITATION
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = False
    batch_size: ClassVar[int] = 4
    network: ClassVar[str] = "iqabench.models.radn:RADN"
    architecture: ClassVar[str] = "iqabench.models.radn:FULL"
    input_spec: ClassVar[InputSpec] = InputSpec(
        channels="rgb", resize=None, crop=32, hflip=False, vflip=False,
        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
    )  # fmt: skip
    default_params: ClassVar[dict[str, Any]] = {
        **DEEP_PARAMS,
        "epochs": 200,
        "batch_size": 2,
        "lr": 1e-4,
        "weight_decay": 0.0,
        "train_crops": 1,
        "crops": 1,
        "decay_every": 50,
        "decay": 0.8,
    }
    #: The training set's largest absolute quality, by which the network's output is scaled.
    _quality_scale: float = 1.0

    def build_network(self, config: Any, backbone: BackboneWeights | None) -> nn.Module:
        """RADN has no ImageNet backbone: the network is built from its configuration alone,
        its output scaled by the largest quality of the set being trained on (a checkpoint
        restores its own)."""
        from ..models.radn import RADN

        net = RADN(config)
        net.quality_scale.fill_(self._quality_scale)
        return net

    def train_model(
        self, train: Sequence[LabelledImage], validation: Sequence[LabelledImage],
        seed: int = 0, **options: Any,
    ) -> TrainResult:  # fmt: skip
        """As every deep metric, with the network's output scaled by the training set's
        largest absolute quality (the official recipe's division of MOS by its maximum)."""
        largest = max((abs(float(item.quality)) for item in train), default=0.0)
        self._quality_scale = largest if largest > 0 else 1.0
        return super().train_model(train, validation, seed, **options)

    def recipe(self) -> Recipe:
        """Adam (``lr``, ``weight_decay``), the rate times ``decay`` every ``decay_every``
        epochs (the official ``StepLR(50, 0.8)``)."""
        from dataclasses import replace

        from ..train.recipe import Step

        p = self.params
        return replace(
            super().recipe(), schedule=Step(every=int(p["decay_every"]), gamma=float(p["decay"]))
        )

    def objective(self) -> Objective:
        """L2: the mean squared error between the image scores and the quality."""
        from ..train.recipe import Regression

        return Regression(self.score_batch, loss="mse")

    def sampler(self) -> PatchPairs:
        config = self.config
        return PatchPairs(config.patch_size, config.train_patches)


class RADNLiteIQA(RADNIQA):
    """RADN at an eighth of the widths (stages of 8/16/32/64 channels, heads of 64, attention
    of 32: 313,804 parameters), 8 patch pairs per training sample, zero-initialised offsets,
    Kaiming initialisation, one deformable convolution and one attention shared by both
    branches, heads reading 50 (d - r) alone and no dropout, with a shortened recipe (40
    epochs, batches of 8, Adam at 1e-3 halved every 20 epochs), for CPU training in minutes.
    Not the published model (:mod:`iqabench.models.radn` says why each choice)."""

    name: ClassVar[str] = "radn-lite"
    architecture: ClassVar[str] = "iqabench.models.radn:LITE"
    # Left out of `--metrics all` on a CPU like the other lite deep models (its trainings take
    # minutes per split); naming it trains it on the CPU.
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = True
    published: ClassVar[bool] = False
    variant_note: ClassVar[str] = (
        "an eighth-width RADN (313,804 parameters, 8 patch pairs per training sample, "
        "zero-initialised offsets, Kaiming initialisation, branches sharing one deformable "
        "convolution and attention, heads on the scaled difference alone, no dropout, "
        "shortened recipe), not the published 21,881,812-parameter model"
    )
    default_params: ClassVar[dict[str, Any]] = {
        **RADNIQA.default_params,
        "epochs": 40,
        "batch_size": 8,
        "lr": 1e-3,
        "decay_every": 20,
        "decay": 0.5,
    }
