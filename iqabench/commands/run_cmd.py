"""``iqabench run``: score a dataset with metrics, evaluate, write results and the report."""

from __future__ import annotations

import argparse
import sys

from ._options import fraction, positive_int


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="score a dataset with metrics, evaluate and report",
        description="Score every image of a dataset with the chosen metrics (reusing stored "
        "scores), fit the 5-parameter logistic, compute PLCC/SROCC/KROCC/RMSE overall and per "
        "distortion type, train the trainable metrics on content-disjoint splits, and write "
        "summary.json, scores.csv and report.html to the run folder. An image declaring more "
        "than IQABENCH_MAX_PIXELS pixels (default 25000000) is refused as an input error.",
    )
    parser.add_argument("--metrics", default="all", help="all, or NAME[,NAME...] (default: all)")
    parser.add_argument(
        "--dataset",
        default="synthetic-lwir",
        help="LWIR_IQA, TIIQAD, csv or synthetic-lwir (default: synthetic-lwir, built in)",
    )
    parser.add_argument("--data-root", help="the dataset's folder (not needed for synthetic-lwir)")
    parser.add_argument("--csv", help="score table of a csv dataset (default DATA_ROOT/scores.csv)")
    parser.add_argument(
        "--scores-lower-is-better",
        action="store_true",
        help="the csv dataset's scores are DMOS-like (lower is better)",
    )
    parser.add_argument("--out", help="run folder (default: reports/DATASET)")
    parser.add_argument(
        "--splits", type=int, default=10, help="content-disjoint train/test splits (default 10)"
    )
    parser.add_argument(
        "--train-fraction",
        type=fraction,
        default=0.8,
        help="share of reference scenes in each training split (default 0.8)",
    )
    parser.add_argument(
        "--split-mode",
        choices=("content", "random"),
        default="content",
        help="content: split by reference scene (default); random: by image, as some "
        "reference code does (scenes leak into the test set)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits and fits")
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="processes scoring in parallel (default 1)"
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples for 95%% confidence intervals (0: none)",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="METRIC.KEY=VALUE",
        help="a metric parameter, e.g. --option niqe.model=thermal.npz (repeatable)",
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="METRIC=PATH",
        help="score with a trained checkpoint instead of training, e.g. nestconvnext=best.pt",
    )
    parser.add_argument(
        "--timeout",
        action="append",
        default=[],
        metavar="[METRIC=]SECONDS",
        help="seconds a metric may spend per image before it is stopped and reported as "
        "failed (default 600; 0: no limit); METRIC=SECONDS for one metric (repeatable)",
    )
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..api import run as run_benchmark
    from ..errors import UserError
    from ..progress import console_progress
    from ._options import metric_options, timeouts

    if args.splits < 0:
        raise UserError("--splits must be 0 or more")
    from ..registry import resolve_names

    resolve_names(args.metrics)  # unknown names fail before any dataset work
    params = metric_options(args.option, args.checkpoint)
    timeout, metric_timeouts = timeouts(args.timeout)
    dataset_options = {"lower_is_better": True} if args.scores_lower_is_better else {}
    with console_progress() as progress:
        dataset = _load(args, dataset_options)
        result = run_benchmark(
            args.metrics,
            dataset,
            out=args.out,
            params=params,
            progress=progress,
            splits=args.splits,
            train_fraction=args.train_fraction,
            split_mode=args.split_mode,
            seed=args.seed,
            workers=args.workers,
            bootstrap=args.bootstrap,
            report=not args.no_report,
            timeout=timeout,
            metric_timeouts=metric_timeouts,
        )
    _print_summary(result)
    return _exit_code(result)


def _load(args: argparse.Namespace, options: dict):  # noqa: ANN202
    from ..data import load_dataset

    return load_dataset(args.dataset, args.data_root, args.csv, **options)


def _print_summary(result) -> None:  # noqa: ANN001 - RunResult
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{result.summary['dataset']['display_name']}: agreement with people")
    for column in ("metric", "family", "SROCC", "PLCC", "KROCC", "RMSE", "status"):
        table.add_column(column)
    for name, entry in result.summary["metrics"].items():
        stats = _primary(entry)
        table.add_row(
            name,
            entry["family"],
            *(_fmt(stats.get(k)) for k in ("srocc", "plcc", "krocc", "rmse")),
            entry["status"],
        )
    console.print(table)
    counts = result.summary["counts"]
    print(f"results: {result.out.resolve()}")
    if result.report is not None:
        print(f"report: {result.report.resolve()}")
    print(
        f"scored {counts['scored']} new, reused {counts['reused']} cached, "
        f"failed {counts['failed']}"
    )
    _print_failures("error", result.input_failures)
    _print_failures("internal error", result.internal_failures)
    for name, reason in {**result.skipped, **result.failed}.items():
        print(f"iqabench: {name} not evaluated: {reason}", file=sys.stderr)
    if result.report_error:
        print(f"iqabench: report not built: {result.report_error}", file=sys.stderr)


def _print_failures(label: str, failures: list[str], shown: int = 10) -> None:
    """The first ``shown`` per-item failures, one line each, and how many more there are."""
    for line in failures[:shown]:
        print(f"iqabench: {label}: {line}", file=sys.stderr)
    if len(failures) > shown:
        print(f"iqabench: ... and {len(failures) - shown} more (see summary.json)", file=sys.stderr)


def _primary(entry: dict) -> dict:
    """Median over splits for trainable metrics, the whole dataset for the others."""
    if entry.get("evaluation") == "splits":
        overall = (entry.get("splits") or {}).get("overall") or {}
        return {k: (v or {}).get("median") for k, v in overall.items()}
    return entry.get("overall") or {}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _exit_code(result) -> int:  # noqa: ANN001 - RunResult
    """2 when the user's input needs fixing (or a named metric could not run), 1 for internal
    failures (of a metric, an item or the report), else 0."""
    if result.input_failures or (result.skipped and result.explicit):
        return 2
    if result.report_error_kind == "input":
        return 2
    if result.failed or result.internal_failures or result.report_error:
        return 1
    return 0
