"""VEI: no-reference quality from Grad-CAM explanations of an image and of its pseudo-reference.

Paper: Ahmed, Omer, Singh, Rashed and Abdel-Nasser, "No-reference image quality assessment based
on visual explanation images and deep transfer learning", Indonesian Journal of Electrical
Engineering and Computer Science 36(3):1521-1531, 2024, doi 10.11591/ijeecs.v36.i3.pp1521-1531.
No usable official code; written from the paper's description.

Method (training-free, distortion-specific):

1. a pseudo-reference image (PRI) is made from the distorted image itself, by distorting it
   further with its own kind of distortion (:func:`pseudo_reference`): blur, a 3x3 mean filter;
   white noise, added zero-mean Gaussian noise of variance 0.5; JPEG and JPEG 2000, re-encoding
   at the lowest quality. LWIR non-uniformity has no PRI in the paper: iqabench adds column
   fixed-pattern offsets (this project's extension);
2. the visual explanation images (VEIs) of the distorted image and of its PRI are Grad-CAM maps
   of an ImageNet classifier (the paper's best: InceptionResNetV2; also VGG16), computed by
   :mod:`iqabench.models.gradcam`;
3. the score is the PSNR between the two VEIs: an image that its PRI barely changes is already
   strongly distorted, so a *higher* score means *worse* quality;
4. the 5-parameter logistic maps scores to opinion (iqabench's evaluation does this for every
   metric).

The distortion type comes from the items table (``item_fields``): LWIR-IQA and synthetic-lwir
give it; on a dataset without types (TIIQAD) the runner skips VEI with that reason, and
``distortion=TYPE`` sets it for every image (``iqabench score --option distortion=BLU``).

Where the paper is silent, iqabench's choices (all in ``registry/vei.yaml``): the classifier is
fed the whole image resized to its input size; the VEIs of the *same* classes are compared, the
``classes`` (default 20) classes the classifier ranks first for the distorted image, and the
score is the mean PSNR over them (on thermal scenes an ImageNet classifier's first class is
unsure and unstable; the mean over 20 ranks synthetic levels better than the first class
alone, measured in docs/benchmarks.md); the maps are scaled to [0, 1] (peak 1) and the MSE is
floored at 1e-10 (at most 100 dB, finite for identical maps); the noise variance is on the
0..255 scale (sigma 0.71 grey levels), drawn from a fixed seed, and the PRIs stay in float.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import MetricParameterError, UserError, WeightsNotFoundError
from ..metric import Metric

if TYPE_CHECKING:
    from ..models.backbones import BackboneWeights
    from ..models.gradcam import GradCAM

CITATION = (
    "Ahmed, Omer, Singh, Rashed and Abdel-Nasser, No-reference image quality assessment based "
    "on visual explanation images and deep transfer learning, Indonesian Journal of Electrical "
    "Engineering and Computer Science 36(3):1521-1531, 2024, "
    "doi 10.11591/ijeecs.v36.i3.pp1521-1531"
)

#: The paper's PRI settings, and the non-uniformity extension's.
MEAN_FILTER_SIZE = 3
NOISE_VARIANCE = 0.5  # on the 0..255 scale
JPEG_QUALITY = 1  # the lowest IJG quality (libjpeg reads 0 as 1)
J2K_COMPRESSION_RATIO = 200.0  # the strongest JPEG 2000 level of the LWIR-IQA recipe
COLUMN_OFFSET_SIGMA = 5.0  # grey levels, about the strongest LWIR-IQA non-uniformity level
PRI_SEED = 0
#: The smallest MSE between two VEIs (a PSNR of at most 100 dB).
MSE_FLOOR = 1e-10


def _as_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _reencoded(image: np.ndarray, **options: Any) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(_as_uint8(image)).save(buffer, **options)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded, dtype=np.float64)


def blur_pri(image: np.ndarray) -> np.ndarray:
    """A 3x3 mean filter (borders replicated), per channel."""
    from scipy.ndimage import uniform_filter

    size = (MEAN_FILTER_SIZE, MEAN_FILTER_SIZE) + (1,) * (image.ndim - 2)
    return uniform_filter(np.asarray(image, dtype=np.float64), size=size, mode="nearest")


def noise_pri(image: np.ndarray) -> np.ndarray:
    """Zero-mean Gaussian noise of variance 0.5 grey levels squared (fixed seed), clipped."""
    rng = np.random.default_rng(PRI_SEED)
    noisy = image + rng.normal(0.0, np.sqrt(NOISE_VARIANCE), np.shape(image))
    return np.clip(noisy, 0.0, 255.0)


def jpeg_pri(image: np.ndarray) -> np.ndarray:
    """JPEG re-encoding at IJG quality 1 (Pillow/libjpeg, 8 bits)."""
    return _reencoded(image, format="JPEG", quality=JPEG_QUALITY)


def j2k_pri(image: np.ndarray) -> np.ndarray:
    """JPEG 2000 re-encoding at compression ratio 200 (Pillow/OpenJPEG, 8 bits)."""
    return _reencoded(
        image, format="JPEG2000", quality_mode="rates", quality_layers=[J2K_COMPRESSION_RATIO]
    )


def nonuniformity_pri(image: np.ndarray) -> np.ndarray:
    """iqabench's extension: column fixed-pattern offsets (one Gaussian offset of sigma 5 grey
    levels per column, fixed seed, the same in every channel), clipped."""
    rng = np.random.default_rng(PRI_SEED)
    offsets = rng.normal(0.0, COLUMN_OFFSET_SIGMA, np.shape(image)[1])
    shape = (1, -1) + (1,) * (np.ndim(image) - 2)
    return np.clip(image + offsets.reshape(shape), 0.0, 255.0)


#: The PRI of each distortion type (LWIR-IQA's codes).
PSEUDO_REFERENCES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "BLU": blur_pri,
    "AWGN": noise_pri,
    "JPG": jpeg_pri,
    "J2K": j2k_pri,
    "NU": nonuniformity_pri,
}
#: Other names of the types (lower case), e.g. LIVE's.
ALIASES: dict[str, str] = {
    "blur": "BLU",
    "gblur": "BLU",
    "blurring": "BLU",
    "wn": "AWGN",
    "noise": "AWGN",
    "white-noise": "AWGN",
    "jpeg": "JPG",
    "jp2k": "J2K",
    "jpeg2000": "J2K",
    "non-uniformity": "NU",
}


def distortion_code(name: str) -> str:
    """The PRI code of a distortion type name (case-insensitive, aliases accepted)."""
    key = str(name).strip()
    if key.upper() in PSEUDO_REFERENCES:
        return key.upper()
    if key.lower() in ALIASES:
        return ALIASES[key.lower()]
    known = ", ".join(PSEUDO_REFERENCES)
    raise UserError(f"VEI has no pseudo-reference for distortion type {name!r} (known: {known})")


def pseudo_reference(image: np.ndarray, distortion: str) -> np.ndarray:
    """The PRI of ``image`` (float 0..255, grey or RGB) for its distortion type."""
    return PSEUDO_REFERENCES[distortion_code(distortion)](np.asarray(image, dtype=np.float64))


def map_psnr(first: np.ndarray, second: np.ndarray) -> float:
    """PSNR (peak 1) between two maps in [0, 1], the MSE floored at :data:`MSE_FLOOR`."""
    mse = float(np.mean((np.asarray(first, np.float64) - np.asarray(second, np.float64)) ** 2))
    return 10.0 * np.log10(1.0 / max(mse, MSE_FLOOR))


class VEI(Metric):
    """VEI with the paper's classifier: Inception-ResNet-v2, else VGG-16 (``classifier``
    ``auto``), from the weights directories; skipped, never run on random weights, without."""

    name: ClassVar[str] = "vei"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = False
    colour: ClassVar[str] = "native"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = CITATION
    item_fields: ClassVar[tuple[str, ...]] = ("distortion",)
    batch_size: ClassVar[int] = 4
    score_range: ClassVar[tuple[float, float]] = (0.0, 100.0)
    #: The classifiers this variant may use, preferred first (``classifier="auto"``).
    classifiers: ClassVar[tuple[str, ...]] = ("inception_resnet_v2", "vgg16")
    default_params: ClassVar[dict[str, Any]] = {
        "classifier": "auto",
        "classes": 20,
        "distortion": None,
        "device": "cpu",
    }
    runtime_params: ClassVar[tuple[str, ...]] = ("device",)
    #: The conformance suite's images carry no distortion type: it names one, and two classes.
    conformance: ClassVar[Mapping[str, Any]] = {"params": {"distortion": "BLU", "classes": 2}}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        choice = self.params["classifier"]
        if choice != "auto" and choice not in self.classifiers:
            known = ", ".join(("auto", *self.classifiers))
            raise MetricParameterError(f"{self.name}: classifier must be one of {known}")
        if int(self.params["classes"]) < 1:
            raise MetricParameterError(f"{self.name}: classes must be at least 1")
        if self.params["distortion"] is not None:
            distortion_code(self.params["distortion"])
        self._weights: BackboneWeights | None = None
        self._explainer: GradCAM | None = None

    # -- what the scores depend on -------------------------------------------------------------

    def classifier_weights(self) -> BackboneWeights:
        """The classifier's ImageNet weights (the first one installed, for ``auto``); none
        raises :class:`~iqabench.errors.WeightsNotFoundError` in one line."""
        if self._weights is not None:
            return self._weights
        from ..models.backbones import backbone_spec, resolve_backbone

        choice = self.params["classifier"]
        candidates = self.classifiers if choice == "auto" else (choice,)
        for name in candidates:
            weights = resolve_backbone(name)
            if weights.pretrained:
                self._weights = weights
                return weights
        titles = " or ".join(backbone_spec(name).title for name in candidates)
        hint = backbone_spec(candidates[0]).hint
        raise WeightsNotFoundError(
            f"{self.name} needs pretrained ImageNet {titles} weights (Grad-CAM of a random "
            f"network means nothing) and none is installed: {hint}"
        )

    def model_files(self) -> list[Path]:
        weights = self.classifier_weights()
        assert weights.path is not None
        return [weights.path]

    def pretrained_weights(self) -> bool:
        return True

    def notes(self) -> list[str]:
        weights = self.classifier_weights()
        return [f"Grad-CAM of {weights.description} ({weights.path.name if weights.path else ''})"]

    # -- scoring -------------------------------------------------------------------------------

    def score(
        self,
        images: Sequence[np.ndarray],
        refs: Sequence[np.ndarray] | None = None,
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> np.ndarray:
        """The VEI score (dB, higher is worse) of each image; ``metadata`` gives each image's
        ``distortion`` (else the ``distortion`` parameter)."""
        types = [self._distortion_of(i, metadata) for i in range(len(images))]
        return np.array(
            [self._score_one(image, kind) for image, kind in zip(images, types, strict=True)]
        )

    def explanations(self, image: np.ndarray, distortion: str) -> tuple[np.ndarray, np.ndarray]:
        """The VEIs ``(k, S, S)`` of ``image`` and of its PRI, for the ``classes`` classes the
        classifier ranks first for ``image``."""
        import torch

        from ..models.gradcam import classifier_input

        explainer, size = self._gradcam()
        weights = self.classifier_weights()
        device = torch.device(str(self.params["device"]))
        batch = torch.cat(
            [
                classifier_input(image, size, weights.mean, weights.std),
                classifier_input(pseudo_reference(image, distortion), size, weights.mean,
                                 weights.std),
            ]
        ).to(device)  # fmt: skip
        maps = explainer.explain(batch, int(self.params["classes"])).cpu().numpy()
        return maps[0], maps[1]

    def _score_one(self, image: np.ndarray, distortion: str) -> float:
        own, pseudo = self.explanations(image, distortion)
        return float(np.mean([map_psnr(a, b) for a, b in zip(own, pseudo, strict=True)]))

    def _distortion_of(self, index: int, metadata: Sequence[Mapping[str, Any]] | None) -> str:
        given = metadata[index].get("distortion") if metadata is not None else None
        kind = given if given is not None else self.params["distortion"]
        if kind is None:
            raise UserError(
                f"{self.name} needs the image's distortion type, which VEI's pseudo-reference "
                "depends on: the dataset gives none for it (give distortion=TYPE to set one)"
            )
        return distortion_code(kind)

    def _gradcam(self) -> tuple[GradCAM, int]:
        from ..models.backbones import build_backbone
        from ..models.gradcam import EXPLAINED_LAYERS, GradCAM

        weights = self.classifier_weights()
        spec = EXPLAINED_LAYERS[weights.backbone]
        if self._explainer is None:
            model = build_backbone(weights).to(str(self.params["device"]))
            self._explainer = GradCAM(model, model.get_submodule(spec.layer))
        return self._explainer, spec.input_size


class VEILite(VEI):
    """VEI with the pip-installed ImageNet EfficientNet-Lite0 (``iqabench[pretrained]``) as
    its classifier, which CI has; not the paper's classifier."""

    name: ClassVar[str] = "vei-lite"
    classifiers: ClassVar[tuple[str, ...]] = ("efficientnet_lite0",)

    def notes(self) -> list[str]:
        return [
            *super().notes(),
            "vei-lite explains EfficientNet-Lite0, not the paper's InceptionResNetV2 or VGG16",
        ]
