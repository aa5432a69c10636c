"""Cross-validation folds for choosing hyper-parameters inside a training split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Folds = list[tuple[np.ndarray, np.ndarray]]


def cv_folds(n_samples: int, n_folds: int, seed: int, groups: Sequence[str] | None = None) -> Folds:
    """``(train, validation)`` index pairs: grouped by content when ``groups`` are given.

    Grouping by reference scene keeps the hyper-parameter search honest in the same way the
    outer content-disjoint splits keep the evaluation honest: a scene's images never sit on
    both sides of a fold. Without groups (or with fewer than two), shuffled K-fold; the number
    of folds never exceeds the number of groups or of samples.
    """
    from sklearn.model_selection import GroupKFold, KFold

    placeholder = np.zeros((n_samples, 1))
    labels = None if groups is None else np.asarray(groups)
    if labels is not None and len(labels) != n_samples:
        raise ValueError(f"{len(labels)} groups for {n_samples} samples")
    n_groups = 0 if labels is None else len(np.unique(labels))
    if n_groups >= 2:
        splitter = GroupKFold(n_splits=min(n_folds, n_groups), shuffle=True, random_state=seed)
        return list(splitter.split(placeholder, groups=labels))
    k = min(n_folds, n_samples)
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(placeholder))


class ContentFolds:
    """A scikit-learn CV splitter (for ``GridSearchCV(cv=...)``) built on :func:`cv_folds`.

    The content ids are given when the regressor is made, before the data, and must list the
    rows ``fit`` will receive, in order.
    """

    def __init__(self, n_folds: int, seed: int, groups: Sequence[str] | None = None) -> None:
        self.n_folds = n_folds
        self.seed = seed
        self.groups = None if groups is None else list(groups)

    def split(self, X: np.ndarray, y: object = None, groups: object = None) -> Folds:  # noqa: N803
        return cv_folds(len(X), self.n_folds, self.seed, self.groups)

    def get_n_splits(
        self, X: np.ndarray | None = None, y: object = None, groups: object = None
    ) -> int:  # noqa: N803
        if X is None:
            return self.n_folds
        return len(self.split(X))
