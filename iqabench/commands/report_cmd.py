"""``iqabench report``: rebuild a run's report from its stored results, or compare runs."""

from __future__ import annotations

import argparse
from pathlib import Path

# Light: the report package imports plotly, matplotlib and NumPy only when it builds.
from ..report import FORMATS, STATS


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="rebuild the HTML report, figures and tables of a run folder (or compare runs)",
        description="Rebuild report.html, figures/ (PNG, SVG) and tables/ (CSV, Markdown, "
        "LaTeX) in RUN_DIR from its summary.json and scores.csv, without recomputing a score. "
        "With two or more run folders, write a comparison that shows their tables side by "
        "side.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s)")
    parser.add_argument(
        "--stat",
        choices=STATS,
        default="srocc",
        help="statistic the charts show first and export, and the significance matrix over "
        "splits tests (default: srocc)",
    )
    parser.add_argument(
        "--format",
        default=",".join(FORMATS),
        metavar="FMT[,FMT...]",
        help=f"outputs to write, any of {','.join(FORMATS)} (default: all)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="comparison folder (default: beside the first run, compare-A-vs-B); "
        "a single run's report always goes into its run folder",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..report import build_comparison, build_report

    formats = [f for f in args.format.split(",") if f.strip()]
    dirs = [Path(d) for d in args.run_dirs]
    if len(dirs) == 1 and args.out:  # a wrong option first, before any folder is read
        raise UserError("--out is for comparisons; a run's report goes into its run folder")
    for run_dir in dirs:
        _check_readable(run_dir)
    if len(dirs) == 1:
        path = build_report(dirs[0], stat=args.stat, formats=formats)
    else:
        out = Path(args.out) if args.out else _comparison_folder(dirs)
        path = build_comparison(dirs, out, stat=args.stat, formats=formats)
    print(path)
    return 0


def _check_readable(run_dir: Path) -> None:
    """Refuse, in one line naming the file, a run folder whose results cannot be read (a
    summary.json edited by hand into something else), before any report file is written."""
    from ..errors import UserError, one_line
    from ..report.results import load_run

    try:
        load_run(run_dir)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise UserError(
            f"{run_dir / 'summary.json'} cannot be read: {type(exc).__name__}: {one_line(exc)} "
            "(was it edited by hand?)"
        ) from None


def _comparison_folder(dirs: list[Path]) -> Path:
    """``<parent of the first run>/compare-<run names joined by -vs->``."""
    names = "-vs-".join(d.resolve().name for d in dirs)
    return dirs[0].resolve().parent / f"compare-{names}"
