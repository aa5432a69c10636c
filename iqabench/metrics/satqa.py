"""SaTQA as a learned no-reference metric (DL-NR), faithful and lite, with its supervised-
contrastive encoder pretrained inside each split.

Paper: J. Shi, P. Gao and J. Qin, "Transformer-Based No-Reference Image Quality Assessment via
Supervised Contrastive Learning", AAAI 2024, doi:10.1609/aaai.v38i5.28285; official code
github.com/Srache/SaTQA. The network is in :mod:`iqabench.models.satqa`; training, checkpoints
and scoring are the deep-metric framework's (:mod:`iqabench.metrics._deep`,
:mod:`iqabench.train`).

Two stages per split. ``encoder``: the ResNet-50 encoder learns, with the supervised NT-Xent
loss (temperature 0.1), one class per (distortion type, level) of the thermal recipe plus the
pristine class, from distorted/reference pairs that :mod:`iqabench.data.pairs` draws from the
split's training references (each pair: the distorted crop in its class, its reference in the
pristine one); official optimiser (Adam, lr 3e-4, weight decay 1e-5, cosine annealing); the
last epoch is kept. ``quality``: with the ViT-B/8 and the encoder frozen, the rest learns
quality with the official recipe (L1, AdamW lr 2e-5, weight decay 1e-2, cosine annealing, 8
random 224x224 crops per image); the epoch with the best validation SROCC is kept.

The network has two ImageNet backbones (the quality ViT and the encoder's ResNet-50): both
files enter the cache key, their notes the results, and the metric counts as pretrained only
when both are.

Input: RGB (a grey thermal frame repeated to three channels) at its own size, on 0..1 (mean 0,
std 1 here), normalised inside the network for each backbone with its weights' statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..train.inputs import InputSpec
from ._deep import DEEP_PARAMS, DeepMetric
from .dacnn import UNIT_RANGE

if TYPE_CHECKING:
    from torch import nn

    from ..models.backbones import BackboneWeights
    from ..train.inference import Batch
    from ..train.recipe import LossResult, Recipe, Stage

CITATION = (
    "J. Shi, P. Gao and J. Qin, Transformer-Based No-Reference Image Quality Assessment via "
    "Supervised Contrastive Learning, AAAI 2024, doi:10.1609/aaai.v38i5.28285"
)


@dataclass(frozen=True)
class DistortionContrast:
    """The encoder's pretraining loss: supervised NT-Xent over the embeddings of the distorted
    crops (labelled with their class) and of their references (the pristine class)."""

    temperature: float = 0.1

    def __call__(self, net: nn.Module, batch: Batch) -> LossResult:
        import torch

        from ..data.pairs import PRISTINE_CLASS
        from ..train.objectives.contrastive import supervised_nt_xent
        from ..train.recipe import LossResult

        views = torch.cat([batch["image"], batch["ref"]])
        labels = torch.cat([batch["label"], torch.full_like(batch["label"], PRISTINE_CLASS)])
        embeddings = net.encoder.embed(views).float()
        return LossResult(supervised_nt_xent(embeddings, labels, self.temperature))

    def describe(self) -> dict[str, Any]:
        return {"objective": "supervised-nt-xent", "temperature": self.temperature}


class SaTQA(DeepMetric):
    """SaTQA, the published configuration (frozen ViT-B/8, 145,048,554 parameters in the
    quality network of which 58,471,682 trained, plus the 29,100,200-parameter ResNet-50
    encoder), its encoder pretrained on the split's synthetic pairs."""

    name: ClassVar[str] = "satqa"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = CITATION
    gpu_recommended: ClassVar[bool] = True
    trains_on_cpu: ClassVar[bool] = False
    network: ClassVar[str] = "iqabench.models.satqa:SaTQA"
    architecture: ClassVar[str] = "iqabench.models.satqa:FULL"
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=224, hflip=True, **UNIT_RANGE)
    default_params: ClassVar[dict[str, Any]] = {
        **DEEP_PARAMS,
        "epochs": 300,
        "batch_size": 8,
        "lr": 2e-5,
        "weight_decay": 1e-2,
        "t_max": 50,
        "train_crops": 8,
        "crops": 8,
        "pretrain_epochs": 30,
        "pretrain_pairs": 2200,
        "pretrain_batch_size": 55,
        "pretrain_lr": 3e-4,
        "pretrain_weight_decay": 1e-5,
        "pretrain_crop": 224,
        "temperature": 0.1,
    }

    def build_network(self, config: Any, backbone: BackboneWeights | None) -> nn.Module:
        """The network with both backbones: the encoder's weights are resolved here when the
        quality backbone's are (training), and left out when it is built to load a checkpoint
        or to count parameters."""
        from ..models.satqa import SaTQA as Network

        return Network(config, backbone, self._encoder_weights() if backbone else None)

    def recipe(self) -> Recipe:
        """The official quality recipe: AdamW with weight decay, cosine annealing."""
        from ..train.recipe import Cosine, Optimiser, Recipe

        p = self.params
        return Recipe(
            optimiser=Optimiser("adamw", float(p["lr"]), float(p["weight_decay"])),
            epochs=int(p["epochs"]),
            batch_size=int(p["batch_size"]),
            schedule=Cosine(t_max=float(p["t_max"])),
            samples_per_image=int(p["train_crops"]),
            eval_samples=self.eval_samples(),
        )

    def stages(self) -> list[Stage]:
        """Encoder pretraining on the split's synthetic pairs, then quality with the ViT and
        the encoder frozen."""
        from ..data.pairs import PairConfig, PairStageData
        from ..train.recipe import Cosine, Optimiser, Recipe, Stage

        p = self.params
        pairs = PairConfig(crop=int(p["pretrain_crop"]), levels="discrete", target=None)
        pretraining = Stage(
            "encoder",
            Recipe(
                Optimiser("adam", float(p["pretrain_lr"]), float(p["pretrain_weight_decay"])),
                epochs=int(p["pretrain_epochs"]),
                batch_size=int(p["pretrain_batch_size"]),
                schedule=Cosine(t_max=float(p["t_max"])),
            ),
            DistortionContrast(float(p["temperature"])),
            data=PairStageData(pairs, int(p["pretrain_pairs"])),
            select="last",
            trains=lambda net: net.unfreeze("encoder"),
        )
        quality = Stage(
            "quality", self.recipe(), self.objective(), trains=lambda net: net.refreeze()
        )
        return [pretraining, quality]

    # -- the second backbone ---------------------------------------------------------------

    def model_files(self) -> list[Path]:
        """Both backbones' ImageNet files (when installed and training is to come)."""
        files = super().model_files()
        if self.params.get("checkpoint") is None:
            encoder = self._encoder_weights()
            if encoder.path is not None and encoder.path not in files:
                files.append(encoder.path)
        return files

    def pretrained_weights(self) -> bool | None:
        """True only when both backbones start (or started) from ImageNet weights."""
        quality = super().pretrained_weights()
        if self.params.get("checkpoint") is not None:
            return quality
        return bool(quality) and self._encoder_weights().pretrained

    def _backbone_notes(self, weights: BackboneWeights | None) -> list[str]:
        notes = super()._backbone_notes(weights)
        encoder = self._encoder_weights()
        if not encoder.pretrained and encoder.note not in notes:
            notes.append(f"encoder: {encoder.note}")
        return notes

    def _encoder_weights(self) -> BackboneWeights:
        from ..models.backbones import resolve_backbone

        return resolve_backbone(self.config.encoder_backbone)


