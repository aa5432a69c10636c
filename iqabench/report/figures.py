"""Figures: interactive plotly specifications for the HTML report and static matplotlib exports.

Both renderings draw the same data with the same colour and marker per metric (assigned in the
run's metric order) and the same colour per distortion type, so a figure in a paper matches the
HTML report. Spider diagrams have one axis per distortion type; with fewer than three types a
polygon is meaningless and a grouped bar chart is drawn instead (and the report says so).
Plotly specifications are plain JSON-ready dicts; text in them is HTML-escaped because plotly
reads its labels as a small subset of HTML.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from .results import STAT_LABELS, MetricResult, Run, distortion_name

#: Statistics a spider diagram can show (RMSE is in score units, not comparable across axes).
SPIDER_STATS: tuple[str, ...] = ("srocc", "plcc", "krocc")
#: Colour-blind-safe metric colours (Okabe and Ito, with two darker additions).
METRIC_COLOURS: tuple[str, ...] = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#882255",
    "#444444",
)
#: (plotly symbol, matplotlib marker) pairs; 7 markers and 8 colours give 56 distinct styles.
METRIC_MARKERS: tuple[tuple[str, str], ...] = (
    ("circle", "o"),
    ("square", "s"),
    ("diamond", "D"),
    ("triangle-up", "^"),
    ("triangle-down", "v"),
    ("pentagon", "p"),
    ("x", "X"),
)
DISTORTION_COLOURS: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
NO_TYPE = "(no type)"
PNG_DPI = 300


@dataclass(frozen=True)
class Group:
    """A set of metric families that gets its own spider diagram."""

    key: str
    title: str
    families: frozenset[str] | None

    def select(self, run: Run) -> list[MetricResult]:
        """The run's evaluated metrics in this group, in run order."""
        return [m for m in run.evaluated if self.families is None or m.family in self.families]


GROUPS: tuple[Group, ...] = (
    Group("all", "All metrics", None),
    Group("fr", "Full-reference metrics (TR-FR and DL-FR)", frozenset({"TR-FR", "DL-FR"})),
    Group("tr-nr", "Traditional no-reference metrics (TR-NR)", frozenset({"TR-NR"})),
    Group("dl-nr", "Deep-learning no-reference metrics (DL-NR)", frozenset({"DL-NR"})),
)


@dataclass(frozen=True)
class Style:
    """How one metric is drawn everywhere."""

    colour: str
    symbol: str
    marker: str


def metric_styles(names: Iterable[str]) -> dict[str, Style]:
    """A fixed style per metric name, by position.

    Pass every metric of the run, skipped ones included, so that a metric keeps its colour
    whichever others were evaluated.
    """
    styles = {}
    for i, name in enumerate(names):
        symbol, marker = METRIC_MARKERS[i % len(METRIC_MARKERS)]
        styles[name] = Style(METRIC_COLOURS[i % len(METRIC_COLOURS)], symbol, marker)
    return styles


def distortion_colours(run: Run) -> dict[str, str]:
    """A colour per distortion code, in the dataset's order (items without a type in grey)."""
    colours = {
        code: DISTORTION_COLOURS[i % len(DISTORTION_COLOURS)]
        for i, code in enumerate(run.dataset.distortions)
    }
    colours[""] = "#999999"
    return colours


