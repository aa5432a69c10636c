"""The monotonic mapping from objective score to subjective score, fitted before PLCC and RMSE.

VQEG (FR-TV Phase II final report, 2003, section 5.3) and ITU-T P.1401 (2020, section 7.3) map
each model's score onto the subjective scale with a *monotonic* nonlinear function before the
Pearson correlation (PLCC) and the RMSE are computed; a mapping free to rise and fall would
reward a metric for agreeing with people in the wrong direction, or in no direction at all.

Here the score is already oriented (negated for a lower-is-better metric, see
:mod:`iqabench.evaluate`), so every mapping is non-decreasing over the observed range of the
scores. Three forms are tried in turn, and the result records which one was used and why:

1. the five-parameter logistic of :func:`logistic5` (VQEG FR-TV Phase II; Sheikh, Sabir and
   Bovik, IEEE TIP 15(11), 2006), fitted under the constraint that its derivative is
   non-negative over the scores' range (:func:`fit_mapping` explains how);
2. if that fit does not converge, the rising four-parameter logistic of :func:`logistic4`
   (VQEG multimedia phase I final report, 2008);
3. failing both, a least-squares straight line whose slope is not allowed below zero.

When no non-decreasing mapping does better than a constant (the scores fall as quality rises,
or carry no information), the mapping is the constant at the mean subjective score: it is
*flat*, and :mod:`iqabench.evaluate` reports PLCC 0 for it rather than a correlation of noise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special

#: Fewest points for which a logistic is fitted; below this, a straight line.
MIN_POINTS_LOGISTIC = 6
#: A mapping whose values over the data span less than this (in standard deviations of the
#: subjective scores) is flat: no non-decreasing mapping did better than a constant.
FLAT_SPAN = 1e-6
Kind = Literal["logistic5", "logistic4", "linear"]


def logistic5(x: ArrayLike, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """The VQEG five-parameter logistic ``b1 * (1/2 - 1/(1 + exp(b2 (x - b3)))) + b4 x + b5``.

    As used in VQEG FR-TV Phase II and most image quality studies since (Sheikh, Sabir and
    Bovik 2006). ``b1`` is the height of the sigmoid, ``b2`` its steepness, ``b3`` its centre,
    and ``b4 x + b5`` a linear trend. Computed through ``expit`` so large arguments do not
    overflow.
    """
    x = np.asarray(x, dtype=float)
    return b1 * (special.expit(b2 * (x - b3)) - 0.5) + b4 * x + b5


def logistic4(x: ArrayLike, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The VQEG four-parameter logistic ``(b1 - b2) / (1 + exp(-(x - b3) / b4)) + b2``.

    ``b1`` and ``b2`` are the upper and lower asymptotes, ``b3`` the centre and ``b4 > 0`` the
    scale (VQEG multimedia phase I final report, 2008, and ITU-T P.1401 section 7.3). It rises
    when ``b1 >= b2``, which the fit enforces.
    """
    x = np.asarray(x, dtype=float)
    return (b1 - b2) * special.expit((x - b3) / b4) + b2


@dataclass(frozen=True)
class MappingFit:
    """A fitted non-decreasing mapping from (oriented) objective score to subjective score.

    ``kind`` is ``"logistic5"`` (``params`` are ``b1..b5`` of :func:`logistic5`),
    ``"logistic4"`` (``b1..b4`` of :func:`logistic4`) or ``"linear"`` (slope and intercept);
    all in the units of the scores and the subjective scores. ``domain`` is the range of the
    scores it was fitted on, over which it is non-decreasing. ``converged`` says whether the
    five-parameter fit converged: None when it was not attempted (too few points, constant
    input). ``note`` says why a form other than the five-parameter logistic was used (empty
    when it was).
    """

    kind: Kind
    params: tuple[float, ...]
    domain: tuple[float, float]
    converged: bool | None
    note: str = ""

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Map scores onto the subjective scale."""
        x = np.asarray(x, dtype=float)
        if self.kind == "logistic5":
            return logistic5(x, *self.params)
        if self.kind == "logistic4":
            return logistic4(x, *self.params)
        slope, intercept = self.params
        return slope * x + intercept

    @property
    def flat(self) -> bool:
        """True for the constant mapping (no non-decreasing mapping beat the mean)."""
        return self.kind == "linear" and self.params[0] == 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (NaN as None)."""
        return {
            "kind": self.kind,
            "params": [_json_float(p) for p in self.params],
            "domain": [_json_float(v) for v in self.domain],
            "converged": self.converged,
            "flat": self.flat,
            "note": self.note,
        }


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class _Profile:
    """A logistic fit in standardised units: its parameters, or why there are none."""

    params: tuple[float, ...] | None
    sse: float
    failure: str = ""


