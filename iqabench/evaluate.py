"""Statistics that compare metric scores with subjective scores: numbers in, numbers out.

Everything here works on 1-D NumPy arrays (one value per item) and knows nothing of images,
datasets or metrics. The procedure follows the Video Quality Experts Group and ITU-T:

* VQEG, *Final report from the Video Quality Experts Group on the validation of objective
  models of video quality assessment*, FR-TV Phase I (2000) and Phase II (2003): the objective
  score is first mapped onto the MOS scale by a monotonic nonlinear function (here the
  constrained five-parameter logistic of :mod:`iqabench.mapping`), then prediction accuracy
  is measured by the
  Pearson linear correlation (PLCC) and the root mean square error (RMSE) of the mapped scores,
  and prediction monotonicity by Spearman's rank correlation (SROCC); Kendall's tau is added as
  is customary in image quality assessment.
* ITU-T Recommendation P.1401 (2020), *Methods, metrics and procedures for statistical
  evaluation, qualification and comparison of objective quality prediction models*: section
  7.5 (statistics) and section 7.6.4 (significance of the difference between two RMSEs, the
  F-test of :func:`f_test`).

Orientation: a metric whose score falls as quality rises (NIQE, GMSD...) is negated before
anything else (``higher_is_better=False``), so that agreement with MOS always shows as a
positive SROCC/KROCC. The mapping is non-decreasing in the oriented score (the metric's own
direction), so a metric that disagrees with people cannot earn a high PLCC from a mapping that
turns it round: when no rising mapping beats a constant, PLCC is 0.

Confidence intervals are percentile bootstrap intervals over items (Efron and Tibshirani, *An
Introduction to the Bootstrap*, 1993, chapter 13). Over repeated train/test splits, the spread
of a statistic is summarised by :func:`summarize_splits` and two metrics are compared by the
corrected resampled t-test of :func:`corrected_resampled_ttest` (Nadeau and Bengio 2003).

Small samples: a correlation needs at least :data:`MIN_ITEMS` items (with two, SROCC is always
+1 or -1), and a statistic on fewer than :data:`MIN_TEST_ITEMS` items is flagged as a small
sample: with ``n = 10`` the standard error of Fisher's z of a correlation, ``1/sqrt(n - 3)``,
is already 0.38, so a 95% interval spans about 1.5 in z, which for a correlation near 0.8
covers roughly 0.3..0.95; fewer items say next to nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from .mapping import MappingFit, fit_mapping

#: Fewest items on which a correlation is computed (below, it is undefined: NaN).
MIN_ITEMS = 3
#: Fewer items than this make a statistic a small sample: flagged, greyed, never a headline.
MIN_TEST_ITEMS = 10
#: Changes whenever these statistics change, so stored evaluations are not reused across it.
EVALUATION_VERSION = "3"
#: Largest number of array elements one bootstrap chunk holds (bounds memory use).
_CHUNK_ELEMENTS = 1_000_000


@dataclass(frozen=True)
class Correlations:
    """Agreement between one metric's scores and MOS on a set of items.

    ``srocc`` (Spearman) and ``krocc`` (Kendall tau-b) are computed on the oriented raw scores;
    ``plcc`` (Pearson) and ``rmse`` (in MOS units, root of the *mean* squared residual) on the
    scores after ``mapping``. ``plcc_ci`` and ``srocc_ci`` are percentile bootstrap intervals,
    None when the bootstrap was skipped. Undefined values (constant input, fewer than
    :data:`MIN_ITEMS` items) are NaN. ``small_sample`` is True below :data:`MIN_TEST_ITEMS`.
    """

    plcc: float
    srocc: float
    krocc: float
    rmse: float
    n: int
    mapping: MappingFit
    plcc_ci: tuple[float, float] | None = None
    srocc_ci: tuple[float, float] | None = None
    confidence: float = field(default=0.95)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: floats, ints, lists and None (for NaN or a skipped CI)."""
        return {
            "plcc": _json_float(self.plcc),
            "srocc": _json_float(self.srocc),
            "krocc": _json_float(self.krocc),
            "rmse": _json_float(self.rmse),
            "n": int(self.n),
            "plcc_ci": _json_interval(self.plcc_ci),
            "srocc_ci": _json_interval(self.srocc_ci),
            "confidence": float(self.confidence),
            "small_sample": self.small_sample,
            "mapping": self.mapping.to_dict(),
        }

    @property
    def small_sample(self) -> bool:
        """True when the statistics rest on fewer than :data:`MIN_TEST_ITEMS` items."""
        return self.n < MIN_TEST_ITEMS


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _json_interval(interval: tuple[float, float] | None) -> list[float | None] | None:
    return None if interval is None else [_json_float(v) for v in interval]


