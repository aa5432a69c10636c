"""Training and inference speed of NestConvNeXt-IQA (the full 299.9 M-parameter model), per device.

Measures, on the chosen device, crops per second and peak memory of

* inference: evaluation-mode forward passes of 224x224 crops (a score is the mean of 10 crops,
  so images/s = crops/s / 10);
* training: full steps of the reference recipe (forward, 10 x L1 loss, backward, Adam), with
  the training loop's mixed precision and memory layout;
* with ``--full-recipe``: the whole recipe, 20 epochs of 10 crops per image at batch 40, on an
  LWIR-IQA-sized synthetic set (500 images: 20 scenes x 5 distortions x 5 levels; the 400
  images of 16 scenes train, the 100 of the other 4 are validated every epoch), checkpoints
  every epoch included. Target: under 10 minutes on one H100.

Usage (one command per device)::

    python benchmarks/train_speed.py                              # CPU: a few small steps
    python benchmarks/train_speed.py --model nestconvnext-lite    # the lite model instead
    python benchmarks/train_speed.py --device cuda --full-recipe  # GPU: batch 40 + 20 epochs

Writes its table into docs/benchmarks.md (section ``train_speed``), keeping the rows measured
on other devices. ImageNet weights do not change speed; without them the run says so.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import DOC, update_section  # noqa: E402

SECTION = "train_speed"
COLUMNS = (
    "device", "phase", "batch", "precision", "crops/s", "images/s", "peak memory (GiB)",
    "time", "notes",
)  # fmt: skip


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


def measure(net, runtime, batch: int, steps: int, warmup: int, training: bool) -> dict:  # noqa: ANN001
    """Crops/s and peak memory of ``steps`` timed steps after ``warmup`` untimed ones."""
    import torch
    import torch.nn.functional as F

    from iqabench.train.inference import to_network_input

    crops = torch.randint(0, 256, (batch, 1, 224, 224), dtype=torch.uint8)
    target = torch.rand(batch, device=runtime.device) * 4 + 1
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-5, weight_decay=5e-4)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.amp_dtype == torch.float16)
    net.train(training)

    def step() -> None:
        x = to_network_input(crops, runtime)
        if not training:
            with torch.no_grad(), runtime.autocast():
                net(x)
            return
        with runtime.autocast():
            output = net(x)
        loss = 10.0 * F.l1_loss(output.float(), target)
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
    if runtime.is_cuda:
        peak = torch.cuda.max_memory_allocated(runtime.device) / 2**30
    else:
        peak = _cpu_peak_gib()
    return {
        "crops_per_s": batch * steps / seconds,
        "peak_gib": peak,
        "peak_kind": "CUDA allocated" if runtime.is_cuda else "process RSS",
        "exact_peak": exact_peak,
        "seconds_per_step": seconds / steps,
    }


def synthetic_lwir_sized(seed: int):  # noqa: ANN201 - returns (train, validation) ImageSets
    """500 synthetic-lwir images of 20 scenes, split 16/4 scenes (400/100 images)."""
    import numpy as np

    from iqabench.data import load_dataset
    from iqabench.data.synthetic import build_synthetic_lwir
    from iqabench.imageio import load_for_metric
    from iqabench.protocol import content_splits
    from iqabench.train.data import ImageSet, prepare_image

    def image_set(dataset, indices) -> ImageSet:  # noqa: ANN001
        items = [dataset.items[i] for i in indices]
        pixels = [prepare_image(load_for_metric(i.image, "grey")[0], 512) for i in items]
        return ImageSet(np.stack(pixels), np.array([i.quality for i in items]))

    with tempfile.TemporaryDirectory(prefix="nestconvnext-bench-") as tmp:
        folder = Path(tmp) / "synthetic-lwir"
        build_synthetic_lwir(folder, seed=seed, n_scenes=20)
        dataset = load_dataset("synthetic-lwir", folder)
        split = content_splits(dataset.contents, 1, 0.8, seed)[0]
        return image_set(dataset, split.train), image_set(dataset, split.test)


def full_recipe(args: argparse.Namespace) -> tuple[list[str], dict]:
    """Run the 20-epoch recipe; return its table row and a summary."""
    from iqabench.models.nestconvnext import FULL
    from iqabench.progress import RichProgress
    from iqabench.train.loop import TrainConfig, train

    start = time.perf_counter()
    train_set, validation = synthetic_lwir_sized(args.seed)
    decode = time.perf_counter() - start
    config = TrainConfig(
        epochs=args.epochs,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        workers=args.workers,
        cpu_fallback=True,
    )
    with tempfile.TemporaryDirectory() as out, RichProgress() as progress:
        result = train(FULL, config, train_set, validation, out_dir=Path(out), progress=progress)
    total = time.perf_counter() - start
    history = result.history
    per_epoch = sum(r.seconds for r in history) / len(history)
    train_rate = sum(r.train_crops_per_s for r in history) / len(history)
    peak = max(r.peak_memory_mb for r in history) / 1024
    summary = {
        "epochs": len(history),
        "seconds_per_epoch": per_epoch,
        "train_crops_per_s": train_rate,
        "peak_gib": peak,
        "total_s": total,
        "decode_s": decode,
        "best_epoch": result.best_epoch,
        "val_srocc": result.best.val_srocc,
        "pretrained": result.backbone_init != "random-init",
    }
    row = [
        _device_name(result.runtime),
        f"full recipe: {len(history)} epochs, {len(train_set)} train + {len(validation)} val "
        f"images, {config.train_crops} crops each",
        str(config.batch_size),
        result.runtime.precision,
        f"{train_rate:.4g} (train)",
        f"{train_rate / config.train_crops:.3g} (train)",
        f"{peak:.1f}",
        f"{per_epoch:.1f} s/epoch, total {total / 60:.1f} min (decode {decode:.0f} s)",
        f"target < 10 min on one H100: {'met' if total < 600 else 'NOT met'}; best epoch "
        f"{result.best_epoch}, val SROCC {_fmt(result.best.val_srocc)}"
        + ("" if summary["pretrained"] else "; random-init backbone (no ImageNet file)"),
    ]
    return row, summary


def _load_note(gpu: bool) -> str:
    """The CPU load average, which matters on a shared machine."""
    if gpu or not hasattr(os, "getloadavg"):
        return ""
    return f", load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _device_name(runtime) -> str:  # noqa: ANN001
    import torch

    if runtime.is_cuda:
        return torch.cuda.get_device_name(runtime.device)
    return f"CPU {platform.machine()}, {torch.get_num_threads()} thread(s) of {os.cpu_count()}"


def merged_table(new_rows: list[list[str]], doc: Path = DOC) -> list[list[str]]:
    """The section's existing rows of other (device, phase) pairs, then the new rows."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = re.search(
        rf"<!-- {SECTION}:start -->(.*?)<!-- {SECTION}:end -->", text, flags=re.DOTALL
    )
    fresh = {(row[0], row[1]) for row in new_rows}
    kept = []
    for line in (block.group(1) if block else "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        measured = len(cells) == len(COLUMNS) and cells[0] not in ("device", "---")
        if measured and (cells[0], cells[1]) not in fresh:
            kept.append(cells)
    return kept + new_rows


def render(rows: list[list[str]]) -> str:
    lines = [
        "## NestConvNeXt-IQA training and inference speed",
        "",
        "Full model (299,885,002 parameters) unless the phase names the lite one "
        "(44,248,658), 224x224 crops; `python benchmarks/train_speed.py [--device cuda "
        "--full-recipe]`. Images/s counts 10 crops per image (the recipe's training and "
        "scoring). Peak memory is the CUDA allocator's peak on a GPU and the process's peak "
        "resident memory on the CPU (a machine shared with other work: see the load average).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    if not any(row[1].startswith("full recipe") for row in rows):
        lines += [
            "",
            "The 20-epoch GPU recipe has not been run yet (no GPU session so far): run "
            "`python benchmarks/train_speed.py --device cuda --full-recipe` on a GPU machine.",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument(
        "--model",
        default="nestconvnext",
        choices=("nestconvnext", "nestconvnext-lite"),
        help="network of the per-step figures (the full recipe always trains the full model)",
    )
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    parser.add_argument("--batch", type=int, help="crops per step (CPU: 4 / 2 train; GPU: 40)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--steps", type=int, help="timed steps (CPU: 3, GPU: 20)")
    parser.add_argument("--full-recipe", action="store_true", help="also run the 20-epoch recipe")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of --full-recipe (20)")
    parser.add_argument("--workers", type=int, help="DataLoader workers for --full-recipe")
    parser.add_argument("--seed", type=int, default=2030)
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()

    import torch

    from iqabench.models.nestconvnext import CONFIGS, NestConvNeXtIQANet
    from iqabench.train.runtime import resolve_runtime

    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = resolve_runtime(args.device, args.precision, training=False)
    gpu = runtime.is_cuda
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True
    net = NestConvNeXtIQANet(CONFIGS[args.model]).to(runtime.device)
    if runtime.channels_last:
        net = net.to(memory_format=torch.channels_last)
    steps = args.steps or (20 if gpu else 3)
    device = _device_name(runtime)
    rows = []
    suffix = "" if args.model == "nestconvnext" else f" ({args.model})"
    for phase, training, batch in (
        ("inference" + suffix, False, args.batch or (40 if gpu else 4)),
        ("training step" + suffix, True, args.batch or (40 if gpu else 2)),
    ):
        result = measure(net, runtime, batch, steps, warmup=3 if gpu else 1, training=training)
        peak_note = "" if result["exact_peak"] else " (process peak so far)"
        rows.append(
            [
                device,
                phase,
                str(batch),
                runtime.precision,
                f"{result['crops_per_s']:.3g}",
                f"{result['crops_per_s'] / 10:.3g}",
                f"{result['peak_gib']:.1f}{peak_note}",
                f"{result['seconds_per_step']:.2f} s/step",
                f"{steps} timed steps, {result['peak_kind']}" + _load_note(gpu),
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    del net
    if args.full_recipe:
        row, summary = full_recipe(args)
        rows.append(row)
        print(" | ".join(row))
        print(summary)
    if not args.no_write:
        update_section(SECTION, render(merged_table(rows)))
        print(f"wrote section {SECTION!r} of {DOC}")


if __name__ == "__main__":
    from iqabench.errors import UserError

    try:
        main()
    except UserError as exc:  # e.g. --device cuda on a machine without a GPU
        raise SystemExit(f"train_speed: {exc}") from None