def fit_mapping(scores: ArrayLike, mos: ArrayLike) -> MappingFit:
    """Fit the non-decreasing mapping from ``scores`` (oriented) to ``mos``.

    The fit works on standardised data (each variable minus its mean, over its standard
    deviation), so that it does not depend on the score's scale (PSNR near 30, GMSD near 0.1);
    parameters are converted back to the original units.

    *Five-parameter logistic.* Its derivative is ``b1 b2 s (1 - s) + b4`` with ``s`` the
    sigmoid. With ``b1 >= 0`` and ``b2 >= 0`` (a rising sigmoid) the first term is a unimodal
    function of the score, so over an interval the derivative is smallest at one of the
    interval's ends: it is non-negative over the whole observed range exactly when
    ``b4 >= -b1 b2 m``, with ``m`` the smaller of ``s (1 - s)`` at the lowest and highest
    score. This still allows the gently falling linear trend (``b4 < 0``) that many published
    fits have. For a fixed steepness ``b2`` and centre ``b3`` the mapping is linear in
    ``b1``, ``b4`` and ``b5``, and with ``c = b4 + b1 b2 m`` the constraints are ``b1 >= 0``
    and ``c >= 0``: a non-negative least-squares problem in two unknowns, solved exactly in
    closed form. What remains is a two-dimensional search over ``b2`` and ``b3`` (variable
    projection, Golub and Pereyra, SIAM J. Numer. Anal. 10(2), 1973): a grid
    (:data:`STEEPNESS_GRID` times :data:`CENTRE_GRID` centres across the widened range) finds
    the best basin, and Nelder-Mead (:func:`scipy.optimize.minimize`) refines it within bounds:
    ``b2`` from :data:`LEAST_ARGUMENT_SPAN` over the scores' range up to
    :data:`GREATEST_STEEPNESS`, ``b3`` within the scores' range widened by half of it on each
    side. ``converged`` is Nelder-Mead's verdict.

    *Four-parameter logistic* (:func:`logistic4`, rising: ``b1 >= b2``, ``b4 > 0``), fitted
    the same way, if the five-parameter search did not converge.

    *Straight line*, with fewer than :data:`MIN_POINTS_LOGISTIC` points, constant input, or
    when neither search converged: least squares, its slope clamped at zero.

    A mapping whose values over the data span less than :data:`FLAT_SPAN` standard deviations
    is returned as the constant at the mean MOS (``flat``). Non-finite pairs are dropped; this
    function never raises on degenerate input.
    """
    x = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(mos, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"scores and mos differ in length ({x.size} != {y.size})")
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    domain = (float(x.min()), float(x.max())) if x.size else (math.nan, math.nan)
    if x.size < MIN_POINTS_LOGISTIC:
        return _line(x, y, domain, None, f"fewer than {MIN_POINTS_LOGISTIC} points")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return _line(x, y, domain, None, f"constant {'scores' if np.ptp(x) == 0 else 'MOS'}")

    mx, sx, my, sy = x.mean(), x.std(), y.mean(), y.std()
    z, t = (x - mx) / sx, (y - my) / sy
    five = _search(z, t, with_trend=True)
    if five.params is not None:
        if _is_flat(logistic5(z, *five.params)):
            return _flat(y, domain, True)
        return MappingFit("logistic5", _five_to_units(five.params, mx, sx, my, sy), domain, True)
    four = _search(z, t, with_trend=False)
    if four.params is not None:
        if _is_flat(logistic4(z, *four.params)):
            return _flat(y, domain, False)
        params = _four_to_units(four.params, mx, sx, my, sy)
        return MappingFit("logistic4", params, domain, False, five.failure)
    return _line(x, y, domain, False, f"{five.failure}; {four.failure}")


def is_non_decreasing(fit: MappingFit, points: int = 2001) -> bool:
    """Whether ``fit`` is non-decreasing over its domain, checked on a dense grid.

    A step down of more than ``1e-9`` of the mapping's span (at least ``1e-12``) counts as
    decreasing; rounding errors are far below that.
    """
    lo, hi = fit.domain
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return True
    values = fit.predict(np.linspace(lo, hi, points))
    slack = 1e-9 * max(float(np.ptp(values)), 1e-3)
    return bool(np.all(np.diff(values) >= -slack))


