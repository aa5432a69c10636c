"""Properties every classical metric must show on synthetic-lwir, where the truth is known:
scores move with the distortion level of each type the metric is meant to see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from iqabench import api
from iqabench.data.synthetic import DISTORTIONS, build_synthetic_lwir

FULL_REFERENCE = ("psnr", "ssim", "vif", "iw-ssim", "iw-psnr", "gmsd", "fsim")
#: Training-free NR metrics with published models -> the types on which their scores must fall
#: with level (the LIVE distortions they were built for; non-uniformity is outside them). NIQE
#: on blur only has to rank level 5 below level 1: mild blur (sigma <= 1.2 px) smooths the
#: synthetic 1/f texture that its natural-image model counts as unnatural (see its card).
PUBLISHED_NR = {
    "niqe": ("AWGN", "JPG", "J2K"),
    "brisque-live": ("AWGN", "BLU", "JPG", "J2K"),
}
LIVE_TYPES = ("AWGN", "BLU", "JPG", "J2K")
TRAINABLE = ("brisque", "og-iqa", "gm-log", "gwh-glbp")


@pytest.fixture(scope="module")
def run(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame]:
    root = build_synthetic_lwir(tmp_path_factory.mktemp("synthetic") / "data", n_scenes=8, seed=5)
    result = api.run(
        [*FULL_REFERENCE, *PUBLISHED_NR, *TRAINABLE],
        "synthetic-lwir",
        data_root=root,
        out=tmp_path_factory.mktemp("out"),
        splits=3,
        bootstrap=0,
        report=False,
    )
    scores = pd.read_csv(result.out / "scores.csv")
    return result.summary, scores


def _level_means(scores: pd.DataFrame, metric: str, kind: str) -> np.ndarray:
    rows = scores[(scores.metric == metric) & (scores.distortion == kind)]
    return rows.groupby("level").score.mean().reindex(range(1, 6)).to_numpy()


@pytest.mark.parametrize("metric", FULL_REFERENCE)
def test_full_reference_scores_are_strictly_monotone_in_level(run, metric: str) -> None:
    summary, scores = run
    sign = 1.0 if summary["metrics"][metric]["higher_is_better"] else -1.0
    for kind in DISTORTIONS:
        steps = np.diff(sign * _level_means(scores, metric, kind))
        assert np.all(steps < 0), (
            f"{metric} on {kind}: level means {_level_means(scores, metric, kind)}"
        )


@pytest.mark.parametrize("metric", PUBLISHED_NR)
def test_published_no_reference_models_follow_level_on_their_types(run, metric: str) -> None:
    summary, scores = run
    sign = 1.0 if summary["metrics"][metric]["higher_is_better"] else -1.0
    for kind in LIVE_TYPES:
        quality = sign * _level_means(scores, metric, kind)
        assert quality[0] > quality[-1], f"{metric} on {kind}: {quality}"
        if kind in PUBLISHED_NR[metric]:
            # falling with level, allowing one adjacent swap (NIQE saturates at strong noise)
            rho = spearmanr(np.arange(5), quality).statistic
            assert rho <= -0.9 + 1e-9, f"{metric} on {kind}: {quality}"


@pytest.mark.parametrize("metric", TRAINABLE)
def test_trainable_metrics_learn_every_type_on_unseen_scenes(run, metric: str) -> None:
    summary, _ = run
    entry = summary["metrics"][metric]
    assert entry["status"] == "ok" and entry["evaluation"] == "splits"
    for kind in DISTORTIONS:
        median = entry["splits"]["per_type"][kind]["srocc"]["median"]
        assert median >= 0.8, f"{metric} on {kind}: median test SROCC {median}"
