"""The NestConvNeXt-IQA training loop: the reference recipe, validated model selection,
checkpoints every epoch with resume, per-epoch metrics on disk.

Recipe (reference code defaults for LWIR-IQA): Adam, learning rate 2e-5, weight decay 5e-4,
cosine annealing with ``T_max`` 50 stepped once per epoch (so the 20th epoch runs at 68% of the
initial rate), loss 10 x L1 between the crop's prediction and its image's quality, batches of 40
crops, 10 random crops per training image per epoch, 20 epochs. Each epoch ends with the
validation images scored as the test images will be (mean over 10 crops); the epoch with the
best validation SROCC is kept. The reference selected on its test split; that choice is never
offered here. Without a validation set the last epoch is kept, and the results say so.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch.utils.data import DataLoader

from ..errors import UserError
from ..models.backbones import resolve_backbone
from ..models.nestconvnext import NestConvNeXtConfig, NestConvNeXtIQANet, parameter_count
from .checkpoint import read_checkpoint, save_checkpoint
from .data import ImageSet, TrainCrops, epoch_order
from .inference import predict, to_network_input
from .runtime import Runtime, peak_memory_mb, reset_peak_memory, resolve_runtime, seed_everything

if TYPE_CHECKING:
    from ..progress import Progress

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """How to train: the recipe (what changes the model) and the runtime (how it runs)."""

    epochs: int = 20
    batch_size: int = 40
    lr: float = 2e-5
    weight_decay: float = 5e-4
    loss_scale: float = 10.0
    t_max: int = 50
    train_crops: int = 10
    eval_crops: int = 10
    seed: int = 2030
    device: str = "auto"
    precision: str = "auto"
    workers: int | None = None
    deterministic: bool = False
    #: With ``device="auto"`` and no GPU, train a GPU-recommended model on the CPU anyway
    #: (otherwise refuse, saying how to ask for the CPU).
    cpu_fallback: bool = False

    #: Fields that must match to resume a run (``epochs`` may grow).
    RECIPE = ("batch_size", "lr", "weight_decay", "loss_scale", "t_max", "train_crops", "seed")

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "train_crops", "eval_crops", "t_max"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name.replace('_', '-')} must be at least 1")
        if not self.lr > 0:
            raise UserError("the learning rate must be positive")

    def recipe(self) -> dict[str, Any]:
        """Everything that changes the trained model (runtime choices excluded)."""
        data = {name: getattr(self, name) for name in self.RECIPE}
        return {"epochs": self.epochs, **data, "eval_crops": self.eval_crops}


@dataclass
class EpochRecord:
    """One line of ``metrics.csv``: the epoch's training and validation figures."""

    epoch: int
    lr: float
    train_loss: float
    train_srocc: float | None
    val_srocc: float | None
    val_plcc: float | None
    val_mae: float | None
    best: bool
    seconds: float
    train_seconds: float
    train_crops_per_s: float
    peak_memory_mb: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise UserError(f"checkpoint history lacks {missing[0]!r}: written by another version")
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass
class TrainResult:
    """A trained network (best epoch's weights loaded) and the story of its training."""

    net: NestConvNeXtIQANet
    model_config: NestConvNeXtConfig
    config: TrainConfig
    runtime: Runtime
    best_epoch: int
    history: list[EpochRecord]
    notes: list[str] = field(default_factory=list)
    backbone_init: str = ""
    fingerprint: str = ""
    seconds: float = 0.0
    checkpoint: Path | None = None

    @property
    def best(self) -> EpochRecord:
        return next(r for r in self.history if r.epoch == self.best_epoch)


def correlation(kind: str, predicted: np.ndarray, target: np.ndarray) -> float | None:
    """Spearman or Pearson correlation (scipy), None when undefined (constant or < 3 items)."""
    x, y = np.asarray(predicted, float), np.asarray(target, float)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    function = stats.spearmanr if kind == "srocc" else stats.pearsonr
    return float(function(x, y).statistic)