class SaTQALite(SaTQA):
    """SaTQA on ImageNet EfficientNet-Lite0 backbones (quality features and encoder) with
    narrow multi-stream blocks and a short recipe, for CPUs. Not the published model: its
    results must never be reported as such."""

    name: ClassVar[str] = "satqa-lite"
    architecture: ClassVar[str] = "iqabench.models.satqa:LITE"
    trains_on_cpu: ClassVar[bool] = True
    published: ClassVar[bool] = False
    variant_note: ClassVar[str] = (
        "the EfficientNet-Lite0 configuration (quality network 5.4 M parameters, encoder 4.8 M, "
        "narrow blocks, 128x128 crops, shortened recipe), not the published SaTQA (ViT-B/8 "
        "quality network 145.0 M, ResNet-50 encoder 29.1 M)"
    )
    input_spec: ClassVar[InputSpec] = InputSpec(channels="rgb", crop=128, hflip=True, **UNIT_RANGE)
    default_params: ClassVar[dict[str, Any]] = {
        **SaTQA.default_params,
        "epochs": 3,
        "batch_size": 8,
        "lr": 2e-4,
        "train_crops": 1,
        "crops": 2,
        "pretrain_epochs": 2,
        "pretrain_pairs": 160,
        "pretrain_batch_size": 16,
        "pretrain_crop": 128,
    }
