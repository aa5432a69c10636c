"""Training recipes as data: the optimiser with its parameter groups, the learning-rate
schedule, the objective (loss terms), and the stages a model trains in.

A deep metric declares its training as a list of :class:`Stage` objects (most have one,
``quality``). A stage names its data (the split's labelled training images cut by a sampler,
or a dataset it builds itself from the split's training references, for pretraining), its
:class:`Objective` (a callable ``(net, batch) -> LossResult`` that may run the network however
it needs: a flipped pass, features for a ranking loss, a reference branch), its :class:`Recipe`
(optimiser, groups, schedule, epochs, batch) and the part of the network it trains.

Schedules are closed-form functions of the epoch (fractional when ``per_step``), evaluated for
each parameter group, so resuming needs no scheduler state: the epoch fixes every rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .inference import Batch, Forward

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from ..metric import LabelledImage
    from .images import ImageSource
    from .inputs import InputSpec
    from .samples import Sampler


@dataclass(frozen=True)
class Optimiser:
    """A torch optimiser and its base settings (groups scale ``lr`` and may set their decay)."""

    kind: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9

    def build(self, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        if self.kind == "adam":
            return torch.optim.Adam(groups, lr=self.lr, betas=self.betas)
        if self.kind == "adamw":
            return torch.optim.AdamW(groups, lr=self.lr, betas=self.betas)
        if self.kind == "sgd":
            return torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum)
        raise ValueError(f"unknown optimiser {self.kind!r}")


@dataclass(frozen=True)
class ParamGroup:
    """Parameters whose names (in the trained module) start with one of ``prefixes``; their
    learning rate is ``lr_scale`` times the base rate. Parameters in no group form the group
    ``rest`` at the base rate."""

    name: str
    prefixes: tuple[str, ...]
    lr_scale: float = 1.0
    weight_decay: float | None = None


class Schedule(Protocol):
    """A learning-rate multiplier per parameter group and (fractional) epoch."""

    per_step: bool

    def factor(self, group: str, epoch: float) -> float: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Constant:
    """The base rate throughout."""

    per_step: bool = False

    def factor(self, group: str, epoch: float) -> float:
        return 1.0

    def describe(self) -> dict[str, Any]:
        return {"schedule": "constant"}


@dataclass(frozen=True)
class Cosine:
    """Cosine annealing over ``t_max`` epochs down to ``floor`` times the base rate (torch's
    ``CosineAnnealingLR`` in closed form; stepped once per epoch unless ``per_step``)."""

    t_max: float
    floor: float = 0.0
    per_step: bool = False

    def factor(self, group: str, epoch: float) -> float:
        return self.floor + (1.0 - self.floor) * (1.0 + math.cos(math.pi * epoch / self.t_max)) / 2

    def describe(self) -> dict[str, Any]:
        return {"schedule": "cosine", **asdict(self)}


@dataclass(frozen=True)
class Step:
    """The rate times ``gamma`` every ``every`` epochs (torch's ``StepLR``)."""

    every: int
    gamma: float
    per_step: bool = False

    def factor(self, group: str, epoch: float) -> float:
        return self.gamma ** (int(epoch) // self.every)

    def describe(self) -> dict[str, Any]:
        return {"schedule": "step", **asdict(self)}


@dataclass(frozen=True)
class LossResult:
    """What an objective returns for one batch: the loss to minimise, and, where the stage
    predicts quality, the batch's scores and targets (for the training SROCC), plus named
    loss terms (recorded per epoch)."""

    loss: torch.Tensor
    scores: torch.Tensor | None = None
    target: torch.Tensor | None = None
    parts: Mapping[str, torch.Tensor] = field(default_factory=dict)


class Objective(Protocol):
    """A stage's loss: runs the network on a device batch however it needs to."""

    def __call__(self, net: nn.Module, batch: Batch) -> LossResult: ...

    def describe(self) -> dict[str, Any]: ...


_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "mse": F.mse_loss,
    "smooth_l1": F.smooth_l1_loss,
}


@dataclass(frozen=True)
class Regression:
    """``scale`` x L1 (or MSE, smooth L1) between ``forward``'s scores and ``batch[target]``."""

    forward: Forward
    loss: Literal["l1", "mse", "smooth_l1"] = "l1"
    scale: float = 1.0
    target: str = "quality"

    def __call__(self, net: nn.Module, batch: Batch) -> LossResult:
        scores = self.forward(net, batch).float()
        target = batch[self.target].float()
        return LossResult(self.scale * _LOSSES[self.loss](scores, target), scores, target)

    def describe(self) -> dict[str, Any]:
        return {"objective": "regression", "loss": self.loss, "scale": self.scale}


@dataclass(frozen=True)
class Recipe:
    """How one stage trains: optimiser, groups, schedule, epochs, batch, samples per image."""

    optimiser: Optimiser
    epochs: int
    batch_size: int
    schedule: Schedule = field(default_factory=Constant)
    groups: tuple[ParamGroup, ...] = ()
    #: Training samples (crops) drawn from every image per epoch.
    samples_per_image: int = 1
    #: Evaluation samples per image (validation here; the metric's scores use the same).
    eval_samples: int = 1
    clip_grad_norm: float | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "samples_per_image", "eval_samples"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name.replace('_', '-')} must be at least 1")
        if not self.optimiser.lr > 0:
            raise UserError("the learning rate must be positive")

    def describe(self) -> dict[str, Any]:
        """Plain data: everything that changes the trained model."""
        return {
            "optimiser": {**asdict(self.optimiser), "betas": list(self.optimiser.betas)},
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "schedule": self.schedule.describe(),
            "groups": [{**asdict(g), "prefixes": list(g.prefixes)} for g in self.groups],
            "samples_per_image": self.samples_per_image,
            "eval_samples": self.eval_samples,
            "clip_grad_norm": self.clip_grad_norm,
        }

    def param_groups(self, module: nn.Module) -> list[dict[str, Any]]:
        """The optimiser's groups over ``module``'s trainable parameters (frozen ones, with
        ``requires_grad`` off, are left out), each tagged with its name and base rate."""
        buckets: dict[str, list[nn.Parameter]] = {g.name: [] for g in self.groups}
        buckets["rest"] = []
        for name, parameter in module.named_parameters():
            if not parameter.requires_grad:
                continue
            group = next((g.name for g in self.groups if name.startswith(g.prefixes)), "rest")
            buckets[group].append(parameter)
        settings = {g.name: g for g in self.groups}
        groups = []
        for name, parameters in buckets.items():
            if not parameters:
                continue
            group = settings.get(name)
            scale = group.lr_scale if group else 1.0
            decay = self.optimiser.weight_decay
            if group is not None and group.weight_decay is not None:
                decay = group.weight_decay
            base = self.optimiser.lr * scale
            groups.append(
                {
                    "params": parameters,
                    "name": name,
                    "base_lr": base,
                    "lr": base,
                    "weight_decay": decay,
                }
            )
        if not groups:
            raise UserError("nothing to train: every parameter of the stage is frozen")
        return groups