# -- fitting in standardised units ------------------------------------------------------------

#: Steepness values (standardised units) of the grid that starts the logistic search.
STEEPNESS_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
#: Number of centres of that grid, evenly spread over the widened range of the scores.
CENTRE_GRID = 31
#: Least steepness ``b2``, as the sigmoid's argument span over the observed range of the
#: scores: below about 2 the sigmoid is a straight line with a faint cubic, which only a
#: runaway height ``b1`` could use (and the line itself is in the family through ``b4``).
LEAST_ARGUMENT_SPAN = 2.0
#: Greatest steepness ``b2`` in standardised units (a step a hundredth of an SD wide).
GREATEST_STEEPNESS = 100.0
#: Most Nelder-Mead iterations of one search; a search that needs more has not converged.
MAX_ITERATIONS = 4000


def _line(
    x: np.ndarray, y: np.ndarray, domain: tuple[float, float], converged: bool | None, note: str
) -> MappingFit:
    """Least-squares line with its slope clamped at zero (a flat line at mean MOS)."""
    if y.size == 0:
        return MappingFit("linear", (0.0, math.nan), domain, converged, note)
    dx = x - x.mean()
    sxx = float(np.dot(dx, dx))
    slope = max(0.0, float(np.dot(dx, y - y.mean()) / sxx)) if sxx > 0 else 0.0
    intercept = float(y.mean() - slope * x.mean())
    if slope == 0.0 and sxx > 0 and np.ptp(y) > 0:
        note = f"{note}; no rising line fits better than a constant (scores do not rise with MOS)"
    return MappingFit("linear", (slope, intercept), domain, converged, note)


def _flat(y: np.ndarray, domain: tuple[float, float], converged: bool | None) -> MappingFit:
    note = (
        "flat: no non-decreasing mapping fits better than a constant (scores do not rise with MOS)"
    )
    return MappingFit("linear", (0.0, float(y.mean())), domain, converged, note)


def _is_flat(mapped: np.ndarray) -> bool:
    return float(np.ptp(mapped)) < FLAT_SPAN


@dataclass(frozen=True)
class _Data:
    """Standardised scores ``z`` and MOS ``t`` with the sums every profile needs."""

    z: np.ndarray
    t: np.ndarray
    ends: tuple[int, int]
    zz: float
    zt: float
    tt: float

    @classmethod
    def of(cls, z: np.ndarray, t: np.ndarray) -> _Data:
        ends = (int(np.argmin(z)), int(np.argmax(z)))
        return cls(z, t, ends, float(z @ z), float(z @ t), float(t @ t))


