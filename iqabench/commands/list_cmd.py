"""``iqabench list metrics|datasets``: what is installed."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="list installed metrics or known datasets",
        description="List the installed metrics (built-in and plugins) or the known datasets.",
    )
    parser.add_argument("what", choices=("metrics", "datasets"), help="what to list")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = _metrics_table(Table) if args.what == "metrics" else _datasets_table(Table)
    console.print(table)
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
