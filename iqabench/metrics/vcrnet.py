"""VCRNet as a learned no-reference metric (DL-NR), faithful and lite, with its restoration
network pretrained inside each split.

Paper: Z. Pan, F. Yuan, J. Lei, Y. Fang, X. Shao and S. Kwong, "VCRNet: Visual Compensation
Restoration Network for No-Reference Image Quality Assessment", IEEE TIP 31, 1613-1627, 2022,
doi:10.1109/TIP.2022.3144892; official code github.com/NUIST-Videocoding/VCRNet. The network is
in :mod:`iqabench.models.vcrnet`; training, checkpoints and scoring are the deep-metric
framework's (:mod:`iqabench.metrics._deep`, :mod:`iqabench.train`).

Two stages per split. ``restoration``: the restoration network alone learns to restore
distorted 64x64 crops (the official restoration patch size) that :mod:`iqabench.data.pairs`
makes from the split's training references (thermal recipe, continuous levels), with
:func:`iqabench.train.objectives.restoration.error_map_mixed_loss`; its training code was not
released, so its optimiser and schedule are this project's (Adam, constant rate); the last
epoch is kept. ``quality``: every parameter trains with the official recipe (L1, Adam, 25
random 224x224 crops per training image, the per-epoch rates of
:class:`~iqabench.metrics.dacnn.NUISTSchedule`); a validation or test image is scored once,
resized to 256x256 as the official test transform does (:class:`ResizedWhole`); the epoch with
the best validation SROCC is kept.

Input: RGB (a grey thermal frame repeated to three channels) at its own size, on 0..1 (mean 0,
std 1 here), normalised inside the network with the backbone weights' statistics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..train.inputs import InputSpec
from ._deep import DEEP_PARAMS, DeepMetric
from .dacnn import UNIT_RANGE, NUISTSchedule

if TYPE_CHECKING:
    from torch import nn

    from ..train.inference import Batch
    from ..train.recipe import LossResult, Recipe, Stage
    from ..train.samples import Sampler

CITATION = (
    "Z. Pan, F. Yuan, J. Lei, Y. Fang, X. Shao and S. Kwong, VCRNet: Visual Compensation "
    "Restoration Network for No-Reference Image Quality Assessment, IEEE Transactions on Image "
    "Processing 31, 1613-1627, 2022, doi:10.1109/TIP.2022.3144892"
)


@dataclass(frozen=True)
class ResizedWhole:
    """Training: random ``crop`` x ``crop`` crops, flipped left-right at random. Evaluation:
    the whole image resized to ``side`` x ``side`` (PIL bilinear per channel, as the official
    torchvision ``Resize`` on a PIL image), one sample per image."""

    crop: int
    side: int

    def train(self, image: np.ndarray, ref: np.ndarray | None, rng: np.random.Generator) -> dict:
        from ..train.samples import RandomCrops

        return RandomCrops(self.crop, hflip=True).train(image, ref, rng)

    def test(
        self, image: np.ndarray, ref: np.ndarray | None, count: int, rng: np.random.Generator
    ) -> dict:
        out = {"image": self._resized(image)[None]}
        if ref is not None:
            out["ref"] = self._resized(ref)[None]
        return out

    def describe(self) -> dict[str, Any]:
        return {"sampler": "crops-then-resized-whole", **asdict(self)}

    def _resized(self, pixels: np.ndarray) -> np.ndarray:
        from PIL import Image

        planes = [
            np.asarray(
                Image.fromarray(plane).resize((self.side, self.side), Image.Resampling.BILINEAR),
                dtype=plane.dtype,
            )
            for plane in pixels
        ]
        return np.stack(planes)


@dataclass(frozen=True)
class RestorationLoss:
    """The restoration stage's loss: the error-map mixed loss between the restored distorted
    crop and its reference (all on 0..1)."""

    def __call__(self, net: nn.Module, batch: Batch) -> LossResult:
        from ..train.objectives.restoration import error_map_mixed_loss
        from ..train.recipe import LossResult

        distorted, reference = batch["image"].float(), batch["ref"].float()
        loss = error_map_mixed_loss(net.restore(distorted).float(), reference, distorted)
        return LossResult(loss)

    def describe(self) -> dict[str, Any]:
        return {"objective": "error-map-mixed-restoration"}


class VCRNet(DeepMetric):
    """VCRNet, the published configuration (EfficientNet-B0 and the 16-512-channel
    restoration network, 16,659,282 parameters, all trained), its restoration network
    pretrained on the split's synthetic pairs."""

    name: ClassVar[str] = "vcrnet"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = CITATION
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = False
    network: ClassVar[str] = "iqabench.models.vcrnet:VCRNet"
    architecture: ClassVar[str] = "iqabench.models.vcrnet:FULL"
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=224, hflip=True, **UNIT_RANGE)
    default_params: ClassVar[dict[str, Any]] = {
        **DEEP_PARAMS,
        "epochs": 16,
        "batch_size": 16,
        "lr": 2e-4,
        "lr_ratio": 10.0,
        "weight_decay": 0.0,
        "train_crops": 25,
        "crops": 1,
        "pretrain_epochs": 30,
        "pretrain_pairs": 4000,
        "pretrain_batch_size": 16,
        "pretrain_lr": 1e-4,
        "pretrain_crop": 64,
    }

    def recipe(self) -> Recipe:
        """The official quality recipe: Adam at ``lr * lr_ratio`` in the first epoch, then the
        solver's per-epoch rates; one evaluation sample (the resized whole image)."""
        from ..train.recipe import Optimiser, Recipe

        p = self.params
        ratio = float(p["lr_ratio"])
        return Recipe(
            optimiser=Optimiser("adam", float(p["lr"]) * ratio, float(p["weight_decay"])),
            epochs=int(p["epochs"]),
            batch_size=int(p["batch_size"]),
            schedule=NUISTSchedule(ratio),
            samples_per_image=int(p["train_crops"]),
            eval_samples=self.eval_samples(),
        )

    def sampler(self) -> Sampler:
        """Random training crops; the whole image resized for evaluation."""
        return ResizedWhole(int(self.input_spec.crop or 0), int(self.config.test_resize))

    def eval_samples(self) -> int:
        """One: the resized whole image (the ``crops`` parameter is kept at 1)."""
        return 1

    def stages(self) -> list[Stage]:
        """Restoration pretraining on the split's synthetic pairs, then quality."""
        from ..data.pairs import PairConfig, PairStageData
        from ..errors import MetricParameterError
        from ..models.vcrnet import SIDE_MULTIPLE
        from ..train.recipe import Optimiser, Recipe, Stage

        p = self.params
        if int(p["pretrain_crop"]) % SIDE_MULTIPLE:
            raise MetricParameterError(
                f"{self.name}: pretrain_crop must be a multiple of {SIDE_MULTIPLE}, not "
                f"{p['pretrain_crop']}"
            )
        pairs = PairConfig(crop=int(p["pretrain_crop"]), levels="continuous", target=None)
        pretraining = Stage(
            "restoration",
            Recipe(
                Optimiser("adam", float(p["pretrain_lr"])),
                epochs=int(p["pretrain_epochs"]),
                batch_size=int(p["pretrain_batch_size"]),
            ),
            RestorationLoss(),
            data=PairStageData(pairs, int(p["pretrain_pairs"])),
            select="last",
            trains=lambda net: net.restoration,
        )
        return [pretraining, super().stages()[-1]]


class VCRNetLite(VCRNet):
    """VCRNet on the ImageNet EfficientNet-Lite0 with a restoration network a quarter as wide,
    narrow heads and a short recipe, for CPUs. Not the published model: its results must never
    be reported as such."""

    name: ClassVar[str] = "vcrnet-lite"
    architecture: ClassVar[str] = "iqabench.models.vcrnet:LITE"
    trains_on_cpu: ClassVar[bool] = True
    published: ClassVar[bool] = False
    variant_note: ClassVar[str] = (
        "the EfficientNet-Lite0 configuration (5.6 M parameters, restoration network a quarter "
        "as wide, 128x128 crops, shortened recipe), not the published 16.7 M VCRNet"
    )
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=128, hflip=True, **UNIT_RANGE)
    default_params: ClassVar[dict[str, Any]] = {
        **VCRNet.default_params,
        "epochs": 3,
        "batch_size": 8,
        "lr": 2e-5,
        "train_crops": 1,
        "pretrain_epochs": 2,
        "pretrain_pairs": 320,
    }
