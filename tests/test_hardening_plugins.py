"""Hardening, plugins: code only from installed packages; a plugin's exit, hang or crash costs
its own metric (or item), never the run; the process pool dies with its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import iqabench_argv, plugin_env, tiny_dataset, write_plugin

HOSTILE = '''
import os
import sys
import time

import numpy as np

from iqabench.metric import Metric


class _Base(Metric):
    family = "TR-NR"
    full_reference = False
    higher_is_better = True
    colour = "grey"
    version = "1"
    citation = "a test plugin"
    batch_size = 2


class MeanGrey(_Base):
    name = "mean-grey"

    def score(self, images, refs=None):
        return np.array([float(np.mean(image)) for image in images])


class Exits(_Base):
    name = "exits"

    def score(self, images, refs=None):
        sys.exit(3)


class Hangs(_Base):
    name = "hangs"

    def score(self, images, refs=None):
        time.sleep(3600)
        return np.zeros(len(images))


class Slow(_Base):
    name = "slow"

    def score(self, images, refs=None):
        time.sleep(2.0 * len(images))  # the run outlasts the 3 s before the test's signal
        return np.array([float(np.mean(image)) for image in images])


class Flaky(_Base):
    """An internal error (with a torch-like multi-line message) on some images."""

    name = "flaky"

    def score(self, images, refs=None):
        if any(int(image.sum()) % 3 == 0 for image in images):
            raise RuntimeError("shape mismatch\\n  tensor a: (3, 4)\\n  tensor b: (4, 3)")
        return np.array([float(np.mean(image)) for image in images])


class Holes(_Base):
    """NaN for some images, None for others, a number for the rest."""

    name = "holes"

    def score(self, images, refs=None):
        out = []
        for image in images:
            kind = int(image.sum()) % 3
            out.append(float("nan") if kind == 0 else None if kind == 1 else float(image.mean()))
        return out
'''
METRICS = {
    name: f"hostile_plugin:{cls}"
    for name, cls in {
        "mean-grey": "MeanGrey",
        "exits": "Exits",
        "hangs": "Hangs",
        "slow": "Slow",
        "flaky": "Flaky",
        "holes": "Holes",
    }.items()
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process with the hostile test plugin installed."""
    folder = write_plugin(tmp_path_factory.mktemp("site"), "hostile_plugin", HOSTILE, METRICS)
    return plugin_env(folder, OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("tiny"))


def _run(
    data: Path, out: Path, metrics: str, env: dict[str, str], *options: str
) -> subprocess.CompletedProcess:
    argv = iqabench_argv(
        "run", "--metrics", metrics, "--dataset", "csv", "--data-root", str(data),
        "--out", str(out), "--store", str(out.with_suffix(".db")), "--splits", "0",
        "--bootstrap", "0", "--no-report", *options,
    )  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


def _evil_folder(folder: Path) -> Path:
    """A folder (a dataset, a results folder) holding a package and its metadata."""
    write_plugin(
        folder,
        "evil",
        "import pathlib\npathlib.Path(__file__).with_name('imported').write_text('yes')\n",
        {"evil": "evil:Evil"},
    )
    return folder


# -- (1) plugins only from installed distributions ---------------------------------------------
def test_python_m_never_imports_plugins_from_the_working_folder(tmp_path: Path) -> None:
    folder = _evil_folder(tmp_path / "data")
    env = {**os.environ, "COLUMNS": "200"}
    listed = subprocess.run(
        iqabench_argv("list", "metrics"), cwd=folder, capture_output=True, text=True, env=env
    )
    assert listed.returncode == 0 and "psnr" in listed.stdout, listed.stderr
    assert "evil" not in listed.stdout
    every = subprocess.run(
        iqabench_argv("run", "--metrics", "all", "--dataset", "csv", "--data-root", "nowhere"),
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
    )
    assert every.returncode == 2 and "dataset root not found" in every.stderr
    named = subprocess.run(
        iqabench_argv("run", "--metrics", "evil"), cwd=folder, capture_output=True, text=True
    )
    assert named.returncode == 2 and "unknown metric 'evil'" in named.stderr
    assert not (folder / "imported").exists()


def test_python_api_never_imports_plugins_from_the_working_folder(tmp_path: Path) -> None:
    folder = _evil_folder(tmp_path / "data")
    code = "from iqabench import registry; print(sorted(registry.entries()))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "'psnr'" in done.stdout, done.stderr
    assert "evil" not in done.stdout and not (folder / "imported").exists()


