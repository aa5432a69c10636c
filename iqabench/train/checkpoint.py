"""NestConvNeXt-IQA checkpoints: tensors and plain data only, read with ``weights_only=True``.

Two kinds share one format (``"format": "iqabench.nestconvnext/1"``):

* ``best.pt`` (``kind: "model"``): the selected weights, the architecture, the recipe, the
  epoch and its validation figures. What ``iqabench predict`` and the metric load.
* ``last.pt`` (``kind: "training"``): also the optimiser, scheduler, loss-scaler and RNG states
  and the per-epoch history, written after every epoch so that training can resume.

A results folder is never trusted to hold code: loading goes through torch's restricted
unpickler (``weights_only=True``), which accepts tensors, numbers, strings, lists and dicts.
Files are written to a temporary name and renamed, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..models.nestconvnext import NestConvNeXtConfig, NestConvNeXtIQANet
from .runtime import Runtime, resolve_runtime

FORMAT = "iqabench.nestconvnext/1"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (with the format tag added) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; one-line UserError otherwise.

    ``mmap`` maps the tensors instead of reading them (cheap when only the metadata is needed).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # corrupt, truncated or carrying objects beyond plain data
        raise UserError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not an iqabench NestConvNeXt-IQA checkpoint ({FORMAT})")
    return payload


@dataclass
class TrainedModel:
    """A network restored from a checkpoint, with what the checkpoint says about it."""

    net: NestConvNeXtIQANet
    config: NestConvNeXtConfig
    meta: dict[str, Any]
    path: Path

    @property
    def seed(self) -> int:
        return int(self.meta.get("recipe", {}).get("seed", 0))


def load_trained(path: str | Path, expected: str | None = None) -> TrainedModel:
    """Build the network a checkpoint describes and load its weights (no ImageNet file needed).

    ``expected`` is the model name the caller wants (``nestconvnext`` or
    ``nestconvnext-lite``); a checkpoint of the other one is refused with one line.
    """
    payload = read_checkpoint(path)
    config = NestConvNeXtConfig.from_dict(payload["model_config"])
    if expected is not None and config.name != expected:
        raise UserError(f"{path} holds a {config.name} model, not {expected}")
    net = NestConvNeXtIQANet(config)
    try:
        net.load_state_dict(payload["model"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"checkpoint {path} does not fit {config.name}: {first}") from None
    meta = {k: v for k, v in payload.items() if k not in ("model", "optimizer", "scheduler")}
    return TrainedModel(net, config, meta, Path(path))


def load_for_inference(
    path: str | Path, expected: str | None, device: str, precision: str
) -> tuple[TrainedModel, Runtime]:
    """:func:`load_trained`, moved to the requested device (the CPU is allowed: no training)."""
    trained = load_trained(path, expected)
    runtime = resolve_runtime(device, precision, model_name=trained.config.name, training=False)
    trained.net.to(runtime.device)
    if runtime.channels_last:
        trained.net.to(memory_format=torch.channels_last)
    return trained, runtime