def radial_range(values: Iterable[float]) -> tuple[float, float]:
    """An axis range that spreads the data out: padded, snapped to 0.05, within [-1, 1]."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    pad = max(0.02, 0.1 * (hi - lo))
    lo = max(-1.0, math.floor((lo - pad) * 20) / 20)
    hi = min(1.0, math.ceil((hi + pad) * 20) / 20)
    if hi - lo < 0.1:
        lo = max(-1.0, hi - 0.1)
    return round(lo, 2), round(hi, 2)


def is_spider(run: Run) -> bool:
    """True when the dataset has enough distortion types for a spider diagram (three or more)."""
    return len(run.dataset.distortions) >= 3


def _json(value: float) -> float | None:
    return float(f"{value:.6g}") if value is not None and math.isfinite(value) else None


def _text(value: str) -> str:
    """Text for a plotly label, shown literally.

    Plotly parses labels as a subset of HTML (so ``<``, ``>`` and ``&`` become entities) and
    typesets text between dollar signs as LaTeX (so ``$`` becomes ``&#36;``).
    """
    return html.escape(value, quote=False).replace("$", "&#36;")


def _values(metrics: Sequence[MetricResult], types: Sequence[str], stat: str) -> list[list[float]]:
    return [[m.value(stat, t) for t in types] for m in metrics]


def _chart_title(group: Group, stat: str) -> str:
    return f"{STAT_LABELS[stat]} per distortion type: {group.title}"


def _plotly_title(group: Group, stat: str) -> str:
    return f"{STAT_LABELS[stat]} per distortion type<br><sup>{_text(group.title)}</sup>"


def performance_spec(
    run: Run, group: Group, stat: str, styles: dict[str, Style]
) -> dict[str, Any] | None:
    """Plotly spider (or, with fewer than three types, grouped bar) chart of one group.

    A menu switches between SROCC, PLCC and KROCC; ``stat`` is shown first. None when the
    group has no evaluated metric.
    """
    metrics = group.select(run)
    if not metrics:
        return None
    types = run.dataset.distortions
    names = [_text(distortion_name(t)) for t in types]
    spider = is_spider(run)
    per_stat = {s: _values(metrics, types, s) for s in SPIDER_STATS}
    ranges = {s: radial_range(v for row in per_stat[s] for v in row) for s in SPIDER_STATS}

    def series(rows: list[list[float]]) -> list[list[float | None]]:
        closed = [row + row[:1] for row in rows] if spider else rows
        return [[_json(v) for v in row] for row in closed]

    traces = []
    for metric, row in zip(metrics, series(per_stat[stat]), strict=True):
        style = styles[metric.name]
        trace: dict[str, Any] = {
            "name": _text(metric.display_name),
            "marker": {"color": style.colour, "symbol": style.symbol, "size": 8},
            "hovertemplate": "%{" + ("theta" if spider else "x") + "}: "
            "%{" + ("r" if spider else "y") + ":.3f}<extra>%{fullData.name}</extra>",
        }
        if spider:
            trace.update(
                type="scatterpolar",
                mode="lines+markers",
                r=row,
                theta=names + names[:1],
                line={"color": style.colour, "width": 2},
            )
        else:
            trace.update(type="bar", x=names, y=row)
        traces.append(trace)

    value_key, range_key = ("r", "polar.radialaxis.range") if spider else ("y", "yaxis.range")
    buttons = [
        {
            "label": STAT_LABELS[s],
            "method": "update",
            "args": [
                {value_key: series(per_stat[s])},
                {range_key: list(ranges[s]), "title.text": _plotly_title(group, s)},
            ],
        }
        for s in SPIDER_STATS
    ]
    layout: dict[str, Any] = {
        "title": {"text": _plotly_title(group, stat), "x": 0.02, "y": 0.97, "font": {"size": 15}},
        "height": 520 + 18 * len(metrics),
        "margin": {"l": 50, "r": 50, "t": 90, "b": 30},
        "legend": {"orientation": "h", "x": 0.0, "y": -0.08, "yanchor": "top"},
        "showlegend": True,
        "paper_bgcolor": "#ffffff",
        "updatemenus": [
            {
                "type": "buttons",
                "direction": "right",
                "active": SPIDER_STATS.index(stat),
                "showactive": True,
                "x": 1.0,
                "xanchor": "right",
                "y": 1.0,
                "yanchor": "bottom",
                "pad": {"b": 30},
                "buttons": buttons,
            }
        ],
    }
    if spider:
        layout["polar"] = {
            "radialaxis": {"range": list(ranges[stat]), "tickformat": ".2f", "angle": 90},
            "angularaxis": {"direction": "clockwise", "rotation": 90},
        }
    else:
        layout["barmode"] = "group"
        layout["yaxis"] = {"range": list(ranges[stat]), "title": {"text": STAT_LABELS[stat]}}
    return {"data": traces, "layout": layout}


def _mapping(metric: MetricResult) -> Any | None:
    from ..mapping import MappingFit

    stats = metric.overall
    if stats is None or stats.mapping_params is None or stats.mapping_kind is None:
        return None
    domain = stats.mapping_domain or (math.nan, math.nan)
    return MappingFit(stats.mapping_kind, stats.mapping_params, domain, stats.mapping_converged)


def fitted_curve(metric: MetricResult, scores: Sequence[float]) -> tuple[list[float], list[float]]:
    """The stored mapping drawn over the range of the raw scores (empty if there is none).

    The mapping was fitted on oriented scores (negated for lower-is-better training-free
    metrics; predictions of trainable metrics are already higher-is-better), so it is evaluated
    on the oriented grid and drawn against the raw one.
    """
    import numpy as np

    mapping = _mapping(metric)
    finite = [s for s in scores if math.isfinite(s)]
    if mapping is None or len(finite) < 2:
        return [], []
    grid = np.linspace(min(finite), max(finite), 200)
    sign = 1.0 if metric.by_splits or metric.higher_is_better else -1.0
    mapped = mapping.predict(sign * grid)
    return [float(v) for v in grid], [float(v) for v in mapped]


def score_label(metric: MetricResult) -> str:
    """The x-axis label of a metric's scatter plot."""
    if metric.by_splits:
        return f"{metric.display_name} prediction (cross-validated)"
    return f"{metric.display_name} score"


def subjective_label(run: Run) -> str:
    """The y-axis label of scatter plots."""
    return "MOS" if run.dataset.higher_is_better else "Quality (MOS oriented, higher is better)"


def _curve_name(metric: MetricResult) -> str:
    mapping = _mapping(metric)
    return "logistic fit" if mapping is not None and mapping.kind == "logistic5" else "linear fit"


def scatter_spec(run: Run, metric: MetricResult, colours: dict[str, str]) -> dict[str, Any]:
    """Plotly scatter of a metric's scores against MOS by distortion type, with the fit."""
    points = run.points(metric.name)
    traces: list[dict[str, Any]] = []
    for code in [*run.dataset.distortions, ""]:
        chosen = [i for i, d in enumerate(points.distortion) if d == code]
        if not chosen:
            continue
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": _text(distortion_name(code) if code else NO_TYPE),
                "x": [_json(points.score[i]) for i in chosen],
                "y": [_json(points.quality[i]) for i in chosen],
                "text": [_text(points.item_ids[i]) for i in chosen],
                "marker": {"color": colours.get(code, "#999999"), "size": 6, "opacity": 0.75},
                "hovertemplate": "%{text}<br>score %{x:.4g}<br>MOS %{y:.4g}"
                "<extra>%{fullData.name}</extra>",
            }
        )
    xs, ys = fitted_curve(metric, points.score)
    if xs:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": _curve_name(metric),
                "x": [_json(v) for v in xs],
                "y": [_json(v) for v in ys],
                "line": {"color": "#222222", "width": 2},
                "hoverinfo": "skip",
            }
        )
    overall = metric.overall
    subtitle = (
        f"SROCC {overall.srocc:.3f}, PLCC {overall.plcc:.3f}, n = {overall.n}" if overall else ""
    )
    return {
        "data": traces,
        "layout": {
            "title": {"text": f"{_text(metric.display_name)}<br><sup>{subtitle}</sup>"},
            "height": 440,
            "margin": {"l": 60, "r": 20, "t": 70, "b": 40},
            "xaxis": {"title": {"text": _text(score_label(metric))}, "zeroline": False},
            "yaxis": {"title": {"text": _text(subjective_label(run))}, "zeroline": False},
            "legend": {"orientation": "h", "x": 0.0, "y": -0.2, "yanchor": "top"},
        },
    }


