"""DACNN as a learned no-reference metric (DL-NR), faithful and lite, with SDANet's pretraining
run inside each split.

Paper: Z. Pan, H. Zhang, J. Lei, Y. Fang, X. Shao, N. Ling and S. Kwong, "DACNN: Blind Image
Quality Assessment via a Distortion-Aware Convolutional Neural Network", IEEE TCSVT 32(11), 2022,
doi:10.1109/TCSVT.2022.3188991; official code github.com/NUIST-Videocoding/DACNN. The network is
in :mod:`iqabench.models.dacnn`; training, checkpoints and scoring are the deep-metric
framework's (:mod:`iqabench.metrics._deep`, :mod:`iqabench.train`).

Two stages per split. ``sdanet``: the synthetic-distortion branch learns to regress a
full-reference score (``pretrain_target``, VIF by default) of distorted/reference pairs that
:mod:`iqabench.data.pairs` draws from the split's training references (thermal recipe,
continuous levels), with an L1 loss; the last epoch is kept. ``quality``: with both branches
frozen, the fusion blocks and MLP learn quality with the official recipe (L1, Adam, 25 random
224x224 crops per image, the official per-epoch rates of :class:`NUISTSchedule`); the epoch with
the best validation SROCC is kept (the official solver reported its best test epoch).

Input: RGB (a grey thermal frame repeated to three channels) at its own size, crops on 0..1
(mean 0, std 1 here), normalised inside the network with the backbone weights' statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..train.inputs import InputSpec
from ._deep import DEEP_PARAMS, DeepMetric

if TYPE_CHECKING:
    from torch import nn

    from ..train.inference import Batch
    from ..train.recipe import LossResult, Recipe, Stage

CITATION = (
    "Z. Pan, H. Zhang, J. Lei, Y. Fang, X. Shao, N. Ling and S. Kwong, DACNN: Blind Image "
    "Quality Assessment via a Distortion-Aware Convolutional Neural Network, IEEE Transactions "
    "on Circuits and Systems for Video Technology 32(11), 2022, doi:10.1109/TCSVT.2022.3188991"
)

#: 0..1 crops: the networks normalise inside, each branch with its own backbone's statistics.
UNIT_RANGE: dict[str, tuple[float, ...]] = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


@dataclass(frozen=True)
class NUISTSchedule:
    """The per-epoch rates of the NUIST-Videocoding solvers (DACNN's and VCRNet's
    ``IQASolver``) as multipliers of the first epoch's rate ``lr * ratio``.

    After each epoch ``t`` (from 0) the solvers set ``9 * lr / 10 ** (t // 10)`` for the next
    one, so epoch ``e >= 1`` (from 0) runs at ``9 / ratio / 10 ** ((e - 1) // 10)`` of the first
    epoch's rate: with ratio 10, 0.9 for epochs 1-10, 0.09 for 11-20, 0.009 for 21-30.
    """

    ratio: float = 10.0
    per_step: bool = False

    def factor(self, group: str, epoch: float) -> float:
        if epoch < 1:
            return 1.0
        return 9.0 / self.ratio / 10.0 ** ((int(epoch) - 1) // 10)

    def describe(self) -> dict[str, Any]:
        return {"schedule": "nuist-solver", "ratio": self.ratio}


@dataclass(frozen=True)
class PairRegression:
    """SDANet's pretraining loss: L1 between the pair quality it regresses from a distorted
    image and its reference and the pair's full-reference target."""

    def __call__(self, net: nn.Module, batch: Batch) -> LossResult:
        import torch.nn.functional as F

        from ..train.recipe import LossResult

        predicted = net.sdanet.pair_quality(batch["image"], batch["ref"]).float()
        target = batch["target"].float()
        return LossResult(F.l1_loss(predicted, target), predicted, target)

    def describe(self) -> dict[str, Any]:
        return {"objective": "pair-regression", "loss": "l1"}


class DACNN(DeepMetric):
    """DACNN, the published configuration (two EfficientNet-B0 branches, 14,308,236
    parameters, 2,812,099 trained), SDANet pretrained on the split's synthetic pairs."""

    name: ClassVar[str] = "dacnn"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = CITATION
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = False
    network: ClassVar[str] = "iqabench.models.dacnn:DACNN"
    architecture: ClassVar[str] = "iqabench.models.dacnn:FULL"
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=224, hflip=True, **UNIT_RANGE)
    default_params: ClassVar[dict[str, Any]] = {
        **DEEP_PARAMS,
        "epochs": 30,
        "batch_size": 16,
        "lr": 2e-5,
        "lr_ratio": 10.0,
        "weight_decay": 0.0,
        "train_crops": 25,
        "crops": 25,
        "pretrain_epochs": 30,
        "pretrain_pairs": 2000,
        "pretrain_batch_size": 16,
        "pretrain_lr": 2e-4,
        "pretrain_target": "vif",
        "pretrain_crop": 224,
    }

    def recipe(self) -> Recipe:
        """The official quality recipe: Adam at ``lr * lr_ratio`` in the first epoch, then the
        solver's per-epoch rates."""
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

    def stages(self) -> list[Stage]:
        """SDANet pretraining on the split's synthetic pairs, then quality with both branches
        frozen."""
        from ..data.pairs import PairConfig, PairStageData
        from ..train.recipe import Optimiser, Recipe, Stage

        p = self.params
        pairs = PairConfig(
            crop=int(p["pretrain_crop"]), levels="continuous", target=str(p["pretrain_target"])
        )
        pretraining = Stage(
            "sdanet",
            Recipe(
                Optimiser("adam", float(p["pretrain_lr"])),
                epochs=int(p["pretrain_epochs"]),
                batch_size=int(p["pretrain_batch_size"]),
            ),
            PairRegression(),
            data=PairStageData(pairs, int(p["pretrain_pairs"])),
            select="last",
            trains=lambda net: net.unfreeze("sdanet"),
        )
        quality = Stage(
            "quality", self.recipe(), self.objective(), trains=lambda net: net.refreeze()
        )
        return [pretraining, quality]


class DACNNLite(DACNN):
    """DACNN on two ImageNet EfficientNet-Lite0 branches with narrow fusion blocks and a short
    recipe, for CPUs. Not the published model: its results must never be reported as such."""

    name: ClassVar[str] = "dacnn-lite"
    architecture: ClassVar[str] = "iqabench.models.dacnn:LITE"
    trains_on_cpu: ClassVar[bool] = True
    published: ClassVar[bool] = False
    variant_note: ClassVar[str] = (
        "the EfficientNet-Lite0 configuration (10.1 M parameters, 0.59 M trained, narrow fusion "
        "blocks, 128x128 crops, shortened recipe), not the published 14.3 M EfficientNet-B0 DACNN"
    )
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=128, hflip=True, **UNIT_RANGE)
    default_params: ClassVar[dict[str, Any]] = {
        **DACNN.default_params,
        "epochs": 3,
        "batch_size": 8,
        "lr": 2e-5,
        "train_crops": 1,
        "crops": 2,
        "pretrain_epochs": 2,
        "pretrain_pairs": 160,
        "pretrain_batch_size": 8,
        "pretrain_crop": 128,
    }
