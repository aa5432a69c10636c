"""Statistics checked against hand-worked examples and SciPy."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from iqabench.evaluate import (
    MIN_ITEMS,
    MIN_TEST_ITEMS,
    _resample_midranks,
    corrected_resampled_ttest,
    correlations,
    evaluate,
    f_test,
    paired_bootstrap_srocc,
    significance_matrix,
    summarize_splits,
)
from iqabench.mapping import logistic5


def _synthetic(n: int, seed: int = 0, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """PSNR-like scores and a MOS that saturates at both ends, with noise."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(20.0, 45.0, n)
    mos = logistic5(scores, 4.0, 0.3, 32.0, 0.02, 3.0) + rng.normal(0.0, noise, n)
    return scores, mos


# --- correlations -----------------------------------------------------------------------------


def test_degenerate_input_gives_nan_without_raising() -> None:
    for scores, mos in (([3.0] * 10, np.arange(10.0)), ([1.0, 2.0], [1.0, 3.0]), ([], [])):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = correlations(scores, mos, bootstrap=200)
        assert result.mapping.kind == "linear"
        json.dumps(result.to_dict(), allow_nan=False)


def test_constant_scores_give_nan_correlations_and_rmse_in_mos_units() -> None:
    mos = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    result = correlations(np.full(7, 0.5), mos)
    assert math.isnan(result.plcc) and math.isnan(result.srocc) and math.isnan(result.krocc)
    assert result.rmse == pytest.approx(np.std(mos))  # the flat line at mean MOS
    assert result.mapping.params == (0.0, 4.0)
    as_dict = result.to_dict()
    assert as_dict["plcc"] is None and as_dict["srocc"] is None
    assert as_dict["plcc_ci"] == [None, None]


def test_two_points_say_nothing() -> None:
    # Two points always give SROCC +1 or -1: below MIN_ITEMS a correlation is undefined.
    result = correlations([1.0, 2.0], [3.0, 5.0])
    assert result.n == 2 and MIN_ITEMS == 3 and result.rmse == pytest.approx(0.0)
    assert math.isnan(result.plcc) and math.isnan(result.srocc) and math.isnan(result.krocc)
    assert all(math.isnan(v) for v in (*result.plcc_ci, *result.srocc_ci))
    assert result.small_sample and result.to_dict()["small_sample"] is True


def test_small_sample_flag_starts_below_ten_items() -> None:
    scores, mos = _synthetic(MIN_TEST_ITEMS)
    assert MIN_TEST_ITEMS == 10
    assert not correlations(scores, mos, bootstrap=0).small_sample
    assert correlations(scores[:-1], mos[:-1], bootstrap=0).small_sample


def test_a_metric_that_disagrees_gets_plcc_zero_not_a_flipped_fit() -> None:
    # Scores that fall as MOS rises: SROCC is strongly negative, and no rising mapping does
    # better than the mean, so PLCC is 0 (a free mapping would report about 0.95).
    scores, mos = _synthetic(120, seed=4)
    result = correlations(-scores, mos, bootstrap=200)
    assert result.srocc < -0.8 and result.mapping.flat
    assert result.plcc == 0.0 and result.plcc_ci == (0.0, 0.0)
    assert result.rmse == pytest.approx(np.std(mos))
    assert correlations(-scores, mos, higher_is_better=False, bootstrap=0).plcc > 0.9


def test_plcc_of_monotone_nonlinear_relation_is_one_after_mapping() -> None:
    scores = np.linspace(0.0, 1.0, 50)
    mos = logistic5(scores, 80.0, 12.0, 0.5, 5.0, 40.0)
    result = correlations(scores, mos, bootstrap=0)
    assert stats.pearsonr(scores, mos).statistic < 0.97  # the raw relation is clearly curved
    assert result.plcc == pytest.approx(1.0, abs=1e-8)
    assert result.rmse == pytest.approx(0.0, abs=1e-5)
    assert result.srocc == pytest.approx(1.0) and result.krocc == pytest.approx(1.0)


