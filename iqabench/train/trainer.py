"""The model-agnostic trainer: runs a deep model's stages with validated model selection,
checkpoints every epoch with resume, per-epoch metrics on disk, and progress.

It knows no model by name. A :class:`TrainingJob` carries everything model-specific as data or
callables: the network, its :class:`~iqabench.train.recipe.Stage` list, how it scores a batch
(``forward``), its sampler and normalisation, the split's labelled training and validation
images, and the metadata every checkpoint records. Each stage trains its part of the network
with its own optimiser, parameter groups, schedule and objective; a stage on labelled data with
``select="validation"`` scores the validation images after every epoch (as the test images
will be scored: the mean over evaluation samples) and keeps the epoch with the best SROCC.
Without validation images (fewer than 3) the last epoch is kept, and the notes say so.

On GPUs the network runs channels-last under autocast (bf16 where supported, fp16 with loss
scaling otherwise); on the CPU in fp32. With ``out_dir`` every epoch writes ``last.pt`` (all
training state), ``best.pt`` when validation improves, and ``metrics.csv``/``metrics.json``; the
last stage writes at ``out_dir``, earlier stages under ``out_dir/<stage>/``. ``resume`` continues
from whatever the folder holds: finished stages are reloaded, the interrupted one resumes exactly
(optimiser, loss scaler and RNG states restored); ``epochs`` may grow, nothing else may change.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import stats
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..errors import UserError
from .checkpoint import read_checkpoint, save_checkpoint
from .inference import Forward, predict, to_device
from .recipe import Stage, StageInputs
from .runtime import Runtime, peak_memory_mb, reset_peak_memory
from .samples import Sampler, TrainSamples, epoch_order

if TYPE_CHECKING:
    from ..progress import Progress
    from .images import ImageSource

log = logging.getLogger(__name__)

NO_VALIDATION = (
    "no validation images (fewer than 3): the last epoch was kept instead of the best validated one"
)


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
    train_samples_per_s: float
    peak_memory_mb: float
    #: The objective's named loss terms, averaged over the epoch.
    losses: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise UserError(f"checkpoint history lacks {missing[0]!r}: written by another version")
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Labelled:
    """Prepared images with their quality (higher is better)."""

    images: ImageSource
    quality: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class TrainingJob:
    """One network to train, and everything model-specific the trainer needs."""

    name: str
    net: nn.Module
    stages: Sequence[Stage]
    forward: Forward
    sampler: Sampler
    normalisation: tuple[tuple[float, ...], tuple[float, ...]]
    train: Labelled
    validation: Labelled | None
    inputs: StageInputs
    seed: int
    fingerprint: str
    #: Recorded in every checkpoint (metric, architecture, backbone, input spec...).
    meta: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass
class StageResult:
    """The story of one stage: its epochs and the one kept."""

    name: str
    best_epoch: int
    history: list[EpochRecord]

    @property
    def best(self) -> EpochRecord:
        return next(r for r in self.history if r.epoch == self.best_epoch)


@dataclass
class TrainResult:
    """A trained network (the kept epoch's weights loaded) and how it was trained."""

    net: nn.Module
    runtime: Runtime
    stages: list[StageResult]
    notes: list[str]
    seconds: float
    checkpoint: Path | None

    @property
    def final(self) -> StageResult:
        return self.stages[-1]


def correlation(kind: str, predicted: np.ndarray, target: np.ndarray) -> float | None:
    """Spearman or Pearson correlation (scipy), None when undefined (constant or < 3 items)."""
    x, y = np.asarray(predicted, float), np.asarray(target, float)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    function = stats.spearmanr if kind == "srocc" else stats.pearsonr
    return float(function(x, y).statistic)


def train_network(
    job: TrainingJob,
    runtime: Runtime,
    *,
    out_dir: Path | None = None,
    resume: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Run every stage of ``job`` in order on ``runtime``; see the module docstring."""
    from ..progress import SilentProgress

    started = time.perf_counter()
    if len(job.train) == 0:
        raise UserError(f"{job.name}: no training images")
    if not job.stages:
        raise UserError(f"{job.name} has no training stages")
    validation = job.validation if job.validation and len(job.validation) >= 3 else None
    notes = list(job.notes)
    if validation is None and any(s.select == "validation" for s in job.stages):
        notes.append(NO_VALIDATION)
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if runtime.is_cuda else 0
    job.net.to(runtime.device)
    if runtime.channels_last:
        job.net.to(memory_format=torch.channels_last)
    log.info("training %s on %s", job.name, runtime.describe())
    context = _Context(job, runtime, validation, notes, workers, progress or SilentProgress())
    results = []
    for index, stage in enumerate(job.stages):
        last = index == len(job.stages) - 1
        stage_dir = None if out_dir is None else (out_dir if last else out_dir / stage.name)
        results.append(_train_stage(context, stage, stage_dir, resume))
    checkpoint = out_dir / "best.pt" if out_dir is not None else None
    return TrainResult(job.net, runtime, results, notes, time.perf_counter() - started, checkpoint)


@dataclass
class _Context:
    job: TrainingJob
    runtime: Runtime
    validation: Labelled | None
    notes: list[str]
    workers: int
    progress: Progress


def _train_stage(
    context: _Context, stage: Stage, stage_dir: Path | None, resume: bool
) -> StageResult:
    job, runtime, recipe = context.job, context.runtime, stage.recipe
    net = job.net
    module = stage.trains(net) if stage.trains is not None else net
    validation = context.validation if stage.select == "validation" else None
    dataset = _stage_dataset(job, stage)
    optimizer = recipe.optimiser.build(recipe.param_groups(module))
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.amp_dtype == torch.float16)
    meta = _meta(job, stage, runtime, context.notes)

    history: list[EpochRecord] = []
    best_epoch, best_value, best_state = 0, -math.inf, None
    state = None
    if resume and stage_dir is not None and (stage_dir / "last.pt").is_file():
        state = _resume_state(stage_dir / "last.pt", meta, recipe.epochs)
        net.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if runtime.is_cuda and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], runtime.device)
        history = [EpochRecord.from_dict(r) for r in state["history"]]
        best_epoch, best_value = int(state["best_epoch"]), float(state["best_value"])
        if validation is not None:
            best_state = read_checkpoint(stage_dir / "best.pt")["model"]
        _say(context.progress, f"resuming {job.name} {stage.name} after epoch {len(history)}")

    label = job.name if len(job.stages) == 1 else f"{job.name} {stage.name}"
    for epoch in range(len(history), recipe.epochs):
        record = _run_epoch(context, stage, module, dataset, optimizer, scaler, epoch, label)
        value = -math.inf if record.val_srocc is None else record.val_srocc
        improved = validation is None or best_state is None or value > best_value
        if improved:
            best_epoch, best_value = epoch + 1, value
            if validation is not None:
                best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()
                }
        record.best = improved
        history.append(record)
        if stage_dir is not None:
            _save_epoch(
                stage_dir, meta, net, optimizer, scaler, runtime, history, best_epoch,
                best_value, best_state, record,
            )  # fmt: skip
        _say(context.progress, format_record(record, recipe.epochs))
    if validation is not None and best_state is not None:
        net.load_state_dict(best_state)
    return StageResult(stage.name, best_epoch, history)


def _stage_dataset(job: TrainingJob, stage: Stage) -> Dataset:
    if stage.data is not None:
        return stage.data(job.inputs)
    return TrainSamples(
        job.train.images,
        job.train.quality,
        stage.sampler or job.sampler,
        stage.recipe.samples_per_image,
        job.seed,
    )


def _run_epoch(
    context: _Context,
    stage: Stage,
    module: nn.Module,
    dataset: Dataset,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    epoch: int,
    label: str,
) -> EpochRecord:
    """Train one epoch, then score the validation images (for a stage that selects on them)."""
    job, runtime, recipe = context.job, context.runtime, stage.recipe
    validation = context.validation if stage.select == "validation" else None
    epoch_start = time.perf_counter()
    reset_peak_memory(runtime)
    if hasattr(dataset, "epoch"):
        dataset.epoch = epoch
    loader = DataLoader(
        dataset,
        batch_size=recipe.batch_size,
        sampler=epoch_order(len(dataset), job.seed, epoch),
        num_workers=context.workers,
        pin_memory=runtime.is_cuda,
    )
    mean, std = job.normalisation
    _set_rates(optimizer, stage, epoch)
    lr = float(optimizer.param_groups[0]["lr"])
    job.net.train()
    loss_sum = torch.zeros((), device=runtime.device)
    part_sums: dict[str, torch.Tensor] = {}
    seen = 0
    predicted, target = [], []
    with context.progress.task(f"{label} {epoch + 1}/{recipe.epochs}", total=len(loader)) as bar:
        for step, raw in enumerate(loader):
            if stage.recipe.schedule.per_step:
                _set_rates(optimizer, stage, epoch + step / max(len(loader), 1))
            batch = to_device(raw, mean, std, runtime)
            with runtime.autocast():
                result = stage.objective(job.net, batch)
            loss = result.loss.float()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if recipe.clip_grad_norm is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(module.parameters(), recipe.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            n = len(next(iter(raw.values())))
            seen += n
            loss_sum += loss.detach() * n
            for name, value in result.parts.items():
                part_sums[name] = part_sums.get(name, 0.0) + value.detach().float() * n
            if result.scores is not None and result.target is not None:
                predicted.append(result.scores.detach().float().reshape(-1))
                target.append(result.target.detach().float().reshape(-1))
            bar.advance(1)
    train_seconds = time.perf_counter() - epoch_start
    train_srocc = None
    if predicted:
        train_srocc = correlation(
            "srocc", torch.cat(predicted).cpu().numpy(), torch.cat(target).cpu().numpy()
        )
    val_srocc = val_plcc = val_mae = None
    if validation is not None:
        scores = predict(
            job.net,
            job.forward,
            validation.images,
            stage.sampler or job.sampler,
            runtime,
            normalisation=job.normalisation,
            samples=recipe.eval_samples,
            seed=job.seed,
            batch_size=recipe.batch_size,
            workers=context.workers,
        )
        val_srocc = correlation("srocc", scores, validation.quality)
        val_plcc = correlation("plcc", scores, validation.quality)
        val_mae = float(np.mean(np.abs(scores - validation.quality)))
    return EpochRecord(
        epoch=epoch + 1,
        lr=lr,
        train_loss=float(loss_sum) / max(seen, 1),
        train_srocc=train_srocc,
        val_srocc=val_srocc,
        val_plcc=val_plcc,
        val_mae=val_mae,
        best=False,
        seconds=time.perf_counter() - epoch_start,
        train_seconds=train_seconds,
        train_samples_per_s=seen / train_seconds,
        peak_memory_mb=peak_memory_mb(runtime),
        losses={name: float(value) / max(seen, 1) for name, value in part_sums.items()},
    )


def _set_rates(optimizer: torch.optim.Optimizer, stage: Stage, epoch: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * stage.recipe.schedule.factor(group["name"], epoch)


def _save_epoch(
    stage_dir: Path,
    meta: dict[str, Any],
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    runtime: Runtime,
    history: list[EpochRecord],
    best_epoch: int,
    best_value: float,
    best_state: dict[str, torch.Tensor] | None,
    record: EpochRecord,
) -> None:
    """``best.pt`` when this epoch is the one kept (so far), ``last.pt`` and the history."""
    epoch = record.epoch
    if record.best:
        validation = {"srocc": record.val_srocc, "plcc": record.val_plcc, "mae": record.val_mae}
        save_checkpoint(
            stage_dir / "best.pt",
            {**meta, "kind": "model", "model": best_state or net.state_dict(), "epoch": epoch,
             "validation": validation},
        )  # fmt: skip
    training = {
        "kind": "training",
        "model": net.state_dict(),
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(runtime.device) if runtime.is_cuda else None,
        },
        "history": [asdict(r) for r in history],
        "best_epoch": best_epoch,
        "best_value": best_value,
    }
    save_checkpoint(stage_dir / "last.pt", {**meta, **training})
    write_history(stage_dir, meta["metric"], history)


def format_record(record: EpochRecord, epochs: int) -> str:
    """One progress line per epoch."""

    def num(value: float | None) -> str:
        return "  -  " if value is None else f"{value:.3f}"

    return (
        f"epoch {record.epoch:>3}/{epochs}  loss {record.train_loss:.4f}  "
        f"train SROCC {num(record.train_srocc)}  val SROCC {num(record.val_srocc)}  "
        f"PLCC {num(record.val_plcc)}  lr {record.lr:.2e}  "
        f"{record.train_samples_per_s:.1f} samples/s  {record.seconds:.1f} s"
        + ("  *best*" if record.best else "")
    )


def write_history(out_dir: Path, model_name: str, history: list[EpochRecord]) -> None:
    """``metrics.csv`` (one row per epoch, a ``loss.NAME`` column per loss term) and
    ``metrics.json`` (the same, with the model's name)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = [f.name for f in fields(EpochRecord) if f.name != "losses"]
    terms = list(dict.fromkeys(name for r in history for name in r.losses))
    with open(out_dir / "metrics.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*columns, *(f"loss.{t}" for t in terms)])
        for record in history:
            values = [getattr(record, c) for c in columns]
            values += [record.losses.get(t) for t in terms]
            writer.writerow(["" if v is None else v for v in values])
    payload = {"model": model_name, "epochs": [asdict(r) for r in history]}
    (out_dir / "metrics.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")


def _meta(job: TrainingJob, stage: Stage, runtime: Runtime, notes: list[str]) -> dict[str, Any]:
    return {
        **job.meta,
        "stage": stage.describe(),
        "stages": [s.name for s in job.stages],
        "seed": job.seed,
        "runtime": {"device": str(runtime.device), "precision": runtime.precision},
        "data_fingerprint": job.fingerprint,
        "notes": list(notes),
    }


def _resume_state(path: Path, meta: dict[str, Any], epochs: int) -> dict[str, Any]:
    """Read ``last.pt``, refusing any mismatch with the run being resumed in one line."""
    state = read_checkpoint(path)
    if state.get("kind") != "training":
        raise UserError(f"{path} holds final weights only; resume from the run's last.pt")
    if state.get("metric") != meta["metric"] or state["architecture"] != meta["architecture"]:
        raise UserError(
            f"{path} was trained as {state.get('metric')} with another architecture than "
            f"{meta['metric']}"
        )
    if state["seed"] != meta["seed"]:
        raise UserError(
            f"cannot resume {path}: it was trained with seed={state['seed']!r}, now "
            f"{meta['seed']!r}"
        )
    saved, now = _flat(state["stage"]), _flat(meta["stage"])
    for key in sorted(set(saved) | set(now)):
        if key != "recipe.epochs" and saved.get(key) != now.get(key):
            raise UserError(
                f"cannot resume {path}: it was trained with {key}={saved.get(key)!r}, "
                f"now {now.get(key)!r}"
            )
    if state["data_fingerprint"] != meta["data_fingerprint"]:
        raise UserError(f"cannot resume {path}: it was trained on other images or scores")
    if int(state["epoch"]) > epochs:
        raise UserError(f"{path} already ran {state['epoch']} epochs; ask for at least that many")
    return state


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def _say(progress: Progress, message: str) -> None:
    log.info("%s", message)
    progress.note(message)
