"""The benchmark report: one self-contained HTML file per run, plus figures and tables for papers.

:func:`build_report` reads a run folder's ``summary.json`` and ``scores.csv`` (never the score
store) and writes, beside them, ``report.html`` (plotly inlined once, so it opens from disk with
no network), ``figures/`` (matplotlib PNG and SVG) and ``tables/`` (CSV, Markdown, LaTeX).
:func:`build_comparison` lays the tables of several runs side by side. No score is recomputed:
the only statistics computed here are the pairwise significance tests, from stored scores, by
:mod:`iqabench.evaluate`. See ``docs/report.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from .. import __version__
from ..errors import UserError
from .figures import (
    GROUPS,
    distortion_colours,
    is_spider,
    metric_styles,
    performance_spec,
    save_performance_figures,
    save_scatter_grid,
    scatter_spec,
    subjective_label,
)
from .html import Chart, duration, plotly_js, render
from .results import STAT_LABELS, Run, distortion_name, load_run
from .significance import significance, significance_table
from .tables import EXPORTERS, Table, result_tables, run_labels

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
    """The overall table, then the chosen statistic's per-type table, then the others."""
    lead = f"per_type_{stat}"
    return sorted(tables, key=lambda t: (t.key != "overall", t.key != lead))


def build_report(
    run_dir: str | Path, stat: str = "srocc", formats: Iterable[str] = FORMATS
) -> Path:
    """Build the report of the run folder ``run_dir`` from its stored results.

    Writes ``report.html``, ``figures/*.png|svg`` and ``tables/*.csv|md|tex`` (as ``formats``
    asks) into the run folder, and returns the path of ``report.html`` (of the run folder when
    no HTML was asked for). ``stat`` (srocc, plcc or krocc) is the statistic the spider
    diagrams show first and the only one exported as static spider figures.
    """
    chosen = _check(stat, formats)
    run = load_run(run_dir)
    out = run.path
    tables = _ordered(result_tables([run]), stat)
    sig = significance(run)
    sig_table = significance_table(sig) if sig is not None else None
    written = _write_tables([*tables, *([sig_table] if sig_table else [])], out / "tables", chosen)
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
            spec["filename"] = f"{'spider' if is_spider(run) else 'bars'}_{group.key}"
        note = f"No {group.title.lower()} were evaluated in this run."
        performance.append(Chart(f"perf-{group.key}", group.title, spec, note))
    colours = distortion_colours(run)
    scatters = []
    for i, metric in enumerate(run.evaluated):
        spec = scatter_spec(run, metric, colours)
        spec["filename"] = f"scatter_{i + 1}"
        scatters.append(Chart(f"scatter-{i + 1}", metric.display_name, spec))
    charts_used = any(c.spec is not None for c in [*performance, *scatters])
    not_evaluated = [m for m in run.metrics.values() if not m.ok]
    text = render(
        "report.html.j2",
        title=f"iqabench report: {run.label}",
        version=__version__,
        run=run,
        stat_label=STAT_LABELS[stat],
        spider=is_spider(run),
        dataset_facts=_dataset_facts(run),
        protocol_facts=_protocol_facts(run),
        performance=performance,
        tables=tables,
        scatters=scatters,
        subjective_label=subjective_label(run),
        significance=sig,
        significance_table=sig_table,
        not_evaluated=not_evaluated,
        n_problems=len(not_evaluated) + len(run.warnings) + len(run.failures),
        exports=[p.relative_to(out).as_posix() for p in written],
        has_figures=bool(images),
        charts_used=charts_used,
        plotly_js=plotly_js() if charts_used else "",
    )
    return _write(out / "report.html", text)


def build_comparison(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    stat: str = "srocc",
    formats: Iterable[str] = FORMATS,
) -> Path:
    """Lay the tables of several runs side by side in ``out_dir``.

    Writes ``comparison.html`` and ``tables/*.csv|md|tex`` (the image formats apply to single
    run reports and are ignored here) and returns the path of ``comparison.html`` (of
    ``out_dir`` when no HTML was asked for). Ranks are computed within each run's columns.
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
    facts = [dict(_dataset_facts(run) + _protocol_facts(run)) for run in runs]
    run_facts = [(name, [f[name] for f in facts]) for name in facts[0]]
    charts_used = any(c.spec is not None for c in performance)
    text = render(
        "comparison.html.j2",
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


def _dataset_facts(run: Run) -> list[tuple[str, str]]:
    ds = run.dataset
    types = ", ".join(f"{distortion_name(d)} ({d})" for d in ds.distortions) or "none recorded"
    return [
        ("Dataset", f"{ds.display_name} ({ds.name})"),
        ("Root", ds.root),
        ("Images", str(ds.n_images)),
        ("Scenes", str(ds.n_contents)),
        ("Distortion types", types),
        ("Subjective score", ds.score_type + ("" if ds.higher_is_better else ", lower is better")),
        ("Metrics evaluated", f"{len(run.evaluated)} of {len(run.metrics)}"),
    ]


def _protocol_facts(run: Run) -> list[tuple[str, str]]:
    p, t, c = run.protocol, run.timing, run.counts
    splits = p.get("splits", 0)
    split_text = (
        f"{splits} {p.get('split_mode', '')} splits, "
        f"{100 * float(p.get('train_fraction', 0)):.0f}% of scenes for training"
        if splits
        else "none (training-free metrics only)"
    )
    return [
        ("Splits", split_text),
        ("Seed", str(p.get("seed", "–"))),
        (
            "Confidence intervals",
            f"{100 * float(p.get('confidence', 0.95)):.0f}% bootstrap, "
            f"{p.get('bootstrap', 0)} resamples"
            if p.get("bootstrap")
            else "none",
        ),
        ("Created", run.created or "–"),
        ("Time taken", duration(t.get("seconds"))),
        (
            "Scores",
            f"{c.get('scored', 0)} computed, {c.get('reused', 0)} reused, "
            f"{c.get('failed', 0)} failed",
        ),
        ("iqabench", run.iqabench_version or "–"),
    ]
