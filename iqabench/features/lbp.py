"""Rotation-invariant uniform local binary patterns (LBP riu2) and weighted LBP histograms.

The operator of T. Ojala, M. Pietikainen and T. Maenpaa, "Multiresolution gray-scale and
rotation invariant texture classification with local binary patterns", IEEE TPAMI 24(7), 2002,
computed as M. Heikkila and T. Ahonen's MATLAB ``lbp.m`` version 0.3 does it (the
``lbp_new.m`` that GWH-GLBP's release calls, not the later 0.3.3 with its rounding):

* ``P`` neighbours on a circle of radius ``R``, neighbour ``p`` at row offset
  ``-R sin(p * 2 pi/P)`` and column offset ``R cos(p * 2 pi/P)`` (libm's sine and cosine);
  off-grid neighbours are interpolated bilinearly with the weights ``(1-tx)(1-ty)``,
  ``tx(1-ty)``, ``(1-tx)ty`` and ``tx ty``, unrounded, summed in that order;
* a neighbour sets its bit when it is ``>=`` the centre;
* only centres whose whole circle lies inside the image are coded (no padding), so the code map
  is smaller than the image by the circle's extent (2 pixels for ``R = 1``);
* riu2 mapping: a pattern with at most two 0/1 transitions around the circle is coded by its
  number of ones (``0..P``), any other pattern by ``P + 1``: ``P + 2`` codes in all.

scikit-image's ``local_binary_pattern(..., method="uniform")`` uses the same sampling and
mapping but zero padding at the border and its own interpolation arithmetic; on a gradient map
many neighbours tie with the centre in exact arithmetic, and the release's rounding decides
those ties, so the codes here follow the release's arithmetic step by step.
"""

from __future__ import annotations

import math

import numpy as np


def circle_offsets(points: int, radius: float) -> np.ndarray:
    """``(points, 2)`` row/column offsets of the sampling circle, as in ``lbp.m``."""
    step = 2.0 * math.pi / points
    return np.array(
        [(-radius * math.sin(p * step), radius * math.cos(p * step)) for p in range(points)]
    )


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
        # MATLAB's 1-based sample position: the interpolation weights are rounded from it
        y, x = dy + origin[0] + 1, dx + origin[1] + 1
        if abs(y - round(y)) < 1e-6 and abs(x - round(x)) < 1e-6:
            neighbour = window(round(y) - 1, round(x) - 1)
        else:
            fy, fx = math.floor(y), math.floor(x)
            cy, cx = math.ceil(y), math.ceil(x)
            ty, tx = y - fy, x - fx
            w1, w2, w3, w4 = (1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty
            neighbour = (
                w1 * window(fy - 1, fx - 1)
                + w2 * window(fy - 1, cx - 1)
                + w3 * window(cy - 1, fx - 1)
                + w4 * window(cy - 1, cx - 1)
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
