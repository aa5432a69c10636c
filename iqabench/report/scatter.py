"""Scatter plots: each metric's scores against the ground truth, with the fitted mapping.

The interactive plotly scatter and the static matplotlib grid draw the same points: the raw
score of a training-free metric on every image, or a trainable metric's cross-validated
prediction (each item's prediction averaged over the splits where it was a test item), coloured
by distortion type, with the monotonic mapping stored in ``summary.json`` drawn over the
observed range. The y axis is labelled from the dataset card ("MOS", "ordinal quality"...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .palette import distortion_colours, mpl_text, plotly_text
from .render import mpl_rc, save_figure
from .results import MetricResult, Run, Stats, distortion_name

NO_TYPE = "(no type)"
#: How each mapping kind is named in legends.
CURVE_NAMES = {
    "logistic5": "monotonic 5-parameter logistic",
    "logistic4": "monotonic 4-parameter logistic",
    "linear": "rising line",
}


def _mapping(metric: MetricResult) -> Any | None:
    from ..mapping import MappingFit

    stats = metric.overall
    if stats is None or stats.mapping_params is None or stats.mapping_kind is None:
        return None
    domain = stats.mapping_domain or (math.nan, math.nan)
    return MappingFit(
        stats.mapping_kind,
        stats.mapping_params,
        domain,
        stats.mapping_converged,
        stats.mapping_note,
    )


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


def curve_name(metric: MetricResult) -> str:
    """The legend entry of the fitted mapping."""
    mapping = _mapping(metric)
    if mapping is None:
        return "mapping"
    if mapping.flat:
        return "flat: no rising mapping beats the mean"
    return CURVE_NAMES.get(mapping.kind, mapping.kind)


def score_label(metric: MetricResult) -> str:
    """The x-axis label of a metric's scatter plot."""
    if metric.by_splits:
        return f"{metric.display_name} prediction (cross-validated)"
    if metric.trained_elsewhere:
        return f"{metric.display_name} prediction (trained on another dataset)"
    return f"{metric.display_name} score"


def subjective_label(run: Run) -> str:
    """The y-axis label: the card's name for the ground truth, with its scale (or, when the
    card gives none, the observed range)."""
    ds = run.dataset
    scale = ds.score_scale
    if not scale and ds.score_range is not None:
        scale = f"observed {ds.score_range[0]:.2f}–{ds.score_range[1]:.2f}"
    label = f"{ds.score_label}, {scale}" if scale else ds.score_label
    return label if ds.higher_is_better else f"{label} (oriented: higher is better)"


def _summary(stats: Stats) -> str:
    def part(name: str, value: float, interval: tuple[float, float] | None) -> str:
        text = f"{name} {value:.3f}" if math.isfinite(value) else f"{name} –"
        return text + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")

    return (
        f"{part('SROCC', stats.srocc, stats.srocc_ci)}, {part('PLCC', stats.plcc, stats.plcc_ci)}, "
        f"n = {stats.n}"
    )


def scatter_subtitle(metric: MetricResult) -> str:
    """What the plot shows and its statistics (the all-image or pooled cross-validated set)."""
    if metric.overall is None:
        return ""
    where = "pooled cross-validated predictions" if metric.by_splits else "all images"
    return f"{where}: {_summary(metric.overall)}"


def scatter_spec(run: Run, metric: MetricResult) -> dict[str, Any]:
    """Plotly scatter of a metric's scores against the ground truth by type, with the fit."""
    points = run.points(metric.name)
    colours = distortion_colours(run.dataset.distortions)
    truth = plotly_text(run.dataset.score_label)
    traces: list[dict[str, Any]] = []
    for code in [*run.dataset.distortions, ""]:
        chosen = [i for i, d in enumerate(points.distortion) if d == code]
        if not chosen:
            continue
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": plotly_text(distortion_name(code) if code else NO_TYPE),
                "x": [_json(points.score[i]) for i in chosen],
                "y": [_json(points.quality[i]) for i in chosen],
                "text": [plotly_text(points.item_ids[i]) for i in chosen],
                "marker": {"color": colours.get(code, "#999999"), "size": 6, "opacity": 0.75},
                "hovertemplate": f"%{{text}}<br>score %{{x:.4g}}<br>{truth} %{{y:.4g}}"
                "<extra>%{fullData.name}</extra>",
            }
        )
    xs, ys = fitted_curve(metric, points.score)
    if xs:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": plotly_text(curve_name(metric)),
                "x": [_json(v) for v in xs],
                "y": [_json(v) for v in ys],
                "line": {"color": "#222222", "width": 2},
                "hoverinfo": "skip",
            }
        )
    subtitle = plotly_text(scatter_subtitle(metric))
    return {
        "data": traces,
        "layout": {
            "title": {"text": f"{plotly_text(metric.display_name)}<br><sup>{subtitle}</sup>"},
            "height": 440,
            "margin": {"l": 60, "r": 20, "t": 70, "b": 40},
            "xaxis": {"title": {"text": plotly_text(score_label(metric))}, "zeroline": False},
            "yaxis": {"title": {"text": plotly_text(subjective_label(run))}, "zeroline": False},
            "legend": {"orientation": "h", "x": 0.0, "y": -0.2, "yanchor": "top"},
        },
    }


def _json(value: float | None) -> float | None:
    return float(f"{value:.6g}") if value is not None and math.isfinite(value) else None


def save_scatter_grid(run: Run, out_dir: Path, formats: Sequence[str]) -> list[Path]:
    """PNG/SVG grid of every evaluated metric's scatter plot (``scatter_grid.<ext>``)."""
    import matplotlib
    from matplotlib.figure import Figure

    metrics = run.evaluated
    if not metrics:
        return []
    colours = distortion_colours(run.dataset.distortions)
    cols = min(4, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    with matplotlib.rc_context(mpl_rc()):
        fig = Figure(figsize=(3.2 * cols, 2.9 * rows + 0.5), layout="constrained")
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
                    label=mpl_text(distortion_name(code) if code else NO_TYPE),
                )
            xs, ys = fitted_curve(metric, points.score)
            if xs:
                ax.plot(xs, ys, color="#222222", linewidth=1.2)
            title = mpl_text(metric.display_name)
            if metric.overall is not None:
                title += "\n" + mpl_text(_summary(metric.overall))
            ax.set_title(title, fontsize=8)
            ax.set_xlabel(mpl_text(score_label(metric)))
            ax.set_ylabel(mpl_text(run.dataset.score_label))
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
        return save_figure(fig, out_dir / "scatter_grid", formats)
