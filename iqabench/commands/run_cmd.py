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
        "summary.json, scores.csv and report.html to the run folder. With --train-dataset the "
        "cross-dataset protocol: trainable metrics are fitted on every image of the training "
        "dataset and score every image of each --dataset (no splits), training-free metrics are "
        "scored there as usual. An image declaring more than IQABENCH_MAX_PIXELS pixels "
        "(default 25000000) is refused as an input error.",
    )
    parser.add_argument("--metrics", default="all", help="all, or NAME[,NAME...] (default: all)")
    parser.add_argument(
        "--dataset",
        default="synthetic-lwir",
        help="LWIR_IQA, TIIQAD, csv or synthetic-lwir (default: synthetic-lwir, built in); "
        "with --train-dataset, NAME[,NAME...]: several test datasets from one training",
    )
    parser.add_argument(
        "--data-root",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="the dataset's folder (not needed for synthetic-lwir); NAME=PATH for one of "
        "several test datasets (repeatable)",
    )
    parser.add_argument(
        "--csv",
        action="append",
        default=[],
        metavar="[NAME=]FILE",
        help="score table of a csv dataset (default DATA_ROOT/scores.csv); NAME=FILE as for "
        "--data-root",
    )
    parser.add_argument(
        "--scores-lower-is-better",
        action="store_true",
        help="the csv dataset's scores are DMOS-like (lower is better)",
    )
    parser.add_argument(
        "--train-dataset",
        metavar="NAME",
        help="cross-dataset protocol: train the trainable metrics on every image of this "
        "dataset and test every metric on every image of --dataset",
    )
    parser.add_argument("--train-data-root", metavar="PATH", help="the training dataset's folder")
    parser.add_argument("--train-csv", metavar="FILE", help="score table of a csv training dataset")
    parser.add_argument(
        "--train-scores-lower-is-better",
        action="store_true",
        help="the csv training dataset's scores are DMOS-like (lower is better)",
    )
    parser.add_argument(
        "--out",
        help="run folder (default: reports/DATASET); with --train-dataset the run folder of "
        "the one test dataset, or the folder holding one per test dataset, OUT/NAME (default: "
        "reports/cross-TRAIN/NAME)",
    )
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
        "--workers",
        type=positive_int,
        default=1,
        help="processes scoring and fitting in parallel: a local pool, or the workers of a "
        "local Dask cluster with --executor dask (default 1: this process)",
    )
    parser.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="where batches and per-split fits run: local (this machine, default) or dask "
        "(pip install 'iqabench[distributed]'; a LocalCluster on 127.0.0.1 of --workers "
        "processes, or the cluster at --scheduler)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler, e.g. tcp://HOST:8786 (with --executor dask); its "
        "workers need the same iqabench and see the dataset at the same paths",
    )
    parser.add_argument(
        "--store",
        metavar="PATH",
        help="the score store, shared by runs (default: the one the run folder names, else "
        "$IQABENCH_CACHE/scores.db); a local disk, not a network file system",
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
    names = _test_dataset_names(args)
    roots = _per_dataset(args.data_root, names, "--data-root")
    tables = _per_dataset(args.csv, names, "--csv")
    options = dict(
        params=params,
        seed=args.seed,
        workers=args.workers,
        executor=args.executor,
        scheduler=args.scheduler,
        store=args.store,
        bootstrap=args.bootstrap,
        report=not args.no_report,
        timeout=timeout,
        metric_timeouts=metric_timeouts,
    )
    with console_progress() as progress:
        tests = [_load(n, roots.get(n), tables.get(n), args.scores_lower_is_better) for n in names]
        if args.train_dataset is None:
            results = [
                run_benchmark(
                    args.metrics,
                    tests[0],
                    out=args.out,
                    progress=progress,
                    splits=args.splits,
                    train_fraction=args.train_fraction,
                    split_mode=args.split_mode,
                    **options,
                )
            ]
        else:
            from ..api import run_cross_dataset

            train = _load(
                args.train_dataset,
                args.train_data_root,
                args.train_csv,
                args.train_scores_lower_is_better,
            )
            results = run_cross_dataset(
                args.metrics, train, tests, args.out, progress=progress, **options
            )
    for result in results:
        _print_summary(result)
    return max(_exit_code(result) for result in results)


def _test_dataset_names(args: argparse.Namespace) -> list[str]:
    """The ``--dataset`` names: one, or several with ``--train-dataset``."""
    from ..errors import UserError

    names = [name.strip() for name in args.dataset.split(",") if name.strip()]
    if not names:
        raise UserError("--dataset names no dataset")
    if len(names) > 1 and args.train_dataset is None:
        raise UserError("several --dataset names need --train-dataset (the cross-dataset protocol)")
    if len(set(names)) < len(names):
        raise UserError(f"--dataset names a dataset twice: {args.dataset}")
    if args.train_dataset is None and (args.train_data_root or args.train_csv):
        raise UserError("--train-data-root and --train-csv need --train-dataset")
    return names


def _per_dataset(values: list[str], names: list[str], flag: str) -> dict[str, str]:
    """``flag`` values by dataset name: ``NAME=VALUE`` pairs, or one plain value when there is
    one dataset. Refuses a value naming no dataset, or a dataset given twice."""
    from ..errors import UserError

    found: dict[str, str] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not (sep and name.strip() in names):
            if len(names) > 1:
                raise UserError(f"{flag} {text!r}: with several datasets give NAME=PATH")
            name, value = names[0], text
        name = name.strip()
        if name in found:
            raise UserError(f"{flag} given twice for dataset {name}")
        found[name] = value
    return found


def _load(name: str, root: str | None, csv: str | None, lower_is_better: bool):  # noqa: ANN202
    from ..data import load_dataset

    options = {"lower_is_better": True} if lower_is_better else {}
    return load_dataset(name, root, csv, **options)


def _print_summary(result) -> None:  # noqa: ANN001 - RunResult
    from rich import box
    from rich.console import Console
    from rich.table import Table

    summary = result.summary
    protocol = _protocol_name(summary["protocol"])
    dataset = summary["dataset"]
    title = f"{dataset['display_name']}: agreement with {dataset.get('score_label', 'MOS')}"
    if "train_dataset" in summary:
        title += f", trained on {summary['train_dataset']['display_name']}"
    # A pipe or log file has no width: do not wrap the table at 80 columns there.
    console = Console() if sys.stdout.isatty() else Console(width=120)
    table = Table(title=title, caption=_caption(summary, protocol), box=box.SIMPLE_HEAD)
    for column in ("metric", "family", "SROCC", "PLCC", "KROCC", "RMSE", "n", "status"):
        table.add_column(column, no_wrap=column != "metric")
    small = False
    for name, entry in summary["metrics"].items():
        figures, n_text, is_small = _headline(entry, protocol)
        small |= is_small
        style = "dim" if is_small else None
        cells = [_fmt(figures.get(k), is_small) for k in ("srocc", "plcc", "krocc", "rmse")]
        table.add_row(name, entry["family"], *cells, n_text, entry["status"], style=style)
    console.print(table)
    if small:
        minimum = summary["protocol"].get("min_test_items")
        print(
            f"(value)†: small sample, fewer than {minimum} test images: not a headline "
            "(see docs/report.md)"
        )
    counts = summary["counts"]
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
    _print_evaluation_warnings(summary["metrics"])
    _print_metric_notes(summary["metrics"])
    if result.report_error:
        print(f"iqabench: report not built: {result.report_error}", file=sys.stderr)


_PROTOCOL_CAPTIONS = {
    "splits": "every metric on the same {splits} content-disjoint split test sets: median over "
    "splits; n = test images per split (median) x splits with a value",
    "all": "training-free metrics on every image; n = images",
    "cross-dataset": "cross-dataset: trainable metrics fitted on every image of {train} "
    "({train_images} images), every metric on every test image; n = test images; 95% intervals "
    "(summary.json, report): bootstrap over test images",
}


def _protocol_name(protocol: dict) -> str:
    """The protocol of a summary: its ``name``, or (older summaries) splits or all images."""
    return protocol.get("name") or ("splits" if protocol.get("splits") else "all")


def _caption(summary: dict, protocol: str) -> str:
    train = summary.get("train_dataset") or {}
    return _PROTOCOL_CAPTIONS[protocol].format(
        **summary["protocol"], train=train.get("display_name"), train_images=train.get("n_images")
    )


def _print_evaluation_warnings(metrics: dict) -> None:
    """Each evaluation warning once (small samples, splits without a value, mappings that did
    not converge), with the metrics it concerns."""
    concerned: dict[str, list[str]] = {}
    for name, entry in metrics.items():
        for note in entry.get("evaluation_notes") or []:
            concerned.setdefault(note, []).append(name)
    for note, names in concerned.items():
        print(f"iqabench: warning: {note}: {', '.join(names)}", file=sys.stderr)


def _print_metric_notes(metrics: dict) -> None:
    """What the metrics recorded with their results (random initialisation, a checkpoint that
    scored its own training images, a lite model...), one line each."""
    for name, entry in metrics.items():
        for note in entry.get("notes") or []:
            print(f"iqabench: note: {name}: {' '.join(str(note).split())}", file=sys.stderr)


def _print_failures(label: str, failures: list[str], shown: int = 10) -> None:
    """The first ``shown`` per-item failures, one line each, and how many more there are."""
    for line in failures[:shown]:
        print(f"iqabench: {label}: {line}", file=sys.stderr)
    if len(failures) > shown:
        print(f"iqabench: ... and {len(failures) - shown} more (see summary.json)", file=sys.stderr)


def _headline(entry: dict, protocol: str) -> tuple[dict, str, bool]:
    """The console figures of a metric under the run's protocol: the median over splits of
    every metric, or the statistics on all images; their n; whether they are a small sample."""
    if protocol == "splits":
        splits = entry.get("splits") or {}
        overall = splits.get("overall") or {}
        sizes = (splits.get("test_items") or {}).get("overall") or {}
        figures = {k: (v or {}).get("median") for k, v in overall.items()}
        srocc = overall.get("srocc") or {}
        n_text = ""
        if sizes.get("median") is not None:
            total = srocc.get("n", 0) + srocc.get("missing", 0)
            n_text = f"{sizes['median']:g} x {srocc.get('n', 0)}/{total}"
        return figures, n_text, bool(sizes.get("small_sample"))
    overall = entry.get("overall") or {}
    n = overall.get("n")
    return overall, "" if n is None else str(n), bool(overall.get("small_sample"))


def _fmt(value: float | None, small: bool = False) -> str:
    if value is None:
        return "-"
    return f"({value:.3f})†" if small else f"{value:.3f}"


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