# ---------------------------------------------------------------------------------------------
# Static exports (matplotlib, no pyplot: figures are drawn with the Agg canvas)


def _mpl_text(value: str) -> str:
    """Text that matplotlib shows literally (no mathtext)."""
    return value.replace("$", r"\$")


def _rc() -> dict[str, Any]:
    return {
        "svg.hashsalt": "iqabench",
        "font.size": 9,
        "axes.titlesize": 10,
        "legend.fontsize": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def _save(fig: Any, base: Path, formats: Sequence[str]) -> list[Path]:
    """Save ``fig`` as ``base.<ext>`` for each image format, with fixed metadata."""
    written = []
    for ext in formats:
        path = base.with_suffix(f".{ext}")
        meta = (
            {"Creator": f"iqabench {__version__}", "Date": None}
            if ext == "svg"
            else {"Software": f"iqabench {__version__}"}
        )
        fig.savefig(path, dpi=PNG_DPI, bbox_inches="tight", metadata=meta)
        written.append(path)
    return written


def save_performance_figures(
    run: Run, stat: str, out_dir: Path, formats: Sequence[str]
) -> list[Path]:
    """PNG/SVG spider diagrams (or bar charts) of ``stat``, one per non-empty group.

    Files are ``spider_<group>_<stat>.<ext>`` (``bars_<group>_<stat>.<ext>`` with fewer than
    three distortion types).
    """
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    styles = metric_styles(run.metrics)
    types = run.dataset.distortions
    labels = [_mpl_text(distortion_name(t)) for t in types]
    spider = is_spider(run)
    written: list[Path] = []
    with matplotlib.rc_context(_rc()):
        for group in GROUPS:
            metrics = group.select(run)
            if not metrics:
                continue
            values = _values(metrics, types, stat)
            lo, hi = radial_range(v for row in values for v in row)
            fig = Figure(figsize=(6.8, 4.6))
            if spider:
                ax = fig.add_subplot(projection="polar")
                angles = np.linspace(0.0, 2.0 * np.pi, len(types), endpoint=False)
                ax.set_theta_offset(np.pi / 2.0)
                ax.set_theta_direction(-1)
                for metric, row in zip(metrics, values, strict=True):
                    style = styles[metric.name]
                    ax.plot(
                        np.append(angles, angles[0]),
                        np.append(row, row[0]),
                        color=style.colour,
                        marker=style.marker,
                        markersize=5,
                        linewidth=1.5,
                        label=_mpl_text(metric.display_name),
                    )
                ax.set_xticks(angles, labels)
                ax.set_ylim(lo, hi)
                ax.tick_params(axis="y", labelsize=7)
                ax.grid(True, linewidth=0.5, alpha=0.6)
            else:
                ax = fig.add_subplot()
                width = 0.8 / len(metrics)
                for k, (metric, row) in enumerate(zip(metrics, values, strict=True)):
                    style = styles[metric.name]
                    ax.bar(
                        np.arange(len(types)) + (k - (len(metrics) - 1) / 2) * width,
                        row,
                        width,
                        color=style.colour,
                        label=_mpl_text(metric.display_name),
                    )
                ax.set_xticks(np.arange(len(types)), labels)
                ax.set_ylim(lo, hi)
                ax.set_ylabel(STAT_LABELS[stat])
            ax.set_title(_mpl_text(_chart_title(group, stat)), pad=18)
            ax.legend(loc="upper left", bbox_to_anchor=(1.08, 1.0), frameon=False)
            prefix = "spider" if spider else "bars"
            written += _save(fig, out_dir / f"{prefix}_{group.key}_{stat}", formats)
    return written


def save_scatter_grid(run: Run, out_dir: Path, formats: Sequence[str]) -> list[Path]:
    """PNG/SVG grid of every evaluated metric's scatter plot (``scatter_grid.<ext>``)."""
    import matplotlib
    from matplotlib.figure import Figure

    metrics = run.evaluated
    if not metrics:
        return []
    colours = distortion_colours(run)
    cols = min(4, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    with matplotlib.rc_context(_rc()):
        fig = Figure(figsize=(3.0 * cols, 2.7 * rows + 0.5), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        handles: dict[str, Any] = {}
        for ax, metric in zip(axes.flat, metrics, strict=False):
            points = run.points(metric.name)
            for code in [*run.dataset.distortions, ""]:
                chosen = [i for i, d in enumerate(points.distortion) if d == code]
                if not chosen:
                    continue
                handles[code] = ax.scatter(
                    [points.score[i] for i in chosen],
                    [points.quality[i] for i in chosen],
                    s=7,
                    color=colours.get(code, "#999999"),
                    alpha=0.75,
                    linewidths=0,
                    label=_mpl_text(distortion_name(code) if code else NO_TYPE),
                )
            xs, ys = fitted_curve(metric, points.score)
            if xs:
                ax.plot(xs, ys, color="#222222", linewidth=1.2)
            title = _mpl_text(metric.display_name)
            if metric.overall is not None:
                title += f"\nSROCC {metric.overall.srocc:.3f}, PLCC {metric.overall.plcc:.3f}"
            ax.set_title(title)
            ax.set_xlabel(_mpl_text(score_label(metric)))
            ax.set_ylabel(_mpl_text(subjective_label(run)))
        for ax in list(axes.flat)[len(metrics) :]:
            ax.set_axis_off()
        fig.legend(
            list(handles.values()),
            [h.get_label() for h in handles.values()],
            loc="outside lower center",
            ncols=min(6, len(handles)),
            frameon=False,
            markerscale=2.0,
        )
        return _save(fig, out_dir / "scatter_grid", formats)
