"""Rotation-invariant uniform local binary patterns (LBP riu2) and weighted LBP histograms.

The operator of T. Ojala, M. Pietikainen and T. Maenpaa, "Multiresolution gray-scale and
rotation invariant texture classification with local binary patterns", IEEE TPAMI 24(7), 2002,
computed as the widely used MATLAB ``lbp.m`` of M. Heikkila and T. Ahonen (used by GWH-GLBP)
does it:

* ``P`` neighbours on a circle of radius ``R``, neighbour ``p`` at row offset ``-R sin(2 pi p/P)``
  and column offset ``R cos(2 pi p/P)``; off-grid neighbours are interpolated bilinearly, with
  the weights rounded to 6 decimals and the interpolated values rounded to 4;
* a neighbour sets its bit when it is ``>=`` the centre;
* only centres whose whole circle lies inside the image are coded (no padding), so the code map
  is smaller than the image by the circle's extent (2 pixels for ``R = 1``);
* riu2 mapping: a pattern with at most two 0/1 transitions around the circle is coded by its
  number of ones (``0..P``), any other pattern by ``P + 1``: ``P + 2`` codes in all.

scikit-image's ``local_binary_pattern(..., method="uniform")`` uses the same sampling and
mapping (without the rounding, which only matters for ties) and zero padding at the border.
"""

from __future__ import annotations

import math

import numpy as np


def _round_half_away(values: np.ndarray | float, decimals: int) -> np.ndarray:
    """MATLAB ``round(x * 10^d) / 10^d`` (halves away from zero)."""
    scale = 10.0**decimals
    data = np.asarray(values, dtype=np.float64)
    return np.sign(data) * np.floor(np.abs(data) * scale + 0.5) / scale


def circle_offsets(points: int, radius: float) -> np.ndarray:
    """``(points, 2)`` row/column offsets of the sampling circle, as in ``lbp.m``."""
    angles = 2.0 * np.pi * np.arange(points) / points
    return np.stack([-radius * np.sin(angles), radius * np.cos(angles)], axis=1)


def circle_origin(points: int, radius: float) -> tuple[int, int]:
    """Row and column in the image of the first coded centre (how far the circle reaches up
    and left): code ``[i, j]`` of :func:`lbp_riu2` belongs to pixel ``[i + row, j + col]``."""
    low = np.floor(np.minimum(circle_offsets(points, radius).min(axis=0), 0.0))
    return int(-low[0]), int(-low[1])


def lbp_riu2(image: np.ndarray, points: int = 8, radius: float = 1.0) -> np.ndarray:
    """riu2 LBP codes (``0..points+1``) of every centre whose circle lies inside ``image``.

    Returns an ``int64`` array of shape ``(H - extent + 1, W - extent + 1)``, where ``extent``
    is the side of the circle's bounding box in pixels (3 for ``radius = 1``); see
    :func:`circle_origin` for where it sits in the image.
    """
    data = np.asarray(image, dtype=np.float64)
    offsets = circle_offsets(points, radius)
    origin = circle_origin(points, radius)
    reach = np.ceil(np.maximum(offsets.max(axis=0), 0.0)).astype(int)
    out_h = data.shape[0] - origin[0] - int(reach[0])
    out_w = data.shape[1] - origin[1] - int(reach[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"image {data.shape} is smaller than the LBP circle (radius {radius})")

    def window(row: int, col: int) -> np.ndarray:
        return data[row : row + out_h, col : col + out_w]

    centre = window(origin[0], origin[1])
    bits = np.empty((points, out_h, out_w), dtype=bool)
    for p, (dy, dx) in enumerate(offsets):
        y, x = dy + origin[0], dx + origin[1]
        if abs(y - round(y)) < 1e-6 and abs(x - round(x)) < 1e-6:
            neighbour = window(round(y), round(x))
        else:
            fy, fx = math.floor(y), math.floor(x)
            cy, cx = math.ceil(y), math.ceil(x)
            ty, tx = y - fy, x - fx
            w1 = float(_round_half_away((1 - tx) * (1 - ty), 6))
            w2 = float(_round_half_away(tx * (1 - ty), 6))
            w3 = float(_round_half_away((1 - tx) * ty, 6))
            w4 = float(_round_half_away(1 - w1 - w2 - w3, 6))
            neighbour = _round_half_away(
                w1 * window(fy, fx)
                + w2 * window(fy, cx)
                + w3 * window(cy, fx)
                + w4 * window(cy, cx),
                4,
            )
        bits[p] = neighbour >= centre
    ones = bits.sum(axis=0)
    transitions = (bits != np.roll(bits, -1, axis=0)).sum(axis=0)
    return np.where(transitions <= 2, ones, points + 1).astype(np.int64)


def weighted_histogram(codes: np.ndarray, weights: np.ndarray, n_codes: int) -> np.ndarray:
    """Sum of ``weights`` per code ``0..n_codes-1``, normalised to sum to 1.

    All zeros when the weights sum to zero (e.g. a flat image has no gradient anywhere).
    """
    hist = np.bincount(codes.ravel(), weights=weights.ravel(), minlength=n_codes)[:n_codes]
    total = hist.sum()
    return hist / total if total > 0 else np.zeros(n_codes)
