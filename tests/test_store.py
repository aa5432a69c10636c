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


_HAMMER = """
import sys
from iqabench.store import MetricKey, Record, ScoreStore
key, name = MetricKey("psnr", "1", "abc"), sys.argv[2]
with ScoreStore(sys.argv[1]) as store:
    for n in range(150):
        store.put(key, "score", [Record(f"{name}{n}", value=float(n))])
        assert store.get(key, "score", [f"{name}{n}"])[f"{name}{n}"].value == n
        store.put_evaluation(f"{name}:{n}", {"n": n})
"""


def test_two_processes_share_one_store(tmp_path: Path) -> None:
    """Concurrent writers (two runs into different run folders) interleave their transactions;
    none fails and every row is kept."""
    import subprocess
    import sys

    path = tmp_path / "scores.db"
    ScoreStore(path).close()
    writers = [
        subprocess.Popen([sys.executable, "-c", _HAMMER, str(path), name], stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr.decode()
    with ScoreStore(path) as store:
        items = [f"{name}{n}" for name in "ab" for n in range(150)]
        assert len(store.get(KEY, "score", items)) == 300
        assert store.get_evaluation("b:149") == {"n": 149}
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_runs_into_two_folders_share_one_store(tmp_path: Path) -> None:
    """Two ``iqabench run`` processes at once on one store: both finish with one summary."""
    import json
    import subprocess

    from conftest import iqabench_argv, tiny_dataset

    data = tiny_dataset(tmp_path / "data", scenes=6, levels=4)
    store = tmp_path / "shared.db"
    runs = [
        subprocess.Popen(
            iqabench_argv(
                "run",
                "--metrics",
                "psnr,ssim",
                "--dataset",
                "csv",
                "--data-root",
                str(data),
                "--out",
                str(tmp_path / name),
                "--store",
                str(store),
                "--splits",
                "2",
                "--bootstrap",
                "0",
                "--no-report",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name in ("a", "b")
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in "ab"]
    for summary in summaries:
        del summary["timing"], summary["counts"], summary["created"]
        for entry in summary["metrics"].values():
            entry.pop("seconds")
    assert summaries[0] == summaries[1]
    assert sqlite3.connect(store).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_features_are_read_from_the_store_when_asked_for(tmp_path: Path) -> None:
    with ScoreStore(tmp_path / "scores.db") as store:
        store.put(KEY, "features", [Record("i1", vector=np.array([1.0, 2.0]))])
        store.put(KEY, "features", [Record("bad", error="unreadable", error_kind="input")])
        features = store.features(KEY)
        assert "i1" in features and "bad" not in features and "i2" not in features
        assert np.array_equal(features["i1"], [1.0, 2.0]) and list(features) == ["i1"]
        status = store.get(KEY, "features", ["i1", "bad"], vectors=False)
        assert status["i1"].ok and status["i1"].vector is None and not status["bad"].ok
