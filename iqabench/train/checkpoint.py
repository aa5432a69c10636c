"""Deep-model checkpoints: one format for every model, tensors and plain data only, read with
``weights_only=True`` and rebuilt through the metric registry.

Every checkpoint (``"format": "iqabench.deep/1"``) records the metric's registry name, its
architecture configuration, the backbone's provenance (which ImageNet file, or random
initialisation), the input spec, the stage and its recipe, the seed, the training data's
fingerprint and the notes. Two kinds share the format:

* ``best.pt`` (``kind: "model"``): the kept weights, their epoch and validation figures. What
  ``iqabench predict``, ``--checkpoint METRIC=PATH`` and the metrics' ``checkpoint`` load.
* ``last.pt`` (``kind: "training"``): also the optimiser, loss-scaler and RNG states and the
  per-epoch history, written after every epoch so that training can resume.

A results folder is never trusted to hold code: loading goes through torch's restricted
unpickler (``weights_only=True``), which accepts tensors, numbers, strings, lists and dicts; the
network is rebuilt by the registered metric class the checkpoint names (installed code only).
Files are written to a temporary name and renamed, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError

FORMAT = "iqabench.deep/1"
#: What every checkpoint of :data:`FORMAT` holds (checked on reading, so that a forged or
#: damaged file is one line naming it, not a KeyError).
REQUIRED_KEYS = ("metric", "architecture", "model")


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
        raise UserError(f"{path} is not an iqabench deep-model checkpoint ({FORMAT})")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise UserError(f"checkpoint {path} has the {FORMAT} tag but no {missing[0]!r} entry")
    return payload


def checkpoint_metric(path: str | Path) -> str:
    """The registry name of the metric a checkpoint holds (its tensors are not read)."""
    return str(read_checkpoint(path, mmap=True)["metric"])
