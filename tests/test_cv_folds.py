"""Hyper-parameter folds inside a training split keep each scene on one side."""

from __future__ import annotations

import numpy as np

from iqabench.metrics._cv import ContentFolds, cv_folds


def test_grouped_folds_never_split_a_scene() -> None:
    groups = [f"scene{i // 5}" for i in range(40)]  # 8 scenes, 5 images each
    folds = cv_folds(40, 5, seed=3, groups=groups)
    assert len(folds) == 5
    seen = np.concatenate([valid for _, valid in folds])
    assert sorted(seen) == list(range(40))  # every row validated exactly once
    for train, valid in folds:
        assert not {groups[i] for i in train} & {groups[i] for i in valid}


def test_fold_count_is_capped_and_ungrouped_fallback() -> None:
    assert len(cv_folds(12, 5, 0, ["a"] * 6 + ["b"] * 6)) == 2
    assert len(cv_folds(3, 5, 0)) == 3
    assert len(cv_folds(10, 5, 0, ["a"] * 10)) == 5  # one scene only: plain K-fold


def test_splitter_is_deterministic_and_usable_by_scikit_learn() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=30)
    groups = [str(i // 3) for i in range(30)]
    splitter = ContentFolds(4, seed=1, groups=groups)
    first = [tuple(v) for _, v in splitter.split(X)]
    assert first == [tuple(v) for _, v in splitter.split(X)]
    search = GridSearchCV(Ridge(), {"alpha": [0.01, 10.0]}, cv=splitter).fit(X, y)
    assert search.best_params_ == {"alpha": 0.01}
