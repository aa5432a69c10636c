"""Static figure output shared by every matplotlib export: style settings and saving.

Figures are drawn with the Agg canvas (no pyplot, no display) and saved with fixed metadata
and a fixed SVG id salt, so rebuilding a report from the same results gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__

PNG_DPI = 300


def mpl_rc() -> dict[str, Any]:
    """matplotlib settings of every static figure."""
    return {
        "svg.hashsalt": "iqabench",
        "font.size": 9,
        "axes.titlesize": 10,
        "legend.fontsize": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def save_figure(fig: Any, base: Path, formats: Sequence[str]) -> list[Path]:
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
