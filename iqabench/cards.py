"""Metric and dataset cards: YAML files of facts (paper, parameters, calibration), no code.

The repository keeps them in ``registry/`` (metrics) and ``datasets/`` (datasets); an installed
wheel carries them as ``iqabench/cards/metrics`` and ``iqabench/cards/datasets``. A plugin ships
the card of its metric ``NAME`` as ``cards/NAME.yaml`` in the package that defines the metric
class (package data of its wheel). Cards are read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

_FOLDERS = {"metrics": "registry", "datasets": "datasets"}


def cards_dir(kind: str) -> Path:
    """Folder holding the cards of ``kind`` (``"metrics"`` or ``"datasets"``)."""
    packaged = Path(__file__).parent / "cards" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / _FOLDERS[kind]


@cache
def load_cards(kind: str) -> dict[str, dict[str, Any]]:
    """All cards of ``kind`` keyed by their ``name`` field."""
    import yaml

    cards: dict[str, dict[str, Any]] = {}
    folder = cards_dir(kind)
    if not folder.is_dir():
        return cards
    for path in sorted(folder.glob("*.yaml")):
        with open(path, encoding="utf-8") as handle:
            card = yaml.safe_load(handle)
        if isinstance(card, dict) and "name" in card:
            cards[str(card["name"])] = card
    return cards


def metric_card(name: str, cls: type | None = None) -> dict[str, Any] | None:
    """The card of metric ``name``: the built-in one, else the one its plugin ships beside the
    metric class ``cls`` (``cards/NAME.yaml`` in the class's package); None when there is none
    or when the plugin's card is broken (``iqabench.testing.check_metric`` reports that)."""
    from .errors import UserError

    card = load_cards("metrics").get(name)
    if card is None and cls is not None:
        try:
            card = plugin_card(name, cls.__module__)
        except UserError:
            return None
    return card


@cache
def plugin_card(name: str, module: str) -> dict[str, Any] | None:
    """The card ``cards/NAME.yaml`` in the package of ``module``, if it ships one.

    A card that is not valid YAML, or whose ``name`` is not ``name``, raises
    :class:`~iqabench.errors.UserError` naming the file.
    """
    import sys
    from importlib import resources

    import yaml

    from .errors import UserError

    loaded = sys.modules.get(module)
    package = getattr(loaded, "__package__", None)
    if not package:
        return None  # a top-level module has no package to hold data
    try:
        path = resources.files(package) / "cards" / f"{name}.yaml"
        if not path.is_file():
            return None
        card = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read the card of plugin metric {name!r}: {exc}") from None
    if not isinstance(card, dict) or card.get("name") != name:
        raise UserError(f"plugin card {path} must be a mapping with name: {name}")
    return card


def calibration_status(name: str, cls: type | None = None) -> str:
    """``calibrated``, ``properties`` (tested properties only), or ``unknown``."""
    card = metric_card(name, cls) or {}
    return str((card.get("calibration") or {}).get("status", "unknown"))
