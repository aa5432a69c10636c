"""Training and inference speed of every registered deep model, per device.

For each deep metric (``iqabench list models``; ``--models`` picks some), on the chosen device,
with the model's own input spec, sampler, objective, optimiser and parameter groups (its last,
quality stage) and the trainer's mixed precision and memory layout, measures samples (crops)
per second, images per second and peak memory of

* inference: evaluation-mode forward passes (images/s = samples/s / the model's evaluation
  samples per image);
* training: full steps (forward, the objective, backward, optimiser step; images/s = samples/s
  / the training samples per image);
* with ``--full-recipe``: each model's whole recipe (every stage) on an LWIR-IQA-sized synthetic
  set (500 images: 20 scenes x 5 distortions x 5 levels; 16 scenes train, 4 validate),
  checkpoints every epoch included: seconds per epoch, train samples/s, peak memory, total time.

Networks start from random initialisation (ImageNet weights do not change speed). The input is
a random frame of the model's prepared size (640x512, LWIR-IQA's, when the model keeps the
image's own size).

Usage (one command per device)::

    python benchmarks/train_speed.py                                      # CPU, every model
    python benchmarks/train_speed.py --models nestconvnext-lite,hypernet-lite
    python benchmarks/train_speed.py --device cuda --full-recipe          # GPU, whole recipes

Writes its table into docs/benchmarks.md (section ``train_speed``), keeping the rows measured
for other (model, device, phase) triples.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import DOC, update_section  # noqa: E402

SECTION = "train_speed"
COLUMNS = (
    "model", "parameters", "device", "phase", "batch", "precision", "samples/s", "images/s",
    "peak memory (GiB)", "time", "notes",
)  # fmt: skip
LWIR_FRAME = (512, 640)


def _reset_cpu_peak() -> bool:
    """Reset the process's peak RSS (Linux ``clear_refs``); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cpu_peak_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def synthetic_batch(metric: Any, batch: int, training: bool, seed: int) -> dict:
    """``batch`` samples cut by the model's sampler from one random prepared frame (and a
    reference for full-reference models), with random quality targets."""
    import numpy as np
    import torch
    from torch.utils.data import default_collate

    from iqabench.train.inputs import prepare
    from iqabench.train.samples import to_tensors

    rng = np.random.default_rng(seed)
    spec = metric.input_spec
    frame = prepare(rng.uniform(0, 255, LWIR_FRAME), spec)
    ref = prepare(rng.uniform(0, 255, LWIR_FRAME), spec) if metric.full_reference else None
    sampler = metric.sampler()
    if training:
        samples = [to_tensors(sampler.train(frame, ref, rng)) for _ in range(batch)]
        stacked = default_collate(samples)
    else:
        stacked = to_tensors(sampler.test(frame, ref, batch, rng))
    size = len(next(iter(stacked.values())))
    stacked["quality"] = torch.from_numpy(rng.uniform(1, 5, size).astype(np.float32))
    return stacked


def measure(metric: Any, runtime: Any, batch: int, steps: int, warmup: int, training: bool) -> dict:
    """Samples/s and peak memory of ``steps`` timed steps after ``warmup`` untimed ones."""
    import torch

    from iqabench.models.backbones import resolve_backbone
    from iqabench.train.inference import to_device

    net = metric.build_network(metric.config, None).to(runtime.device)
    if runtime.channels_last:
        net = net.to(memory_format=torch.channels_last)
    stage = metric.stages()[-1]
    module = stage.trains(net) if stage.trains is not None else net
    optimizer = stage.recipe.optimiser.build(stage.recipe.param_groups(module))
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.amp_dtype == torch.float16)
    backbone = metric.backbone_name()
    normalisation = metric.normalisation(resolve_backbone(backbone) if backbone else None)
    raw = synthetic_batch(metric, batch, training, seed=0)
    samples = len(next(iter(raw.values())))
    net.train(training)

    def step() -> None:
        device_batch = to_device(raw, *normalisation, runtime)
        if not training:
            with torch.no_grad(), runtime.autocast():
                metric.score_batch(net, device_batch)
            return
        with runtime.autocast():
            loss = stage.objective(net, device_batch).loss.float()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup):
        step()
    if runtime.is_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(runtime.device)
    exact_peak = runtime.is_cuda or _reset_cpu_peak()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if runtime.is_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(runtime.device) / 2**30 if runtime.is_cuda else None
    return {
        "samples": samples,
        "samples_per_s": samples * steps / seconds,
        "peak_gib": peak if peak is not None else _cpu_peak_gib(),
        "peak_kind": "CUDA allocated" if runtime.is_cuda else "process RSS",
        "exact_peak": exact_peak,
        "seconds_per_step": seconds / steps,
    }


def lwir_sized_split(seed: int, folder: Path) -> tuple[list, list]:
    """500 synthetic-lwir images of 20 scenes as training and validation records (16/4)."""
    from iqabench.data import load_dataset
    from iqabench.data.synthetic import build_synthetic_lwir
    from iqabench.fitting import labelled
    from iqabench.protocol import content_splits

    build_synthetic_lwir(folder, seed=seed, n_scenes=20)
    dataset = load_dataset("synthetic-lwir", folder)
    split = content_splits(dataset.contents, 1, 0.8, seed)[0]
    return (
        [labelled(dataset.items[i]) for i in split.train],
        [labelled(dataset.items[i]) for i in split.test],
    )


