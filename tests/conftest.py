"""Shared test fixtures: the ../shared data beside the checkout, and an isolated environment.

Where ../shared is absent the tests that need it are skipped, except in CI (``CI=true``), where
the whole suite stops with one message instead: CI must never pass by skipping.

Tests never touch the network: IQABENCH_ALLOW_DOWNLOAD is removed and model files come from
``../shared/weights`` through IQABENCH_WEIGHTS. The iqabench cache is a per-session temp folder.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CALIBRATION = SHARED / "data" / "calibration"
THERMAL_REAL = SHARED / "data" / "thermal-real"
THERMAL_PRISTINE = SHARED / "data" / "thermal-pristine"
SHARED_WEIGHTS = SHARED / "weights"


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true``, as CI services and ``.ci/run`` set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def pytest_configure(config):  # noqa: ANN001 - pytest hook
    if in_ci() and not SHARED.is_dir():
        raise pytest.UsageError(
            f"{SHARED} is missing: CI needs the test data beside the checkout (see README.md); "
            "without it every calibration test would be skipped"
        )


def pytest_collection_modifyitems(config, items):  # noqa: ANN001 - pytest hook
    if SHARED.is_dir():
        return
    skip = pytest.mark.skip(reason="../shared (test data beside the checkout) is not present")
    for item in items:
        if "shared" in item.fixturenames:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _isolated_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    patcher = pytest.MonkeyPatch()
    patcher.delenv("IQABENCH_ALLOW_DOWNLOAD", raising=False)
    patcher.setenv("IQABENCH_WEIGHTS", str(SHARED_WEIGHTS))
    patcher.setenv("IQABENCH_CACHE", str(tmp_path_factory.mktemp("iqabench-cache")))
    patcher.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
    yield
    patcher.undo()


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder (tests using it are skipped where it is absent)."""
    return SHARED


def write_plugin(folder: Path, module: str, source: str, metrics: Mapping[str, str]) -> Path:
    """An "installed" plugin distribution in ``folder``: the module ``module`` holding
    ``source`` and its ``.dist-info`` declaring ``metrics`` (name -> ``module:Class``) in the
    ``iqabench.metrics`` group. Put ``folder`` on PYTHONPATH (:func:`plugin_env`) to install it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    info = folder / f"{module.replace('_', '-')}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    points = "".join(f"{name} = {target}\n" for name, target in metrics.items())
    (info / "entry_points.txt").write_text(f"[iqabench.metrics]\n{points}")
    return folder


def plugin_env(*folders: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess that sees the plugins installed in ``folders``."""
    env = {**os.environ, "COLUMNS": "200", **extra}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, folders), env.get("PYTHONPATH", "")])
    return env


def iqabench_argv(*args: str) -> list[str]:
    """The command line of ``python -m iqabench ARGS``."""
    return [sys.executable, "-m", "iqabench", *args]


def tiny_dataset(root: Path, scenes: int = 3, levels: int = 3, size: tuple[int, int] = (24, 32)):  # noqa: ANN201
    """A csv dataset of ``scenes`` x ``levels`` small noisy grey images with references:
    ``root/scores.csv`` (columns image, ref, mos, distortion, level, content). Returns ``root``.
    """
    from PIL import Image

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["image,ref,mos,distortion,level,content"]
    for scene in range(scenes):
        clean = rng.uniform(40, 215, size)
        Image.fromarray(clean.astype(np.uint8)).save(root / f"ref{scene}.png")
        for level in range(1, levels + 1):
            noisy = np.clip(clean + rng.normal(0, 8 * level, size), 0, 255).astype(np.uint8)
            name = f"s{scene}_l{level}.png"
            Image.fromarray(noisy).save(root / name)
            lines.append(f"{name},ref{scene}.png,{6 - level},AWGN,{level},scene{scene}")
    (root / "scores.csv").write_text("\n".join(lines) + "\n")
    return root


@contextmanager
def registered(*classes: type) -> Iterator[None]:
    """Metric classes registered in this process for the duration (as if installed)."""
    from iqabench import registry

    known = registry.entries()
    previous = {cls.name: known.get(cls.name) for cls in classes}
    for cls in classes:
        known[cls.name] = registry.MetricEntry(cls.name, cls.__qualname__, "tests", _class=cls)
    try:
        yield
    finally:
        for name, entry in previous.items():
            if entry is None:
                known.pop(name, None)
            else:
                known[name] = entry


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for the test (the deep-model tests train tiny networks: one thread
    keeps them deterministic and stops them oversubscribing a 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
