"""Metric discovery through the ``iqabench.metrics`` entry-point group.

Built-in metrics and third-party plugins register the same way: an installed distribution
declares ``[project.entry-points."iqabench.metrics"] NAME = "package.module:Class"``. Only
installed distributions are consulted: the working folder (the ``''`` entry of ``sys.path`` in
an interactive session, or the folder Python puts first for ``python -m`` and ``python -c``) is
neither searched for distribution metadata nor for the modules an entry point names, so nothing
in a dataset or results folder is ever imported, whatever the entry (console script,
``python -m iqabench`` or the Python API). A plugin that fails to import is listed with its
error instead of breaking the rest.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint
from pathlib import Path
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
    point: EntryPoint | None = field(default=None, repr=False)

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
    if entry.point is None:
        return None, "no entry point"
    try:
        with _outside_working_folder():
            cls = entry.point.load()
    except Exception as exc:  # a broken plugin must not break the registry
        return None, f"{type(exc).__name__}: {exc}"
    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        return None, f"{entry.target} is not a subclass of iqabench.metric.Metric"
    if getattr(cls, "name", None) != entry.name:
        return None, f"{entry.target}.name is {getattr(cls, 'name', None)!r}, not {entry.name!r}"
    return cls, None


def _is_working_folder(index: int, entry: str) -> bool:
    """Whether ``sys.path[index]`` is the working folder put there implicitly by Python."""
    if entry in ("", "."):
        return True
    if index != 0 or sys.flags.safe_path:
        return False
    try:
        return Path(entry).resolve() == Path.cwd().resolve()
    except OSError:
        return False


def trusted_path() -> list[str]:
    """``sys.path`` without the working folder: where installed distributions live."""
    return [p for i, p in enumerate(sys.path) if not _is_working_folder(i, p)]


@contextmanager
def _outside_working_folder() -> Iterator[None]:
    """Import with the working folder off ``sys.path``, so that a module lying there cannot
    stand in for the one an installed plugin names."""
    removed = [(i, p) for i, p in enumerate(sys.path) if _is_working_folder(i, p)]
    for index, _ in reversed(removed):
        del sys.path[index]
    try:
        yield
    finally:
        for index, entry in removed:
            sys.path.insert(index, entry)


@cache
def entries() -> dict[str, MetricEntry]:
    """Every registered metric, keyed by name (first distribution wins on a clash)."""
    from importlib.metadata import distributions

    found: dict[str, MetricEntry] = {}
    seen: set[str] = set()
    for dist in distributions(path=trusted_path()):
        dist_name = str(dist.metadata["Name"] or "?")
        key = dist_name.lower().replace("_", "-").replace(".", "-")
        if key in seen:  # the same distribution further down the path is shadowed
            continue
        seen.add(key)
        for point in dist.entry_points.select(group=ENTRY_POINT_GROUP):
            entry = MetricEntry(point.name, point.value, dist_name, point=point)
            found.setdefault(point.name, entry)
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
