"""The score store: get-or-compute records, vectors, per-split predictions, retry policy."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from iqabench.store import MetricKey, Record, ScoreStore

KEY = MetricKey("psnr", "1", "abc")


def test_scores_and_vectors_round_trip(tmp_path: Path) -> None:
    with ScoreStore(tmp_path / "scores.db") as store:
        store.put(KEY, "score", [Record("i1", value=30.5), Record("i2", value=float("inf"))])
        store.put(KEY, "features", [Record("i1", vector=np.array([1.0, 2.5, -3.0]))])
        got = store.get(KEY, "score", ["i1", "i2", "i3"])
        assert got["i1"].value == 30.5 and got["i2"].value == float("inf") and "i3" not in got
        features = store.get(KEY, "features", ["i1"])
        assert np.array_equal(features["i1"].vector, [1.0, 2.5, -3.0])
    # another version or parameter set is another metric
    with ScoreStore(tmp_path / "scores.db") as store:
        assert store.get(MetricKey("psnr", "2", "abc"), "score", ["i1"]) == {}
        assert store.get(MetricKey("psnr", "1", "xyz"), "score", ["i1"]) == {}
        assert store.get(KEY, "score", ["i1"])["i1"].value == 30.5


def test_input_errors_are_kept_internal_errors_retried(tmp_path: Path) -> None:
    with ScoreStore(tmp_path / "scores.db") as store:
        store.put(
            KEY,
            "score",
            [
                Record("bad", error="cannot decode image x.png", error_kind="input"),
                Record("flaky", error="RuntimeError: boom", error_kind="internal"),
            ],
        )
        got = store.get(KEY, "score", ["bad", "flaky"])
        assert set(got) == {"bad"} and not got["bad"].ok


def test_predictions_are_stored_per_split_with_notes(tmp_path: Path) -> None:
    with ScoreStore(tmp_path / "scores.db") as store:
        assert store.get_predictions(KEY, "split0:aa") is None
        store.put_predictions(KEY, "split0:aa", {"i1": 3.0, "i2": 4.0}, ["random init"])
        assert store.get_predictions(KEY, "split0:aa") == {"i1": 3.0, "i2": 4.0}
        assert store.get_notes(KEY, "split0:aa") == ["random init"]
        assert store.get_predictions(KEY, "split1:bb") is None


def test_store_uses_wal_and_survives_an_unclosed_writer(tmp_path: Path) -> None:
    path = tmp_path / "scores.db"
    first = ScoreStore(path)
    first.put(KEY, "score", [Record(f"i{n}", value=float(n)) for n in range(100)])
    # a second connection sees committed rows while the first is still open
    with ScoreStore(path) as second:
        assert len(second.get(KEY, "score", [f"i{n}" for n in range(100)])) == 100
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_evaluations_are_stored_by_key(tmp_path: Path) -> None:
    with ScoreStore(tmp_path / "scores.db") as store:
        assert store.get_evaluation("1:abc") is None
        result = {"overall": {"srocc": 0.9, "plcc_ci": [0.8, 0.95]}, "per_type": {}}
        store.put_evaluation("1:abc", result)
        assert store.get_evaluation("1:abc") == result
