"""HTML rendering: the jinja2 environment, its filters, and the inlined plotly library.

Templates live in ``iqabench/report/templates`` (package data). Autoescaping is always on, so
every name that comes from a dataset, a metric plugin or a file path is escaped; chart data
goes through ``tojson``, which also escapes ``<``, ``>`` and ``&`` so it cannot close its
``<script>`` element. Non-finite numbers in chart data are an error (JSON has no NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass(frozen=True)
class Chart:
    """An interactive chart on the page: a plotly specification, or a note when there is none."""

    key: str
    title: str
    spec: dict[str, Any] | None
    note: str = ""


@cache
def environment() -> Any:
    """The report's jinja2 environment (autoescaped, strict about undefined names)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("iqabench.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "allow_nan": False}
    env.filters["duration"] = duration
    env.filters["number"] = number
    return env


def render(template: str, **context: Any) -> str:
    """Render ``template`` (a file name in the templates folder) with ``context``."""
    return environment().get_template(template).render(**context)


@cache
def plotly_js() -> str:
    """The plotly.js bundle shipped with the plotly package, to inline once per page."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def duration(seconds: Any) -> str:
    """``12.3 s``, ``4 min 05 s`` or ``2 h 03 min``; an en dash when unknown."""
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def number(value: Any, digits: int = 3) -> str:
    """A float with ``digits`` decimals, integers as they are, an en dash when missing."""
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "–"
    return str(value)
