"""HyperNet (hyperIQA) as a learned no-reference metric (DL-NR), faithful and lite.

Paper: S. Su, Q. Yan, Y. Zhu, C. Zhang, X. Ge, J. Sun and Y. Zhang, "Blindly Assess Image
Quality in the Wild Guided by a Self-Adaptive Hyper Network", CVPR 2020,
doi:10.1109/CVPR42600.2020.00372; official code github.com/SSL92/hyperIQA. The network is in
:mod:`iqabench.models.hypernet`; training, checkpoints and scoring are the deep-metric
framework's (:mod:`iqabench.metrics._deep`, :mod:`iqabench.train`).

What this model declares: RGB input (a grey thermal frame repeated to three channels) at its own
size, 224x224 crops flipped left-right at random for training, normalised with the backbone
weights' mean and std (ImageNet's for ResNet-50); the official recipe: L1 loss, Adam with
weight decay 5e-4, batches of 96 crops, 25 random crops per training image per epoch, 16
epochs, the backbone at lr 2e-5 and the rest at 10 times that, on the official per-epoch
schedule (:class:`HyperNetSchedule`); a score is the mean over 25 random crops. The epoch with
the best validation SROCC is kept (the official solver reported its best test epoch).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..train.inputs import InputSpec
from ._deep import DEEP_PARAMS, DeepMetric

if TYPE_CHECKING:
    from ..train.recipe import Recipe

CITATION = (
    "S. Su, Q. Yan, Y. Zhu, C. Zhang, X. Ge, J. Sun and Y. Zhang, Blindly Assess Image Quality "
    "in the Wild Guided by a Self-Adaptive Hyper Network, CVPR 2020, "
    "doi:10.1109/CVPR42600.2020.00372"
)

#: Parameter-name prefixes of everything but the backbone (the faster parameter group).
HEAD_PREFIXES: tuple[str, ...] = (
    "lda.",
    "hyper_stem.",
    "weight_generators.",
    "last_weight_generator.",
    "bias_generators.",
)


@dataclass(frozen=True)
class HyperNetSchedule:
    """The official solver's per-epoch rates as multipliers of each group's initial rate.

    The solver sets the rates after each epoch ``t`` (from 0) for the next: the backbone keeps
    the base rate; the rest gets ``lr / 10 ** (t // 6)`` times the ratio (10) while
    ``t <= 8`` and times 1 after. So the rest runs at 10x for epochs 1-7 (counted from 1),
    1x for 8-10, 0.1x for 11-13 and 0.01x for 14-16.
    """

    group: str = "head"
    per_step: bool = False

    def factor(self, group: str, epoch: float) -> float:
        if group != self.group or epoch < 1:
            return 1.0
        previous = int(epoch) - 1
        return 10.0 ** -(previous // 6) * (1.0 if previous <= 8 else 0.1)

    def describe(self) -> dict[str, Any]:
        return {"schedule": "hypernet-official", "group": self.group}


class HyperNet(DeepMetric):
    """HyperNet, the published configuration (ResNet-50, 27,375,369 parameters), trained with
    the official recipe."""

    name: ClassVar[str] = "hypernet"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = CITATION
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = False
    network: ClassVar[str] = "iqabench.models.hypernet:HyperNetIQA"
    architecture: ClassVar[str] = "iqabench.models.hypernet:FULL"
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=224, hflip=True)
    default_params: ClassVar[dict[str, Any]] = {
        **DEEP_PARAMS,
        "epochs": 16,
        "batch_size": 96,
        "lr": 2e-5,
        "lr_ratio": 10.0,
        "weight_decay": 5e-4,
        "train_crops": 25,
        "crops": 25,
        "seed": 0,
    }

    def recipe(self) -> Recipe:
        """The official recipe: the head at ``lr_ratio`` times the backbone's rate, on the
        official per-epoch schedule."""
        from ..train.recipe import ParamGroup

        head = ParamGroup("head", HEAD_PREFIXES, lr_scale=float(self.params["lr_ratio"]))
        return replace(super().recipe(), groups=(head,), schedule=HyperNetSchedule())


class HyperNetLite(HyperNet):
    """HyperNet on the ImageNet EfficientNet-Lite0 with a narrower hyper network and a short
    recipe, for CPUs. Not the published model: its results must never be reported as such."""

    name: ClassVar[str] = "hypernet-lite"
    architecture: ClassVar[str] = "iqabench.models.hypernet:LITE"
    trains_on_cpu: ClassVar[bool] = True
    published: ClassVar[bool] = False
    variant_note: ClassVar[str] = (
        "the EfficientNet-Lite0 configuration (4.1 M parameters, narrower hyper network, "
        "shortened recipe), not the published 27.4 M ResNet-50 HyperNet"
    )
    default_params: ClassVar[dict[str, Any]] = {
        **HyperNet.default_params,
        "epochs": 3,
        "batch_size": 8,
        "lr": 1e-4,
        "train_crops": 1,
        "crops": 4,
    }