def _paired_finite(scores: ArrayLike, mos: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(mos, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"scores and mos differ in length ({x.size} != {y.size})")
    finite = np.isfinite(x) & np.isfinite(y)
    return x[finite], y[finite]


def _varies(*arrays: np.ndarray) -> bool:
    """True when every array has at least :data:`MIN_ITEMS` items and is not constant."""
    return all(a.size >= MIN_ITEMS and np.ptp(a) > 0 for a in arrays)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.spearmanr(x, y).statistic) if _varies(x, y) else math.nan


def _kendall(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.kendalltau(x, y, variant="b").statistic) if _varies(x, y) else math.nan


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.pearsonr(x, y).statistic) if _varies(x, y) else math.nan


def _row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (NaN if constant)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    num = np.einsum("ij,ij->i", a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / den, np.nan)
    return np.clip(r, -1.0, 1.0)


def _resample_midranks(codes: np.ndarray, n_codes: int, idx: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties sharing their mean rank) of ``codes[idx]`` along each row.

    ``codes`` are dense ranks (0..n_codes-1) of the original values, so ranking a resample needs
    no sorting: count how often each code was drawn, and a code's average rank is the number of
    draws at or below it minus half of its own count less one. Equal to
    ``scipy.stats.rankdata(values[idx], axis=1)``.
    """
    drawn = codes[idx]
    offsets = n_codes * np.arange(idx.shape[0])[:, None]
    counts = np.bincount((drawn + offsets).ravel(), minlength=idx.shape[0] * n_codes)
    counts = counts.reshape(idx.shape[0], n_codes)
    midrank = np.cumsum(counts, axis=1) - (counts - 1) / 2.0
    return np.take_along_axis(midrank, drawn, axis=1)


def _bootstrap_indices(n: int, n_resamples: int, seed: int) -> list[np.ndarray]:
    """``n_resamples`` rows of ``n`` item indices drawn with replacement, in memory-sized chunks."""
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // max(n, 1))
    chunks = []
    for start in range(0, n_resamples, rows):
        chunks.append(rng.integers(0, n, size=(min(rows, n_resamples - start), n)))
    return chunks


def _bootstrap_spearman(x: np.ndarray, y: np.ndarray, chunks: Sequence[np.ndarray]) -> np.ndarray:
    """Spearman correlation of ``x`` and ``y`` on every bootstrap resample (rows of chunks)."""
    ux, cx = np.unique(x, return_inverse=True)
    uy, cy = np.unique(y, return_inverse=True)
    out = [
        _row_pearson(_resample_midranks(cx, ux.size, idx), _resample_midranks(cy, uy.size, idx))
        for idx in chunks
    ]
    return np.concatenate(out)


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (math.nan, math.nan)
    tail = 50.0 * (1.0 - confidence)
    lo, hi = np.percentile(finite, [tail, 100.0 - tail])
    return (float(lo), float(hi))


def correlations(
    scores: ArrayLike,
    mos: ArrayLike,
    higher_is_better: bool = True,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Correlations:
    """PLCC, SROCC, KROCC and RMSE of one metric against MOS, with bootstrap intervals.

    Follows VQEG FR-TV Phase I/II and ITU-T P.1401 section 7.5. Scores of a lower-is-better
    metric are negated first. SROCC (:func:`scipy.stats.spearmanr`) and KROCC (tau-b,
    :func:`scipy.stats.kendalltau`) use the oriented raw scores; PLCC
    (:func:`scipy.stats.pearsonr`) and RMSE use the scores after the non-decreasing mapping of
    :func:`iqabench.mapping.fit_mapping`. When that mapping is flat (no rising mapping does
    better than the mean MOS) PLCC is 0: the mapped scores explain none of the variance, and
    a Pearson correlation of a constant is undefined. RMSE is ``sqrt(mean((mos -
    mapped)**2))``, in MOS units, as image quality studies report it (P.1401 divides by
    ``N - d`` instead, ``d`` the number of mapping parameters).

    ``bootstrap`` resamples of the items (drawn with replacement, seeded by ``seed``) give
    percentile intervals at level ``confidence`` for SROCC and PLCC; ``bootstrap=0`` skips
    them. SROCC is recomputed on every resample from ranks within the resample. Re-fitting the
    logistic on every resample would cost a thousand fits, so PLCC resamples reuse the mapped
    scores of the full fit: the interval covers the sampling of items but not the uncertainty
    of the mapping's parameters, and is therefore somewhat narrower than a full refit would give.
    Intervals are NaN when fewer than :data:`MIN_ITEMS` items remain or the point estimate is
    undefined; a flat mapping's PLCC interval is ``[0, 0]``.

    Non-finite pairs are dropped (``n`` counts the pairs used). Constant input, or fewer than
    :data:`MIN_ITEMS` items, gives NaN correlations, never an exception.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie between 0 and 1, not {confidence}")
    x, y = _paired_finite(scores, mos)
    if not higher_is_better:
        x = -x
    mapping = fit_mapping(x, y)
    predicted = mapping.predict(x)
    flat = mapping.flat and _varies(x, y)
    plcc = 0.0 if flat else _pearson(predicted, y)
    srocc = _spearman(x, y)
    rmse = float(np.sqrt(np.mean((y - predicted) ** 2))) if y.size else math.nan

    plcc_ci: tuple[float, float] | None = None
    srocc_ci: tuple[float, float] | None = None
    if bootstrap > 0:
        plcc_ci = srocc_ci = (math.nan, math.nan)
        if y.size >= MIN_ITEMS and not (math.isnan(plcc) and math.isnan(srocc)):
            chunks = _bootstrap_indices(y.size, bootstrap, seed)
            if not math.isnan(srocc):
                srocc_ci = _percentile_interval(_bootstrap_spearman(x, y, chunks), confidence)
            if flat:
                plcc_ci = (0.0, 0.0)
            elif not math.isnan(plcc):
                boot_plcc = np.concatenate([_row_pearson(predicted[i], y[i]) for i in chunks])
                plcc_ci = _percentile_interval(boot_plcc, confidence)

    return Correlations(
        plcc=plcc,
        srocc=srocc,
        krocc=_kendall(x, y),
        rmse=rmse,
        n=int(y.size),
        mapping=mapping,
        plcc_ci=plcc_ci,
        srocc_ci=srocc_ci,
        confidence=confidence,
    )


