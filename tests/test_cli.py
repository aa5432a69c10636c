"""The command line: help, exit codes and one-line errors for everything a user can get wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CALIBRATION
from PIL import Image

from iqabench.cli import COMMANDS, build_parser, main


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "iqabench", *args], capture_output=True, text=True, timeout=300
    )


def test_help_lists_every_command_and_each_has_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name in COMMANDS:
        assert name in text
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([name, "--help"])
        assert exit_info.value.code == 0


def test_score_prints_calibrated_values(shared: Path) -> None:
    done = _cli(
        "score",
        "--metric",
        "ssim",
        str(CALIBRATION / "dist/I03.bmp"),
        "--ref",
        str(CALIBRATION / "ref/I03.bmp"),
    )
    assert done.returncode == 0, done.stderr
    assert "0.699337" in done.stdout


def _one_line_error(done: subprocess.CompletedProcess, pattern: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert pattern in lines[0], lines[0]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    Image.fromarray(np.zeros((8, 10), dtype=np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((8, 12), dtype=np.uint8)).save(tmp_path / "wide.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return tmp_path


def test_score_errors(images: Path) -> None:
    _one_line_error(
        _cli("score", "--metric", "sssim", str(images / "small.png")), "did you mean 'ssim'"
    )
    _one_line_error(
        _cli(
            "score",
            "--metric",
            "psnr",
            str(images / "small.png"),
            "--ref",
            str(images / "wide.png"),
        ),
        "10x8 but its reference",
    )
    _one_line_error(
        _cli(
            "score",
            "--metric",
            "psnr",
            str(images / "broken.png"),
            "--ref",
            str(images / "small.png"),
        ),
        "broken.png",
    )
    _one_line_error(
        _cli("score", "--metric", "psnr", str(images / "small.png")), "give the reference"
    )
    _one_line_error(
        _cli(
            "score",
            "--metric",
            "psnr",
            str(images / "none.png"),
            "--ref",
            str(images / "small.png"),
        ),
        "image not found",
    )
    _one_line_error(
        _cli("score", "--metric", "ssim", "--option", "sigma", str(images / "small.png")),
        "KEY=VALUE",
    )


def test_run_errors(tmp_path: Path) -> None:
    _one_line_error(
        _cli(
            "run", "--metrics", "psnr", "--dataset", "LWIR_IQA", "--data-root", str(tmp_path / "no")
        ),
        "dataset root not found",
    )
    _one_line_error(_cli("run", "--metrics", "psnrr", "--dataset", "TIIQAD"), "did you mean 'psnr'")
    _one_line_error(_cli("run", "--metrics", "psnr", "--dataset", "LIVE"), "unknown dataset 'LIVE'")
    (tmp_path / "scores.csv").write_text("image,mos\nx.png,high\n")
    _one_line_error(
        _cli("run", "--metrics", "psnr", "--dataset", "csv", "--data-root", str(tmp_path)),
        "line 2: mos 'high' is not a number",
    )


def test_debug_shows_the_traceback(images: Path) -> None:
    done = _cli(
        "--debug",
        "score",
        "--metric",
        "psnr",
        str(images / "broken.png"),
        "--ref",
        str(images / "small.png"),
    )
    assert done.returncode == 2 and "Traceback" in done.stderr


def test_usage_errors_exit_2() -> None:
    assert _cli("run", "--splits", "many").returncode == 2
    assert _cli("frobnicate").returncode == 2


def test_make_dataset_from_own_frames_loads_both_ways(shared: Path, tmp_path: Path) -> None:
    import shutil

    from conftest import THERMAL_PRISTINE

    from iqabench.data import load_dataset

    frames = tmp_path / "frames"
    frames.mkdir()
    for name in sorted(p.name for p in THERMAL_PRISTINE.glob("*.png"))[:2]:
        shutil.copy(THERMAL_PRISTINE / name, frames / name)
    done = _cli(
        "make-dataset", "synthetic-lwir", "--out", str(tmp_path / "set"), "--from-dir", str(frames)
    )
    assert done.returncode == 0, done.stderr
    assert f"dataset: {(tmp_path / 'set').resolve()}" in done.stdout
    as_synthetic = load_dataset("synthetic-lwir", tmp_path / "set")
    as_csv = load_dataset("csv", tmp_path / "set")
    assert len(as_synthetic) == len(as_csv) == 2 * 25
    assert {i.content for i in as_csv} == {p.stem for p in frames.iterdir()}
    assert all(i.ref is not None and i.ref.is_file() for i in as_csv)
    again = _cli(
        "make-dataset", "synthetic-lwir", "--out", str(tmp_path / "set"), "--from-dir", str(frames)
    )
    assert again.returncode == 2 and "Traceback" not in again.stderr
