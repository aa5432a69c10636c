"""Where and how a model runs: device, mixed precision, memory layout, seeding.

``device="auto"`` takes the first CUDA GPU. Without one, a model that does not train on a CPU in
reasonable time (a published full-size model) refuses to train rather than silently running for
hours on the CPU: the user must ask for ``device="cpu"``. Mixed precision (``precision="auto"``)
is bf16 autocast on GPUs that support it, fp16 with loss scaling on older ones, and fp32 on the
CPU.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@dataclass(frozen=True)
class Runtime:
    """The resolved device, autocast dtype (None for fp32) and memory layout."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    note: str

    @property
    def precision(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "fp32")

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> torch.autocast:
        """The autocast context for forward passes (disabled for fp32)."""
        return torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.is_cuda else "CPU"
        return f"{self.device} ({name}), {self.precision}"


def resolve_runtime(
    device: str = "auto",
    precision: str = "auto",
    *,
    model_name: str = "model",
    gpu_recommended: bool = False,
    training: bool = True,
) -> Runtime:
    """Pick the device and precision; raise a one-line UserError for an impossible request."""
    requested = (device or "auto").strip().lower()
    has_cuda = torch.cuda.is_available()
    if requested == "auto":
        if has_cuda:
            chosen = torch.device("cuda")
        elif gpu_recommended and training:
            raise UserError(
                f"no CUDA GPU is visible (torch.cuda.is_available() is False): training "
                f"{model_name} on the CPU would take many hours. Run on a GPU machine, ask for "
                f"the CPU explicitly with --device cpu (metric parameter device=cpu), or use a "
                f"lite model (`iqabench list models`)"
            )
        else:
            chosen = torch.device("cpu")
    elif requested.startswith("cuda"):
        if not has_cuda:
            raise UserError(
                f"device {device!r} asked for, but no CUDA GPU is visible "
                "(torch.cuda.is_available() is False)"
            )
        chosen = torch.device(requested)
    elif requested == "cpu":
        chosen = torch.device("cpu")
    else:
        raise UserError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")

    wanted = (precision or "auto").strip().lower()
    if wanted not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if chosen.type != "cuda":
        if wanted in ("bf16", "fp16"):
            raise UserError(f"precision {wanted} is offered on CUDA GPUs only; use fp32 on CPU")
        amp = None
    elif wanted == "auto":
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[wanted]

    note = ""
    if requested == "auto" and chosen.type == "cpu" and training:
        note = f"no CUDA GPU visible: {model_name} runs on the CPU (slow)"
    if chosen.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return Runtime(chosen, amp, channels_last=chosen.type == "cuda", note=note)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def peak_memory_mb(runtime: Runtime) -> float:
    """Peak memory so far: CUDA allocator peak on a GPU, the process's peak RSS on the CPU."""
    if runtime.is_cuda:
        return torch.cuda.max_memory_allocated(runtime.device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_memory(runtime: Runtime) -> None:
    """Restart the CUDA peak-memory counter (the CPU's peak RSS cannot be reset)."""
    if runtime.is_cuda:
        torch.cuda.reset_peak_memory_stats(runtime.device)
