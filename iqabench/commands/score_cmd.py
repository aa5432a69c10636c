"""``iqabench score --metrics A,B IMAGE_OR_DIR... [--ref REF | --ref-dir DIR]``.

Scores every image given (folders are expanded to the images they hold, sorted by name) with
every metric named, through the same score store as ``iqabench run`` (so a second call
recomputes nothing), and prints one table, or CSV or JSON. Full-reference metrics take one
reference for all images (``--ref``) or a folder paired by file name (``--ref-dir``: the
reference of ``a/x.png`` is ``DIR/x.png``, or ``DIR/x.*`` with another image suffix). A bad
image costs one line naming it and the metrics it failed for; the others are still scored.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="score images or folders with one or more metrics",
        description="Score images (or every image of the folders given) with one or more "
        "metrics, reusing stored scores, and print a table, CSV or JSON.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="images or folders")
    parser.add_argument(
        "--metrics",
        "--metric",
        dest="metrics",
        required=True,
        help="NAME[,NAME...] (see `iqabench list metrics`)",
    )
    refs = parser.add_mutually_exclusive_group()
    refs.add_argument("--ref", help="one pristine reference for every image (FR metrics)")
    refs.add_argument("--ref-dir", help="folder of references, paired with the images by file name")
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format"
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="[METRIC.]KEY=VALUE",
        help="a metric parameter, e.g. --option niqe.model=thermal.npz; with one metric the "
        "METRIC. prefix may be left out (repeatable)",
    )
    parser.set_defaults(handler=run)


@dataclass
class _Outcome:
    """Scores and failures of one metric over the images."""

    scores: dict[Path, float] = field(default_factory=dict)
    errors: dict[Path, str] = field(default_factory=dict)
    internal: bool = False


def run(args: argparse.Namespace) -> int:
    from .. import registry

    names = registry.resolve_names(args.metrics)
    params = _metric_params(args.option, names)
    metrics = [registry.create(name, **params.get(name, {})) for name in names]
    images = expand_images(args.images)
    refs = _references(images, args.ref, args.ref_dir)
    outcomes, refused = _score_all(metrics, images, refs)
    _print(args.format, metrics, images, outcomes)
    if args.debug:
        _raise_first_failure(metrics, outcomes, refs)
    _print_problems(metrics, images, outcomes, refused)
    failed_input = refused or any(
        not o.internal and o.errors for o in outcomes.values() if o is not None
    )
    if failed_input:
        return 2
    return 1 if any(o is not None and o.internal for o in outcomes.values()) else 0


def _metric_params(options: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    from ._options import parse_assignment, parse_value

    params: dict[str, dict[str, Any]] = {}
    for text in options:
        target, value = parse_assignment(text, "--option")
        metric, dot, key = target.rpartition(".")
        if not dot:
            if len(names) != 1:
                raise UserError(f"--option {text!r}: name the metric (METRIC.KEY=VALUE)")
            metric = names[0]
        metric = metric.lower()
        if metric not in names:
            raise UserError(f"--option {text!r}: metric {metric!r} is not among --metrics")
        params.setdefault(metric, {})[key] = parse_value(value)
    return params


def expand_images(arguments: Sequence[str]) -> list[Path]:
    """Files as given, folders as the image files they hold (sorted); missing ones refused."""
    from ..data.paths import IMAGE_SUFFIXES

    images: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise UserError(f"no image files in folder {path}")
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:
            raise UserError(f"image not found: {path}")
    return list(dict.fromkeys(images))


def _references(
    images: Sequence[Path], ref: str | None, ref_dir: str | None
) -> dict[Path, Path] | None:
    if ref is not None:
        if not Path(ref).is_file():
            raise UserError(f"reference not found: {ref}")
        return {image: Path(ref) for image in images}
    if ref_dir is None:
        return None
    folder = Path(ref_dir)
    if not folder.is_dir():
        raise UserError(f"reference folder not found: {folder}")
    return {image: reference_in(folder, image) for image in images}


def reference_in(folder: Path, image: Path) -> Path:
    """The reference of ``image`` in ``folder``: the same file name, else the same stem."""
    from ..data.paths import IMAGE_SUFFIXES

    same = folder / image.name
    if same.is_file():
        return same
    stems = [
        p for p in sorted(folder.glob(f"{image.stem}.*")) if p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if len(stems) == 1:
        return stems[0]
    if not stems:
        raise UserError(f"no reference for {image} in {folder} (looked for {image.stem}.*)")
    raise UserError(f"several references for {image} in {folder}: {stems[0].name}, {stems[1].name}")


def _score_all(
    metrics: Sequence[Any], images: Sequence[Path], refs: dict[Path, Path] | None
) -> tuple[dict[str, _Outcome | None], dict[str, str]]:
    """Every metric over every image; metrics that cannot run are refused with a reason."""
    from ..errors import MetricUnavailableError
    from ..progress import console_progress
    from ..scorer import refuse_unfitted
    from ..store import ScoreStore, default_store_path

    outcomes: dict[str, _Outcome | None] = {}
    refused: dict[str, str] = {}
    with ScoreStore(default_store_path()) as store, console_progress() as progress:
        for metric in metrics:
            try:
                if metric.full_reference and refs is None:
                    raise UserError(
                        f"{metric.name} is a full-reference metric: give the reference "
                        "(--ref or --ref-dir)"
                    )
                refuse_unfitted(metric)
                outcomes[metric.name] = _score_metric(store, metric, images, refs, progress)
            except (MetricUnavailableError, UserError) as exc:
                outcomes[metric.name] = None
                refused[metric.name] = str(exc)
    return outcomes, refused


def _score_metric(store, metric, images, refs, progress) -> _Outcome:  # noqa: ANN001
    from ..imageio import content_key
    from ..scoring import Job, compute
    from ..store import MetricKey

    key = MetricKey(metric.name, metric.version, metric.params_hash())
    pairs = {image: refs[image] if refs and metric.full_reference else None for image in images}
    jobs = {image: Job(content_key(image, ref), image, ref) for image, ref in pairs.items()}
    with progress.task(metric.name, len(jobs)) as bar:
        records, _ = compute(store, metric, key, "score", list(jobs.values()), bar)
    outcome = _Outcome()
    for image, job in jobs.items():
        record = records[job.key]
        if record.ok and record.value is not None:
            outcome.scores[image] = float(record.value)
        else:
            outcome.errors[image] = record.error or "failed"
            outcome.internal |= record.error_kind == "internal"
    return outcome


def _raise_first_failure(metrics, outcomes, refs) -> None:  # noqa: ANN001
    """With ``--debug``: score the first failed item again outside the per-item isolation,
    so that its exception (and traceback) reaches the command line."""
    from ..imageio import load_for_metric

    for metric in metrics:
        outcome = outcomes.get(metric.name)
        for image in outcome.errors if outcome is not None else ():
            ref = refs[image] if refs and metric.full_reference else None
            pixels, reference = load_for_metric(image, metric.colour, ref)
            metric.score([pixels], None if reference is None else [reference])


# -- output -----------------------------------------------------------------------------------
def _rows(metrics, images, outcomes) -> list[dict[str, Any]]:  # noqa: ANN001
    rows = []
    for image in images:
        row: dict[str, Any] = {"image": str(image)}
        for metric in metrics:
            outcome = outcomes.get(metric.name)
            row[metric.name] = None if outcome is None else outcome.scores.get(image)
        rows.append(row)
    return rows


def _print(format_: str, metrics, images, outcomes) -> None:  # noqa: ANN001
    rows = _rows(metrics, images, outcomes)
    columns = ["image", *(m.name for m in metrics if outcomes.get(m.name) is not None)]
    if format_ == "json":
        notes = {m.name: m.value_note() for m in metrics if m.value_note()}
        finite = [{k: _json_value(v) for k, v in row.items()} for row in rows]
        print(json.dumps({"scores": finite, "notes": notes}, indent=2, allow_nan=False))
        return
    if format_ == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: _csv_value(v) for k, v in row.items()} for row in rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False)
    table.add_column("image", overflow="fold")
    for name in columns[1:]:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(row["image"], *(_fmt(row[name]) for name in columns[1:]))
    console = Console()
    if len(columns) > 1:
        console.print(table)
    for metric in metrics:
        if outcomes.get(metric.name) is not None and metric.value_note():
            console.print(f"{metric.name}: {metric.value_note()}", highlight=False, markup=False)


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return "" if value is None else value


def _json_value(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _print_problems(metrics, images, outcomes, refused) -> None:  # noqa: ANN001
    """One line per refused metric, and one line per bad image listing its metrics."""
    for name, reason in refused.items():
        print(
            f"iqabench: error: {reason if name in reason else f'{name}: {reason}'}", file=sys.stderr
        )
    for image in images:
        failed = {
            m.name: outcomes[m.name].errors[image]
            for m in metrics
            if outcomes.get(m.name) is not None and image in outcomes[m.name].errors
        }
        if failed:
            reason = next(iter(failed.values()))
            if str(image) not in reason:
                reason = f"{image}: {reason}"
            print(f"iqabench: error: {reason} (metrics: {', '.join(failed)})", file=sys.stderr)
