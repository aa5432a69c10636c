"""``iqabench train``: train a deep metric on a dataset, select on validation, test once.

Any registered deep metric trains here (``iqabench list models``), with its own recipe; the
recipe options below override the model's defaults and ``--option KEY=VALUE`` sets any other
parameter it has. Splits are content-disjoint by default (whole reference scenes on one side);
``--split-mode random`` reproduces reference code's image-level split, and ``both`` runs the two
and prints them side by side. Each run writes a folder with checkpoints (``best.pt`` selected on
validation SROCC, ``last.pt`` every epoch for ``--resume``), per-epoch ``metrics.csv``/``.json``,
``predictions.csv`` and ``results.json``. A full-size model that takes hours on a CPU needs a CUDA
GPU unless ``--device cpu`` is asked for.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._options import fraction, parse_assignment, parse_value, positive_int


def add_parser(subparsers: Any, name: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help="train a deep metric on a dataset, with validated model selection",
        description="Train a deep metric (any of `iqabench list models`) with its own recipe, "
        "selecting the epoch on a validation hold-out and scoring the test split once. Recipe "
        "options default to the model's own (NestConvNeXt-IQA: Adam, 10 x L1 loss, cosine "
        "annealing, 10 random 224x224 crops per image; its lite model a shortened recipe).",
    )
    parser.add_argument(
        "--model",
        default="nestconvnext",
        metavar="NAME",
        help="the deep metric to train (default: nestconvnext; see `iqabench list models`)",
    )
    parser.add_argument("--dataset", required=True, help="dataset name (LWIR_IQA, TIIQAD, ...)")
    parser.add_argument("--data-root", metavar="PATH", help="the dataset's folder")
    parser.add_argument("--csv", metavar="TABLE", help="score table of a csv dataset")
    parser.add_argument("--epochs", type=positive_int, help="training epochs (the model's own)")
    parser.add_argument("--batch-size", type=positive_int, help="samples (crops) per batch")
    parser.add_argument("--lr", type=float, help="base learning rate")
    parser.add_argument("--weight-decay", type=float, help="weight decay")
    parser.add_argument(
        "--crops", type=positive_int, help="random crops per image, for training and scoring"
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other parameter of the model (repeatable), e.g. --option train_crops=25",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of splits, crops, init (default: the model's, 2030 for NestConvNeXt-IQA)",
    )
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
    parser.add_argument(
        "--resume", metavar="CKPT", help="continue a run: its folder or its last.pt"
    )
    parser.set_defaults(handler=run)
    return parser


def model_params(args: argparse.Namespace) -> dict[str, Any]:
    """The metric parameters the command line sets (recipe options, runtime, --option)."""
    given = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "train_crops": args.crops,
        "crops": args.crops,
        "seed": args.seed,
        "workers": args.workers,
    }
    params = {key: value for key, value in given.items() if value is not None}
    params.update(device=args.device, precision=args.precision)
    for text in args.option:
        key, value = parse_assignment(text, "--option")
        params[key] = parse_value(value)
    return params


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..errors import UserError
    from ..metrics._deep import deep_metric_class
    from ..progress import RichProgress
    from ..train.experiment import plan_split, run_experiment
    from ..train.runtime import resolve_runtime

    cls = deep_metric_class(args.model)
    params = model_params(args)
    probe = cls(**params)
    if not probe.stages():
        raise UserError(f"{cls.name} trains nothing (it has no training stages)")
    seed = int(probe.params["seed"])
    modes = ["content", "random"] if args.split_mode == "both" else [args.split_mode]
    resume = Path(args.resume) if args.resume else None
    if resume is not None and len(modes) > 1:
        raise UserError("--resume continues one run: give --split-mode content or random")
    if resume is not None and not resume.exists():
        raise UserError(f"nothing to resume: {resume} does not exist")

    # Refuse an impossible device before spending time on the images.
    resolve_runtime(
        args.device, args.precision, model_name=cls.name, gpu_recommended=not cls.trains_on_cpu
    )
    dataset = load_dataset(args.dataset, args.data_root, csv=args.csv)
    plans = [
        plan_split(dataset, mode, args.test_fraction, args.val_fraction, seed) for mode in modes
    ]
    if args.out:
        base = Path(args.out)
    elif resume is not None:
        base = resume if resume.is_dir() else resume.parent
    else:
        base = Path("runs") / cls.name / f"{dataset.name}-{args.split_mode}-seed{seed}"
    results = []
    with RichProgress() as progress:
        for plan in plans:
            out_dir = base / plan.mode if len(plans) > 1 else base
            progress.note(
                f"{cls.name} on {dataset.name}, {plan.mode} split: {len(plan.train)} train, "
                f"{len(plan.validation)} validation, {len(plan.test)} test images -> {out_dir}"
            )
            results.append(
                run_experiment(
                    dataset,
                    cls(**params),
                    plan,
                    out_dir,
                    resume=resume is not None,
                    deterministic=args.deterministic,
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