def test_srocc_and_krocc_equal_scipy_with_ties() -> None:
    rng = np.random.default_rng(4)
    scores = np.round(rng.normal(size=120), 1)  # many ties
    mos = np.round(scores + rng.normal(size=120), 0)
    result = correlations(scores, mos, bootstrap=0)
    assert result.srocc == pytest.approx(stats.spearmanr(scores, mos).statistic, abs=1e-12)
    assert result.krocc == pytest.approx(stats.kendalltau(scores, mos).statistic, abs=1e-12)


def test_plcc_and_rmse_are_computed_after_the_mapping() -> None:
    scores, mos = _synthetic(150, seed=2)
    result = correlations(scores, mos, bootstrap=0)
    mapped = result.mapping.predict(scores)
    assert result.plcc == pytest.approx(stats.pearsonr(mapped, mos).statistic, abs=1e-12)
    assert result.rmse == pytest.approx(np.sqrt(np.mean((mos - mapped) ** 2)), abs=1e-12)
    assert result.rmse == pytest.approx(0.3, rel=0.2)  # the noise level, in MOS units


def test_rmse_hand_example_and_mos_units() -> None:
    # Same points as the hand regression: residuals (0.1, 0.2, -0.7, 0.4), mean square 0.175;
    # PLCC = 4.5 / sqrt(5 * 4.75).
    result = correlations([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 1.0, 3.0], bootstrap=0)
    assert result.rmse == pytest.approx(math.sqrt(0.175))
    assert result.plcc == pytest.approx(4.5 / math.sqrt(5.0 * 4.75))
    scores, mos = _synthetic(100, seed=3)
    assert correlations(scores, 10.0 * mos, bootstrap=0).rmse == pytest.approx(
        10.0 * correlations(scores, mos, bootstrap=0).rmse, rel=1e-5
    )


def test_lower_is_better_is_negated_first() -> None:
    scores, mos = _synthetic(100, seed=5)
    upright = correlations(scores, mos, bootstrap=100)
    flipped = correlations(-scores, mos, higher_is_better=False, bootstrap=100)
    assert flipped.srocc > 0.9 and flipped.krocc > 0.7 and flipped.plcc > 0.9
    for name in ("plcc", "srocc", "krocc", "rmse"):
        assert getattr(flipped, name) == pytest.approx(getattr(upright, name), abs=1e-6)
    assert flipped.srocc_ci == pytest.approx(upright.srocc_ci)
    wrong_way = correlations(-scores, mos, bootstrap=0)
    assert wrong_way.srocc == pytest.approx(-upright.srocc)


def test_non_finite_pairs_are_dropped() -> None:
    scores, mos = _synthetic(40, seed=6)
    scores[3], mos[7] = np.nan, np.inf
    result = correlations(scores, mos, bootstrap=0)
    keep = np.isfinite(scores) & np.isfinite(mos)
    assert result.n == 38
    assert result.srocc == pytest.approx(stats.spearmanr(scores[keep], mos[keep]).statistic)


def test_bootstrap_intervals_contain_estimate_shrink_with_n_and_are_seeded() -> None:
    small = correlations(*_synthetic(40, seed=7, noise=0.6), bootstrap=500)
    large = correlations(*_synthetic(640, seed=7, noise=0.6), bootstrap=500)
    for result in (small, large):
        assert result.srocc_ci[0] <= result.srocc <= result.srocc_ci[1]
        assert result.plcc_ci[0] <= result.plcc <= result.plcc_ci[1]
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(large.srocc_ci) < 0.5 * width(small.srocc_ci)
    assert width(large.plcc_ci) < 0.5 * width(small.plcc_ci)
    again = correlations(*_synthetic(40, seed=7, noise=0.6), bootstrap=500)
    assert again.srocc_ci == small.srocc_ci and again.plcc_ci == small.plcc_ci
    other = correlations(*_synthetic(40, seed=7, noise=0.6), bootstrap=500, seed=1)
    assert other.srocc_ci != small.srocc_ci
    narrow = correlations(*_synthetic(40, seed=7, noise=0.6), bootstrap=500, confidence=0.5)
    assert width(narrow.srocc_ci) < width(small.srocc_ci)


