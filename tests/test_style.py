"""The code base passes its own linter and formatter settings (pyproject.toml [tool.ruff])."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import REPO

PATHS = ("iqabench", "tests", "benchmarks")


def _ruff(*args: str) -> subprocess.CompletedProcess:
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(REPO / ".venv" / "bin"))
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e .[dev])")
    return subprocess.run([ruff, *args, *PATHS], cwd=REPO, capture_output=True, text=True)


def test_ruff_check() -> None:
    done = _ruff("check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format() -> None:
    done = _ruff("format", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
