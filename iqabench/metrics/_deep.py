"""The base class of every deep metric: what a model declares, and the plumbing they share.

A deep metric is a :class:`~iqabench.metric.LearnedMetric` whose class declares, as data:

* ``network`` and ``architecture``: where the network class and its configuration live, as
  ``"module:attribute"`` references into :mod:`iqabench.models` (imported only when needed, so
  the registry lists metrics without importing torch). The configuration is a frozen dataclass
  (``to_dict``/``from_dict`` or plain fields); the network is built as
  ``Network(config, backbone)`` with the backbone's
  :class:`~iqabench.models.backbones.BackboneWeights` (None: random initialisation, as before a
  checkpoint's weights are loaded over it) unless the model overrides
  :meth:`DeepMetric.build_network`; ``backbone`` names its ImageNet backbone (default: the
  configuration's ``backbone`` field);
* ``input_spec``: an :class:`~iqabench.train.inputs.InputSpec` (channels, resize, crop,
  flips, storage depth, normalisation);
* its training, through :meth:`DeepMetric.stages` (default: one ``quality`` stage on the
  labelled images with :meth:`DeepMetric.recipe` and :meth:`DeepMetric.objective`), and how it
  scores a batch (:meth:`DeepMetric.score_batch`) and cuts samples (:meth:`DeepMetric.sampler`).

Everything else is here: training per split through the model-agnostic trainer
(:mod:`iqabench.train.trainer`) with images streamed from the decode-once cache, checkpoints
(one format, rebuilt through the registry), ``requires_fit``, ``model_files``, ``notes``,
``pretrained_weights``, and scoring as the mean over evaluation samples. torch is imported inside
methods only, so listing the registry stays fast.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import NotFittedError, UserError, WeightsNotFoundError
from ..metric import LabelledImage, LearnedMetric, not_fitted_message
from ..train.inputs import InputSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..models.backbones import BackboneWeights
    from ..progress import Progress
    from ..train.images import ImageSource
    from ..train.recipe import Objective, Recipe, Stage
    from ..train.runtime import Runtime
    from ..train.samples import Sampler
    from ..train.trainer import TrainResult

#: Parameters every deep metric accepts (a model overrides the values, and may add its own).
DEEP_PARAMS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 16,
    "lr": 1e-4,
    "weight_decay": 0.0,
    "train_crops": 1,
    "crops": 1,
    "seed": 0,
    "checkpoint": None,
    "device": "auto",
    "precision": "auto",
    "workers": None,
    "work_dir": None,
}
DEEP_RUNTIME_PARAMS: tuple[str, ...] = ("device", "precision", "workers", "work_dir")


class DeepMetric(LearnedMetric):
    """A deep IQA model trained per split (or given ``checkpoint=PATH``); see the module
    docstring for what a subclass declares."""

    family: ClassVar[str] = "DL-NR"
    #: ``"module:Class"`` of the network, built as ``Class(config, backbone)``.
    network: ClassVar[str]
    #: ``"module:NAME"`` of the architecture configuration.
    architecture: ClassVar[str]
    #: The :mod:`~iqabench.models.backbones` name of the ImageNet backbone; None: the
    #: configuration's ``backbone`` field (if any).
    backbone: ClassVar[str | None] = None
    input_spec: ClassVar[InputSpec]
    #: False for configurations that are not the published model (``-lite``): their results
    #: carry :attr:`variant_note`.
    published: ClassVar[bool] = True
    variant_note: ClassVar[str] = ""
    #: True when the model is meaningless without its ImageNet backbone (it is then skipped,
    #: with the reason, rather than run on random weights).
    needs_pretrained_backbone: ClassVar[bool] = False
    #: False for a model whose training takes hours on a CPU: without a GPU it then trains
    #: only when ``device=cpu`` is asked for (or inside ``iqabench run``, which decides itself).
    trains_on_cpu: ClassVar[bool] = True
    default_params: ClassVar[dict[str, Any]] = DEEP_PARAMS
    file_params: ClassVar[tuple[str, ...]] = ("checkpoint",)
    runtime_params: ClassVar[tuple[str, ...]] = DEEP_RUNTIME_PARAMS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("input_spec")
        if spec is not None:
            cls.colour = spec.channels  # the runner prepares what the network is fed

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._net: nn.Module | None = None
        self._runtime: Runtime | None = None
        self._eval_seed = int(self.params.get("seed", 0))
        self._meta: dict[str, Any] = {}

    # -- what a model declares (override as needed) ------------------------------------------

    @property
    def config(self) -> Any:
        """The architecture configuration ``architecture`` names."""
        return resolve_reference(self.architecture)

    def build_network(self, config: Any, backbone: BackboneWeights | None) -> nn.Module:
        """The network of ``config``; ``backbone`` None builds it without loading weights."""
        return resolve_reference(self.network)(config, backbone)

    def config_from_dict(self, data: dict[str, Any]) -> Any:
        """The architecture configuration recorded in a checkpoint."""
        kind = type(self.config)
        return kind.from_dict(data) if hasattr(kind, "from_dict") else kind(**data)

    def backbone_name(self) -> str | None:
        """The :mod:`~iqabench.models.backbones` name of the ImageNet backbone, or None for a
        network without one."""
        return self.backbone or getattr(self.config, "backbone", None)

    def recipe(self) -> Recipe:
        """The quality stage's recipe from the parameters: Adam with the ``lr`` and
        ``weight_decay`` parameters at a constant rate (models override with their own)."""
        from ..train.recipe import Optimiser, Recipe

        p = self.params
        return Recipe(
            optimiser=Optimiser("adam", float(p["lr"]), float(p["weight_decay"])),
            epochs=int(p["epochs"]),
            batch_size=int(p["batch_size"]),
            samples_per_image=int(p["train_crops"]),
            eval_samples=self.eval_samples(),
        )

    def objective(self) -> Objective:
        """The quality stage's loss: L1 between the scores and the quality."""
        from ..train.recipe import Regression

        return Regression(self.score_batch)

    def stages(self) -> list[Stage]:
        """The training stages, in order; the last one trains quality on labelled images."""
        from ..train.recipe import Stage

        return [Stage("quality", self.recipe(), self.objective())]

    def sampler(self) -> Sampler:
        """How samples are cut: random crops of ``input_spec.crop`` with its flips."""
        from ..train.samples import RandomCrops

        spec = self.input_spec
        if spec.crop is None:
            raise ValueError(f"{self.name}: an input spec without a crop needs its own sampler")
        return RandomCrops(spec.crop, spec.hflip, spec.vflip)

    def score_batch(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores ``(N,)`` of a device batch: ``net(image)``, or ``net(image, ref)`` for a
        full-reference model."""
        if self.full_reference:
            return net(batch["image"], batch["ref"])
        return net(batch["image"])

    def eval_samples(self) -> int:
        """Evaluation samples (crops) averaged per image (the ``crops`` parameter)."""
        return int(self.params.get("crops", 1))

    def training_notes(self, train: Sequence[LabelledImage]) -> list[str]:
        """Notes on how the training data shaped this training (recorded in its checkpoints
        and results; DRI-IQA: which loss terms a dataset without references leaves out)."""
        return []

    # -- training ----------------------------------------------------------------------------

    def requires_fit(self) -> bool:
        return self.params.get("checkpoint") is None and bool(self.stages())

    def training_fields(self) -> tuple[str, ...]:
        """What each training image must come with besides its pixels and quality, named as
        item fields: ``("ref",)`` for a full-reference model and for one whose stages pretrain
        on pairs made from the training references (DACNN, VCRNet, SaTQA); else nothing. A
        training dataset that cannot give them is refused before any work."""
        from ..data.pairs import PairStageData

        pairs = any(isinstance(stage.data, PairStageData) for stage in self.stages())
        return ("ref",) if self.full_reference or pairs else ()

    def fit(
        self,
        train: Sequence[LabelledImage],
        validation: Sequence[LabelledImage],
        seed: int = 0,
    ) -> DeepMetric:
        """Train on ``train`` (seed: the ``seed`` parameter plus the runner's split seed) and
        keep the epoch with the best validation SROCC. With a checkpoint, load it instead.
        With ``work_dir`` the run's checkpoints go to a folder named by the parameters, seed
        and data, and an interrupted run resumes there."""
        if not self.requires_fit():
            self._ensure_network()
            return self
        out_dir = None
        if self.params.get("work_dir") is not None:
            digest = hashlib.sha256()
            for item in [*train, *validation]:
                digest.update(f"{item.image}|{item.ref}|{item.quality!r};".encode())
            run = f"{self.name}-{self.params_hash()}-seed{self._seed(seed)}"
            out_dir = Path(self.params["work_dir"]) / f"{run}-{digest.hexdigest()[:12]}"
        # The runner has already decided to train here (it skips GPU-only metrics on a CPU
        # machine unless they are named), so "auto" may fall back to the CPU.
        self.train_model(train, validation, seed, out_dir=out_dir, resume=True, cpu_fallback=True)
        return self

    def train_model(
        self,
        train: Sequence[LabelledImage],
        validation: Sequence[LabelledImage],
        seed: int = 0,
        *,
        out_dir: Path | None = None,
        resume: bool = False,
        progress: Progress | None = None,
        deterministic: bool = False,
        cpu_fallback: bool = False,
    ) -> TrainResult:
        """Train a fresh network through every stage; the trained network then scores.

        ``out_dir`` receives the checkpoints and per-epoch metrics (``resume`` continues what
        it holds). Unreadable images are left out (see :attr:`left_out`). Without a GPU a model
        that does not ``trains_on_cpu`` refuses to train unless ``cpu_fallback`` or
        ``device=cpu``.
        """
        from ..models.backbones import resolve_backbone
        from ..train.images import PreparedImages
        from ..train.recipe import StageInputs
        from ..train.runtime import resolve_runtime, seed_everything
        from ..train.trainer import Labelled, TrainingJob, train_network

        runtime = resolve_runtime(
            str(self.params["device"]),
            str(self.params["precision"]),
            model_name=self.name,
            gpu_recommended=not self.trains_on_cpu and not cpu_fallback,
        )
        if runtime.note and progress is not None:
            progress.note(runtime.note)
        cache = PreparedImages(self.input_spec)
        train_images, kept, errors = cache.add(
            self._inputs(train), progress, f"{self.name}: preparing images"
        )
        held_out, kept_validation, more = cache.add(
            self._inputs(validation), progress, f"{self.name}: validation images"
        )
        self.left_out.extend([*errors, *more])
        train_items = [train[i] for i in kept]
        validation_items = [validation[i] for i in kept_validation]
        if not train_items:
            raise UserError(f"{self.name}: no readable training images")

        seed_total = self._seed(seed)
        seed_everything(seed_total, deterministic)
        name = self.backbone_name()
        backbone = resolve_backbone(name) if name is not None else None
        for note in self._backbone_notes(backbone):  # loud: on screen, and in the results
            if progress is None:
                warnings.warn(note, RuntimeWarning, stacklevel=2)
            else:
                progress.note(note)
        net = self.build_network(self.config, backbone)
        normalisation = self.normalisation(backbone)
        references = tuple(sorted({i.ref for i in train_items if i.ref is not None}))
        fingerprint = hashlib.sha256(self.input_spec.preparation_key().encode())
        for side, source, items in (
            ("T", train_images, train_items),
            ("V", held_out, validation_items),
        ):
            for entry, item in zip(source.entries, items, strict=True):
                fingerprint.update(f"{side}{entry.key}={item.quality!r};".encode())
        job = TrainingJob(
            name=self.name,
            net=net,
            stages=self.stages(),
            forward=self.score_batch,
            sampler=self.sampler(),
            normalisation=normalisation,
            train=Labelled(train_images, np.array([i.quality for i in train_items])),
            validation=Labelled(held_out, np.array([i.quality for i in validation_items]))
            if validation_items
            else None,
            inputs=StageInputs(train_items, train_images, references, self.input_spec, seed_total),
            seed=seed_total,
            fingerprint=fingerprint.hexdigest(),
            meta=self._checkpoint_meta(backbone, normalisation),
            notes=[*self._backbone_notes(backbone), *self.training_notes(train_items)],
        )
        workers = None if self.params.get("workers") is None else int(self.params["workers"])
        result = train_network(
            job, runtime, out_dir=out_dir, resume=resume, workers=workers, progress=progress
        )
        self._net, self._runtime, self._eval_seed = result.net, runtime, seed_total
        self._meta = {**job.meta, "notes": result.notes}
        return result

    # -- scoring -------------------------------------------------------------------------------

    def score(
        self, images: Sequence[np.ndarray], refs: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        from ..train.images import ArrayImages

        self._ensure_network()
        if self.full_reference and refs is None:
            raise UserError(f"{self.name} is full-reference: give the reference images")
        pairs = refs if self.full_reference else None
        return self._predict(ArrayImages.from_pixels(images, pairs, self.input_spec))

    def predict(self, items: Sequence[LabelledImage]) -> np.ndarray:
        """Scores of images read from disk through the decode-once cache (NaN where
        unreadable, the error going to :attr:`left_out`)."""
        from ..train.images import PreparedImages

        self._ensure_network()
        source, kept, errors = PreparedImages(self.input_spec).add(self._inputs(items))
        self.left_out.extend(errors)
        scores = np.full(len(items), np.nan)
        if kept:
            scores[kept] = self._predict(source)
        return scores

    def _inputs(self, items: Sequence[LabelledImage]) -> list[LabelledImage]:
        """What the network sees of ``items``: a no-reference model's input has no reference
        (the records keep theirs, for stages that pretrain on the training references)."""
        if self.full_reference:
            missing = next((item for item in items if item.ref is None), None)
            if missing is not None:
                raise UserError(
                    f"{missing.image}: no reference image ({self.name} is full-reference)"
                )
            return list(items)
        return [replace(item, ref=None) if item.ref is not None else item for item in items]

    def _predict(self, source: ImageSource) -> np.ndarray:
        from ..train.inference import predict

        assert self._net is not None and self._runtime is not None
        return predict(
            self._net,
            self.score_batch,
            source,
            self.sampler(),
            self._runtime,
            normalisation=self._normalisation_of_meta(),
            samples=self.eval_samples(),
            seed=self._eval_seed,
            batch_size=int(self.params.get("batch_size", 16)),
        )

    def _ensure_network(self) -> None:
        """The network to score with: trained here, from the checkpoint, or (a model with no
        training stages) built on its pretrained backbone."""
        if self._net is not None:
            return
        if self.params.get("checkpoint") is not None:
            self._load_checkpoint(Path(self.params["checkpoint"]))
        elif self.requires_fit():
            raise NotFittedError(not_fitted_message(self.name))
        else:
            self._build_untrained()

    def _build_untrained(self) -> None:
        from ..models.backbones import resolve_backbone
        from ..train.runtime import resolve_runtime

        self.model_files()  # refuses a model that needs pretrained weights it lacks
        name = self.backbone_name()
        backbone = resolve_backbone(name) if name is not None else None
        runtime = resolve_runtime(
            str(self.params["device"]), str(self.params["precision"]), training=False
        )
        self._net = self.build_network(self.config, backbone).to(runtime.device)
        self._runtime = runtime
        self._meta = {
            **self._checkpoint_meta(backbone, self.normalisation(backbone)),
            "notes": self._backbone_notes(backbone),
        }

    def _load_checkpoint(self, path: Path) -> None:
        from ..train.checkpoint import read_checkpoint
        from ..train.runtime import resolve_runtime

        payload = read_checkpoint(path)
        if payload.get("metric") != self.name:
            raise UserError(f"{path} holds a {payload.get('metric')} model, not {self.name}")
        net = self.build_network(self.config_from_dict(payload["architecture"]), None)
        try:
            net.load_state_dict(payload["model"], strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(f"checkpoint {path} does not fit {self.name}: {first}") from None
        runtime = resolve_runtime(
            str(self.params["device"]),
            str(self.params["precision"]),
            model_name=self.name,
            training=False,
        )
        net.to(runtime.device)
        if runtime.channels_last:
            import torch

            net.to(memory_format=torch.channels_last)
        skip = ("model", "optimizer", "scaler", "rng", "history")
        self._meta = {k: v for k, v in payload.items() if k not in skip}
        self._net, self._runtime, self._eval_seed = net, runtime, int(payload.get("seed", 0))

    # -- provenance ----------------------------------------------------------------------------

    def model_files(self) -> list[Path]:
        """The ImageNet backbone file training (or scoring, for a model without training)
        starts from, when one is installed: its content enters the cache key, so installing it
        later retrains instead of reusing scores of a random-initialised backbone. None is
        needed with a checkpoint. A missing file is not an error, unless the model is
        meaningless without it (``needs_pretrained_backbone``)."""
        if self.params.get("checkpoint") is not None:
            return []
        weights = self._resolved_backbone()
        if weights is None:
            return []
        if weights.path is None and self.needs_pretrained_backbone:
            raise WeightsNotFoundError(f"{self.name} needs its pretrained backbone: {weights.note}")
        return [weights.path] if weights.path is not None else []

    def pretrained_weights(self) -> bool | None:
        """Whether training starts (or the checkpoint's training started) from ImageNet
        weights; None for a network without a backbone."""
        if self.params.get("checkpoint") is not None:
            backbone = self._checkpoint_info().get("backbone")
            return None if backbone is None else bool(backbone["pretrained"])
        weights = self._resolved_backbone()
        return None if weights is None else weights.pretrained

    def notes(self) -> list[str]:
        """Warnings for the results: those of the training that produced the network (the
        random-initialisation warning when the backbone had no ImageNet weights, a missing
        validation set), read from the checkpoint when one is given, and, for a variant that is
        not the published model, that it is not."""
        if self._meta or self.params.get("checkpoint") is not None:
            notes = [str(note) for note in self._checkpoint_info().get("notes", [])]
        else:
            notes = self._backbone_notes(self._resolved_backbone())
        variant = [self.variant_note] if self.variant_note else []
        return [*notes, *(n for n in variant if n not in notes)]

    def trained_meta(self) -> dict[str, Any]:
        """What the current network's checkpoint records: metric, architecture, backbone
        provenance, input spec and normalisation, notes."""
        self._ensure_network()
        return dict(self._meta)

    def _resolved_backbone(self) -> BackboneWeights | None:
        from ..models.backbones import resolve_backbone

        name = self.backbone_name()
        return resolve_backbone(name) if name is not None else None

    def _checkpoint_info(self) -> dict[str, Any]:
        if self._meta:
            return self._meta
        from ..train.checkpoint import read_checkpoint

        return read_checkpoint(self.params["checkpoint"], mmap=True)

    def _backbone_notes(self, weights: BackboneWeights | None) -> list[str]:
        return [weights.note] if weights is not None and not weights.pretrained else []

    def _checkpoint_meta(
        self, backbone: BackboneWeights | None, normalisation: tuple[tuple[float, ...], ...]
    ) -> dict[str, Any]:
        mean, std = normalisation
        return {
            "metric": self.name,
            "architecture": config_dict(self.config),
            "backbone": backbone.to_dict() if backbone is not None else None,
            "input": {**self.input_spec.to_dict(), "normalisation": [list(mean), list(std)]},
        }

    def normalisation(
        self, backbone: BackboneWeights | None
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The (mean, std) the network's input is normalised with: the input spec's own, else
        those ``backbone``'s weights were trained with."""
        return self.input_spec.normalisation(
            (backbone.mean, backbone.std) if backbone is not None else None
        )

    def _normalisation_of_meta(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        mean, std = self._meta["input"]["normalisation"]
        return tuple(float(v) for v in mean), tuple(float(v) for v in std)

    def _seed(self, split_seed: int) -> int:
        return int(self.params.get("seed", 0)) + int(split_seed)

    # -- listing -------------------------------------------------------------------------------

    def parameter_counts(self) -> tuple[int, int]:
        """(all, trainable) parameters of the network, measured on a build without memory
        (torch's meta device; buffers such as BatchNorm statistics are not parameters)."""
        import torch

        with torch.device("meta"):
            net = self.build_network(self.config, None)
        parameters = list(net.parameters())
        return (
            sum(p.numel() for p in parameters),
            sum(p.numel() for p in parameters if p.requires_grad),
        )


def resolve_reference(reference: str) -> Any:
    """The object a ``"package.module:attribute"`` reference names (imported now)."""
    import importlib

    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def config_dict(config: Any) -> dict[str, Any]:
    """An architecture configuration as plain data (its ``to_dict`` or dataclass fields)."""
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    if is_dataclass(config):
        return asdict(config)
    raise TypeError(f"cannot record architecture configuration {config!r}")


def deep_metric_names() -> list[str]:
    """Registered metrics that are deep models (their classes are imported, not their
    networks), in registry order."""
    from ..registry import entries

    names = []
    for name, entry in entries().items():
        if entry.loadable and issubclass(entry.load(), DeepMetric):
            names.append(name)
    return names


def deep_metric_class(name: str) -> type[DeepMetric]:
    """The class of deep metric ``name``; another kind of metric is refused in one line."""
    from ..registry import get

    cls = get(name)
    if not issubclass(cls, DeepMetric):
        known = ", ".join(deep_metric_names())
        raise UserError(f"{name!r} is not a deep metric (deep metrics: {known})")
    return cls
