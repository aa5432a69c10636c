"""The conformance suite (:mod:`iqabench.testing`) over every registered metric and the example
plugin, one test per (metric, rule); and the suite's own rules catch what they promise to."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from conftest import REPO

from iqabench import registry
from iqabench.metric import FeatureMetric, Metric
from iqabench.testing import MetricCheckError, check_metric, parametrize_metric_checks

sys.path.insert(0, str(REPO / "tests" / "plugin_example"))
from iqabench_example_plugin import MeanGradientSharpness  # noqa: E402

sys.path.pop(0)

LOADABLE = [entry.load() for entry in registry.entries().values() if entry.loadable]


def test_every_registered_metric_loads() -> None:
    broken = {name: e.error for name, e in registry.entries().items() if not e.loadable}
    assert not broken


@parametrize_metric_checks([*LOADABLE, MeanGradientSharpness])
def test_metric_conforms(metric_class: type[Metric], check: Any) -> None:
    check(metric_class)


def test_check_metric_reports_the_example_plugin_ok() -> None:
    outcomes = check_metric(MeanGradientSharpness)
    assert set(outcomes) >= {"attributes", "card", "output", "batch_invariance"}
    assert all(value == "ok" for value in outcomes.values()), outcomes


class _Broken(Metric):
    """Breaks several rules at once: depends on the batch, wrong length, bad family."""

    name = "Broken Metric"
    family = "XX-NR"  # type: ignore[assignment]
    full_reference = False
    higher_is_better = True
    citation = "a broken test metric"

    def score(self, images: Sequence[np.ndarray], refs: Any = None) -> np.ndarray:
        return np.full(len(images), float(len(images)))


class _Unfitted(FeatureMetric):
    """A trainable metric that scores without being fitted."""

    name = "unfitted"
    family = "TR-NR"
    full_reference = False
    citation = "a broken test metric"

    def features(self, images: Sequence[np.ndarray], refs: Any = None) -> np.ndarray:
        return np.array([[float(np.mean(i))] for i in images])

    def make_regressor(self, seed: int, groups: Any = None) -> Any:
        from sklearn.linear_model import LinearRegression

        return LinearRegression()

    def score(self, images: Sequence[np.ndarray], refs: Any = None) -> np.ndarray:
        return self.features(images)[:, 0]


def test_check_metric_names_each_broken_rule() -> None:
    with pytest.raises(MetricCheckError) as caught:
        check_metric(_Broken)
    lines = str(caught.value).splitlines()
    broken = {line.split(" breaks ")[1].split(":")[0] for line in lines}
    assert broken == {"attributes", "batch_invariance"}, lines
    assert any("family 'XX-NR'" in line and "name 'Broken Metric'" in line for line in lines)
    with pytest.raises(MetricCheckError, match="breaks not_fitted: unfitted, score returned"):
        check_metric(_Unfitted)
