"""Shared test fixtures: the ../shared data beside the checkout, and an isolated environment.

Tests never touch the network: IQABENCH_ALLOW_DOWNLOAD is removed and model files come from
``../shared/weights`` through IQABENCH_WEIGHTS. The iqabench cache is a per-session temp folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CALIBRATION = SHARED / "data" / "calibration"
THERMAL_REAL = SHARED / "data" / "thermal-real"
THERMAL_PRISTINE = SHARED / "data" / "thermal-pristine"
SHARED_WEIGHTS = SHARED / "weights"


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
