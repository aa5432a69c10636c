"""Statistics that compare metric scores with subjective scores: numbers in, numbers out.

Everything here works on 1-D NumPy arrays (one value per item) and knows nothing of images,
datasets or metrics. The procedure follows the Video Quality Experts Group and ITU-T:

* VQEG, *Final report from the Video Quality Experts Group on the validation of objective
  models of video quality assessment*, FR-TV Phase I (2000) and Phase II (2003): the objective
  score is first mapped onto the MOS scale by a monotonic nonlinear function (here the
  five-parameter logistic of :func:`logistic5`), then prediction accuracy is measured by the
  Pearson linear correlation (PLCC) and the root mean square error (RMSE) of the mapped scores,
  and prediction monotonicity by Spearman's rank correlation (SROCC); Kendall's tau is added as
  is customary in image quality assessment.
* ITU-T Recommendation P.1401 (2020), *Methods, metrics and procedures for statistical
  evaluation, qualification and comparison of objective quality prediction models*: section
  7.5 (statistics) and section 7.6.4 (significance of the difference between two RMSEs, the
  F-test of :func:`f_test`).

Orientation: a metric whose score falls as quality rises (NIQE, GMSD...) is negated before
anything else (``higher_is_better=False``), so that agreement with MOS always shows as a
positive SROCC/KROCC. The mapping may be increasing or decreasing, so PLCC after mapping
measures how well the mapped score predicts MOS and is positive even for a metric oriented the
wrong way; the direction shows in SROCC and KROCC.

Confidence intervals are percentile bootstrap intervals over items (Efron and Tibshirani, *An
Introduction to the Bootstrap*, 1993, chapter 13).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

#: Fewest items for which the five-parameter logistic is fitted; below this, a straight line.
MIN_POINTS_LOGISTIC = 6
#: Changes whenever these statistics change, so stored evaluations are not reused across it.
EVALUATION_VERSION = "2"
#: Largest number of array elements one bootstrap chunk holds (bounds memory use).
_CHUNK_ELEMENTS = 1_000_000


def logistic5(x: ArrayLike, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """The VQEG five-parameter logistic mapping from objective score to MOS.

    ``q = b1 * (1/2 - 1/(1 + exp(b2 * (x - b3)))) + b4 * x + b5``, as used in VQEG FR-TV Phase
    II and in most image quality studies since (Sheikh, Sabir and Bovik, IEEE TIP 15(11), 2006).
    ``b1`` is the height of the sigmoid, ``b2`` its steepness (its sign the direction), ``b3``
    its centre, and ``b4 * x + b5`` a linear trend. Computed through the logistic sigmoid
    ``expit`` so that large arguments do not overflow.
    """
    x = np.asarray(x, dtype=float)
    return b1 * (special.expit(b2 * (x - b3)) - 0.5) + b4 * x + b5


def _logistic5_jacobian(
    x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float
) -> np.ndarray:
    """Partial derivatives of :func:`logistic5` with respect to ``b1..b5`` (one row per x)."""
    s = special.expit(b2 * (x - b3))
    slope = b1 * s * (1.0 - s)
    return np.column_stack([s - 0.5, slope * (x - b3), -slope * b2, x, np.ones_like(x)])


@dataclass(frozen=True)
class MappingFit:
    """A fitted mapping from objective score to MOS.

    ``kind`` is ``"logistic5"`` (``params`` are ``b1..b5`` of :func:`logistic5`, in the units
    of the scores and MOS) or ``"linear"`` (``params`` are slope and intercept). ``converged``
    says whether the five-parameter least-squares fit converged: it is False when that fit
    failed or was not attempted (too few points, constant input). ``note`` says why a linear
    mapping was used instead; it is empty for a logistic mapping.
    """

    kind: Literal["logistic5", "linear"]
    params: tuple[float, ...]
    converged: bool
    note: str = ""

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Map objective scores onto the MOS scale."""
        x = np.asarray(x, dtype=float)
        if self.kind == "logistic5":
            return logistic5(x, *self.params)
        slope, intercept = self.params
        return slope * x + intercept

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (NaN as None)."""
        return {
            "kind": self.kind,
            "params": [_json_float(p) for p in self.params],
            "converged": self.converged,
            "note": self.note,
        }


def _fit_linear(x: np.ndarray, y: np.ndarray, converged: bool, note: str) -> MappingFit:
    """Least-squares line; a flat line at mean MOS when the scores are constant."""
    if y.size == 0:
        return MappingFit("linear", (0.0, math.nan), converged, note)
    dx = x - x.mean()
    sxx = float(np.dot(dx, dx))
    slope = float(np.dot(dx, y - y.mean()) / sxx) if sxx > 0 else 0.0
    return MappingFit("linear", (slope, float(y.mean() - slope * x.mean())), converged, note)


def fit_logistic5(scores: ArrayLike, mos: ArrayLike, *, maxfev: int = 1000) -> MappingFit:
    """Fit the five-parameter logistic of :func:`logistic5` from ``scores`` to ``mos``.

    The fit is done on standardised data (scores and MOS each minus their mean, divided by their
    standard deviation), which makes the starting point and bounds independent of the score's
    scale (PSNR near 30, NIQE near 5, GMSD near 0.1, VIF near 0.5); the parameters are then
    converted back to the original units. In those standardised units the starting point is the
    customary one: ``b1`` the MOS range, ``b2`` one over the scores' standard deviation, ``b3``
    the mean score, ``b4 = 0``, ``b5`` the mean MOS. ``b2`` is tried with both signs and with a
    steeper value (four times as steep), and the fit with the smallest squared residual is kept
    (on synthetic-lwir the steep starts find fits with a PLCC higher by up to 0.07 for PSNR).
    Bounds keep the fit away from runaway values: ``0 <= b1 <= max(100, 2 * MOS range)``,
    ``|b2| <= 100`` (a transition no narrower than a hundredth of a standard deviation),
    ``b3`` within the scores' range widened by half of it on each side, ``|b4|, |b5| <= 10``
    (all in standardised units). Each start uses :func:`scipy.optimize.curve_fit` (trust region
    reflective, analytic Jacobian) with at most ``maxfev`` function evaluations, stopping when a
    step changes the squared residual or the parameters by less than one part in a million
    (tighter tolerances cost ten times as many evaluations on nearly linear or uninformative
    data, where the logistic creeps towards its linear limit, for changes in PLCC below 1e-6).

    A least-squares line is returned instead (``kind="linear"``, with a ``note``) when there are
    fewer than :data:`MIN_POINTS_LOGISTIC` points, when scores or MOS are constant, when no start
    converges, or when the best logistic leaves a larger squared residual than the line (the
    logistic contains the line, so this means the optimiser went astray). This function never
    raises on such input; non-finite pairs are dropped.
    """
    x = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(mos, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"scores and mos differ in length ({x.size} != {y.size})")
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if x.size < MIN_POINTS_LOGISTIC:
        return _fit_linear(x, y, False, f"fewer than {MIN_POINTS_LOGISTIC} points")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        which = "scores" if np.ptp(x) == 0 else "MOS"
        return _fit_linear(x, y, False, f"constant {which}")

    mx, sx, my, sy = x.mean(), x.std(), y.mean(), y.std()
    z, t = (x - mx) / sx, (y - my) / sy
    upper_b1 = max(100.0, 2.0 * float(np.ptp(t)))
    margin = 0.5 * float(np.ptp(z))
    lower = [0.0, -100.0, float(z.min()) - margin, -10.0, -10.0]
    upper = [upper_b1, 100.0, float(z.max()) + margin, 10.0, 10.0]

    best: np.ndarray | None = None
    best_sse = math.inf
    for b2 in (1.0, -1.0, 4.0, -4.0):
        start = [float(np.ptp(t)), b2, 0.0, 0.0, 0.0]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                popt, _ = optimize.curve_fit(
                    logistic5,
                    z,
                    t,
                    p0=start,
                    bounds=(lower, upper),
                    jac=_logistic5_jacobian,
                    maxfev=maxfev,
                    ftol=1e-6,
                    xtol=1e-6,
                )
        except (RuntimeError, ValueError, FloatingPointError):
            continue
        sse = float(np.sum((t - logistic5(z, *popt)) ** 2))
        if np.all(np.isfinite(popt)) and sse < best_sse:
            best, best_sse = popt, sse

    if best is None:
        return _fit_linear(x, y, False, "logistic fit did not converge")
    b1z, b2z, b3z, b4z, b5z = (float(v) for v in best)
    params = (sy * b1z, b2z / sx, mx + sx * b3z, sy * b4z / sx, my + sy * (b5z - b4z * mx / sx))
    fit = MappingFit("logistic5", tuple(float(p) for p in params), True)
    line = _fit_linear(x, y, True, "logistic fit worse than linear")
    sse_logistic = float(np.sum((y - fit.predict(x)) ** 2))
    sse_line = float(np.sum((y - line.predict(x)) ** 2))
    # Within the optimiser's relative tolerance the two count as equal and the logistic stays.
    if not np.isfinite(sse_logistic) or sse_logistic > sse_line * (1.0 + 1e-6):
        return line
    return fit


@dataclass(frozen=True)
class Correlations:
    """Agreement between one metric's scores and MOS on a set of items.

    ``srocc`` (Spearman) and ``krocc`` (Kendall tau-b) are computed on the oriented raw scores;
    ``plcc`` (Pearson) and ``rmse`` (in MOS units, root of the *mean* squared residual) on the
    scores after ``mapping``. ``plcc_ci`` and ``srocc_ci`` are percentile bootstrap intervals,
    None when the bootstrap was skipped. Undefined values (constant input, too few items) are
    NaN.
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
            "mapping": self.mapping.to_dict(),
        }


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
    """True when every array has at least two items and is not constant."""
    return all(a.size >= 2 and np.ptp(a) > 0 for a in arrays)


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
    (:func:`scipy.stats.pearsonr`) and RMSE use the scores after :func:`fit_logistic5`. RMSE is
    ``sqrt(mean((mos - mapped)**2))``, in MOS units, as image quality studies report it (P.1401
    divides by ``N - d`` instead, ``d`` the number of mapping parameters).

    ``bootstrap`` resamples of the items (drawn with replacement, seeded by ``seed``) give
    percentile intervals at level ``confidence`` for SROCC and PLCC; ``bootstrap=0`` skips
    them. SROCC is recomputed on every resample from ranks within the resample. Re-fitting the
    logistic on every resample would cost a thousand fits, so PLCC resamples reuse the mapped
    scores of the full fit: the interval covers the sampling of items but not the uncertainty
    of the mapping's parameters, and is therefore somewhat narrower than a full refit would give.
    Intervals are NaN when fewer than three items remain or the point estimate is undefined.

    Non-finite pairs are dropped (``n`` counts the pairs used). Constant input gives NaN
    correlations, never an exception.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie between 0 and 1, not {confidence}")
    x, y = _paired_finite(scores, mos)
    if not higher_is_better:
        x = -x
    mapping = fit_logistic5(x, y)
    predicted = mapping.predict(x)
    plcc, srocc = _pearson(predicted, y), _spearman(x, y)
    rmse = float(np.sqrt(np.mean((y - predicted) ** 2))) if y.size else math.nan

    plcc_ci: tuple[float, float] | None = None
    srocc_ci: tuple[float, float] | None = None
    if bootstrap > 0:
        plcc_ci = srocc_ci = (math.nan, math.nan)
        if y.size >= 3 and not (math.isnan(plcc) and math.isnan(srocc)):
            chunks = _bootstrap_indices(y.size, bootstrap, seed)
            if not math.isnan(srocc):
                srocc_ci = _percentile_interval(_bootstrap_spearman(x, y, chunks), confidence)
            if not math.isnan(plcc):
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