@dataclass(frozen=True)
class StageInputs:
    """What a stage that builds its own data may use: the split's readable training images
    (records and prepared pixels, in the same order) and their distinct references. Only the
    training scenes of the split are here; validation and test images never are."""

    items: Sequence[LabelledImage]
    images: ImageSource
    references: tuple[Path, ...]
    spec: InputSpec
    seed: int


#: A stage's own data: a dataset of dict samples (pixels under ``image``/``ref`` on 0..255). A
#: dataset with an ``epoch`` attribute has it set before every epoch.
StageData = Callable[[StageInputs], "Dataset"]


@dataclass(frozen=True)
class Stage:
    """One training stage of a deep model.

    ``data`` None trains on the split's labelled images cut by ``sampler`` (the model's own
    when None); otherwise it builds the stage's dataset (pretraining on generated pairs).
    ``select`` keeps the epoch with the best validation SROCC (``validation``; labelled data
    only) or the last one. ``trains`` picks the sub-network whose parameters the stage
    optimises (the whole network when None); frozen parameters are never optimised.
    """

    name: str
    recipe: Recipe
    objective: Objective
    data: StageData | None = None
    sampler: Sampler | None = None
    select: Literal["validation", "last"] = "validation"
    trains: Callable[[nn.Module], nn.Module] | None = None

    def __post_init__(self) -> None:
        if self.select == "validation" and self.data is not None:
            raise ValueError(f"stage {self.name}: validation selection needs the labelled data")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data": "labelled" if self.data is None else getattr(self.data, "__name__", "own"),
            "select": self.select,
            "objective": self.objective.describe(),
            "recipe": self.recipe.describe(),
            "sampler": self.sampler.describe() if self.sampler is not None else None,
        }
