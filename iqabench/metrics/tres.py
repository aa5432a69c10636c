"""TReS as a learned no-reference metric (DL-NR), faithful and lite.

Paper: S. A. Golestaneh, S. Dadsetan and K. M. Kitani, "No-Reference Image Quality Assessment
via Transformers, Relative Ranking, and Self-Consistency", WACV 2022,
doi:10.1109/WACV51458.2022.00404; official code github.com/isalirezag/TReS. The network is in
:mod:`iqabench.models.tres`, the loss terms in :mod:`iqabench.train.objectives.ranking`;
training, checkpoints and scoring are the deep-metric framework's.

What this model declares: RGB input (a grey thermal frame repeated to three channels) at its own
size, 224x224 crops flipped left-right and up-down at random for training, normalised with the
backbone weights' mean and std (ImageNet's for ResNet-50); the official recipe (``run.sh`` for
ResNet-50): Adam, one group at lr 2e-5, weight decay 5e-4, batches of 53 crops, 50 random crops
per training image per epoch, 3 epochs, the rate divided by 10 after every ``droplr`` (1)
epochs; the loss of :class:`TReSObjective`; a score is the mean over 50 random crops of the
plain branch. The epoch with the best validation SROCC is kept (the official solver reported its
best test epoch).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..train.inputs import InputSpec
from ._deep import DEEP_PARAMS, DeepMetric

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..train.recipe import LossResult, Objective, Recipe

#: Parameter-name prefixes of everything but the backbone.
HEAD_PREFIXES: tuple[str, ...] = ("encoder.", "token_projection.", "head.")

CITATION = (
    "S. A. Golestaneh, S. Dadsetan and K. M. Kitani, No-Reference Image Quality Assessment via "
    "Transformers, Relative Ranking, and Self-Consistency, WACV 2022, "
    "doi:10.1109/WACV51458.2022.00404"
)


@dataclass(frozen=True)
class TReSObjective:
    """The official solver's step: the network sees the batch and its mirror, each with its
    own mirrored branch (four backbone passes), and the loss is
    :func:`~iqabench.train.objectives.ranking.tres_objective` with the self-consistency terms
    scaled by ``consistency_weight`` (1 in the paper)."""

    consistency_weight: float = 1.0

    def __call__(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> LossResult:
        import torch

        from ..train.objectives.ranking import self_consistency_loss, tres_objective
        from ..train.recipe import LossResult

        image, quality = batch["image"], batch["quality"].float()
        terms = []
        for view in (image, torch.flip(image, dims=[3])):
            plain, mirrored = net.forward_pair(view)
            consistency = self_consistency_loss(
                (plain.tokens.float(), plain.last_stage.float()),
                (mirrored.tokens.float(), mirrored.last_stage.float()),
            )
            terms.append((plain.score.float(), self.consistency_weight * consistency))
        (scores, consistency), (flipped_scores, flipped_consistency) = terms
        loss = tres_objective(scores, flipped_scores, consistency, flipped_consistency, quality)
        parts = {
            "regression": loss.regression,
            "consistency": loss.consistency,
            "ranking": loss.ranking,
            "ranking_gap": loss.ranking_gap,
        }
        return LossResult(loss.total, scores, quality, parts)

    def describe(self) -> dict[str, Any]:
        return {
            "objective": "tres",
            "consistency_weight": self.consistency_weight,
            "ranking_weight": 0.05,
            "ranking_consistency_weight": 0.5,
        }


class TReS(DeepMetric):
    """TReS, the published configuration (ResNet-50, 152,452,265 parameters), trained with the
    official recipe."""

    name: ClassVar[str] = "tres"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = CITATION
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = False
    network: ClassVar[str] = "iqabench.models.tres:TReSNet"
    architecture: ClassVar[str] = "iqabench.models.tres:FULL"
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=224, hflip=True, vflip=True)
    default_params: ClassVar[dict[str, Any]] = {
        **DEEP_PARAMS,
        "epochs": 3,
        "batch_size": 53,
        "lr": 2e-5,
        "lr_ratio": 1.0,
        "weight_decay": 5e-4,
        "droplr": 1,
        "consistency_weight": 1.0,
        "train_crops": 50,
        "crops": 50,
        "seed": 2021,
    }

    def recipe(self) -> Recipe:
        """The official recipe: the rate divided by 10 every ``droplr`` epochs; everything but
        the backbone at ``lr_ratio`` times the rate (1 in the official recipe: one rate)."""
        from ..train.recipe import ParamGroup, Step

        head = ParamGroup("head", HEAD_PREFIXES, lr_scale=float(self.params["lr_ratio"]))
        schedule = Step(every=int(self.params["droplr"]), gamma=0.1)
        return replace(super().recipe(), groups=(head,), schedule=schedule)

    def objective(self) -> Objective:
        return TReSObjective(float(self.params["consistency_weight"]))


class TReSLite(TReS):
    """TReS on the ImageNet EfficientNet-Lite0 (d_model 496, 160-pixel crops) with a short
    recipe, for CPUs. Not the published model: its results must never be reported as such.

    Besides the shorter recipe, the self-consistency terms are scaled by 0.1: EfficientNet's
    last stage ends in a linear projection (not ResNet's ReLU), whose mirrored-map differences
    made the term dominate the loss and stall the regression; and everything but the backbone
    learns at 10 times the backbone's rate (as HyperNet's recipe does).
    """

    name: ClassVar[str] = "tres-lite"
    architecture: ClassVar[str] = "iqabench.models.tres:LITE"
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=160, hflip=True, vflip=True)
    trains_on_cpu: ClassVar[bool] = True
    published: ClassVar[bool] = False
    variant_note: ClassVar[str] = (
        "the EfficientNet-Lite0 configuration (5.2 M parameters, d_model 496, 160-pixel crops, "
        "shortened recipe, self-consistency weight 0.1), not the published 152.5 M ResNet-50 TReS"
    )
    default_params: ClassVar[dict[str, Any]] = {
        **TReS.default_params,
        "epochs": 8,
        "batch_size": 8,
        "lr": 1e-4,
        "lr_ratio": 10.0,
        "droplr": 10,
        "consistency_weight": 0.1,
        "train_crops": 1,
        "crops": 16,
    }
