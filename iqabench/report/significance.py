"""Pairwise statistical significance between the metrics of a run, one protocol per matrix.

*Split protocol* (:func:`split_significance`): every pair of metrics is compared on the chosen
statistic over the same content-disjoint splits by the corrected resampled t-test
(:func:`iqabench.evaluate.corrected_resampled_ttest`, Nadeau and Bengio 2003), the test that
decides what the default tables show in bold.

*All-image protocol* (:func:`significance`): the ITU-T P.1401 / VQEG F-test on the residual
variances after each metric's own monotonic mapping
(:func:`iqabench.evaluate.significance_matrix`), for the training-free metrics scored on every
image; this module gathers their item-level scores from ``scores.csv`` (oriented, so that each
mapping rises), aligns them on the items every one of them scored, and lays the verdicts out
as a :class:`~iqabench.report.tables.Table`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .results import STAT_LABELS, Run
from .tables import Cell, Column, Row, Table

ALPHA = 0.05
#: How each verdict is shown in exported tables: row better, no difference, row worse.
VERDICT_TEXT: dict[int, str] = {1: "1", 0: "0", -1: "-1"}


@dataclass(frozen=True)
class Significance:
    """The verdict of every metric (row) against every other (column), under one protocol.

    ``n`` counts the items every metric scored (all-image protocol) or the splits
    (split protocol); ``method`` names the test in one line for captions.
    """

    keys: list[str]
    labels: list[str]
    matrix: list[list[int]]
    n: int
    alpha: float
    protocol: str = "all"
    method: str = ""

    def wins(self, i: int) -> int:
        """How many metrics row ``i`` is significantly better than."""
        return sum(1 for v in self.matrix[i] if v > 0)


def significance(run: Run, alpha: float = ALPHA) -> Significance | None:
    """F-test verdicts between the training-free metrics on all images, or between every
    metric on the test images of a cross-dataset run (None with fewer than two)."""
    import numpy as np

    from ..evaluate import significance_matrix

    metrics = run.under("all")
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
        sign = 1.0 if run.metrics[name].higher_is_better else -1.0  # oriented
        predictions[name] = np.array([sign * by_item.get(i, math.nan) for i in items])
    y = np.array([quality[i] for i in items], dtype=float)
    keep = np.isfinite(y)
    for column in predictions.values():
        keep &= np.isfinite(column)
    keys, matrix = significance_matrix(predictions, y, alpha)
    labels = [run.metrics[k].display_name for k in keys]
    which = "every metric" if run.default_protocol == "cross-dataset" else "training-free metrics"
    method = (
        f"F-test on residual variances after each metric's monotonic mapping (ITU-T P.1401), "
        f"{which} on the {int(keep.sum())} images every one of them scored"
    )
    protocol = "cross-dataset" if run.default_protocol == "cross-dataset" else "all"
    return Significance(
        keys, labels, matrix.astype(int).tolist(), int(keep.sum()), alpha, protocol, method
    )


def split_significance(run: Run, stat: str, alpha: float = ALPHA) -> Significance | None:
    """Corrected resampled t-test verdicts on ``stat`` over the splits (None with fewer than
    two metrics or no splits). A row is better when its statistic is significantly larger
    (smaller for RMSE)."""
    from ..evaluate import corrected_resampled_ttest

    metrics = run.under("splits")
    if len(metrics) < 2:
        return None
    values = {m.name: m.figure(stat).values for m in metrics}
    sign = -1 if stat == "rmse" else 1  # smaller RMSE is better

    def verdict(a: str, b: str) -> int:
        if a == b:
            return 0
        test = corrected_resampled_ttest(values[a], values[b], run.test_fraction, alpha)
        return sign * int(test["verdict"])

    matrix = [[verdict(a.name, b.name) for b in metrics] for a in metrics]
    splits = int(run.protocol.get("splits") or 0)
    method = (
        f"corrected resampled t-test on {STAT_LABELS[stat]} over the {splits} content-disjoint "
        "splits (Nadeau and Bengio 2003), every metric on the same test sets"
    )
    labels = [m.display_name for m in metrics]
    return Significance([m.name for m in metrics], labels, matrix, splits, alpha, "splits", method)


def significance_table(sig: Significance, key: str = "significance") -> Table:
    """The verdict matrix as a table: 1 row better, 0 indistinguishable, -1 row worse."""
    columns = [Column(label) for label in sig.labels]
    rows = []
    for i, (name, label) in enumerate(zip(sig.keys, sig.labels, strict=True)):
        cells = [
            Cell(value=math.nan, text="–")
            if i == j
            else Cell(value=float(v), text=VERDICT_TEXT[int(v)])
            for j, v in enumerate(sig.matrix[i])
        ]
        rows.append(Row(name, label, "", cells))
    caption = (
        f"{sig.method[0].upper()}{sig.method[1:]}, alpha = {sig.alpha:g}: 1 means the row "
        "metric is significantly better than the column metric, -1 significantly worse, "
        "0 statistically indistinguishable."
    )
    title = {
        "splits": "Statistical significance over splits",
        "cross-dataset": "Statistical significance on all test images",
    }.get(sig.protocol, "Statistical significance on all images (training-free metrics)")
    return Table(
        key=key,
        title=title,
        caption=caption,
        columns=columns,
        rows=rows,
        show_family=False,
        protocol=sig.protocol,
    )
