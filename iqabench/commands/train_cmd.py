"""``iqabench train``: train NestConvNeXt-IQA on a dataset, select on validation, test once.

Splits are content-disjoint by default (whole reference scenes on one side); ``--split-mode
random`` reproduces the reference code's image-level split, and ``both`` runs the two and
prints them side by side. Each run writes a folder with checkpoints (``best.pt`` selected on
validation SROCC, ``last.pt`` every epoch for ``--resume``), per-epoch ``metrics.csv``/``.json``,
``predictions.csv`` and ``results.json``. Training needs a CUDA GPU unless ``--device cpu``
(or the lite model) is asked for.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._options import fraction, positive_int

MODELS = ("nestconvnext", "nestconvnext-lite")


def add_parser(subparsers: Any, name: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help="train NestConvNeXt-IQA on a dataset (GPU), with validated model selection",
        description="Train NestConvNeXt-IQA with the reference recipe (Adam, 10 x L1 loss, "
        "cosine annealing, 10 random 224x224 crops per image), selecting the epoch on a "
        "validation hold-out and scoring the test split once. Recipe defaults are the "
        "model's own (the lite model uses a shortened recipe).",
    )
    parser.add_argument("--model", choices=MODELS, default="nestconvnext")
    parser.add_argument("--dataset", required=True, help="dataset name (LWIR_IQA, TIIQAD, ...)")
    parser.add_argument("--data-root", metavar="PATH", help="the dataset's folder")
    parser.add_argument("--csv", metavar="TABLE", help="score table of a csv dataset")
    parser.add_argument("--epochs", type=positive_int, help="training epochs (default 20; lite 5)")
    parser.add_argument(
        "--batch-size", type=positive_int, help="crops per batch (default 40; lite 8)"
    )
    parser.add_argument("--lr", type=float, help="Adam learning rate (default 2e-5; lite 1e-4)")
    parser.add_argument("--weight-decay", type=float, help="Adam weight decay (default 5e-4)")
    parser.add_argument(
        "--crops",
        type=positive_int,
        help="random crops per image, for training and scoring (default 10; lite 2 and 4)",
    )
    parser.add_argument("--seed", type=int, default=2030, help="seed of splits, crops, init")
    parser.add_argument(
        "--split-mode",
        choices=("content", "random", "both"),
        default="content",
        help="content: scenes never cross the split (default); random: the reference code's "
        "image-level split (optimistic); both: run the two",
    )
    parser.add_argument("--test-fraction", type=fraction, default=0.2)
    parser.add_argument(
        "--val-fraction",
        type=fraction,
        default=0.2,
        help="share of the training side held out for model selection (default: 0.2)",
    )
    parser.add_argument("--device", default="auto", help="auto (a CUDA GPU), cuda, cuda:N or cpu")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto")
    parser.add_argument("--workers", type=int, help="DataLoader workers (GPU: 8, CPU: 0)")
    parser.add_argument(
        "--deterministic", action="store_true", help="deterministic GPU kernels (slower)"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="run folder (default: runs/MODEL/DATASET-MODE-seedSEED; with both, one "
        "sub-folder per mode)",
    )
    parser.add_argument("--resume", metavar="CKPT", help="continue from a run's last.pt")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..errors import UserError
    from ..metrics.nestconvnext import variant
    from ..models.nestconvnext import CONFIGS
    from ..progress import RichProgress
    from ..train.experiment import decode_images, plan_split, run_experiment
    from ..train.loop import TrainConfig
    from ..train.runtime import resolve_runtime

    defaults = variant(args.model).default_params
    model_config = CONFIGS[args.model]
    crops = args.crops or int(defaults["crops"])
    config = TrainConfig(
        epochs=args.epochs or int(defaults["epochs"]),
        batch_size=args.batch_size or int(defaults["batch_size"]),
        lr=args.lr if args.lr is not None else float(defaults["lr"]),
        weight_decay=float(
            args.weight_decay if args.weight_decay is not None else defaults["weight_decay"]
        ),
        train_crops=args.crops or int(defaults["train_crops"]),
        eval_crops=crops,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        workers=args.workers,
        deterministic=args.deterministic,
    )
    modes = ["content", "random"] if args.split_mode == "both" else [args.split_mode]
    resume = Path(args.resume) if args.resume else None
    if resume is not None and len(modes) > 1:
        raise UserError("--resume continues one run: give --split-mode content or random")

    # Refuse an impossible device before spending time on the images.
    resolve_runtime(
        config.device,
        config.precision,
        model_name=args.model,
        gpu_recommended=model_config.gpu_recommended,
    )
    dataset = load_dataset(args.dataset, args.data_root, csv=args.csv)
    plans = [
        plan_split(dataset, mode, args.test_fraction, args.val_fraction, args.seed)
        for mode in modes
    ]
    if args.out:
        base = Path(args.out)
    elif resume is not None:
        base = resume.parent
    else:
        base = Path("runs") / args.model / f"{dataset.name}-{args.split_mode}-seed{args.seed}"
    results = []
    with RichProgress() as progress:
        needed = {int(i) for p in plans for i in (*p.train, *p.validation, *p.test)}
        images = decode_images(dataset, needed, model_config.resize, progress)
        for plan in plans:
            out_dir = base / plan.mode if len(plans) > 1 else base
            progress.note(
                f"{args.model} on {dataset.name}, {plan.mode} split: {len(plan.train)} train, "
                f"{len(plan.validation)} validation, {len(plan.test)} test images -> {out_dir}"
            )
            results.append(
                run_experiment(
                    dataset,
                    model_config,
                    config,
                    plan,
                    images,
                    out_dir,
                    resume=resume,
                    progress=progress,
                )
            )
    print(summary_table(results))
    return 0


def summary_table(results: list[dict[str, Any]]) -> str:
    """A plain-text table, one row per run, then the runs' notes."""

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    header = (
        "model", "split", "train", "val", "test", "best epoch", "val SROCC",
        "test SROCC", "test PLCC", "folder",
    )  # fmt: skip
    rows = [header]
    notes: list[str] = []
    for r in results:
        split, test = r["split"], r["test"]["overall"]
        rows.append(
            (
                r["model"]["name"],
                split["mode"],
                str(split["train"]["images"]),
                str(split["validation"]["images"]),
                str(split["test"]["images"]),
                str(r["selection"]["best_epoch"]),
                num(r["validation"]["val_srocc"]),
                num(test["srocc"]),
                num(test["plcc"]),
                str(Path(r["checkpoint"]).parent) if r["checkpoint"] else "-",
            )
        )
        notes.extend(n for n in r["notes"] if n not in notes)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.append("PLCC after the 5-parameter logistic mapping; results.json has KROCC, RMSE, CIs.")
    lines.extend(f"note: {n}" for n in notes)
    return "\n".join(lines)
