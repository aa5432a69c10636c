"""``iqabench list metrics|models|datasets``: what is installed."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="list installed metrics, deep models or known datasets",
        description="List the installed metrics (built-in and plugins), the deep models (with "
        "their parameter counts, measured by building each network without memory, their "
        "backbone and whether its ImageNet weights are installed), or the known datasets.",
    )
    parser.add_argument("what", choices=("metrics", "models", "datasets"), help="what to list")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    # The models table is wide: off a terminal (a pipe, a file) it is not cut to 80 columns.
    console = Console(width=140) if args.what == "models" and not sys.stdout.isatty() else Console()
    tables = {"metrics": _metrics_table, "models": _models_table, "datasets": _datasets_table}
    console.print(tables[args.what](Table))
    return 0


def _metrics_table(Table):  # noqa: ANN001, ANN202, N803 - rich's Table class
    from ..cards import calibration_status
    from ..registry import entries

    table = Table(title="iqabench metrics")
    for column in ("name", "family", "reference", "trainable", "better", "calibration", "from"):
        table.add_column(column)
    for name, entry in entries().items():
        try:
            cls = entry.load()
        except Exception:
            table.add_row(
                name, "-", "-", "-", "-", "broken", f"{entry.distribution}: {entry.error}"
            )
            continue
        table.add_row(
            name,
            cls.family,
            "full" if cls.full_reference else "none",
            "yes" if cls.trainable else "no",
            "higher" if cls.higher_is_better else "lower",
            calibration_status(name, cls),
            entry.distribution,
        )
    return table


def _models_table(Table):  # noqa: ANN001, ANN202, N803 - rich's Table class
    from ..metrics._deep import deep_metric_class, deep_metric_names
    from ..models.backbones import resolve_backbone

    table = Table(title="iqabench deep models (parameters measured)")
    for column in ("name", "family", "build", "parameters", "trainable", "backbone", "stages"):
        table.add_column(column, no_wrap=column in ("name", "parameters", "trainable"))
    for name in deep_metric_names():
        metric = deep_metric_class(name)()
        total, trainable = metric.parameter_counts()
        backbone = metric.backbone_name()
        if backbone is not None:
            weights = resolve_backbone(backbone)
            backbone += f" ({weights.label if weights.pretrained else 'no ImageNet file'})"
        table.add_row(
            name,
            metric.family,
            "published" if metric.published else "lite",
            f"{total:,}",
            f"{trainable:,}",
            backbone or "-",
            ", ".join(s.name for s in metric.stages()) or "none (training-free)",
        )
    return table


def _datasets_table(Table):  # noqa: ANN001, ANN202, N803 - rich's Table class
    from ..cards import load_cards
    from ..data.loaders import LOADERS

    cards = load_cards("datasets")
    table = Table(title="iqabench datasets")
    for column in ("name", "score", "references", "needs --data-root", "obtain"):
        table.add_column(column, overflow="fold")
    for name, (_, needs_root) in LOADERS.items():
        card = cards.get(name, {})
        score = (card.get("score") or {}).get("type", "MOS")
        refs = str(card.get("references", "-")).split(" (")[0]
        table.add_row(
            name, str(score), refs, "yes" if needs_root else "no", str(card.get("obtain", ""))
        )
    return table
