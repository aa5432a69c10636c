"""A float canvas with anti-aliased shapes, painted back to front (later shapes occlude).

Each shape's coverage comes from an approximate signed distance ``d`` (pixels, negative
inside): ``coverage = clip(0.5 - d, 0, 1)``, which gives one-pixel soft edges. Work is limited to
the shape's bounding box, so many small shapes (windows, wheels) stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Value = float | np.ndarray


class Canvas:
    """Paint shapes of a value (a number, or a full-frame array to sample) onto ``field``."""

    def __init__(self, field: np.ndarray) -> None:
        self.field = field

    def ellipse(self, cy: float, cx: float, ry: float, rx: float, value: Value) -> None:
        """An axis-aligned ellipse centred at (cy, cx) with radii (ry, rx)."""
        window = self._window(cy - ry, cx - rx, cy + ry, cx + rx)
        if window is None:
            return
        rows, cols, yy, xx = window
        radius = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        self._blend(rows, cols, (radius - 1.0) * min(rx, ry), value)

    def box(
        self, y0: float, x0: float, y1: float, x1: float, value: Value, radius: float = 0.0
    ) -> None:
        """A rectangle from (y0, x0) to (y1, x1), corners rounded by ``radius`` pixels."""
        window = self._window(y0, x0, y1, x1)
        if window is None:
            return
        rows, cols, yy, xx = window
        half_h, half_w = (y1 - y0) / 2.0, (x1 - x0) / 2.0
        radius = min(radius, half_h, half_w)
        qy = np.abs(yy - (y0 + y1) / 2.0) - (half_h - radius)
        qx = np.abs(xx - (x0 + x1) / 2.0) - (half_w - radius)
        outside = np.hypot(np.maximum(qy, 0.0), np.maximum(qx, 0.0))
        inside = np.minimum(np.maximum(qy, qx), 0.0)
        self._blend(rows, cols, outside + inside - radius, value)

    def polygon(self, points: Sequence[tuple[float, float]], value: Value) -> None:
        """A convex polygon given by (y, x) vertices in either winding order."""
        ys = [p[0] for p in points]
        xs = [p[1] for p in points]
        window = self._window(min(ys), min(xs), max(ys), max(xs))
        if window is None:
            return
        rows, cols, yy, xx = window
        cy, cx = float(np.mean(ys)), float(np.mean(xs))
        distance = np.full(np.broadcast_shapes(yy.shape, xx.shape), -np.inf)
        for (ay, ax), (by, bx) in zip(points, [*points[1:], points[0]], strict=True):
            ny, nx = bx - ax, -(by - ay)
            norm = np.hypot(ny, nx)
            if norm == 0:
                continue
            ny, nx = ny / norm, nx / norm
            if (cy - ay) * ny + (cx - ax) * nx > 0:  # make the normal point outwards
                ny, nx = -ny, -nx
            distance = np.maximum(distance, (yy - ay) * ny + (xx - ax) * nx)
        self._blend(rows, cols, distance, value)

    def cover(self, coverage: np.ndarray, value: Value) -> None:
        """Any shape given as a full-frame coverage map (0 outside, 1 inside)."""
        target = self.field
        target += coverage * (value - target)

    def _window(
        self, y0: float, x0: float, y1: float, x1: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        height, width = self.field.shape
        top, left = max(int(np.floor(y0)) - 1, 0), max(int(np.floor(x0)) - 1, 0)
        bottom, right = min(int(np.ceil(y1)) + 2, height), min(int(np.ceil(x1)) + 2, width)
        if top >= bottom or left >= right:
            return None
        yy = np.arange(top, bottom, dtype=np.float64)[:, None]
        xx = np.arange(left, right, dtype=np.float64)[None, :]
        return slice(top, bottom), slice(left, right), yy, xx

    def _blend(self, rows: slice, cols: slice, distance: np.ndarray, value: Value) -> None:
        coverage = np.clip(0.5 - distance, 0.0, 1.0)
        target = self.field[rows, cols]
        paint = value[rows, cols] if isinstance(value, np.ndarray) else value
        target += coverage * (paint - target)