def full_recipe(metric: Any, args: argparse.Namespace, device: str, count: str) -> list[str]:
    """Train ``metric`` through its whole recipe; return its table row."""
    from iqabench.progress import RichProgress

    with tempfile.TemporaryDirectory(prefix="train-speed-") as tmp:
        start = time.perf_counter()
        train, validation = lwir_sized_split(args.seed, Path(tmp) / "data")
        with RichProgress() as progress:
            result = metric.train_model(
                train, validation, out_dir=Path(tmp) / "run", progress=progress, cpu_fallback=True
            )
        total = time.perf_counter() - start
    epochs = [r for stage in result.stages for r in stage.history]
    per_epoch = sum(r.seconds for r in epochs) / len(epochs)
    rate = sum(r.train_samples_per_s for r in epochs) / len(epochs)
    peak = max(r.peak_memory_mb for r in epochs) / 1024
    final = result.final
    recipe = metric.stages()[-1].recipe
    return [
        metric.name,
        count,
        device,
        f"full recipe: {', '.join(f'{s.name} {len(s.history)} epochs' for s in result.stages)}; "
        f"{len(train)} train + {len(validation)} val images",
        str(recipe.batch_size),
        result.runtime.precision,
        f"{rate:.4g} (train)",
        f"{rate / recipe.samples_per_image:.3g} (train)",
        f"{peak:.1f}",
        f"{per_epoch:.1f} s/epoch, total {total / 60:.1f} min",
        f"best epoch {final.best_epoch}, val SROCC {_fmt(final.best.val_srocc)}; "
        "random-init backbone",
    ]


def _load_note(gpu: bool) -> str:
    """The CPU load average, which matters on a shared machine."""
    if gpu or not hasattr(os, "getloadavg"):
        return ""
    return f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _device_name(runtime: Any) -> str:
    import torch

    if runtime.is_cuda:
        return torch.cuda.get_device_name(runtime.device)
    return f"CPU {platform.machine()}, {torch.get_num_threads()} thread(s) of {os.cpu_count()}"


def merged_table(new_rows: list[list[str]], doc: Path = DOC) -> list[list[str]]:
    """The section's existing rows of other (model, device, phase) triples, then the new rows."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = re.search(
        rf"<!-- {SECTION}:start -->(.*?)<!-- {SECTION}:end -->", text, flags=re.DOTALL
    )
    fresh = {(row[0], row[2], row[3]) for row in new_rows}
    kept = []
    for line in (block.group(1) if block else "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        measured = len(cells) == len(COLUMNS) and cells[0] not in ("model", "---")
        if measured and (cells[0], cells[2], cells[3]) not in fresh:
            kept.append(cells)
    return sorted(kept + new_rows, key=lambda row: (row[0], row[2], row[3]))


def render(rows: list[list[str]]) -> str:
    lines = [
        "## Deep models: training and inference speed",
        "",
        "Every registered deep model with its own input, sampler, objective and optimiser, "
        "from random initialisation; `python benchmarks/train_speed.py [--models NAMES] "
        "[--device cuda --full-recipe]`. Images/s divides samples/s by the model's samples "
        "per image (training crops per image for training steps, evaluation crops for "
        "inference). Peak memory is the CUDA allocator's peak on a GPU and the process's peak "
        "resident memory on the CPU (a machine shared with other work: see the load average).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    if not any(row[3].startswith("full recipe") for row in rows):
        lines += [
            "",
            "The full recipes have not been run on a GPU yet: run "
            "`python benchmarks/train_speed.py --device cuda --full-recipe` on a GPU machine.",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--models", default="all", help="all (default) or NAME[,NAME...]")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    parser.add_argument("--batch", type=int, help="samples per step (CPU: 4 / 2 train; GPU: 40)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--steps", type=int, help="timed steps (CPU: 3, GPU: 20)")
    parser.add_argument("--full-recipe", action="store_true", help="also run the whole recipes")
    parser.add_argument("--seed", type=int, default=2030)
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()

    import torch

    from iqabench.metrics._deep import deep_metric_class, deep_metric_names
    from iqabench.train.runtime import resolve_runtime

    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = resolve_runtime(args.device, args.precision, training=False)
    gpu = runtime.is_cuda
    torch.backends.cudnn.benchmark = True
    names = deep_metric_names() if args.models == "all" else args.models.split(",")
    steps = args.steps or (20 if gpu else 3)
    device = _device_name(runtime)
    rows = []
    for name in names:
        metric = deep_metric_class(name.strip())(device=args.device, precision=args.precision)
        if not metric.stages():
            continue
        count = f"{metric.parameter_counts()[0]:,}"
        recipe = metric.stages()[-1].recipe
        for phase, training, batch, per_image in (
            ("inference", False, args.batch or (40 if gpu else 4), metric.eval_samples()),
            ("training step", True, args.batch or (40 if gpu else 2), recipe.samples_per_image),
        ):
            torch.manual_seed(args.seed)
            result = measure(
                metric, runtime, batch, steps, warmup=3 if gpu else 1, training=training
            )
            peak_note = "" if result["exact_peak"] else " (process peak so far)"
            rows.append(
                [
                    metric.name,
                    count,
                    device,
                    phase,
                    str(result["samples"]),
                    runtime.precision,
                    f"{result['samples_per_s']:.3g}",
                    f"{result['samples_per_s'] / per_image:.3g}",
                    f"{result['peak_gib']:.1f}{peak_note}",
                    f"{result['seconds_per_step']:.2f} s/step",
                    f"{steps} timed steps, {result['peak_kind']}" + _load_note(gpu),
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
        if args.full_recipe:
            rows.append(full_recipe(metric, args, device, count))
            print(" | ".join(rows[-1]), flush=True)
    if not args.no_write:
        update_section(SECTION, render(merged_table(rows)))
        print(f"wrote section {SECTION!r} of {DOC}")


if __name__ == "__main__":
    from iqabench.errors import UserError

    try:
        main()
    except UserError as exc:  # e.g. --device cuda on a machine without a GPU
        raise SystemExit(f"train_speed: {exc}") from None