def evaluate(
    scores: ArrayLike,
    mos: ArrayLike,
    distortions: Sequence[str | None] | None = None,
    higher_is_better: bool = True,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Correlations over all items and per distortion type, as plain JSON-ready data.

    Returns ``{"overall": ..., "per_type": {type: ...}}`` where each value is
    :meth:`Correlations.to_dict`. Each distortion type is evaluated on its own items alone, with
    its own logistic mapping, as in the per-distortion tables of LIVE and TID studies. Items
    whose type is None count in ``overall`` only; types keep their first-seen order.
    """
    x = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(mos, dtype=float).ravel()
    options = {"bootstrap": bootstrap, "seed": seed, "confidence": confidence}
    result: dict[str, Any] = {
        "overall": correlations(x, y, higher_is_better, **options).to_dict(),
        "per_type": {},
    }
    if distortions is None:
        return result
    if len(distortions) != x.size:
        raise ValueError(
            f"distortions and scores differ in length ({len(distortions)} != {x.size})"
        )
    for kind in dict.fromkeys(d for d in distortions if d is not None):
        chosen = np.array([d == kind for d in distortions], dtype=bool)
        result["per_type"][kind] = correlations(
            x[chosen], y[chosen], higher_is_better, **options
        ).to_dict()
    return result


def summarize_splits(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Median and spread of one statistic over repeated train/test splits.

    Returns median, ``iqr`` (``q75 - q25``), ``q25``, ``q75``, min, max, mean, ``std`` (sample
    standard deviation, ``ddof=1``), ``interval`` (the central ``confidence`` share of the split
    values: their 2.5th and 97.5th percentiles by default, the 95% interval of the split
    protocol) and ``n`` over the finite values, ``missing`` (how many splits gave no value),
    plus ``values`` as given. Quantiles use NumPy's default linear interpolation. NaN values (a
    split where the statistic was undefined) are left out of the statistics; everything is
    JSON-ready, with None where a value is NaN or undefined (no finite value; ``std`` of a
    single value).
    """
    arr = np.asarray(values, dtype=float).ravel()
    finite = arr[np.isfinite(arr)]
    summary: dict[str, Any] = dict.fromkeys(
        ("median", "iqr", "q25", "q75", "min", "max", "mean", "std", "interval")
    )
    if finite.size:
        q25, median, q75 = np.percentile(finite, [25.0, 50.0, 75.0])
        summary.update(
            interval=list(_percentile_interval(finite, confidence)),
            median=float(median),
            iqr=float(q75 - q25),
            q25=float(q25),
            q75=float(q75),
            min=float(finite.min()),
            max=float(finite.max()),
            mean=float(finite.mean()),
            std=float(finite.std(ddof=1)) if finite.size > 1 else None,
        )
    summary["n"] = int(finite.size)
    summary["missing"] = int(arr.size - finite.size)
    summary["values"] = [_json_float(v) for v in arr]
    return summary


def corrected_resampled_ttest(
    values_a: Sequence[float],
    values_b: Sequence[float],
    test_fraction: float,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Whether two metrics' statistic differs over the same repeated train/test splits.

    ``values_a[k]`` and ``values_b[k]`` are the statistic (SROCC, say) of two metrics on the
    test set of split ``k``; splits where either is undefined (NaN or None) are left out. The
    test sets of repeated splits overlap, so the differences ``d_k`` are correlated and the
    plain paired t-test is far too eager. Nadeau and Bengio (*Inference for the generalization
    error*, Machine Learning 52(3), 2003, section 4) correct its variance: with ``J`` splits,
    ``t = mean(d) / sqrt((1/J + n_test/n_train) * var(d))`` on ``J - 1`` degrees of freedom,
    ``n_test/n_train = test_fraction / (1 - test_fraction)``; Bouckaert and Frank (PAKDD 2004)
    found it the best calibrated of the usual tests. Two-sided, at level ``alpha``.

    Returns ``t``, ``df``, ``p_value``, ``difference`` (mean of ``a - b``), ``n_splits`` and
    ``verdict``: +1 when a is significantly larger, -1 when b is, 0 when the difference is not
    significant or the test is undefined (fewer than two paired splits, no spread and no
    difference). Identical differences on every split with a non-zero mean count as
    significant. JSON-ready (NaN as None).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie between 0 and 1, not {test_fraction}")
    a = np.array([math.nan if v is None else v for v in values_a], dtype=float)
    b = np.array([math.nan if v is None else v for v in values_b], dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"values differ in length ({a.size} != {b.size})")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    result: dict[str, Any] = {
        "t": None,
        "df": max(int(d.size) - 1, 0),
        "p_value": None,
        "difference": _json_float(d.mean()) if d.size else None,
        "n_splits": int(d.size),
        "verdict": 0,
    }
    if d.size < 2:
        return result
    mean, variance = float(d.mean()), float(d.var(ddof=1))
    scale = 1.0 / d.size + test_fraction / (1.0 - test_fraction)
    if variance == 0.0:
        if mean == 0.0:
            return result
        t_value, p_value = math.copysign(math.inf, mean), 0.0
    else:
        t_value = mean / math.sqrt(scale * variance)
        p_value = float(2.0 * stats.t.sf(abs(t_value), d.size - 1))
    result.update(
        t=_json_float(t_value),
        p_value=p_value,
        verdict=(1 if mean > 0 else -1) if p_value < alpha else 0,
    )
    return result


def f_test(
    residuals_a: ArrayLike,
    residuals_b: ArrayLike,
    alpha: float = 0.05,
    *,
    n_params: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """Whether two metrics' prediction errors differ significantly (ITU-T P.1401 7.6.4).

    ``residuals_a`` and ``residuals_b`` are ``mos - mapped score`` of two metrics on the same
    items, each after its own mapping. Each residual variance is
    ``sum(residuals**2) / (N - d)`` (P.1401's squared RMSE; ``d`` from ``n_params``, the number
    of parameters of each mapping, 5 for the five-parameter logistic), and the reported statistic is
    ``F = var_a / var_b`` with ``(N_a - d_a, N_b - d_b)`` degrees of freedom.

    The test is the one of P.1401 and of the VQEG FR-TV Phase II report: the larger variance
    goes in the numerator and the ratio is compared with the *upper* ``alpha`` point of the F
    distribution, i.e. a one-sided test at level ``alpha`` on the larger-over-smaller ratio
    (which, as the ordering is chosen after seeing the data, is a two-sided test of equal
    variances at level ``2 * alpha``). ``p_value`` is the upper-tail probability of that ratio,
    ``scipy.stats.f.sf(max/min, df_max, df_min)``, and the difference is significant when it is
    below ``alpha`` (equivalently, when the ratio exceeds ``critical``).

    Returns ``F``, ``df`` (numerator, denominator of ``F``), ``p_value``, ``critical`` and
    ``verdict``: +1 when a's residual variance is significantly smaller (a better), -1 when it is
    significantly larger (a worse, b better), 0 when they are statistically indistinguishable or
    the test is undefined (too few items, both variances zero). JSON-ready (NaN as None).
    """
    ra = np.asarray(residuals_a, dtype=float).ravel()
    rb = np.asarray(residuals_b, dtype=float).ravel()
    df_a, df_b = ra.size - n_params[0], rb.size - n_params[1]
    result: dict[str, Any] = {
        "F": None,
        "df": [int(df_a), int(df_b)],
        "p_value": None,
        "critical": None,
        "verdict": 0,
    }
    if df_a < 1 or df_b < 1 or not (np.all(np.isfinite(ra)) and np.all(np.isfinite(rb))):
        return result
    var_a, var_b = float(np.sum(ra**2)) / df_a, float(np.sum(rb**2)) / df_b
    if var_a == 0.0 and var_b == 0.0:
        return result
    a_larger = var_a >= var_b
    if a_larger:
        ratio, df_num, df_den = (var_a / var_b if var_b > 0 else math.inf), df_a, df_b
    else:
        ratio, df_num, df_den = (var_b / var_a if var_a > 0 else math.inf), df_b, df_a
    p_value = float(stats.f.sf(ratio, df_num, df_den))
    result.update(
        F=_json_float(var_a / var_b) if var_b > 0 else None,
        p_value=p_value,
        critical=float(stats.f.isf(alpha, df_num, df_den)),
        verdict=(-1 if a_larger else 1) if p_value < alpha else 0,
    )
    return result


def significance_matrix(
    predictions: Mapping[str, ArrayLike], mos: ArrayLike, alpha: float = 0.05
) -> tuple[list[str], np.ndarray]:
    """Pairwise F-test verdicts between metrics, for the report (ITU-T P.1401 7.6.4).

    ``predictions`` maps a metric name to its *oriented* scores (negated for a lower-is-better
    metric) on the same items as ``mos``. Each metric gets its own non-decreasing mapping
    (:func:`iqabench.mapping.fit_mapping`); its residuals are ``mos - mapped score``; every
    pair is compared with
    :func:`f_test`, with ``d`` the number of parameters of each mapping. Items where any metric
    or MOS is not finite are dropped for all, so that every comparison uses the same items.

    Returns the names (in the mapping's order) and an integer matrix whose entry ``[i, j]`` is
    the verdict of metric ``i`` against metric ``j``: +1 row significantly better, -1 row
    significantly worse, 0 indistinguishable (the diagonal is 0).
    """
    names = list(predictions)
    y = np.asarray(mos, dtype=float).ravel()
    columns = [np.asarray(predictions[name], dtype=float).ravel() for name in names]
    for name, column in zip(names, columns, strict=True):
        if column.shape != y.shape:
            raise ValueError(f"{name}: {column.size} predictions for {y.size} MOS values")
    keep = np.isfinite(y)
    for column in columns:
        keep &= np.isfinite(column)
    residuals, dofs = [], []
    for column in columns:
        fit = fit_mapping(column[keep], y[keep])
        residuals.append(y[keep] - fit.predict(column[keep]))
        dofs.append(len(fit.params))
    matrix = np.zeros((len(names), len(names)), dtype=int)
    for i in range(len(names)):
        for j in range(len(names)):
            if i != j:
                test = f_test(residuals[i], residuals[j], alpha, n_params=(dofs[i], dofs[j]))
                matrix[i, j] = test["verdict"]
    return names, matrix


def paired_bootstrap_srocc(
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    mos: ArrayLike,
    n: int = 2000,
    seed: int = 0,
    *,
    higher_is_better: tuple[bool, bool] = (True, True),
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired bootstrap test that two metrics have the same SROCC on the same items.

    Every resample draws items with replacement (seeded by ``seed``) and computes both metrics'
    SROCC on the same draw, so the correlation between the metrics is respected. With ``d`` the
    observed difference ``srocc_a - srocc_b`` and ``d*`` its ``n`` bootstrap replicates, the
    two-sided p-value is the smallest level at which the percentile interval of ``d*`` excludes
    zero, ``2 * min(#(d* <= 0), #(d* >= 0))``, with the usual add-one correction
    ``(count + 1) / (n + 1)`` so that it is never exactly zero, capped at 1 (Efron and
    Tibshirani 1993, chapter 15; Davison and Hinkley 1997, section 4.2). Scores of a
    lower-is-better metric are negated first (``higher_is_better`` per metric). Items where any
    input is not finite are dropped.

    Returns ``srocc_a``, ``srocc_b``, ``difference``, ``ci`` (percentile interval of the
    difference at level ``confidence``), ``p_value`` and ``n_items``; JSON-ready (NaN as None).
    """
    xa = np.asarray(scores_a, dtype=float).ravel()
    xb = np.asarray(scores_b, dtype=float).ravel()
    y = np.asarray(mos, dtype=float).ravel()
    if not xa.shape == xb.shape == y.shape:
        raise ValueError("scores_a, scores_b and mos must have the same length")
    keep = np.isfinite(xa) & np.isfinite(xb) & np.isfinite(y)
    xa, xb, y = xa[keep], xb[keep], y[keep]
    xa = xa if higher_is_better[0] else -xa
    xb = xb if higher_is_better[1] else -xb
    srocc_a, srocc_b = _spearman(xa, y), _spearman(xb, y)
    difference = srocc_a - srocc_b
    result: dict[str, Any] = {
        "srocc_a": _json_float(srocc_a),
        "srocc_b": _json_float(srocc_b),
        "difference": _json_float(difference),
        "ci": [None, None],
        "p_value": None,
        "n_items": int(y.size),
    }
    if y.size < 3 or math.isnan(difference) or n < 1:
        return result
    chunks = _bootstrap_indices(y.size, n, seed)
    diffs = _bootstrap_spearman(xa, y, chunks) - _bootstrap_spearman(xb, y, chunks)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return result
    tail = min(int(np.sum(diffs <= 0)), int(np.sum(diffs >= 0)))
    result["ci"] = [_json_float(v) for v in _percentile_interval(diffs, confidence)]
    result["p_value"] = min(1.0, 2.0 * (tail + 1) / (diffs.size + 1))
    return result
