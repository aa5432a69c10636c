"""Executors: the local pool and a Dask LocalCluster (127.0.0.1 only) give the in-process
summary; a worker killed mid-run costs nothing; a driver killed mid-run resumes reusing every
finished score; a new run folder on the same store scores nothing new."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import iqabench_argv, plugin_env, tiny_dataset, write_plugin

from iqabench import api
from iqabench.data.synthetic.build import build_synthetic_lwir
from iqabench.errors import UserError
from iqabench.executors import create_executor
from iqabench.executors.base import BatchSizer
from iqabench.scoring import Job
from iqabench.store import Record

SLOW = '''
import time

import numpy as np

from iqabench.metric import Metric


class SlowMean(Metric):
    """The mean grey level, 0.15 s per image: slow enough to kill a run in the middle."""

    name = "slow-mean"
    family = "TR-NR"
    full_reference = False
    higher_is_better = True
    citation = "a test metric"
    batch_size = 2

    def score(self, images, refs=None):
        time.sleep(0.15 * len(images))
        return np.array([float(np.mean(image)) for image in images])
'''


def _comparable(value: Any) -> Any:
    volatile = {"seconds", "timing", "created", "counts", "root"}
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


@pytest.fixture(scope="module")
def small_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """75 synthetic frames of 64x80 (3 scenes x 5 types x 5 levels) with references."""
    return build_synthetic_lwir(
        tmp_path_factory.mktemp("synthetic") / "set", n_scenes=3, size=(64, 80)
    )


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A 40-image dataset and the environment of a process with ``slow-mean`` installed."""
    folder = write_plugin(tmp_path_factory.mktemp("site"), "slow_plugin", SLOW, {
        "slow-mean": "slow_plugin:SlowMean"
    })  # fmt: skip
    data = tiny_dataset(tmp_path_factory.mktemp("tiny"), scenes=8, levels=5)
    return data, plugin_env(folder, OMP_NUM_THREADS="1")


def _run_argv(data: Path, out: Path, *options: str) -> list[str]:
    return iqabench_argv(
        "run", "--metrics", "slow-mean", "--dataset", "csv", "--data-root", str(data),
        "--out", str(out), "--store", str(out.with_suffix(".db")), "--splits", "2",
        "--bootstrap", "0", "--no-report", *options,
    )  # fmt: skip


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return connection.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _wait_for_rows(db: Path, process: subprocess.Popen, rows: int) -> None:
    deadline = time.monotonic() + 180
    while _stored(db) < rows and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be interrupted"


def _dask_workers(pid: int) -> list[int]:
    """The Dask worker processes a driver spawned (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
            cmdline = (status.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(fields.get("PPid", "0").strip()) == pid and b"spawn_main" in cmdline:
            found.append(int(status.parent.name))
    return found


def _gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def reference(
    slow: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The summary of an uninterrupted in-process run of ``slow-mean``."""
    data, env = slow
    out = tmp_path_factory.mktemp("reference") / "out"
    done = subprocess.run(_run_argv(data, out), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "summary.json").read_text())


