"""Performance charts: interactive plotly specifications and static matplotlib exports.

Both renderings draw the same figures (the run's default protocol, see
:mod:`iqabench.report.results`) with the same style per metric (:mod:`.palette`), so a figure
in a paper matches the HTML report. With three or more distortion types a spider diagram has
one axis per type, in the dataset card's order, on a fixed radial range of 0 to 1 for every
statistic: a negative value (a metric that disagrees with people) is drawn at 0 with a cross
and its true value in the hover text, and a small-sample value with a hollow marker. With one
or two types, grouped bars per type and overall; with none (e.g. TIIQAD, authentic
distortions), one bar per metric overall. Bars carry their 95% interval as error bars and are
hatched when they are small samples. Plotly specifications are plain JSON-ready dicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .palette import Style, metric_styles, mpl_text, plotly_text
from .render import mpl_rc, save_figure
from .results import STAT_LABELS, Figure, MetricResult, Run, distortion_name
from .tables import interval_text, n_text

#: Statistics a chart can show (RMSE is in score units, not comparable across axes).
SPIDER_STATS: tuple[str, ...] = ("srocc", "plcc", "krocc")
#: The fixed radial range of every spider diagram.
RADIAL_RANGE: tuple[float, float] = (0.0, 1.0)
OVERALL = "Overall"


@dataclass(frozen=True)
class Group:
    """A set of metric families that gets its own chart."""

    key: str
    title: str
    families: frozenset[str] | None

    def select(self, run: Run) -> list[MetricResult]:
        """The run's metrics in this group with figures under its default protocol."""
        chosen = run.under(run.default_protocol)
        return [m for m in chosen if self.families is None or m.family in self.families]


GROUPS: tuple[Group, ...] = (
    Group("all", "All metrics", None),
    Group("fr", "Full-reference metrics (TR-FR and DL-FR)", frozenset({"TR-FR", "DL-FR"})),
    Group("tr-nr", "Traditional no-reference metrics (TR-NR)", frozenset({"TR-NR"})),
    Group("dl-nr", "Deep-learning no-reference metrics (DL-NR)", frozenset({"DL-NR"})),
)


def chart_kind(run: Run) -> str:
    """``spider`` (three or more types), ``bars`` (one or two) or ``overall`` (none)."""
    n = len(run.dataset.distortions)
    return "spider" if n >= 3 else "bars" if n else "overall"


def chart_prefix(run: Run) -> str:
    """The file name prefix of a run's static performance figures."""
    return "spider" if chart_kind(run) == "spider" else "bars"


def _categories(run: Run) -> list[str | None]:
    """Distortion codes of the chart (None: overall)."""
    kind = chart_kind(run)
    types: list[str | None] = list(run.dataset.distortions)
    return types if kind == "spider" else [*types, None]


def _category_name(code: str | None) -> str:
    return OVERALL if code is None else distortion_name(code)


def _figures(run: Run, metrics: Sequence[MetricResult], stat: str) -> list[list[Figure]]:
    protocol = run.default_protocol
    return [[m.figure(stat, code, protocol) for code in _categories(run)] for m in metrics]


def protocol_text(run: Run) -> str:
    """What the chart's values are, in a few words."""
    if run.default_protocol == "splits":
        return f"median over {run.protocol.get('splits')} content-disjoint splits' test sets"
    if run.default_protocol == "cross-dataset":
        return f"all test images, {run.protocol_label}"
    return "all images"


def _hover(stat: str, figure: Figure) -> str:
    if figure.absent:
        return f"{STAT_LABELS[stat]}: no value"
    text = f"{STAT_LABELS[stat]} {figure.value:.3f}"
    detail = " ".join(p for p in (interval_text(figure), n_text(figure)) if p)
    text += f"<br>{detail}" if detail else ""
    if figure.value < RADIAL_RANGE[0]:
        text += "<br>negative: drawn at 0"
    if figure.small_sample:
        text += "<br>† small sample"
    return text


def _json(value: float | None) -> float | None:
    return float(f"{value:.6g}") if value is not None and math.isfinite(value) else None


def _title(run: Run, group: Group, stat: str) -> tuple[str, str]:
    """Title and subtitle of a performance chart."""
    what = "per distortion type" if chart_kind(run) != "overall" else "overall"
    return f"{STAT_LABELS[stat]} {what}", f"{group.title}; {protocol_text(run)}"


