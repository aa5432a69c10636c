"""The monotonic mapping: exact recovery of known logistics, and monotonicity on adversarial
data (steps, plateaus, outliers, humps, anti-correlation, noise), with each fallback named."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from iqabench import mapping
from iqabench.mapping import (
    MIN_POINTS_LOGISTIC,
    fit_mapping,
    is_non_decreasing,
    logistic4,
    logistic5,
)


def _rises_on_a_grid(fit: mapping.MappingFit) -> bool:
    """Monotonicity checked independently of :func:`is_non_decreasing`: 10 001 points."""
    lo, hi = fit.domain
    values = fit.predict(np.linspace(lo, hi, 10_001))
    return bool(np.all(np.diff(values) >= -1e-9 * max(np.ptp(values), 1e-3)))


def _adversarial() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 1.0, 200)
    cases = {
        "step": (x, 1.0 + 3.0 * (x > 0.6) + rng.normal(0.0, 0.05, 200)),
        "two steps": (x, 1.0 + (x > 0.3) + 2.0 * (x > 0.8) + rng.normal(0.0, 0.05, 200)),
        "plateaus": (x, 5.0 * np.clip(x, 0.3, 0.7) + rng.normal(0.0, 0.02, 200)),
        "hump": (x, np.sin(3.0 * x) + rng.normal(0.0, 0.05, 200)),
        "valley": (x, np.cos(6.0 * x) + rng.normal(0.0, 0.05, 200)),
        "falling": (x, -x + rng.normal(0.0, 0.1, 200)),
        "noise": (x, rng.normal(0.0, 1.0, 200)),
        "sawtooth": (x, (7.0 * x) % 1.0 + x),
        # A five-parameter logistic whose linear trend makes it fall at both ends.
        "falling ends": (x, logistic5(x, 3.0, 8.0, 0.5, -0.5, 2.0)),
    }
    y = 2.0 * x + rng.normal(0.0, 0.1, 200)
    y[:6] -= 10.0  # gross outliers low
    cases["outliers"] = (x, y)
    levels = np.repeat(np.arange(1.0, 6.0), 12)  # ordinal ground truth, heavy ties
    cases["ties"] = (levels + rng.normal(0.0, 0.3, levels.size), levels)
    cases["six points"] = (np.arange(6.0), np.array([1.0, 3.0, 2.0, 4.0, 4.0, 5.0]))
    return cases


@pytest.mark.parametrize("name", list(_adversarial()))
def test_mapping_is_monotonic_on_adversarial_data(name: str) -> None:
    x, y = _adversarial()[name]
    fit = fit_mapping(x, y)
    assert fit.domain == (x.min(), x.max())
    assert is_non_decreasing(fit) and _rises_on_a_grid(fit), name
    # The fit is at least as good as the best rising line (the five-parameter family holds it).
    line = np.polyfit(x, y, 1)
    slope = max(line[0], 0.0)
    line_sse = np.sum((y - (slope * (x - x.mean()) + y.mean())) ** 2)
    assert np.sum((y - fit.predict(x)) ** 2) <= line_sse * (1.0 + 1e-6)
    json.dumps(fit.to_dict(), allow_nan=False)


def test_a_falling_relation_gets_a_flat_mapping() -> None:
    x, y = _adversarial()["falling"]
    fit = fit_mapping(x, y)
    assert fit.flat and fit.kind == "linear" and fit.params == (0.0, pytest.approx(y.mean()))
    assert fit.converged is True and "flat" in fit.note


def test_a_step_is_followed_not_smoothed_away() -> None:
    x, y = _adversarial()["step"]
    fit = fit_mapping(x, y)
    assert fit.kind == "logistic5"
    assert np.corrcoef(fit.predict(x), y)[0, 1] > 0.99


@pytest.mark.parametrize(
    ("low", "high", "params"),
    [
        (20.0, 45.0, (4.0, 0.3, 32.0, 0.02, 3.0)),  # PSNR-like
        (-0.3, -0.02, (3.5, 40.0, -0.12, 1.0, 3.0)),  # GMSD negated (lower is better)
        (-9.0, -2.0, (50.0, 1.2, -5.0, 0.0, 50.0)),  # NIQE negated, MOS on 0..100
        (0.0, 1.0, (3.0, 8.0, 0.5, -0.3, 2.0)),  # a falling trend the sigmoid outweighs
    ],
)
def test_fit_recovers_known_parameters(low: float, high: float, params: tuple[float, ...]) -> None:
    x = np.linspace(low, high, 80)
    fit = fit_mapping(x, logistic5(x, *params))
    assert fit.kind == "logistic5" and fit.converged and fit.note == ""
    assert np.allclose(fit.params, params, rtol=1e-4, atol=1e-5 * abs(params[4]))
    assert all(isinstance(p, float) for p in fit.params)


def test_fit_is_invariant_to_score_scale_and_offset() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(20.0, 45.0, 200)
    y = logistic5(x, 4.0, 0.3, 32.0, 0.02, 3.0) + rng.normal(0.0, 0.3, 200)
    base = fit_mapping(x, y).predict(x)
    for scale, offset in [(1e-3, 0.0), (1e3, 0.0), (1.0, 1e4), (0.01, -5.0)]:
        moved = scale * x + offset
        assert np.allclose(fit_mapping(moved, y).predict(moved), base, atol=1e-4)
    assert fit_mapping(-x, y).flat  # the metric's own direction is not turned round


def test_logistic4_hand_values_and_units() -> None:
    # Upper 5, lower 1, centre 2, scale 0.5: at the centre half way, i.e. 3.
    assert logistic4(2.0, 5.0, 1.0, 2.0, 0.5) == pytest.approx(3.0)
    assert logistic4(2.0 + 0.5 * math.log(3.0), 5.0, 1.0, 2.0, 0.5) == pytest.approx(4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.allclose(logistic4([-1e6, 1e6], 5.0, 1.0, 0.0, 1.0), [1.0, 5.0])


def test_logistic5_hand_values() -> None:
    # b = (2, 1, 0, 0, 1): at x = ln 3, 1/(1 + e^x) = 1/4, so q = 2 * (1/2 - 1/4) + 1 = 1.5.
    x = np.array([0.0, math.log(3.0), -math.log(3.0)])
    assert np.allclose(logistic5(x, 2.0, 1.0, 0.0, 0.0, 1.0), [1.0, 1.5, 0.5])
    assert np.allclose(logistic5([2.0, 5.0], 7.0, 0.0, 1.0, 0.5, 1.0), [2.0, 3.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.allclose(logistic5([-1e6, 1e6], 2.0, 5.0, 0.0, 0.0, 0.0), [-1.0, 1.0])


def test_four_parameter_fallback_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = mapping._search

    def five_fails(z: np.ndarray, t: np.ndarray, with_trend: bool) -> mapping._Profile:
        if with_trend:
            return mapping._Profile(None, math.inf, "the five-parameter logistic did not converge")
        return real(z, t, with_trend)

    monkeypatch.setattr(mapping, "_search", five_fails)
    x = np.linspace(0.0, 1.0, 50)
    y = logistic4(x, 5.0, 1.0, 0.4, 0.1)
    fit = fit_mapping(x, y)
    assert fit.kind == "logistic4" and fit.converged is False
    assert fit.note == "the five-parameter logistic did not converge"
    assert np.allclose(fit.params, (5.0, 1.0, 0.4, 0.1), rtol=1e-4)
    assert is_non_decreasing(fit)


def test_no_convergence_is_reported_never_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mapping, "MAX_ITERATIONS", 1)
    x = np.linspace(0.0, 1.0, 40)
    fit = fit_mapping(x, logistic5(x, 3.0, 6.0, 0.5, 0.0, 1.0))
    assert fit.kind == "linear" and fit.converged is False
    assert "five-parameter logistic did not converge" in fit.note
    assert "four-parameter logistic did not converge" in fit.note
    assert fit.params[0] > 0.0 and is_non_decreasing(fit)


def test_line_for_few_points_matches_hand_regression() -> None:
    # x = 0..3, y = (0, 1, 1, 3): slope 4.5 / 5 = 0.9, intercept 1.25 - 0.9 * 1.5 = -0.1.
    fit = fit_mapping([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 1.0, 3.0])
    assert fit.kind == "linear" and fit.converged is None
    assert "fewer than 6" in fit.note and MIN_POINTS_LOGISTIC == 6
    assert fit.params == pytest.approx((0.9, -0.1))
    falling = fit_mapping([0.0, 1.0, 2.0], [3.0, 2.0, 1.0])
    assert falling.flat and "do not rise" in falling.note


@pytest.mark.parametrize(
    ("scores", "mos", "note"),
    [
        ([3.0] * 10, np.arange(10.0), "constant scores"),
        (np.arange(10.0), [2.0] * 10, "constant MOS"),
        ([1.0, 2.0], [1.0, 3.0], "fewer than 6 points"),
        ([], [], "fewer than 6 points"),
    ],
)
def test_degenerate_input_falls_back_without_raising(
    scores: list[float], mos: list[float], note: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_mapping(scores, mos)
    assert fit.kind == "linear" and note in fit.note and fit.converged is None
    json.dumps(fit.to_dict(), allow_nan=False)
