"""MATLAB ``conv2`` and ``filter2`` with the rounding of the reference runs, bit for bit.

Hand-written: no library reproduces this. Where a feature thresholds or compares filtered
values (the LBP of GWH-GLBP compares neighbouring gradient magnitudes; OG-IQA takes the
orientation ``atan(gx / gy)`` of tiny responses), the last bit of every filtered value decides
the feature, so "the same convolution" is not enough: it must round the same way. The reference
values in ``../shared/data/oracle-thermal`` come from GNU Octave, whose ``conv2`` (liboctave's
``dconv2o`` for ``'full'`` and ``'same'``, ``dconv2i`` for ``'valid'``) adds one kernel tap
at a time to the whole output with BLAS ``daxpy``, and the BLAS it ran on fuses each
multiply-add (one rounding per tap). This module does the same in NumPy:

* :func:`fused_multiply_add` is an exact ``round(a * b + c)``: Dekker's error-free product and
  Knuth's two-sum give the exact ``a * b + c`` as three doubles, and rounding the small part
  to odd before the final addition makes the result correctly rounded (S. Boldo and
  G. Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms using rounding
  to odd", IEEE Transactions on Computers 57(4), 2008, doi 10.1109/TC.2007.70819);
* :func:`conv2` accumulates the taps in Octave's order: for ``'full'``/``'same'`` kernel
  columns last to first and, within a column, rows first to last; for ``'valid'`` kernel
  columns and rows first to last (taps equal to zero add nothing and are skipped, as BLAS
  skips ``daxpy`` with a zero factor);
* :func:`filter2` is ``conv2`` with the kernel turned by 180 degrees, as Octave's
  ``filter2.m``.

MATLAB's own ``conv2`` orders its sums differently again, so on exact ties these functions
follow Octave, the only reference that could be run here. Cost: about 25 array operations per
kernel tap, a few times OpenCV's ``filter2D``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Shape = Literal["full", "same", "valid"]

#: Veltkamp's splitting constant for doubles, 2**27 + 1.
_SPLITTER = 134217729.0


def _split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """High and low parts of 26 and 27 bits, ``high + low == values`` exactly (Veltkamp)."""
    scaled = _SPLITTER * values
    high = scaled - (scaled - values)
    return high, values - high


class _FusedAccumulator:
    """Adds ``tap * source`` to an accumulator with one rounding, in place.

    The steps are those of Boldo and Melquiond's emulation: the product as ``P + E`` exactly
    (Dekker, the source split once per image by the caller), ``acc + P`` as ``S + L`` exactly
    (Knuth's two-sum), ``L + E`` rounded to odd, and a final rounded addition to ``S``.
    Scratch arrays are allocated once per output shape: a tap costs about 30 in-place array
    operations and no allocation.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self._scratch = tuple(np.empty(shape) for _ in range(4))
        self._bits = np.empty(shape, dtype=np.int64)
        self._flags = tuple(np.empty(shape, dtype=bool) for _ in range(3))

    def add(
        self, tap: float, source: tuple[np.ndarray, np.ndarray, np.ndarray], acc: np.ndarray
    ) -> None:
        """``acc = round(acc + tap * values)``; ``source`` is ``(values, *_split(values))``."""
        values, high, low = source
        product, error, total, spare = self._scratch
        tap_high, tap_low = _split(np.float64(tap))
        np.multiply(values, tap, out=product)
        np.multiply(high, tap_high, out=error)
        error -= product
        np.multiply(high, tap_low, out=spare)
        error += spare
        np.multiply(low, tap_high, out=spare)
        error += spare
        np.multiply(low, tap_low, out=spare)
        error += spare
        _two_sum_into(acc, product, total, spare)
        _two_sum_into(acc, error, product, spare)
        self._round_to_odd(product, acc)
        np.add(total, product, out=acc)

    def _round_to_odd(self, rounded: np.ndarray, error: np.ndarray) -> None:
        """Turn ``rounded`` (with the exact ``error`` of its rounding) into the round-to-odd
        value: truncated towards zero, then its last bit set, wherever it was inexact."""
        inexact, error_negative, flipped = self._flags
        np.not_equal(error, 0.0, out=inexact)
        np.less(error, 0.0, out=error_negative)
        np.less(rounded, 0.0, out=flipped)
        np.not_equal(flipped, error_negative, out=flipped)
        bits = rounded.view(np.int64)
        np.subtract(bits, flipped, out=self._bits)
        np.bitwise_or(self._bits, 1, out=self._bits)
        np.copyto(bits, self._bits, where=inexact)


def _two_sum_into(a: np.ndarray, b: np.ndarray, total: np.ndarray, spare: np.ndarray) -> None:
    """Knuth's two-sum in place: ``total = round(a + b)`` and ``a`` becomes the exact error
    ``a + b - total``; ``b`` and ``spare`` are overwritten."""
    np.add(a, b, out=total)
    np.subtract(total, a, out=spare)
    np.subtract(b, spare, out=b)
    np.subtract(total, spare, out=spare)
    np.subtract(a, spare, out=a)
    a += b


def fused_multiply_add(a: float, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``a * b + c`` with a single rounding, as a hardware FMA computes it.

    ``a`` is a scalar (a kernel tap); ``b`` and ``c`` are arrays of one shape. Exact for
    finite values without overflow or underflow of the partial products, which holds for
    image data.
    """
    values = np.array(b, dtype=np.float64)
    acc = np.array(c, dtype=np.float64)
    _FusedAccumulator(acc.shape).add(float(a), (values, *_split(values)), acc)
    return acc


#: Output rows computed together: small enough for the scratch arrays to stay in cache.
_BLOCK_ROWS = 16


def conv2(image: np.ndarray, kernel: np.ndarray, shape: Shape = "full") -> np.ndarray:
    """Octave ``conv2(image, kernel, shape)`` on ``float64`` data, rounded as the reference runs.

    Zero padding outside the image (``'full'`` and ``'same'``); ``'same'`` keeps the central
    part, starting at row ``mb // 2`` and column ``nb // 2`` of the full result (``mb x nb``
    being the kernel's size), as Octave does. Adding a zero changes no sum, so the full result
    is the ``'valid'`` one of the zero-padded image, with the taps taken in Octave's order.
    """
    source, taps, order, out_shape = _prepare(image, kernel, shape)
    return _accumulate(source, taps, order, out_shape)


def conv2_at(
    image: np.ndarray, kernel: np.ndarray, shape: Shape, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """``conv2(image, kernel, shape)[rows, cols]``, computing only those outputs (same bits)."""
    source, taps, order, _ = _prepare(image, kernel, shape)
    rows, cols = np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)
    mb, nb = taps.shape
    out = np.zeros(rows.shape)
    accumulator = _FusedAccumulator(rows.shape)
    for i, j in order:
        if taps[i, j] != 0:
            values = source[rows + mb - 1 - i, cols + nb - 1 - j]
            accumulator.add(float(taps[i, j]), (values, *_split(values)), out)
    return out


def _prepare(
    image: np.ndarray, kernel: np.ndarray, shape: Shape
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], tuple[int, int]]:
    """The (padded) source, the taps, their order and the output shape of a ``conv2``."""
    data = np.asarray(image, dtype=np.float64)
    taps = np.asarray(kernel, dtype=np.float64)
    if data.ndim != 2 or taps.ndim != 2:
        raise ValueError(f"conv2 needs 2-D arrays, got {data.shape} and {taps.shape}")
    if shape not in ("full", "same", "valid"):
        raise ValueError(f"unknown conv2 shape {shape!r} (full, same or valid)")
    (ma, na), (mb, nb) = data.shape, taps.shape
    if shape == "valid":
        order = [(i, j) for j in range(nb) for i in range(mb)]
        return data, taps, order, (max(ma - mb + 1, 0), max(na - nb + 1, 0))
    padded = np.pad(data, ((mb - 1, mb - 1), (nb - 1, nb - 1)))
    order = [(i, j) for j in range(nb - 1, -1, -1) for i in range(mb)]
    if shape == "same":
        padded = padded[mb // 2 : mb // 2 + ma + mb - 1, nb // 2 : nb // 2 + na + nb - 1]
        return padded, taps, order, (ma, na)
    return padded, taps, order, (ma + mb - 1, na + nb - 1)


def _accumulate(
    data: np.ndarray, taps: np.ndarray, order: list[tuple[int, int]], shape: tuple[int, int]
) -> np.ndarray:
    """``out[r, k] = sum of taps[i, j] * data[r + mb-1-i, k + nb-1-j]``, one fused
    multiply-add per nonzero tap in ``order``, computed in blocks of rows."""
    rows, cols = shape
    mb, nb = taps.shape
    out = np.zeros(shape)
    if out.size == 0:
        return out
    source = (data, *_split(data))
    used = [(i, j, float(taps[i, j])) for i, j in order if taps[i, j] != 0]
    accumulator = _FusedAccumulator((min(_BLOCK_ROWS, rows), cols))
    for top in range(0, rows, _BLOCK_ROWS):
        height = min(_BLOCK_ROWS, rows - top)
        if height < _BLOCK_ROWS:
            accumulator = _FusedAccumulator((height, cols))
        block = np.zeros((height, cols))
        for i, j, tap in used:
            window = (
                slice(top + mb - 1 - i, top + mb - 1 - i + height),
                slice(nb - 1 - j, nb - 1 - j + cols),
            )
            accumulator.add(tap, tuple(part[window] for part in source), block)
        out[top : top + height] = block
    return out


def filter2(kernel: np.ndarray, image: np.ndarray, shape: Shape = "same") -> np.ndarray:
    """Octave ``filter2(kernel, image, shape)``: a correlation, ``conv2`` with the kernel
    turned by 180 degrees."""
    taps = np.asarray(kernel, dtype=np.float64)
    return conv2(image, taps[::-1, ::-1], shape)


def sequential_sum(values: np.ndarray) -> float:
    """``sum(values(:))`` as Octave adds: one element at a time, in column-major order
    (NumPy's pairwise summation rounds differently)."""
    return float(np.cumsum(np.asarray(values, dtype=np.float64).ravel(order="F"))[-1])
