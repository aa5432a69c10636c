"""The benchmark report: one self-contained HTML file per run, plus figures and tables for papers.

:func:`build_report` reads a run folder's ``summary.json`` and ``scores.csv`` (never the score
store) and writes, beside them, ``report.html`` (plotly inlined once, so it opens from disk with
no network), ``figures/`` (matplotlib PNG and SVG) and ``tables/`` (CSV, Markdown, LaTeX).
:func:`build_comparison` lays the tables of several runs side by side. No score is recomputed:
the only statistics computed here are the pairwise significance tests, from stored scores, by
:mod:`iqabench.evaluate`. See ``docs/report.md``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

from .. import __version__
from ..errors import UserError
from .figures import GROUPS, chart_kind, chart_prefix, performance_spec, save_performance_figures
from .html import Chart, duration, plotly_js, render
from .palette import metric_styles
from .results import STAT_LABELS, DatasetInfo, Run, distortion_name, load_run
from .scatter import save_scatter_grid, scatter_spec, subjective_label
from .significance import Significance, significance, significance_table, split_significance
from .tables import EXPORTERS, SMALL_MARK, Table, result_tables, run_labels, shared_protocol

__all__ = ["FORMATS", "STATS", "build_comparison", "build_report"]

#: Every output format, in the order they are produced.
FORMATS: tuple[str, ...] = ("html", "png", "svg", "csv", "md", "tex")
#: Statistics the spider diagrams and the report can lead with.
STATS: tuple[str, ...] = ("srocc", "plcc", "krocc")
IMAGE_FORMATS = ("png", "svg")
TABLE_FORMATS = ("csv", "md", "tex")


def _check(stat: str, formats: Iterable[str]) -> list[str]:
    if stat not in STATS:
        raise UserError(f"unknown statistic {stat!r} (choose from {', '.join(STATS)})")
    chosen = [f.strip().lower() for f in formats if f.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise UserError(f"unknown report format {unknown[0]!r} (choose from {', '.join(FORMATS)})")
    if not chosen:
        raise UserError(f"no report format given (choose from {', '.join(FORMATS)})")
    return [f for f in FORMATS if f in chosen]


def _write(path: Path, text: str) -> Path:
    """Write ``text`` atomically (a full disk never leaves a truncated report)."""
    from ..results import write_text_atomically

    return write_text_atomically(path, text)


def _write_tables(tables: Sequence[Table], folder: Path, formats: Sequence[str]) -> list[Path]:
    return [
        _write(folder / f"{table.key}.{ext}", EXPORTERS[ext](table))
        for table in tables
        for ext in formats
        if ext in TABLE_FORMATS
    ]


def _ordered(tables: Sequence[Table], stat: str) -> list[Table]:
    """Per protocol (the default first): the overall table, then the chosen statistic's
    per-type table, then the others."""
    lead = f"per_type_{stat}"
    default = tables[0].protocol if tables else "splits"
    return sorted(
        tables,
        key=lambda t: (
            t.protocol != default,
            t.key not in ("overall", "all_images"),
            not t.key.endswith(lead),
        ),
    )


def _significance_tables(run: Run, stat: str) -> list[tuple[Significance, Table]]:
    """The default protocol's significance matrix first (key ``significance``), then, under
    the split protocol, the all-image F-test of the training-free metrics."""
    found: list[tuple[Significance, Table]] = []
    if run.default_protocol == "splits":
        split = split_significance(run, stat)
        if split is not None:
            found.append((split, significance_table(split, "significance")))
    whole = significance(run)
    if whole is not None:
        key = "significance" if run.default_protocol != "splits" else "significance_all_images"
        found.append((whole, significance_table(whole, key)))
    return found


def build_report(
    run_dir: str | Path, stat: str = "srocc", formats: Iterable[str] = FORMATS
) -> Path:
    """Build the report of the run folder ``run_dir`` from its stored results.

    Writes ``report.html``, ``figures/*.png|svg`` and ``tables/*.csv|md|tex`` (as ``formats``
    asks) into the run folder, and returns the path of ``report.html`` (of the run folder when
    no HTML was asked for). ``stat`` (srocc, plcc or krocc) is the statistic the charts show
    first, the significance matrix over splits tests, and the only one exported as static
    performance figures.
    """
    chosen = _check(stat, formats)
    run = load_run(run_dir)
    out = run.path
    tables = _ordered(result_tables([run]), stat)
    matrices = _significance_tables(run, stat)
    exported = [*tables, *(table for _, table in matrices)]
    written = _write_tables(exported, out / "tables", chosen)
    images = [f for f in chosen if f in IMAGE_FORMATS]
    if images:
        figures = out / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        written += save_performance_figures(run, stat, figures, images)
        written += save_scatter_grid(run, figures, images)
    if "html" not in chosen:
        return out

    styles = metric_styles(run.metrics)
    performance = []
    for group in GROUPS:
        spec = performance_spec(run, group, stat, styles)
        if spec is not None:
            spec["filename"] = f"{chart_prefix(run)}_{group.key}"
        note = f"No {group.title.lower()} were evaluated in this run."
        performance.append(Chart(f"perf-{group.key}", group.title, spec, note))
    scatters = []
    for i, metric in enumerate(run.evaluated):
        spec = scatter_spec(run, metric)
        spec["filename"] = f"scatter_{i + 1}"
        scatters.append(Chart(f"scatter-{i + 1}", metric.display_name, spec))
    charts_used = any(c.spec is not None for c in [*performance, *scatters])
    not_evaluated = [m for m in run.metrics.values() if not m.ok]
    default_tables = [t for t in tables if t.protocol == run.default_protocol]
    text = render(
        "report.html.j2",
        title=f"iqabench report: {run.label}",
        version=__version__,
        run=run,
        stat_label=STAT_LABELS[stat],
        chart_kind=chart_kind(run),
        dataset_facts=_dataset_facts(run),
        protocol_facts=_protocol_facts(run),
        protocol_line=protocol_line(run),
        performance=performance,
        default_tables=default_tables,
        other_tables=[t for t in tables if t.protocol != run.default_protocol],
        small_samples=_small_sample_note(run, default_tables),
        small_mark=SMALL_MARK,
        scatters=scatters,
        subjective_label=subjective_label(run),
        matrices=matrices,
        not_evaluated=not_evaluated,
        n_problems=len(not_evaluated) + len(run.warnings) + len(run.failures),
        exports=[p.relative_to(out).as_posix() for p in written],
        has_figures=bool(images),
        charts_used=charts_used,
        plotly_js=plotly_js() if charts_used else "",
        footer=_footer(run),
    )
    return _write(out / "report.html", text)


def _small_sample_note(run: Run, tables: Sequence[Table]) -> str:
    """One sentence on the small samples of the default tables (empty when there are none)."""
    cells = [c for t in tables for row in t.rows for c in row.cells if not math.isnan(c.value)]
    small = [c for c in cells if c.small_sample]
    if not small:
        return ""
    sizes = [m.split_sizes.median for m in run.under("splits") if m.split_sizes is not None]
    where = (
        f" The split test sets of this run hold a median of {statistics.median(sizes):g} images."
        if sizes and run.default_protocol == "splits"
        else ""
    )
    return (
        f"Small samples: {len(small)} of the {len(cells)} values in the tables below rest on "
        f"fewer than {run.min_test_items} test images; they are greyed and marked "
        f"{SMALL_MARK}, never bold, and say little about the metrics.{where}"
    )


def _footer(run: Run) -> str:
    counts = run.counts
    return (
        f"Built by iqabench {__version__} from summary.json and scores.csv of the run folder "
        f"{run.path}; building a report computes no score. The run itself computed "
        f"{counts.get('scored', 0)} results, reused {counts.get('reused', 0)} from the score "
        f"store and failed {counts.get('failed', 0)}."
    )


def build_comparison(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    stat: str = "srocc",
    formats: Iterable[str] = FORMATS,
) -> Path:
    """Lay the tables of several runs side by side in ``out_dir``.

    Writes ``comparison.html`` and ``tables/*.csv|md|tex`` (the image formats apply to single
    run reports and are ignored here) and returns the path of ``comparison.html`` (of
    ``out_dir`` when no HTML was asked for). Every table shows one protocol: the split
    protocol when every run has splits, else all images; bold is decided within each run's
    columns.
    """
    chosen = _check(stat, formats)
    if len(run_dirs) < 2:
        raise UserError("a comparison needs at least two run folders")
    runs = [load_run(d) for d in run_dirs]
    out = Path(out_dir)
    tables = _ordered(result_tables(runs), stat)
    written = _write_tables(tables, out / "tables", chosen)
    if "html" not in chosen:
        return out

    labels = run_labels(runs)
    styles = metric_styles(dict.fromkeys(name for run in runs for name in run.metrics))
    performance = []
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        spec = performance_spec(run, GROUPS[0], stat, styles)
        if spec is not None:
            spec["filename"] = f"run{i + 1}_all"
        performance.append(Chart(f"perf-run{i + 1}", label, spec, "No metric was evaluated."))
    problems = [
        f"{label}: {m.display_name} {m.status}" + (f": {m.reason}" if m.reason else "")
        for run, label in zip(runs, labels, strict=True)
        for m in run.metrics.values()
        if not m.ok
    ]
    problems += [
        f"{label}: {warning}"
        for run, label in zip(runs, labels, strict=True)
        for warning in run.warnings
    ]
    problems += [
        f"{label}: {len(run.failures)} item(s) could not be scored"
        for run, label in zip(runs, labels, strict=True)
        if run.failures
    ]
    facts = [
        dict([("Protocol", protocol_line(run)), *_dataset_facts(run), *_protocol_facts(run)])
        for run in runs
    ]
    run_facts = [(name, [f[name] for f in facts]) for name in facts[0]]
    charts_used = any(c.spec is not None for c in performance)
    text = render(
        "comparison.html.j2",
        protocol=shared_protocol(runs),
        small_mark=SMALL_MARK,
        footer=f"Built by iqabench {__version__} from the summary.json and scores.csv of each "
        "run folder; building a comparison computes no score.",
        title="iqabench comparison: " + " vs ".join(labels),
        version=__version__,
        runs=runs,
        labels=labels,
        stat_label=STAT_LABELS[stat],
        run_facts=run_facts,
        problems=problems,
        performance=performance,
        tables=tables,
        exports=[p.relative_to(out).as_posix() for p in written],
        has_figures=False,
        charts_used=charts_used,
        plotly_js=plotly_js() if charts_used else "",
    )
    return _write(out / "comparison.html", text)


def protocol_line(run: Run) -> str:
    """The run's protocol in one sentence, for the report's header and comparisons."""
    if run.default_protocol == "cross-dataset":
        train = run.train_dataset
        where = f"{train.display_name} ({train.n_images} images)" if train else "another dataset"
        return (
            f"cross-dataset: trainable metrics trained on {where}, every metric tested on "
            f"every image of {run.label}"
        )
    if run.default_protocol == "splits":
        return (
            f"within-dataset: every metric on the same {run.protocol.get('splits')} "
            "content-disjoint split test sets"
        )
    return "within-dataset: training-free metrics on every image"


def _dataset_facts(run: Run) -> list[tuple[str, str]]:
    ds = run.dataset
    types = ", ".join(f"{distortion_name(d)} ({d})" for d in ds.distortions) or "none recorded"
    facts = [
        ("Dataset", f"{ds.display_name} ({ds.name})"),
        ("Root", ds.root),
        ("Images", str(ds.n_images)),
        ("Scenes", str(ds.n_contents)),
        ("Distortion types", types),
        ("Ground truth", _ground_truth(run)),
        ("Fingerprint", _fingerprint(ds)),
        ("Metrics evaluated", f"{len(run.evaluated)} of {len(run.metrics)}"),
    ]
    train = run.train_dataset
    if train is not None:
        facts.append(
            (
                "Trained on",
                f"{train.display_name} ({train.name}; {train.n_images} images, "
                f"{train.n_contents} scenes; root {train.root}; fingerprint "
                f"{_fingerprint(train)})",
            )
        )
    return facts


def _fingerprint(dataset: DatasetInfo) -> str:
    """The first 16 hex digits of a dataset's fingerprint (the whole one is in summary.json)."""
    return dataset.fingerprint[:16] if dataset.fingerprint else "not recorded"


def _ground_truth(run: Run) -> str:
    ds = run.dataset
    text = subjective_label(run)
    if ds.score_type and ds.score_type != ds.score_label:
        text += f" ({ds.score_type})"
    return text + ("" if ds.higher_is_better else "; published lower-is-better")


def _protocol_facts(run: Run) -> list[tuple[str, str]]:
    p, t, c = run.protocol, run.timing, run.counts
    splits = p.get("splits", 0)
    if run.default_protocol == "cross-dataset":
        split_text = (
            "none: trainable metrics fitted once on the whole training dataset, "
            f"{100 * float(p.get('validation_fraction', 0.2)):.0f}% of its scenes held out "
            "for a learned metric's model selection"
        )
    elif splits:
        split_text = (
            f"{splits} {p.get('split_mode', '')} splits, "
            f"{100 * float(p.get('train_fraction', 0)):.0f}% of scenes for training"
        )
    else:
        split_text = "none (training-free metrics only)"
    tables = {
        "splits": "every metric on the same split test sets (median, central 95% of the split "
        "values)",
        "cross-dataset": "every metric on every test image (95% bootstrap intervals over test "
        "images)",
    }.get(run.default_protocol, "every image (training-free metrics)")
    bootstrap = (
        f"{p.get('bootstrap')} bootstrap resamples over images" if p.get("bootstrap") else "none"
    )
    return [
        ("Splits", split_text),
        ("Tables and charts", tables),
        ("Intervals on all images", bootstrap),
        (
            "Small sample",
            f"fewer than {run.min_test_items} test images: greyed, marked {SMALL_MARK}, never bold",
        ),
        ("Seed", str(p.get("seed", "–"))),
        ("Created", run.created or "–"),
        ("Time taken", duration(t.get("seconds"))),
        (
            "Scores",
            f"{c.get('scored', 0)} computed, {c.get('reused', 0)} reused, "
            f"{c.get('failed', 0)} failed",
        ),
        ("iqabench", run.iqabench_version or "–"),
    ]