def train(
    model_config: NestConvNeXtConfig,
    config: TrainConfig,
    train_set: ImageSet,
    validation: ImageSet | None = None,
    *,
    out_dir: Path | None = None,
    resume: Path | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train NestConvNeXt-IQA on ``train_set``, selecting the epoch on ``validation``.

    With ``out_dir`` the run writes ``best.pt`` (when validation improves), ``last.pt`` and
    ``metrics.csv``/``metrics.json`` after every epoch. ``resume`` (a ``last.pt``) continues a
    run: the recipe, architecture and training data must match; ``epochs`` may be larger.
    Without ``out_dir`` nothing is written and the best weights are kept in memory.
    """
    from ..progress import SilentProgress

    bar_source = progress or SilentProgress()
    started = time.perf_counter()
    if len(train_set) == 0:
        raise UserError(f"{model_config.name}: no training images")
    if validation is not None and len(validation) < 3:
        validation = None
    runtime = resolve_runtime(
        config.device,
        config.precision,
        model_name=model_config.name,
        gpu_recommended=model_config.gpu_recommended and not config.cpu_fallback,
    )
    if runtime.note:
        _say(bar_source, runtime.note)
    seed_everything(config.seed, config.deterministic)
    fingerprint = _fingerprint(train_set, validation)
    state = _resume_state(resume, model_config, config, fingerprint) if resume else None

    notes: list[str] = []
    if state is None:
        weights = resolve_backbone("resnet50")
        backbone_init = weights.label
        if not weights.pretrained:
            notes.append(weights.note)
            if progress is None:
                warnings.warn(weights.note, RuntimeWarning, stacklevel=2)
            _say(bar_source, weights.note)
        net = NestConvNeXtIQANet(model_config, weights)
    else:
        backbone_init = str(state["backbone_init"])
        notes.extend(state.get("notes", []))
        net = NestConvNeXtIQANet(model_config)
        net.load_state_dict(state["model"], strict=True)
    no_validation = (
        "no validation images (fewer than 3): the last epoch was kept instead of the best "
        "validated one"
    )
    if validation is None and no_validation not in notes:
        notes.append(no_validation)
    net.to(runtime.device)
    if runtime.channels_last:
        net.to(memory_format=torch.channels_last)

    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.t_max)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.amp_dtype == torch.float16)
    history: list[EpochRecord] = []
    best_epoch, best_value, best_state = 0, -math.inf, None
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if runtime.is_cuda and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], runtime.device)
        history = [EpochRecord.from_dict(r) for r in state["history"]]
        best_epoch, best_value = int(state["best_epoch"]), float(state["best_value"])
        best_state = state["best_model"]
        _say(bar_source, f"resuming {model_config.name} after epoch {len(history)}")

    crops = TrainCrops(train_set, config.train_crops, model_config.crop, config.seed)
    workers = config.workers
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if runtime.is_cuda else 0
    log.info(
        "training %s (%d parameters, backbone %s) on %s",
        model_config.name,
        parameter_count(net),
        backbone_init,
        runtime.describe(),
    )

    for epoch in range(len(history), config.epochs):
        epoch_start = time.perf_counter()
        reset_peak_memory(runtime)
        crops.epoch = epoch
        loader = DataLoader(
            crops,
            batch_size=config.batch_size,
            sampler=epoch_order(len(crops), config.seed, epoch),
            num_workers=workers,
            pin_memory=runtime.is_cuda,
        )
        lr = float(optimizer.param_groups[0]["lr"])
        net.train()
        loss_sum = torch.zeros((), device=runtime.device)
        predicted, target = [], []
        label = f"{model_config.name} {epoch + 1}/{config.epochs}"
        with bar_source.task(label, total=len(loader)) as bar:
            for batch, quality in loader:
                x = to_network_input(batch, runtime)
                y = quality.to(runtime.device, non_blocking=True).float()
                with runtime.autocast():
                    output = net(x)
                loss = config.loss_scale * F.l1_loss(output.float(), y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                loss_sum += loss.detach() * len(y)
                predicted.append(output.detach().float())
                target.append(y)
                bar.advance(1)
        scheduler.step()
        train_loss = float(loss_sum) / len(crops)
        train_seconds = time.perf_counter() - epoch_start
        train_srocc = correlation(
            "srocc", torch.cat(predicted).cpu().numpy(), torch.cat(target).cpu().numpy()
        )

        val_srocc = val_plcc = val_mae = None
        if validation is not None:
            scores = predict(
                net,
                validation.images,
                runtime,
                crops=config.eval_crops,
                crop=model_config.crop,
                seed=config.seed,
                batch_size=config.batch_size,
            )
            val_srocc = correlation("srocc", scores, validation.quality)
            val_plcc = correlation("plcc", scores, validation.quality)
            val_mae = float(np.mean(np.abs(scores - validation.quality)))
            value = -math.inf if val_srocc is None else val_srocc
            improved = best_state is None or value > best_value
            if improved:
                best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()
                }
        else:
            value, improved = -math.inf, True
        if improved:
            best_epoch, best_value = epoch + 1, value

        record = EpochRecord(
            epoch=epoch + 1,
            lr=lr,
            train_loss=train_loss,
            train_srocc=train_srocc,
            val_srocc=val_srocc,
            val_plcc=val_plcc,
            val_mae=val_mae,
            best=improved,
            seconds=time.perf_counter() - epoch_start,
            train_seconds=train_seconds,
            train_crops_per_s=len(crops) / train_seconds,
            peak_memory_mb=peak_memory_mb(runtime),
        )
        history.append(record)
        if out_dir is not None:
            meta = _meta(model_config, config, runtime, backbone_init, fingerprint, notes)
            if improved:
                save_checkpoint(
                    out_dir / "best.pt",
                    {
                        **meta,
                        "kind": "model",
                        "model": best_state if validation is not None else net.state_dict(),
                        "epoch": epoch + 1,
                        "validation": {"srocc": val_srocc, "plcc": val_plcc, "mae": val_mae},
                    },
                )
            save_checkpoint(
                out_dir / "last.pt",
                {
                    **meta,
                    "kind": "training",
                    "model": net.state_dict(),
                    "epoch": epoch + 1,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": {
                        "torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state(runtime.device)
                        if runtime.is_cuda
                        else None,
                    },
                    "history": [asdict(r) for r in history],
                    "best_epoch": best_epoch,
                    "best_value": best_value,
                },
            )
            write_history(out_dir, model_config.name, history)
        _say(bar_source, format_record(record, config.epochs))

    if validation is not None and best_state is not None:
        net.load_state_dict(best_state)
    return TrainResult(
        net=net,
        model_config=model_config,
        config=config,
        runtime=runtime,
        best_epoch=best_epoch,
        history=history,
        notes=notes,
        backbone_init=backbone_init,
        fingerprint=fingerprint,
        seconds=time.perf_counter() - started,
        checkpoint=out_dir / "best.pt" if out_dir is not None else None,
    )


def format_record(record: EpochRecord, epochs: int) -> str:
    """One progress line per epoch."""

    def num(value: float | None) -> str:
        return "  -  " if value is None else f"{value:.3f}"

    return (
        f"epoch {record.epoch:>3}/{epochs}  loss {record.train_loss:.4f}  "
        f"train SROCC {num(record.train_srocc)}  val SROCC {num(record.val_srocc)}  "
        f"PLCC {num(record.val_plcc)}  lr {record.lr:.2e}  "
        f"{record.train_crops_per_s:.1f} crops/s  {record.seconds:.1f} s"
        + ("  *best*" if record.best else "")
    )


def write_history(out_dir: Path, model_name: str, history: list[EpochRecord]) -> None:
    """``metrics.csv`` (one row per epoch) and ``metrics.json`` (the same, with the model)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = [f.name for f in fields(EpochRecord)]
    with open(out_dir / "metrics.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for record in history:
            writer.writerow({k: "" if v is None else v for k, v in asdict(record).items()})
    payload = {"model": model_name, "epochs": [asdict(r) for r in history]}
    (out_dir / "metrics.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")


def _fingerprint(train_set: ImageSet, validation: ImageSet | None) -> str:
    parts = [train_set.fingerprint(), validation.fingerprint() if validation else "none"]
    return f"train:{parts[0]};validation:{parts[1]}"


def _meta(
    model_config: NestConvNeXtConfig,
    config: TrainConfig,
    runtime: Runtime,
    backbone_init: str,
    fingerprint: str,
    notes: list[str],
) -> dict[str, Any]:
    return {
        "model_config": model_config.to_dict(),
        "recipe": config.recipe(),
        "runtime": {"device": str(runtime.device), "precision": runtime.precision},
        "backbone_init": backbone_init,
        "data_fingerprint": fingerprint,
        "notes": list(notes),
    }


def _resume_state(
    path: Path, model_config: NestConvNeXtConfig, config: TrainConfig, fingerprint: str
) -> dict[str, Any]:
    """Read ``last.pt`` and the ``best.pt`` beside it, refusing any mismatch with one line."""
    state = read_checkpoint(path)
    if state.get("kind") != "training":
        raise UserError(f"{path} holds final weights only; resume from the run's last.pt")
    if state["model_config"] != model_config.to_dict():
        raise UserError(
            f"{path} was trained as {state['model_config']['name']} with another "
            f"architecture than {model_config.name}"
        )
    saved = state["recipe"]
    for name in TrainConfig.RECIPE:
        if saved.get(name) != getattr(config, name):
            raise UserError(
                f"cannot resume {path}: it was trained with {name}={saved.get(name)!r}, "
                f"now {getattr(config, name)!r}"
            )
    if state["data_fingerprint"] != fingerprint:
        raise UserError(f"cannot resume {path}: it was trained on other images or scores")
    if int(state["epoch"]) > config.epochs:
        raise UserError(f"{path} already ran {state['epoch']} epochs; ask for at least that many")
    best_path = Path(path).with_name("best.pt")
    state["best_model"] = read_checkpoint(best_path)["model"]
    return state


def _say(progress: Progress, message: str) -> None:
    log.info("%s", message)
    progress.note(message)
