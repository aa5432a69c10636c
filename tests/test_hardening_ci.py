"""Hardening, the tests themselves: in CI they cannot pass by being skipped, a clean clone
without ../shared runs without errors, and .ci/run names only files that exist."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

NEEDS_SHARED = """
def test_needs_shared(shared):
    assert shared.is_dir()


def test_needs_nothing():
    assert True
"""


def _clone_without_shared(tmp_path: Path) -> Path:
    """A checkout holding our conftest.py and one test that needs ../shared, with no
    ../shared beside it."""
    tests = tmp_path / "clone" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(REPO / "tests" / "conftest.py", tests / "conftest.py")
    (tests / "test_sample.py").write_text(NEEDS_SHARED)
    return tests


def _pytest(tests: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tests.parent)


def test_in_ci_a_missing_shared_folder_fails_the_suite_with_one_message(tmp_path: Path) -> None:
    tests = _clone_without_shared(tmp_path)
    done = _pytest(tests, "true")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert output.count("is missing: CI needs the test data") == 1, output
    assert not re.search(r"\d+ (passed|skipped)", output), output


def test_outside_ci_a_missing_shared_folder_skips_what_needs_it(tmp_path: Path) -> None:
    done = _pytest(_clone_without_shared(tmp_path), None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout


def test_ci_run_names_only_test_files_that_exist() -> None:
    script = (REPO / ".ci" / "run").read_text()
    named = re.findall(r"tests/[\w/]+\.py", script)
    assert named, "the CI script says which test keeps it in step with the README"
    assert [path for path in named if not (REPO / path).is_file()] == []
    for test in re.findall(r"tests/[\w/]+\.py::(\w+)", script):
        assert any(f"def {test}(" in p.read_text() for p in (REPO / "tests").glob("*.py")), test


def test_every_test_the_readme_names_exists() -> None:
    """The README backs each reliability promise with a named test: they must exist."""
    readme = (REPO / "README.md").read_text()
    named = re.findall(r"(tests/[\w/]+\.py)::(\w+)", readme)
    assert len(named) >= 10
    missing = [
        f"{path}::{test}"
        for path, test in named
        if not (REPO / path).is_file() or f"def {test}(" not in (REPO / path).read_text()
    ]
    assert missing == []
