"""Dataset name -> loader, with the dataset card and clear errors for a missing root."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..cards import load_cards
from ..errors import DatasetError, UnknownNameError
from .csv_folder import load_csv_folder
from .items import Dataset, Item
from .lwir_iqa import load_lwir_iqa
from .tiiqad import load_tiiqad


def _synthetic(root: Path | None, options: dict[str, Any]) -> tuple[Path, list[Item]]:
    from .synthetic import ensure_synthetic_lwir

    if root is None:
        root = ensure_synthetic_lwir(
            seed=int(options.get("seed", 0)), bit_depth=int(options.get("bit_depth", 8))
        )
    return root, load_csv_folder(root, root / "scores.csv")


def _needs_root(loader: Callable[[Path], list[Item]]):  # noqa: ANN202
    def load(root: Path | None, options: dict[str, Any]) -> tuple[Path, list[Item]]:
        assert root is not None
        return root, loader(root)

    return load


def _csv(root: Path | None, options: dict[str, Any]) -> tuple[Path, list[Item]]:
    assert root is not None
    table = Path(options.get("csv") or root / "scores.csv")
    return root, load_csv_folder(root, table, bool(options.get("lower_is_better", False)))


#: Canonical dataset name -> (loader, whether --data-root is required).
LOADERS = {
    "LWIR_IQA": (_needs_root(load_lwir_iqa), True),
    "TIIQAD": (_needs_root(load_tiiqad), True),
    "csv": (_csv, True),
    "synthetic-lwir": (_synthetic, False),
}


def canonical_name(name: str) -> str:
    """The registered spelling of a dataset name (case and ``-``/``_`` insensitive)."""
    wanted = _key(name)
    for known in LOADERS:
        if _key(known) == wanted:
            return known
    close = difflib.get_close_matches(wanted, [_key(k) for k in LOADERS], n=1, cutoff=0.5)
    hint = ""
    if close:
        hint = f"; did you mean {next(k for k in LOADERS if _key(k) == close[0])!r}?"
    raise UnknownNameError(f"unknown dataset {name!r}{hint} (see `iqabench list datasets`)")


def load(
    name: str, root: str | Path | None = None, csv: str | Path | None = None, **options: Any
) -> Dataset:
    """Load dataset ``name`` from ``root`` (see :data:`LOADERS`)."""
    canonical = canonical_name(name)
    loader, needs_root = LOADERS[canonical]
    card = load_cards("datasets").get(canonical, {})
    if csv is not None:
        options["csv"] = csv
    path = Path(root).expanduser() if root is not None else None
    if path is None and needs_root:
        raise DatasetError(f"dataset {canonical} needs --data-root PATH. {_obtain(card)}")
    if path is not None and not path.is_dir():
        raise DatasetError(f"dataset root not found: {path}. {_obtain(card)}")
    resolved, items = loader(path, options)
    if not items:
        raise DatasetError(f"dataset {canonical} at {resolved} has no images")
    _check_unique(items, resolved)
    return Dataset(
        name=canonical,
        root=resolved,
        items=items,
        card=card,
        score_higher_is_better=not options.get("lower_is_better", False),
    )


def _check_unique(items: list[Item], root: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DatasetError(f"dataset at {root} lists {item.id} twice")
        seen.add(item.id)


def _obtain(card: dict[str, Any]) -> str:
    obtain = card.get("obtain")
    return f"To obtain it: {obtain}" if obtain else ""


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")
