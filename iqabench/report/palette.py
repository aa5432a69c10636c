"""How metrics and distortion types are drawn: one colour and marker per metric everywhere.

A metric's style is fixed by its position among all metrics installed, grouped by the family
their cards give (TR-FR, DL-FR, TR-NR, DL-NR, then metrics without a card) and by name within
a family, then any other name in the run, alphabetically: not by the run. A metric keeps its
colour in every panel, every run and every comparison made with the same installation, and no
two metrics share a colour in a panel as long as fewer than :data:`PALETTE_SIZE` are installed.

Colours follow ``colorcet.glasbey_category10``: the ten Category10 colours, then Glasbey's
sequence, where each colour is the one most distinct from all before it (Glasbey, Martin,
Lockwood and Ellis, *Colour displays for categorical images*, Color Research & Application
32(4), 2007). Because each colour is far from every earlier one, the metrics of one family,
which sit next to each other in the order, get colours far apart. Only colours with a clear
hue (no greys, which read as text and grid lines) and a contrast of at least
:data:`MIN_CONTRAST` against white are kept: a little below the 3:1 that WCAG 2.1 (success
criterion 1.4.11) asks of graphics, which would drop Category10's orange; markers add a second
cue.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Distinct metric colours available before they repeat (with another marker).
PALETTE_SIZE = 64
#: Least contrast ratio of a metric colour against the white page (see the module docstring).
MIN_CONTRAST = 2.5
#: Family order of the palette (metrics of other families, or without a card, follow).
FAMILY_ORDER: tuple[str, ...] = ("TR-FR", "DL-FR", "TR-NR", "DL-NR")
#: Least chroma (largest minus smallest of the 0..255 RGB channels) of a metric colour.
MIN_CHROMA = 96
#: (plotly symbol, matplotlib marker) pairs, cycled alongside the colours.
METRIC_MARKERS: tuple[tuple[str, str], ...] = (
    ("circle", "o"),
    ("square", "s"),
    ("diamond", "D"),
    ("triangle-up", "^"),
    ("triangle-down", "v"),
    ("pentagon", "p"),
    ("star", "*"),
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
NO_TYPE_COLOUR = "#999999"


@dataclass(frozen=True)
class Style:
    """How one metric is drawn everywhere."""

    colour: str
    symbol: str
    marker: str


def metric_colours() -> list[str]:
    """The metric palette: the first :data:`PALETTE_SIZE` Glasbey colours that contrast enough
    with white and have a clear hue."""
    import colorcet

    legible = [
        c
        for c in map(_hex, colorcet.glasbey_category10)
        if contrast_with_white(c) >= MIN_CONTRAST and chroma(c) >= MIN_CHROMA
    ]
    return legible[:PALETTE_SIZE]


def _hex(colour: str | Sequence[float]) -> str:
    """``#rrggbb`` of a colorcet colour (a hex string, or RGB floats in 0..1)."""
    if isinstance(colour, str):
        return colour
    return "#" + "".join(f"{round(255 * v):02x}" for v in colour)


def chroma(colour: str) -> int:
    """Largest minus smallest channel of ``#rrggbb`` (0 for greys)."""
    channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return max(channels) - min(channels)


def contrast_with_white(colour: str) -> float:
    """WCAG 2.1 contrast ratio of ``#rrggbb`` against white: ``1.05 / (L + 0.05)`` with ``L``
    the relative luminance of the sRGB colour."""

    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) / 255.0 for i in (1, 3, 5))
    luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    return 1.05 / (luminance + 0.05)


def palette_order(names: Iterable[str]) -> list[str]:
    """Every installed metric by family (from its card) and name, then the other ``names``."""
    from .. import registry
    from ..cards import load_cards

    cards = load_cards("metrics")
    rank = {family: i for i, family in enumerate(FAMILY_ORDER)}

    def key(name: str) -> tuple[int, str]:
        family = (cards.get(name) or {}).get("family")
        return rank.get(family, len(rank)), name

    installed = sorted(registry.entries(), key=key)
    return installed + sorted(set(names) - set(installed))


def metric_styles(names: Iterable[str]) -> dict[str, Style]:
    """The fixed style of each of ``names`` (see the module docstring)."""
    names = list(names)
    colours = metric_colours()
    position = {name: i for i, name in enumerate(palette_order(names))}
    styles = {}
    for name in names:
        i = position[name]
        symbol, marker = METRIC_MARKERS[i % len(METRIC_MARKERS)]
        styles[name] = Style(colours[i % len(colours)], symbol, marker)
    return styles


def distortion_colours(codes: Iterable[str]) -> dict[str, str]:
    """A colour per distortion code, in the dataset's order (items without a type in grey)."""
    colours = {
        code: DISTORTION_COLOURS[i % len(DISTORTION_COLOURS)] for i, code in enumerate(codes)
    }
    colours[""] = NO_TYPE_COLOUR
    return colours


def plotly_text(value: str) -> str:
    """Text for a plotly label, shown literally.

    Plotly parses labels as a subset of HTML (so ``<``, ``>`` and ``&`` become entities) and
    typesets text between dollar signs as LaTeX (so ``$`` becomes ``&#36;``).
    """
    return html.escape(value, quote=False).replace("$", "&#36;")


def mpl_text(value: str) -> str:
    """Text that matplotlib shows literally (no mathtext)."""
    return value.replace("$", r"\$")