def _linear_part(
    data: _Data, b2: np.ndarray, b3: np.ndarray, with_trend: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Best linear coefficients for each steepness ``b2[g]`` and centre ``b3[g]``.

    Five parameters (``with_trend``): ``b1 (s - 1/2) + b4 z + b5`` with ``b1 >= 0`` and
    ``c = b4 + b1 b2 m >= 0``; four: ``a (s - 1/2) + e`` with ``a >= 0``. ``t`` is centred
    (standardised), so the intercept only absorbs the columns' means and the rest is a
    non-negative least-squares problem in one or two unknowns, solved in closed form for all
    grid points at once: the unconstrained solution when it is feasible, else the best
    solution with one coefficient at zero (Lawson and Hanson, *Solving Least Squares
    Problems*, 1974, chapter 23). Returns the parameters (one row per grid point: ``b1..b5``,
    or ``a, b2, b3, e``) and the mean squared residuals.
    """
    z, t = data.z, data.t
    s = special.expit(b2[:, None] * (z[None, :] - b3[:, None])) - 0.5
    if with_trend:
        ends = s[:, data.ends] + 0.5
        least_slope = b2 * np.min(ends * (1.0 - ends), axis=1)
        u = s - least_slope[:, None] * z[None, :]
    else:
        u = s
    u_mean = u.mean(axis=1)
    uc = u - u_mean[:, None]
    uu, ut = np.einsum("gi,gi->g", uc, uc), uc @ t
    tt = data.tt
    with np.errstate(invalid="ignore", divide="ignore"):
        first_alone = np.where(uu > 0, np.maximum(ut, 0.0) / uu, 0.0)
    if not with_trend:
        sse = tt - first_alone * ut
        e = -first_alone * u_mean
        params = np.column_stack([first_alone, b2, b3, e])
        return params, np.maximum(sse, 0.0) / z.size
    zz, uz, zt = data.zz, uc @ z, data.zt
    det = uu * zz - uz**2
    with np.errstate(invalid="ignore", divide="ignore"):
        both = np.column_stack([(ut * zz - uz * zt) / det, (uu * zt - uz * ut) / det])
    feasible = (det > 1e-12 * uu * zz) & np.all(both >= 0.0, axis=1)
    second_alone = max(zt, 0.0) / zz
    candidates = [
        (np.where(feasible, both[:, 0], np.nan), np.where(feasible, both[:, 1], np.nan)),
        (first_alone, np.zeros_like(uu)),
        (np.zeros_like(uu), np.full_like(uu, second_alone)),
    ]
    best_sse = np.full_like(uu, np.inf)
    b1 = np.zeros_like(uu)
    c = np.zeros_like(uu)
    for cand_b1, cand_c in candidates:
        sse = tt - 2.0 * (cand_b1 * ut + cand_c * zt)
        sse += cand_b1**2 * uu + 2.0 * cand_b1 * cand_c * uz + cand_c**2 * zz
        better = np.isfinite(sse) & (sse < best_sse)
        best_sse = np.where(better, sse, best_sse)
        b1, c = np.where(better, cand_b1, b1), np.where(better, cand_c, c)
    b4 = c - b1 * least_slope
    b5 = -b1 * u_mean
    params = np.column_stack([b1, b2, b3, b4, b5])
    return params, np.maximum(best_sse, 0.0) / z.size


def _search(z: np.ndarray, t: np.ndarray, with_trend: bool) -> _Profile:
    """Grid then Nelder-Mead over (log steepness, centre) of the profiled residual."""
    name = "five" if with_trend else "four"
    data = _Data.of(z, t)
    lo, hi = float(z.min()), float(z.max())
    margin = 0.5 * (hi - lo)
    least = LEAST_ARGUMENT_SPAN / (hi - lo)
    steepness = np.log([v for v in STEEPNESS_GRID if v >= least] or [least])
    steep, centre = np.meshgrid(steepness, np.linspace(lo - margin, hi + margin, CENTRE_GRID))
    _, grid_sse = _linear_part(data, np.exp(steep.ravel()), centre.ravel(), with_trend)
    start = int(np.argmin(grid_sse))

    def objective(v: np.ndarray) -> float:
        b2, b3 = np.exp(v[:1]), v[1:2]
        return float(_linear_part(data, b2, b3, with_trend)[1][0])

    bounds = [(math.log(least), math.log(GREATEST_STEEPNESS)), (lo - margin, hi + margin)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = optimize.minimize(
            objective,
            np.array([steep.ravel()[start], centre.ravel()[start]]),
            method="Nelder-Mead",
            bounds=bounds,
            options={"xatol": 1e-8, "fatol": 1e-13, "maxiter": MAX_ITERATIONS},
        )
    if not result.success:
        reason = f"the {name}-parameter logistic did not converge ({result.message})"
        return _Profile(None, math.inf, reason)
    params, sse = _linear_part(data, np.exp(result.x[:1]), result.x[1:2], with_trend)
    found = tuple(float(v) for v in params[0])
    return _Profile(found if with_trend else _four_from_rising(found), float(sse[0]))


def _four_from_rising(p: tuple[float, ...]) -> tuple[float, ...]:
    """``a (s - 1/2) + e`` with ``s = expit(k (z - c))`` as :func:`logistic4`'s ``b1..b4``."""
    a, k, c, e = p
    return (e + 0.5 * a, e - 0.5 * a, c, 1.0 / k)


def _five_to_units(p: tuple[float, ...], mx: float, sx: float, my: float, sy: float) -> tuple:
    """``b1..b5`` of a fit on standardised data, in the original units."""
    b1, b2, b3, b4, b5 = p
    params = (sy * b1, b2 / sx, mx + sx * b3, sy * b4 / sx, my + sy * (b5 - b4 * mx / sx))
    return tuple(float(v) for v in params)


def _four_to_units(p: tuple[float, ...], mx: float, sx: float, my: float, sy: float) -> tuple:
    """``b1..b4`` of :func:`logistic4` on standardised data, in the original units."""
    b1, b2, b3, b4 = p
    return tuple(float(v) for v in (my + sy * b1, my + sy * b2, mx + sx * b3, sx * b4))