def test_bootstrap_zero_skips_intervals() -> None:
    result = correlations(*_synthetic(30), bootstrap=0)
    assert result.plcc_ci is None and result.srocc_ci is None
    assert result.to_dict()["srocc_ci"] is None


def test_bootstrap_srocc_matches_scipy_on_each_resample() -> None:
    rng = np.random.default_rng(8)
    values = np.round(rng.normal(size=30), 1)
    _, codes = np.unique(values, return_inverse=True)
    idx = rng.integers(0, 30, size=(25, 30))
    ranks = _resample_midranks(codes, int(codes.max()) + 1, idx)
    assert np.allclose(ranks, stats.rankdata(values[idx], axis=1))


def test_to_dict_is_plain_json() -> None:
    as_dict = correlations(*_synthetic(30), bootstrap=50).to_dict()
    text = json.dumps(as_dict, allow_nan=False)
    assert set(json.loads(text)) == {
        "plcc",
        "srocc",
        "krocc",
        "rmse",
        "n",
        "plcc_ci",
        "srocc_ci",
        "confidence",
        "small_sample",
        "mapping",
    }
    assert as_dict["mapping"]["kind"] == "logistic5" and len(as_dict["mapping"]["params"]) == 5


# --- per type and over splits -----------------------------------------------------------------


def test_evaluate_groups_by_distortion_type() -> None:
    scores, mos = _synthetic(90, seed=9)
    distortions = (["noise", "blur", None] * 30)[:90]
    result = evaluate(scores, mos, distortions, bootstrap=100, seed=3)
    assert list(result["per_type"]) == ["noise", "blur"]
    assert result["overall"] == correlations(scores, mos, bootstrap=100, seed=3).to_dict()
    noise = np.array([d == "noise" for d in distortions])
    expected = correlations(scores[noise], mos[noise], bootstrap=100, seed=3).to_dict()
    assert result["per_type"]["noise"] == expected
    assert result["per_type"]["blur"]["n"] == 30
    assert evaluate(scores, mos, None, bootstrap=0)["per_type"] == {}
    flipped = evaluate(-scores, mos, distortions, higher_is_better=False, bootstrap=0)
    assert flipped["per_type"]["blur"]["srocc"] > 0.5
    with pytest.raises(ValueError, match="length"):
        evaluate(scores, mos, distortions[:10])


def test_evaluate_with_a_constant_type_does_not_raise() -> None:
    scores, mos = _synthetic(20, seed=10)
    scores[:5] = 1.0
    result = evaluate(scores, mos, ["flat"] * 5 + ["other"] * 15, bootstrap=50)
    assert result["per_type"]["flat"]["srocc"] is None
    assert result["per_type"]["other"]["srocc"] is not None


def test_summarize_splits_matches_numpy() -> None:
    values = [0.91, 0.85, np.nan, 0.88, 0.93, 0.80, 0.87]
    finite = np.array([v for v in values if not np.isnan(v)])
    summary = summarize_splits(values)
    q25, q50, q75 = np.percentile(finite, [25, 50, 75])
    assert summary["median"] == pytest.approx(q50) == pytest.approx(np.median(finite))
    assert summary["q25"] == pytest.approx(q25) and summary["q75"] == pytest.approx(q75)
    assert summary["iqr"] == pytest.approx(q75 - q25)
    assert summary["min"] == 0.80 and summary["max"] == 0.93
    assert summary["mean"] == pytest.approx(finite.mean())
    assert summary["std"] == pytest.approx(finite.std(ddof=1))
    assert summary["n"] == 6 and summary["values"][2] is None and len(summary["values"]) == 7
    assert summary["missing"] == 1
    assert summary["interval"] == pytest.approx(list(np.percentile(finite, [2.5, 97.5])))
    json.dumps(summary, allow_nan=False)


