"""NestConvNeXt-IQA as a learned no-reference metric (DL-NR), full and lite.

Paper: "No-Reference LWIR Image Quality Assessment via NestConvNeXt and Lightweight Dual
Attention Networks"; reference code github.com/LMZouaoui/NestConvNeXt-IQA. The network is in
:mod:`iqabench.models.nestconvnext`, the training loop in :mod:`iqabench.train`.

In ``iqabench run`` the metric is trained on each split's training scenes (model selection on a
content-disjoint validation hold-out the runner carves from them) and scores the test scenes;
given ``checkpoint=PATH`` it loads a trained model instead and needs no fitting. A score is the
mean prediction over ``crops`` random 224x224 crops of the image resized to 512x512; the crops
depend on the image and the seed only. torch is imported inside methods only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import NotFittedError, UserError
from ..metric import LabelledImage, LearnedMetric

if TYPE_CHECKING:
    from ..train.loop import TrainConfig

CITATION = (
    "No-Reference LWIR Image Quality Assessment via NestConvNeXt and Lightweight Dual "
    "Attention Networks (NestConvNeXt-IQA); reference code github.com/LMZouaoui/NestConvNeXt-IQA"
)


class NestConvNeXtIQA(LearnedMetric):
    """NestConvNeXt-IQA, the published configuration (299.9 M parameters here; the reference
    module counts 300.9 M), trained with the reference recipe."""

    name: ClassVar[str] = "nestconvnext"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    colour: ClassVar[str] = "grey"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = CITATION
    gpu_recommended: ClassVar[bool] = True
    batch_size: ClassVar[int] = 8
    default_params: ClassVar[dict[str, Any]] = {
        "epochs": 20,
        "batch_size": 40,
        "lr": 2e-5,
        "weight_decay": 5e-4,
        "train_crops": 10,
        "crops": 10,
        "seed": 2030,
        "checkpoint": None,
        "device": "auto",
        "precision": "auto",
        "workers": None,
        "work_dir": None,
    }
    file_params: ClassVar[tuple[str, ...]] = ("checkpoint",)
    runtime_params: ClassVar[tuple[str, ...]] = ("device", "precision", "workers", "work_dir")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._net: Any = None
        self._runtime: Any = None
        self._eval_seed = int(self.params["seed"])

    def requires_fit(self) -> bool:
        return self.params["checkpoint"] is None

    def fit(
        self,
        train: Sequence[LabelledImage],
        validation: Sequence[LabelledImage],
        seed: int = 0,
    ) -> NestConvNeXtIQA:
        """Train on ``train`` (seed: the ``seed`` parameter plus the runner's split seed) and
        keep the epoch with the best validation SROCC. With a checkpoint, load it instead."""
        if not self.requires_fit():
            self._load_checkpoint()
            return self
        from ..models.nestconvnext import CONFIGS
        from ..train.data import ImageSet
        from ..train.loop import train as run_training

        model_config = CONFIGS[self.name]
        # The runner has already decided to train here (it skips GPU-only metrics on a CPU
        # machine unless they are named), so "auto" may fall back to the CPU.
        recipe = self.train_config(int(self.params["seed"]) + int(seed))
        train_set = ImageSet.from_images(
            [x.image for x in train], [x.quality for x in train], model_config.resize
        )
        held_out = ImageSet.from_images(
            [x.image for x in validation], [x.quality for x in validation], model_config.resize
        )
        out_dir = resume = None
        if self.params["work_dir"] is not None:
            data = hashlib.sha256(
                (train_set.fingerprint() + held_out.fingerprint()).encode()
            ).hexdigest()
            run = f"{self.name}-{self.params_hash()}-seed{recipe.seed}-{data[:12]}"
            out_dir = Path(self.params["work_dir"]) / run
            if (out_dir / "last.pt").is_file():
                resume = out_dir / "last.pt"
        result = run_training(
            model_config,
            recipe,
            train_set,
            held_out if len(held_out) else None,
            out_dir=out_dir,
            resume=resume,
        )
        self._net, self._runtime, self._eval_seed = result.net, result.runtime, recipe.seed
        return self

    def train_config(self, seed: int) -> TrainConfig:
        """The :class:`~iqabench.train.loop.TrainConfig` these parameters describe."""
        from ..train.loop import TrainConfig

        p = self.params
        return TrainConfig(
            epochs=int(p["epochs"]),
            batch_size=int(p["batch_size"]),
            lr=float(p["lr"]),
            weight_decay=float(p["weight_decay"]),
            train_crops=int(p["train_crops"]),
            eval_crops=int(p["crops"]),
            seed=seed,
            device=str(p["device"]),
            precision=str(p["precision"]),
            workers=None if p["workers"] is None else int(p["workers"]),
            cpu_fallback=True,
        )

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        if self._net is None:
            if self.requires_fit():
                raise NotFittedError(
                    f"metric {self.name!r} has no published weights: train it (`iqabench run` "
                    f"fits it per split, or `iqabench train`) or give checkpoint=PATH"
                )
            self._load_checkpoint()
        from ..train.data import prepare_image
        from ..train.inference import predict

        config = self._net.config
        prepared = [prepare_image(image, config.resize) for image in images]
        return predict(
            self._net,
            prepared,
            self._runtime,
            crops=int(self.params["crops"]),
            crop=config.crop,
            seed=self._eval_seed,
            batch_size=int(self.params["batch_size"]),
        )

    def model_files(self) -> list[Path]:
        """The ImageNet ResNet-50 file training starts from, when one is installed (its content
        enters the cache key, so installing it later retrains instead of reusing scores of a
        random-initialised backbone). None is needed with a checkpoint; a missing file is not an
        error: training then starts from random initialisation, with a warning."""
        if not self.requires_fit():
            return []
        from ..models.backbones import resolve_backbone

        path = resolve_backbone("resnet50").path
        return [path] if path is not None else []

    def pretrained_weights(self) -> bool:
        """Whether training starts (or the checkpoint's training started) from ImageNet."""
        if not self.requires_fit():
            from ..train.checkpoint import read_checkpoint

            meta = read_checkpoint(self.params["checkpoint"], mmap=True)
            return meta.get("backbone_init") != "random-init"
        from ..models.backbones import resolve_backbone

        return resolve_backbone("resnet50").pretrained

    def notes(self) -> list[str]:
        """Warnings for the results: the random-initialisation warning when training without
        ImageNet weights (or the notes recorded in a given checkpoint), and, for the lite
        variant, that it is not the published model."""
        if not self.requires_fit():
            from ..train.checkpoint import read_checkpoint

            meta = read_checkpoint(self.params["checkpoint"], mmap=True)
            notes = [str(note) for note in meta.get("notes", [])]
        else:
            from ..models.backbones import resolve_backbone

            weights = resolve_backbone("resnet50")
            notes = [] if weights.pretrained else [weights.note]
        return [*notes, *self._variant_notes()]

    def _load_checkpoint(self) -> None:
        from ..train.checkpoint import load_for_inference

        path = Path(self.params["checkpoint"])
        trained, runtime = load_for_inference(
            path, self.name, str(self.params["device"]), str(self.params["precision"])
        )
        self._net, self._runtime, self._eval_seed = trained.net, runtime, trained.seed

    def _variant_notes(self) -> list[str]:
        return []


class NestConvNeXtLiteIQA(NestConvNeXtIQA):
    """A narrow-decoder NestConvNeXt-IQA (44.2 M parameters) with a shortened recipe, for CPU
    tests and demos. Not the published model: its results must never be reported as such."""

    name: ClassVar[str] = "nestconvnext-lite"
    # Minutes per training on a CPU, but a run trains one model per split: `--metrics all`
    # leaves it to machines with a GPU; name it (with few splits) to run it on a CPU.
    gpu_recommended: ClassVar[bool] = True
    default_params: ClassVar[dict[str, Any]] = {
        **NestConvNeXtIQA.default_params,
        "epochs": 5,
        "batch_size": 8,
        "lr": 1e-4,
        "train_crops": 2,
        "crops": 4,
    }

    def _variant_notes(self) -> list[str]:
        return [
            "the narrow-decoder demo configuration (44.2 M parameters, shortened recipe), "
            "not the published 300.9 M NestConvNeXt-IQA"
        ]


#: Metric name -> class, for the train and predict commands.
VARIANTS: dict[str, type[NestConvNeXtIQA]] = {
    cls.name: cls for cls in (NestConvNeXtIQA, NestConvNeXtLiteIQA)
}


def variant(name: str) -> type[NestConvNeXtIQA]:
    """The metric class of ``name`` (``nestconvnext`` or ``nestconvnext-lite``)."""
    try:
        return VARIANTS[name.strip().lower()]
    except KeyError:
        known = ", ".join(VARIANTS)
        raise UserError(f"unknown NestConvNeXt-IQA variant {name!r} (known: {known})") from None
