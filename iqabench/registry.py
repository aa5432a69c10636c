"""Metric discovery through the ``iqabench.metrics`` entry-point group.

Built-in metrics and third-party plugins register the same way: an installed distribution
declares ``[project.entry-points."iqabench.metrics"] NAME = "package.module:Class"``. Only
installed distributions are consulted, so nothing in a dataset or results folder is ever
imported. A plugin that fails to import is listed with its error instead of breaking the rest.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .errors import UnknownNameError, UserError
from .metric import Metric

ENTRY_POINT_GROUP = "iqabench.metrics"


@dataclass
class MetricEntry:
    """One registered metric: where it comes from and, once loaded, its class."""

    name: str
    target: str
    distribution: str
    _class: type[Metric] | None = field(default=None, repr=False)
    error: str | None = None

    def load(self) -> type[Metric]:
        """Import the metric class (raises UserError if the plugin is broken)."""
        if self._class is None and self.error is None:
            self._class, self.error = _import(self)
        if self._class is None:
            raise UserError(f"metric {self.name!r} could not be loaded: {self.error}")
        return self._class

    @property
    def loadable(self) -> bool:
        try:
            self.load()
        except UserError:
            return False
        return True


def _import(entry: MetricEntry) -> tuple[type[Metric] | None, str | None]:
    from importlib.metadata import entry_points

    try:
        (point,) = [p for p in entry_points(group=ENTRY_POINT_GROUP) if p.name == entry.name][:1]
        cls = point.load()
    except Exception as exc:  # a broken plugin must not break the registry
        return None, f"{type(exc).__name__}: {exc}"
    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        return None, f"{entry.target} is not a subclass of iqabench.metric.Metric"
    if getattr(cls, "name", None) != entry.name:
        return None, f"{entry.target}.name is {getattr(cls, 'name', None)!r}, not {entry.name!r}"
    return cls, None


@cache
def entries() -> dict[str, MetricEntry]:
    """Every registered metric, keyed by name (first distribution wins on a clash)."""
    from importlib.metadata import entry_points

    found: dict[str, MetricEntry] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        dist = point.dist.name if point.dist is not None else "?"
        found.setdefault(point.name, MetricEntry(point.name, point.value, dist))
    return dict(sorted(found.items()))


def get(name: str) -> type[Metric]:
    """The class of metric ``name``; unknown names raise with the closest suggestion."""
    known = entries()
    key = name.strip().lower()
    if key not in known:
        raise UnknownNameError(f"unknown metric {name!r}{_suggest(key, known)}")
    return known[key].load()


def create(name: str, **params: Any) -> Metric:
    """An instance of metric ``name`` with ``params``."""
    return get(name)(**params)


def resolve_names(spec: str) -> list[str]:
    """``"all"`` or a comma-separated list of names, validated, in the given order."""
    if spec.strip().lower() == "all":
        return [name for name, entry in entries().items() if entry.loadable]
    names = [part.strip().lower() for part in spec.split(",") if part.strip()]
    if not names:
        raise UserError("no metric named: give --metrics all or NAME[,NAME...]")
    for name in names:
        get(name)
    return list(dict.fromkeys(names))


def _suggest(key: str, known: dict[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
    if close:
        return f"; did you mean {close[0]!r}? (see `iqabench list metrics`)"
    return "; see `iqabench list metrics`"