def test_summarize_splits_degenerate() -> None:
    assert summarize_splits([0.5])["std"] is None and summarize_splits([0.5])["iqr"] == 0.0
    assert summarize_splits([0.5])["interval"] == [0.5, 0.5]
    empty = summarize_splits([np.nan, np.nan])
    assert empty["n"] == 0 and empty["median"] is None and empty["values"] == [None, None]
    assert empty["missing"] == 2 and empty["interval"] is None


def test_corrected_resampled_ttest_worked_example() -> None:
    # d = a - b = (0.02, 0.04, 0.06, 0.08): mean 0.05, sample variance 0.02^2 * 5/3. With a
    # test share of 0.2 the correction is 1/4 + 0.2/0.8 = 0.5, so t = 0.05 / sqrt(0.5 * var)
    # = 0.05 / 0.018257 = 2.7386 on 3 degrees of freedom; two-sided p = 0.0714 > 0.05.
    a = [0.92, 0.94, 0.96, 0.98]
    b = [0.90, 0.90, 0.90, 0.90]
    result = corrected_resampled_ttest(a, b, test_fraction=0.2)
    variance = np.var([0.02, 0.04, 0.06, 0.08], ddof=1)
    assert result["t"] == pytest.approx(0.05 / math.sqrt(0.5 * variance))
    assert result["t"] == pytest.approx(2.7386, abs=1e-4)
    assert result["df"] == 3 and result["n_splits"] == 4
    assert result["p_value"] == pytest.approx(2.0 * stats.t.sf(result["t"], 3))
    assert result["verdict"] == 0  # an uncorrected paired t-test would call it (t = 5.48)
    assert stats.ttest_rel(a, b).pvalue < 0.05
    json.dumps(result, allow_nan=False)


def test_corrected_resampled_ttest_directions_and_gaps() -> None:
    rng = np.random.default_rng(5)
    base = rng.uniform(0.7, 0.8, 10)
    better = base + 0.1 + rng.normal(0.0, 0.005, 10)
    assert corrected_resampled_ttest(better, base, 0.2)["verdict"] == 1
    assert corrected_resampled_ttest(base, better, 0.2)["verdict"] == -1
    with_gaps = list(better)
    with_gaps[3] = None
    assert corrected_resampled_ttest(with_gaps, base, 0.2)["n_splits"] == 9
    assert corrected_resampled_ttest([0.5], [0.4], 0.2)["verdict"] == 0  # one split: no test
    assert corrected_resampled_ttest(base, base, 0.2)["verdict"] == 0
    assert corrected_resampled_ttest(base + 0.1, base, 0.2)["verdict"] == 1  # no spread at all
    with pytest.raises(ValueError, match="test_fraction"):
        corrected_resampled_ttest(base, base, 1.0)


# --- significance -----------------------------------------------------------------------------


def test_f_test_worked_example() -> None:
    # var_a = (1 + 1 + 4 + 4) / 4 = 2.5, var_b = 4 / 4 = 1: F = 2.5 on (4, 4) degrees of freedom.
    result = f_test([1.0, -1.0, 2.0, -2.0], [1.0, -1.0, 1.0, -1.0])
    assert result["F"] == pytest.approx(2.5)
    assert result["df"] == [4, 4]
    assert result["p_value"] == pytest.approx(stats.f.sf(2.5, 4, 4))
    # By hand: the F(4, 4) CDF is I_x(2, 2) = x^2 (3 - 2x) at x = 4F / (4F + 4) = 5/7, i.e.
    # 275/343, so the upper tail is 68/343.
    assert result["p_value"] == pytest.approx(68.0 / 343.0)
    assert result["critical"] == pytest.approx(stats.f.ppf(0.95, 4, 4))
    assert result["verdict"] == 0