def _plotly_title(run: Run, group: Group, stat: str) -> str:
    title, subtitle = _title(run, group, stat)
    return f"{title}<br><sup>{plotly_text(subtitle)}</sup>"


# -- plotly -----------------------------------------------------------------------------------


def _spider_values(figures: list[Figure], style: Style, stat: str) -> dict[str, list[Any]]:
    """Radii (clamped to the fixed range), marker symbols and hover texts, closed."""
    lo, hi = RADIAL_RANGE
    closed = [*figures, figures[0]]
    return {
        "r": [None if f.absent else _json(min(max(f.value, lo), hi)) for f in closed],
        "marker.symbol": [
            "x"
            if not f.absent and f.value < lo
            else (f"{style.symbol}-open" if f.small_sample else style.symbol)
            for f in closed
        ],
        "customdata": [_hover(stat, f) for f in closed],
    }


def _bar_values(figures: list[Figure], stat: str, axis: str = "y") -> dict[str, list[Any]]:
    """Bar lengths along ``axis``, error bars from the 95% intervals, hatching of small
    samples, and hover texts."""

    def error(f: Figure, side: int) -> float | None:
        if f.absent or f.interval is None:
            return None
        return _json(abs(f.interval[side] - f.value))

    return {
        axis: [None if f.absent else _json(f.value) for f in figures],
        f"error_{axis}.array": [error(f, 1) for f in figures],
        f"error_{axis}.arrayminus": [error(f, 0) for f in figures],
        "marker.pattern.shape": ["/" if f.small_sample else "" for f in figures],
        "customdata": [_hover(stat, f) for f in figures],
    }


def _traces(
    run: Run, metrics: Sequence[MetricResult], stat: str, styles: dict[str, Style]
) -> list[dict[str, Any]]:
    kind = chart_kind(run)
    names = [plotly_text(_category_name(c)) for c in _categories(run)]
    traces = []
    for metric, figures in zip(metrics, _figures(run, metrics, stat), strict=True):
        style = styles[metric.name]
        label = plotly_text(metric.display_name)
        trace: dict[str, Any] = {
            "name": label,
            "marker": {"color": style.colour, "size": 9, "line": {"color": style.colour}},
            "hovertemplate": "%{customdata}<extra>%{fullData.name}</extra>",
        }
        if kind == "spider":
            values = _spider_values(figures, style, stat)
            trace.update(
                type="scatterpolar",
                mode="lines+markers",
                r=values["r"],
                theta=[*names, names[0]],
                customdata=values["customdata"],
                line={"color": style.colour, "width": 2},
            )
            trace["marker"]["symbol"] = values["marker.symbol"]
        else:
            # Overall only: one horizontal bar per metric, its name beside it.
            value, category = ("x", "y") if kind == "overall" else ("y", "x")
            values = _bar_values(figures, stat, value)
            trace.update(
                {
                    "type": "bar",
                    "orientation": "h" if kind == "overall" else "v",
                    category: [label] if kind == "overall" else names,
                    value: values[value],
                    "customdata": values["customdata"],
                    f"error_{value}": {
                        "type": "data",
                        "array": values[f"error_{value}.array"],
                        "arrayminus": values[f"error_{value}.arrayminus"],
                        "color": "#333333",
                        "thickness": 1.2,
                    },
                }
            )
            trace["marker"]["pattern"] = {"shape": values["marker.pattern.shape"]}
        traces.append(trace)
    return traces


def _restyle(run: Run, metrics: Sequence[MetricResult], stat: str, styles: dict[str, Style]):  # noqa: ANN202
    """What a statistic button changes in every trace (plotly ``update`` data arguments)."""
    per_trace = []
    for metric, figures in zip(metrics, _figures(run, metrics, stat), strict=True):
        if chart_kind(run) == "spider":
            per_trace.append(_spider_values(figures, styles[metric.name], stat))
        else:
            per_trace.append(
                _bar_values(figures, stat, "x" if chart_kind(run) == "overall" else "y")
            )
    return {key: [values[key] for values in per_trace] for key in per_trace[0]}