# -- the same numbers wherever tasks run ---------------------------------------------------------
def test_pool_and_dask_local_cluster_give_the_in_process_summary(
    small_synthetic: Path, tmp_path: Path
) -> None:
    """Scoring batches (psnr) and per-split fits (brisque's features and SVR) through each
    executor give one summary."""
    summaries, tallies = {}, {}
    for executor, workers in (("local", 1), ("local", 2), ("dask", 2)):
        name = f"{executor}{workers}"
        result = api.run(
            ["psnr", "brisque"], "csv", data_root=small_synthetic, out=tmp_path / name,
            store=tmp_path / f"{name}.db", splits=2, bootstrap=0, report=False,
            executor=executor, workers=workers,
        )  # fmt: skip
        assert result.failed == {} and result.skipped == {}, name
        tallies[name] = result.tally
        summaries[name] = _comparable(result.summary)
    assert tallies["local1"].scored > 150 and tallies["local1"].reused == 0  # + predictions
    assert tallies["local2"] == tallies["local1"] and tallies["dask2"] == tallies["local1"]
    assert summaries["local2"] == summaries["local1"]
    assert summaries["dask2"] == summaries["local1"]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_killing_a_dask_worker_mid_run_gives_the_same_summary(
    slow: tuple[Path, dict[str, str]], reference: dict[str, Any], tmp_path: Path
) -> None:
    data, env = slow
    out = tmp_path / "out"
    process = subprocess.Popen(
        _run_argv(data, out, "--executor", "dask", "--workers", "2"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_rows(out.with_suffix(".db"), process, 8)
    workers = _dask_workers(process.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "scored 40 new, reused 0 cached, failed 0" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert _comparable(summary) == _comparable(reference)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_killing_the_driver_then_rerunning_reuses_every_finished_score(
    slow: tuple[Path, dict[str, str]], reference: dict[str, Any], tmp_path: Path
) -> None:
    data, env = slow
    out, store = tmp_path / "out", tmp_path / "out.db"
    argv = _run_argv(data, out, "--executor", "dask", "--workers", "2")
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_rows(store, process, 8)
    workers = _dask_workers(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert workers and _gone(workers, within=30), "Dask workers outlived their driver"
    before = _stored(store)
    assert 8 <= before < 40
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"scored {40 - before} new, reused {before} cached, failed 0" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert _comparable(summary) == _comparable(reference)


# -- one store shared by run folders --------------------------------------------------------------
def test_a_new_run_folder_on_the_same_store_scores_nothing_new(
    small_synthetic: Path, tmp_path: Path
) -> None:
    options = {"splits": 2, "bootstrap": 0, "report": False, "store": tmp_path / "shared.db"}
    first = api.run(
        ["psnr", "gmsd"], "csv", data_root=small_synthetic, out=tmp_path / "a", **options
    )
    again = api.run(
        ["psnr", "gmsd"], "csv", data_root=small_synthetic, out=tmp_path / "b", **options
    )
    assert first.tally.scored > 0 and first.tally.reused == 0
    assert again.tally.scored == 0 and again.tally.reused == first.tally.scored
    assert _comparable(again.summary) == _comparable(first.summary)
    assert (tmp_path / "b" / "scores.csv").read_text() == (
        tmp_path / "a" / "scores.csv"
    ).read_text()
    pointer = json.loads((tmp_path / "b" / "store.json").read_text())
    assert pointer["store"] == str((tmp_path / "shared.db").resolve())
    # the run folder remembers its store: a rerun without --store resumes there
    del options["store"]
    rerun = api.run(["psnr"], "csv", data_root=small_synthetic, out=tmp_path / "b", **options)
    assert rerun.tally.scored == 0 and rerun.tally.reused > 0


# -- the executors' own rules ---------------------------------------------------------------------
def test_batches_of_cheap_metrics_grow_towards_half_a_second_of_work() -> None:
    jobs = [Job(str(i), Path(f"{i}.png"), None) for i in range(100)]
    sizer = BatchSizer(batch_size=4)
    batches = sizer.batches(jobs)
    first = next(batches)
    assert len(first) == 4  # the cost is unknown: the metric's own batch size
    sizer.measured([Record(job.key, value=1.0, seconds=0.01) for job in first])
    assert len(next(batches)) == 16  # 0.5 s of work would be 50 items: at most 4 x 4
    sizer.measured([Record("slow", value=1.0, seconds=100.0)])
    assert len(next(batches)) == 4  # never below the metric's own batch size
    assert sum(len(batch) for batch in batches) == 100 - 24


def test_executor_options_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from iqabench.executors import dask_cluster

    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", 2)
    with pytest.raises(UserError, match="unknown executor 'ray'"):
        create_executor("ray")
    with pytest.raises(UserError, match="--scheduler needs --executor dask"):
        create_executor("local", scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(UserError, match="cannot reach tcp://127.0.0.1:9"):
        create_executor("dask", scheduler="tcp://127.0.0.1:9")


def test_a_worker_refuses_a_metric_that_differs_from_the_drivers() -> None:
    from dataclasses import replace

    from iqabench import registry
    from iqabench.errors import MetricUnavailableError
    from iqabench.executors.base import MetricSpec
    from iqabench.executors.worker import metric_for

    spec = MetricSpec.of(registry.create("psnr"))
    assert metric_for(spec).name == "psnr"
    with pytest.raises(MetricUnavailableError, match="install the same iqabench"):
        metric_for(replace(spec, version="999"))


def test_a_running_scheduler_is_used_and_its_gpu_resources_are_asked_for(
    small_synthetic: Path, tmp_path: Path
) -> None:
    """``--scheduler ADDRESS``: a cluster started elsewhere (here one worker declaring a GPU
    resource, on 127.0.0.1) runs the tasks; GPU work asks for the resource."""
    from distributed import LocalCluster

    from iqabench.executors.dask_cluster import DaskExecutor

    options = {"splits": 0, "bootstrap": 0, "report": False}
    local = api.run(["psnr"], "csv", data_root=small_synthetic, out=tmp_path / "local",
                    store=tmp_path / "local.db", **options)  # fmt: skip
    with LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
        resources={"GPU": 1},
    ) as cluster, DaskExecutor(scheduler=cluster.scheduler_address) as executor:  # fmt: skip
        assert executor.gpus and executor._resources(True) == {"GPU": 1}
        assert executor._resources(False) is None
        remote = api.run(["psnr"], "csv", data_root=small_synthetic, out=tmp_path / "remote",
                         store=tmp_path / "remote.db", executor=executor, **options)  # fmt: skip
    assert remote.tally == local.tally
    assert _comparable(remote.summary) == _comparable(local.summary)