def test_an_installed_plugin_is_not_shadowed_by_a_module_in_the_working_folder(
    tmp_path: Path,
) -> None:
    from conftest import REPO

    example = REPO / "tests/plugin_example/iqabench_example_plugin/__init__.py"
    site = write_plugin(
        tmp_path / "site",
        "real_plugin",
        example.read_text(),
        {"example-sharpness": "real_plugin:MeanGradientSharpness"},
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "real_plugin.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('imported').write_text('yes')\n"
    )
    api = "from iqabench import registry; print(registry.get('example-sharpness'))"
    for argv in (iqabench_argv("list", "metrics"), [sys.executable, "-c", api]):
        done = subprocess.run(argv, cwd=work, capture_output=True, text=True, env=plugin_env(site))
        assert done.returncode == 0 and "example-sharpness" in done.stdout + api, done.stderr
        assert not (work / "imported").exists(), argv


def test_an_installed_plugin_ships_its_own_card(tmp_path: Path) -> None:
    import shutil

    from conftest import REPO

    site = tmp_path / "site"
    package = REPO / "tests" / "plugin_example" / "iqabench_example_plugin"
    shutil.copytree(package, site / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    info = site / "iqabench_example_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: iqabench-example-plugin\n")
    (info / "entry_points.txt").write_text(
        "[iqabench.metrics]\nexample-sharpness = iqabench_example_plugin:MeanGradientSharpness\n"
    )
    done = subprocess.run(
        iqabench_argv("list", "metrics"), capture_output=True, text=True, env=plugin_env(site)
    )
    (row,) = [line for line in done.stdout.splitlines() if "example-sharpness" in line]
    assert "properties" in row and "iqabench-example-plugin" in row


# -- (6) a plugin's exit or hang fails that metric; the run goes on -----------------------------
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_plugin_that_exits_or_hangs_fails_its_metric_and_the_run_goes_on(
    data: Path, hostile: dict[str, str], tmp_path: Path, workers: str
) -> None:
    started = time.monotonic()
    options = ("--workers", workers, "--timeout", "hangs=1")
    done = _run(data, tmp_path / "out", "exits,hangs,mean-grey", hostile, *options)
    assert time.monotonic() - started < 90
    assert done.returncode == 1, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["mean-grey"]["status"] == "ok"
    exits, hangs = summary["metrics"]["exits"], summary["metrics"]["hangs"]
    assert exits["status"] == "failed" and "sys.exit(3)" in exits["reason"]
    assert hangs["status"] == "failed" and "timed out" in hangs["reason"]
    assert "--timeout hangs=SECONDS" in hangs["reason"]
    assert "exits not evaluated" in done.stderr and "hangs not evaluated" in done.stderr
    assert "Traceback" not in done.stderr


def test_timeout_option_is_validated(data: Path, hostile: dict[str, str], tmp_path: Path) -> None:
    for bad in ("hangs=soon", "-1", "=3", "hang=3"):
        done = _run(data, tmp_path / "out", "mean-grey", hostile, "--timeout", bad)
        assert done.returncode == 2 and "--timeout" in done.stderr, (bad, done.stderr)
    done = _run(data, tmp_path / "out", "mean-grey", hostile, "--timeout", "5", "--timeout", "0")
    assert done.returncode == 0, done.stderr


# -- (8) per-item internal errors are reported, one line each, and set the exit code -----------
def test_per_item_internal_errors_are_printed_and_exit_1(
    data: Path, hostile: dict[str, str], tmp_path: Path
) -> None:
    done = _run(data, tmp_path / "out", "flaky,mean-grey", hostile)
    assert done.returncode == 1, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    failed = summary["metrics"]["flaky"]["n_failed"]
    assert failed > 0 and f"failed {failed}" in done.stdout
    lines = [line for line in done.stderr.splitlines() if "shape mismatch" in line]
    assert lines and all(".png" in line and "tensor a" in line for line in lines)
    assert "Traceback" not in done.stderr


# -- (5) workers die with their parent; SIGTERM is an interrupt ---------------------------------
def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _wait_for_workers(process: subprocess.Popen, count: int) -> set[int]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        children = _children(process.pid)
        if len(children) >= count:
            time.sleep(3)  # the workers have imported the metric and are scoring
            return _children(process.pid)
        time.sleep(0.2)
    raise AssertionError("the run never started its workers")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone(pids: set[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_their_parent(
    data: Path, hostile: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    argv = iqabench_argv(
        "run", "--metrics", "slow", "--dataset", "csv", "--data-root", str(data),
        "--out", str(tmp_path / "out"), "--store", str(tmp_path / "scores.db"), "--splits", "0",
        "--no-report", "--workers", "2",
    )  # fmt: skip
    process = subprocess.Popen(
        argv, env=hostile, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    workers = _wait_for_workers(process, 2)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert _gone(workers, within=20), f"orphans left: {workers}"
    if sig == signal.SIGTERM:
        assert process.returncode == 143, stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "results scored so far are kept" in lines[0], stderr
