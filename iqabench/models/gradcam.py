"""Grad-CAM visual explanations of an ImageNet classifier, for several classes in one pass.

Selvaraju, Cogswell, Das, Vedantam, Parikh and Batra, "Grad-CAM: Visual Explanations from Deep
Networks via Gradient-based Localization", ICCV 2017, doi 10.1109/ICCV.2017.74.

For a class ``c`` and the activations ``A`` (``K`` maps) of one layer, the channel weights are
the spatially averaged gradients of the class logit, ``alpha_k = mean_ij dy_c / dA_k,ij``, and
the map is ``ReLU(sum_k alpha_k A_k)``. Here the map is then upsampled to the network's input
size (bilinear) and scaled to [0, 1] by its minimum and maximum (an all-equal map becomes all
zeros), as the maintained ``grad-cam`` library (jacobgil/pytorch-grad-cam) presents it.

Hand-written with a forward hook rather than taken from the ``grad-cam`` library, which computes
one class per image and forward pass: VEI explains several classes of each image, and the hook
here makes the explained layer's output a leaf of the graph, so one forward pass serves every
class and each backward pass runs through the classifier's head only (no parameter gradients).
The tests check the maps against the library's on a seeded network.

Classifiers and their explained layers (:data:`EXPLAINED_LAYERS`): the last convolutional
activation before the classifier's pooling, the layer Grad-CAM's authors explain:
``inception_resnet_v2`` ``conv2d_7b`` (1536 x 8 x 8 at 299 x 299), ``vgg16`` ``features.29``
(relu5_3, 512 x 14 x 14 at 224 x 224), ``efficientnet_lite0/1/2`` ``bn2`` (the head
convolution's normalised ReLU6 output, 1280 x 7 x 7 at 224). Backbones come from
:mod:`iqabench.models.backbones`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ExplainedLayer:
    """Where a classifier is explained: the layer's dotted module path, and the square input
    size the classifier is fed."""

    layer: str
    input_size: int


EXPLAINED_LAYERS: dict[str, ExplainedLayer] = {
    "inception_resnet_v2": ExplainedLayer("conv2d_7b", 299),
    "vgg16": ExplainedLayer("features.29", 224),
    "efficientnet_lite0": ExplainedLayer("bn2", 224),
    "efficientnet_lite1": ExplainedLayer("bn2", 240),
    "efficientnet_lite2": ExplainedLayer("bn2", 260),
}


class GradCAM:
    """Grad-CAM maps of ``model`` (an ImageNet classifier returning logits) at ``layer``."""

    def __init__(self, model: nn.Module, layer: nn.Module) -> None:
        self.model = model.eval().requires_grad_(False)
        self._activation: torch.Tensor | None = None
        layer.register_forward_hook(self._keep)

    def _keep(self, _module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        """Replace the layer's output by a copy that starts the graph (the head's only)."""
        leaf = output.detach().clone().requires_grad_(True)
        self._activation = leaf
        return leaf

    def maps(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Maps ``(N, k, H, W)`` in [0, 1] of the ``(N, k)`` classes of a normalised batch
        ``(N, 3, H, W)``."""
        with torch.enable_grad():
            logits = self.model(x)
            return self._maps(logits, classes.to(logits.device), x.shape[-2:])

    def explain(self, x: torch.Tensor, count: int) -> torch.Tensor:
        """Maps ``(N, count, H, W)`` of every image of ``x`` for the ``count`` classes the
        *first* image's logits rank highest (one forward pass)."""
        with torch.enable_grad():
            logits = self.model(x)
            top = logits[:1].detach().topk(count, dim=1).indices
            return self._maps(logits, top.expand(len(x), -1), x.shape[-2:])

    def _maps(self, logits: torch.Tensor, classes: torch.Tensor, size: torch.Size) -> torch.Tensor:
        activation = self._activation
        assert activation is not None, "the explained layer did not run"
        with torch.enable_grad():
            chosen = logits.gather(1, classes)
            grads = [
                torch.autograd.grad(chosen[:, j].sum(), activation, retain_graph=True)[0]
                for j in range(chosen.shape[1])
            ]
        weights = torch.stack(grads, dim=1).mean(dim=(3, 4))  # (N, k, K)
        cams = F.relu(torch.einsum("nkc,nchw->nkhw", weights, activation.detach()))
        cams = F.interpolate(cams, size=size, mode="bilinear", align_corners=False)
        return min_max(cams)


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """Each ``(H, W)`` map of ``(..., H, W)`` scaled to [0, 1]; an all-equal map gives zeros."""
    low = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


def classifier_input(
    image: np.ndarray, size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """A metric input (float 0..255, grey ``(H, W)`` or RGB ``(H, W, 3)``) as a classifier
    batch ``(1, 3, size, size)``: grey replicated to RGB, resized (bilinear, antialiased, in
    float, so sub-grey-level differences survive), normalised ``(v / 255 - mean) / std``."""
    data = np.asarray(image, dtype=np.float32) / 255.0
    planes = np.repeat(data[None], 3, axis=0) if data.ndim == 2 else np.moveaxis(data, 2, 0)
    x = torch.from_numpy(np.ascontiguousarray(planes))[None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    shift = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    scale = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - shift) / scale


def module_at(model: nn.Module, path: str) -> nn.Module:
    """The sub-module of ``model`` at a dotted path (``features.29``)."""
    return model.get_submodule(path)
