"""Pairwise statistical significance between the metrics of a run.

The statistics are :func:`iqabench.evaluate.significance_matrix` (the ITU-T P.1401 / VQEG
F-test on the residual variances after each metric's own logistic mapping); this module only
gathers each metric's item-level scores from ``scores.csv`` (cross-validated predictions for
trainable metrics), aligns them on the items every metric scored, and lays the verdicts out as
a :class:`~iqabench.report.tables.Table`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .results import Run
from .tables import Cell, Column, Row, Table

ALPHA = 0.05
#: How each verdict is shown in exported tables: row better, no difference, row worse.
VERDICT_TEXT: dict[int, str] = {1: "1", 0: "0", -1: "-1"}


@dataclass(frozen=True)
class Significance:
    """The verdict of every metric (row) against every other (column)."""

    keys: list[str]
    labels: list[str]
    matrix: list[list[int]]
    n_items: int
    alpha: float

    def wins(self, i: int) -> int:
        """How many metrics row ``i`` is significantly better than."""
        return sum(1 for v in self.matrix[i] if v > 0)


def significance(run: Run, alpha: float = ALPHA) -> Significance | None:
    """F-test verdicts between every pair of evaluated metrics (None with fewer than two)."""
    import numpy as np

    from ..evaluate import significance_matrix

    metrics = run.evaluated
    if len(metrics) < 2:
        return None
    points = {m.name: run.points(m.name) for m in metrics}
    quality: dict[str, float] = {}
    for p in points.values():
        for item, value in zip(p.item_ids, p.quality, strict=True):
            quality.setdefault(item, value)
    items = list(quality)
    predictions = {}
    for name, p in points.items():
        by_item = dict(zip(p.item_ids, p.score, strict=True))
        metric = run.metrics[name]
        sign = 1.0 if metric.by_splits or metric.higher_is_better else -1.0  # oriented
        column = [sign * by_item.get(i, math.nan) for i in items]
        predictions[name] = np.array(column, dtype=float)
    y = np.array([quality[i] for i in items], dtype=float)
    keep = np.isfinite(y)
    for column in predictions.values():
        keep &= np.isfinite(column)
    keys, matrix = significance_matrix(predictions, y, alpha)
    labels = [run.metrics[k].display_name for k in keys]
    return Significance(keys, labels, matrix.astype(int).tolist(), int(keep.sum()), alpha)


def significance_table(sig: Significance) -> Table:
    """The verdict matrix as a table: 1 row better, 0 indistinguishable, -1 row worse."""
    columns = [Column(label) for label in sig.labels]
    rows = []
    for i, (key, label) in enumerate(zip(sig.keys, sig.labels, strict=True)):
        cells = [
            Cell(value=math.nan, text="–")
            if i == j
            else Cell(value=float(v), text=VERDICT_TEXT[int(v)])
            for j, v in enumerate(sig.matrix[i])
        ]
        rows.append(Row(key, label, "", cells))
    caption = (
        f"F-test on residual variances after each metric's logistic mapping (ITU-T P.1401, "
        f"alpha = {sig.alpha:g}, {sig.n_items} items scored by every metric): 1 means the row "
        "metric is significantly better than the column metric, -1 significantly worse, "
        "0 statistically indistinguishable."
    )
    return Table(
        key="significance",
        title="Statistical significance",
        caption=caption,
        columns=columns,
        rows=rows,
        show_family=False,
    )