def value_axis(run: Run, metrics: Sequence[MetricResult]) -> list[float]:
    """The bar charts' fixed value range: 0 (or below the lowest value, in steps of 0.2) to 1.

    One range for all statistics, so that switching statistic does not move the axis.
    """
    lowest = min(
        (
            f.value
            for s in SPIDER_STATS
            for row in _figures(run, metrics, s)
            for f in row
            if not f.absent
        ),
        default=0.0,
    )
    return [min(0.0, math.floor(lowest * 5.0) / 5.0), 1.0]


def performance_spec(
    run: Run, group: Group, stat: str, styles: dict[str, Style]
) -> dict[str, Any] | None:
    """Plotly spider (or bar) chart of one group; a menu switches between SROCC, PLCC and
    KROCC, ``stat`` shown first. None when the group has no metric with figures."""
    metrics = group.select(run)
    if not metrics:
        return None
    kind = chart_kind(run)
    buttons = [
        {
            "label": STAT_LABELS[s],
            "method": "update",
            "args": [
                _restyle(run, metrics, s, styles),
                {"title.text": _plotly_title(run, group, s)},
            ],
        }
        for s in SPIDER_STATS
    ]
    legend_rows = math.ceil(len(metrics) / 4)
    height = 160 + 30 * len(metrics) if kind == "overall" else 520 + 24 * legend_rows
    layout: dict[str, Any] = {
        "title": {
            "text": _plotly_title(run, group, stat),
            "x": 0.02,
            "yref": "container",
            "y": 0.975,
            "yanchor": "top",
            "pad": {"t": 6},
            "font": {"size": 15},
        },
        "height": max(height, 360),
        "margin": {"l": 50, "r": 50, "t": 100, "b": 40},
        "legend": {"orientation": "h", "x": 0.0, "y": -0.08, "yanchor": "top"},
        "showlegend": kind != "overall",
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
                "pad": {"b": 36},
                "buttons": buttons,
            }
        ],
    }
    if kind == "spider":
        layout["polar"] = {
            "radialaxis": {
                "range": list(RADIAL_RANGE),
                "tickvals": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
                "tickformat": ".1f",
                "angle": 90,
            },
            "angularaxis": {"direction": "clockwise", "rotation": 90},
        }
    elif kind == "bars":
        layout["barmode"] = "group"
        layout["yaxis"] = {"range": value_axis(run, metrics), "zeroline": True}
    else:
        layout["barmode"] = "overlay"
        layout["xaxis"] = {"range": value_axis(run, metrics), "zeroline": True}
        layout["yaxis"] = {"autorange": "reversed", "automargin": True}
    return {"data": _traces(run, metrics, stat, styles), "layout": layout}


# -- matplotlib -------------------------------------------------------------------------------


def _draw_spider(fig: Any, run: Run, metrics: Sequence[MetricResult], stat: str, styles) -> Any:  # noqa: ANN001
    import numpy as np

    ax = fig.add_subplot(projection="polar")
    names = [mpl_text(_category_name(c)) for c in _categories(run)]
    angles = np.linspace(0.0, 2.0 * np.pi, len(names), endpoint=False)
    ax.set_theta_offset(np.pi / 2.0)
    ax.set_theta_direction(-1)
    lo, hi = RADIAL_RANGE
    for metric, figures in zip(metrics, _figures(run, metrics, stat), strict=True):
        style = styles[metric.name]
        radii = np.array([np.nan if f.absent else min(max(f.value, lo), hi) for f in figures])
        ax.plot(
            np.append(angles, angles[0]),
            np.append(radii, radii[0]),
            color=style.colour,
            linewidth=1.5,
            label=mpl_text(metric.display_name),
        )
        for angle, radius, f in zip(angles, radii, figures, strict=True):
            if f.absent:
                continue
            negative = f.value < lo
            ax.plot(
                angle,
                radius,
                marker="x" if negative else style.marker,
                markersize=6 if negative else 5,
                color=style.colour,
                markerfacecolor="white" if f.small_sample and not negative else style.colour,
            )
    ax.set_xticks(angles, names)
    ax.set_ylim(lo, hi)
    ax.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(True, linewidth=0.5, alpha=0.6)
    return ax


