"""Metric and dataset cards: YAML files of facts (paper, parameters, calibration), no code.

The repository keeps them in ``registry/`` (metrics) and ``datasets/`` (datasets); an installed
wheel carries them as ``iqabench/cards/metrics`` and ``iqabench/cards/datasets``. Cards are read
with ``yaml.safe_load`` only.
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


def metric_card(name: str) -> dict[str, Any] | None:
    """The built-in card of metric ``name``, if any (third-party metrics may have none)."""
    return load_cards("metrics").get(name)


def calibration_status(name: str) -> str:
    """``calibrated``, ``properties`` (tested properties only), or ``unknown``."""
    card = metric_card(name) or {}
    return str((card.get("calibration") or {}).get("status", "unknown"))