def test_f_test_significant_in_both_directions() -> None:
    worse, better = np.tile([3.0, -3.0], 50), np.tile([1.0, -1.0], 50)
    a_worse = f_test(worse, better)
    assert a_worse["F"] == pytest.approx(9.0) and a_worse["verdict"] == -1
    assert a_worse["p_value"] == pytest.approx(stats.f.sf(9.0, 100, 100))
    a_better = f_test(better, worse)
    assert a_better["F"] == pytest.approx(1.0 / 9.0) and a_better["verdict"] == 1
    assert a_better["p_value"] == pytest.approx(a_worse["p_value"])
    # Just above and below the critical ratio at alpha = 0.05 with (100, 100) dof.
    critical = stats.f.isf(0.05, 100, 100)
    assert f_test(better * math.sqrt(critical * 1.01), better)["verdict"] == -1
    assert f_test(better * math.sqrt(critical * 0.99), better)["verdict"] == 0


def test_f_test_degrees_of_freedom_count_mapping_parameters() -> None:
    ra, rb = np.tile([2.0, -2.0], 10), np.tile([1.0, -1.0], 10)
    result = f_test(ra, rb, n_params=(5, 2))
    var_a, var_b = 80.0 / 15, 20.0 / 18
    assert result["df"] == [15, 18]
    assert result["F"] == pytest.approx(var_a / var_b)
    assert result["p_value"] == pytest.approx(stats.f.sf(var_a / var_b, 15, 18))
    assert f_test([1.0, 2.0], [1.0, 2.0], n_params=(5, 5))["verdict"] == 0  # undefined
    assert f_test(np.zeros(5), np.zeros(5))["p_value"] is None


def test_significance_matrix() -> None:
    rng = np.random.default_rng(11)
    quality = rng.uniform(0.0, 1.0, 300)
    mos = 1.0 + 4.0 * quality + rng.normal(0.0, 0.1, 300)
    good = 30.0 + 10.0 * quality
    predictions = {
        "good": good,
        "noisy": good + rng.normal(0.0, 3.0, 300),
        # A lower-is-better metric with the same information, oriented (negated) as required.
        "good-lower-is-better": -(-0.01 * good),
        "falls-with-quality": -good,  # not oriented: no rising mapping fits, it is the worst
    }
    names, matrix = significance_matrix(predictions, mos)
    assert names == ["good", "noisy", "good-lower-is-better", "falls-with-quality"]
    assert matrix.dtype.kind == "i"
    assert np.array_equal(matrix, -matrix.T) and np.all(np.diag(matrix) == 0)
    assert matrix[0, 1] == 1 and matrix[1, 0] == -1 and matrix[2, 1] == 1
    assert matrix[0, 2] == 0
    assert list(matrix[3]) == [-1, -1, -1, 0]


def test_paired_bootstrap_srocc() -> None:
    rng = np.random.default_rng(12)
    quality = rng.normal(size=200)
    mos = quality + rng.normal(0.0, 0.3, 200)
    sharp, blunt = quality, quality + rng.normal(0.0, 1.0, 200)
    result = paired_bootstrap_srocc(sharp, blunt, mos, n=1000)
    assert result["difference"] == pytest.approx(
        stats.spearmanr(sharp, mos).statistic - stats.spearmanr(blunt, mos).statistic
    )
    assert result["p_value"] < 0.01 and result["ci"][0] > 0.0
    assert result == paired_bootstrap_srocc(sharp, blunt, mos, n=1000)
    same = paired_bootstrap_srocc(sharp, sharp, mos, n=500)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0
    close = paired_bootstrap_srocc(sharp, sharp + rng.normal(0.0, 0.01, 200), mos, n=500)
    assert close["p_value"] > 0.05
    flipped = paired_bootstrap_srocc(-sharp, blunt, mos, n=1000, higher_is_better=(False, True))
    assert flipped["p_value"] == result["p_value"]
    json.dumps(result, allow_nan=False)