def summarize_splits(values: Sequence[float]) -> dict[str, Any]:
    """Median and spread of one statistic over repeated train/test splits.

    Returns median, ``iqr`` (``q75 - q25``), ``q25``, ``q75``, min, max, mean, ``std`` (sample
    standard deviation, ``ddof=1``) and ``n`` over the finite values, plus ``values`` as given.
    Quantiles use NumPy's default linear interpolation. NaN values (a split where the statistic
    was undefined) are left out of the statistics; everything is JSON-ready, with None where a
    value is NaN or undefined (no finite value; ``std`` of a single value).
    """
    arr = np.asarray(values, dtype=float).ravel()
    finite = arr[np.isfinite(arr)]
    summary: dict[str, Any] = dict.fromkeys(
        ("median", "iqr", "q25", "q75", "min", "max", "mean", "std")
    )
    if finite.size:
        q25, median, q75 = np.percentile(finite, [25.0, 50.0, 75.0])
        summary.update(
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
    summary["values"] = [_json_float(v) for v in arr]
    return summary


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
    of parameters of each mapping, 5 for :func:`logistic5`), and the reported statistic is
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

    ``predictions`` maps a metric name to its scores on the same items as ``mos``. Each metric
    gets its own :func:`fit_logistic5` mapping (which may rise or fall, so orientation does not
    matter); its residuals are ``mos - mapped score``; every pair is compared with
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
        fit = fit_logistic5(column[keep], y[keep])
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
