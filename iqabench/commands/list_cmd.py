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
    parser.add_argument(
        "--json", action="store_true", help="print the metrics as JSON (one object per metric)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    # The models table is wide: off a terminal (a pipe, a file) it is not cut to 80 columns.
    if args.json:
        if args.what != "metrics":
            from ..errors import UserError

            raise UserError("--json lists metrics only: iqabench list metrics --json")
        import json

        print(json.dumps(metric_facts(), indent=2))
        return 0
    # Off a terminal (a pipe, a file) the tables are not cut to 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    tables = {"metrics": _metrics_table, "models": _models_table, "datasets": _datasets_table}
    console.print(tables[args.what](Table))
    return 0


def metric_facts() -> list[dict]:
    """One plain record per registered metric: its interface facts, card status and origin
    (a plugin that fails to import is listed with its error)."""
    import math

    from ..cards import calibration_status, metric_card
    from ..registry import entries

    facts = []
    for name, entry in entries().items():
        try:
            cls = entry.load()
        except Exception:
            facts.append({"name": name, "distribution": entry.distribution, "error": entry.error})
            continue
        card = metric_card(name, cls) or {}
        low_high = getattr(cls, "score_range", None)
        facts.append(
            {
                **cls.describe(),
                "display_name": card.get("display_name", name),
                "calibration": calibration_status(name, cls),
                "score_range": None
                if low_high is None
                else [None if math.isinf(v) else float(v) for v in low_high],
                "distribution": entry.distribution,
                "error": None,
            }
        )
    return facts


def _metrics_table(Table):  # noqa: ANN001, ANN202, N803 - rich's Table class
    table = Table(title="iqabench metrics")
    for column in ("name", "family", "reference", "trainable", "better", "calibration", "from"):
        table.add_column(column, no_wrap=column == "name", overflow="fold")
    for fact in metric_facts():
        if fact["error"] is not None:
            broken = f"{fact['distribution']}: {fact['error']}"
            table.add_row(fact["name"], "-", "-", "-", "-", "broken", broken)
            continue
        table.add_row(
            fact["name"],
            fact["family"],
            "full" if fact["full_reference"] else "none",
            "yes" if fact["trainable"] else "no",
            "higher" if fact["higher_is_better"] else "lower",
            fact["calibration"],
            fact["distribution"],
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