def _draw_bars(fig: Any, run: Run, metrics: Sequence[MetricResult], stat: str, styles) -> Any:  # noqa: ANN001
    import numpy as np

    ax = fig.add_subplot()
    kind = chart_kind(run)
    rows = _figures(run, metrics, stat)
    if kind == "overall":
        return _draw_overall_bars(ax, metrics, rows, styles, value_axis(run, metrics), stat)
    else:
        categories = _categories(run)
        width = 0.8 / len(metrics)
        positions = [
            np.arange(len(categories)) + (k - (len(metrics) - 1) / 2) * width
            for k in range(len(metrics))
        ]
        ax.set_xticks(range(len(categories)), [mpl_text(_category_name(c)) for c in categories])
    for metric, figures, where in zip(metrics, rows, positions, strict=True):
        style = styles[metric.name]
        heights = [np.nan if f.absent else f.value for f in figures]
        errors = np.array(
            [
                [abs(f.value - f.interval[0]), abs(f.interval[1] - f.value)]
                if not f.absent and f.interval is not None
                else [np.nan, np.nan]
                for f in figures
            ]
        ).T
        bars = ax.bar(
            where, heights, width, color=style.colour, label=mpl_text(metric.display_name)
        )
        ax.errorbar(where, heights, yerr=errors, fmt="none", ecolor="#333333", linewidth=1)
        for bar, f in zip(bars, figures, strict=True):
            if f.small_sample:
                bar.set_hatch("//")
                bar.set_alpha(0.6)
    ax.set_ylim(*value_axis(run, metrics))
    ax.axhline(0.0, color="#555555", linewidth=0.8)
    ax.set_ylabel(STAT_LABELS[stat])
    return ax


def _draw_overall_bars(
    ax: Any,
    metrics: Sequence[MetricResult],
    rows: list[list[Figure]],
    styles: dict[str, Style],
    limits: list[float],
    stat: str,
) -> Any:
    """One horizontal bar per metric with its 95% interval (datasets without types)."""
    for k, (metric, (figure,)) in enumerate(zip(metrics, rows, strict=True)):
        if figure.absent:
            continue
        error = None
        if figure.interval is not None:
            error = [
                [abs(figure.value - figure.interval[0])],
                [abs(figure.interval[1] - figure.value)],
            ]
        bar = ax.barh(
            k,
            figure.value,
            0.7,
            color=styles[metric.name].colour,
            xerr=error,
            error_kw={"ecolor": "#333333", "linewidth": 1, "capsize": 3},
        )
        if figure.small_sample:
            bar[0].set_hatch("//")
            bar[0].set_alpha(0.6)
    ax.set_yticks(range(len(metrics)), [mpl_text(m.display_name) for m in metrics])
    ax.invert_yaxis()
    ax.set_xlim(*limits)
    ax.axvline(0.0, color="#555555", linewidth=0.8)
    ax.set_xlabel(STAT_LABELS[stat])
    return ax


def save_performance_figures(
    run: Run, stat: str, out_dir: Path, formats: Sequence[str]
) -> list[Path]:
    """PNG/SVG spider diagrams (or bar charts) of ``stat``, one per non-empty group.

    Files are ``spider_<group>_<stat>.<ext>`` (``bars_<group>_<stat>.<ext>`` with fewer than
    three distortion types).
    """
    import matplotlib
    from matplotlib.figure import Figure as MplFigure

    styles = metric_styles(run.metrics)
    written: list[Path] = []
    with matplotlib.rc_context(mpl_rc()):
        for group in GROUPS:
            metrics = group.select(run)
            if not metrics:
                continue
            height = 1.2 + 0.3 * len(metrics) if chart_kind(run) == "overall" else 4.8
            fig = MplFigure(figsize=(7.2, height))
            draw = _draw_spider if chart_kind(run) == "spider" else _draw_bars
            ax = draw(fig, run, metrics, stat, styles)
            title, subtitle = _title(run, group, stat)
            ax.set_title(f"{mpl_text(title)}\n{mpl_text(subtitle)}", pad=18)
            if chart_kind(run) != "overall":
                ax.legend(
                    loc="upper left",
                    bbox_to_anchor=(1.08, 1.0),
                    frameon=False,
                    ncols=1 + len(metrics) // 18,
                )
            written += save_figure(
                fig, out_dir / f"{chart_prefix(run)}_{group.key}_{stat}", formats
            )
    return written
