"""Everyday use: `iqabench score` over folders, `create_metric` on every kind of input, and
plain progress lines when the output is not a terminal."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CALIBRATION
from PIL import Image

import iqabench
from iqabench.errors import NotFittedError, UserError
from iqabench.progress import PlainProgress


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "IQABENCH_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "iqabench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture
def pairs(tmp_path: Path) -> tuple[Path, Path]:
    """Two distorted images in one folder, their references (other suffix) in another."""
    rng = np.random.default_rng(3)
    dist, refs = tmp_path / "dist", tmp_path / "refs"
    dist.mkdir()
    refs.mkdir()
    for name in ("a", "b"):
        ref = rng.integers(0, 256, (40, 48), dtype=np.uint8)
        noisy = np.clip(ref + rng.normal(0, 8, ref.shape), 0, 255).astype(np.uint8)
        Image.fromarray(ref).save(refs / f"{name}.bmp")
        Image.fromarray(noisy).save(dist / f"{name}.png")
    (dist / "notes.txt").write_text("not an image")
    return dist, refs


def test_score_folder_with_ref_dir_many_metrics_csv(pairs: tuple[Path, Path], tmp_path: Path):
    dist, refs = pairs
    done = _cli(
        "score",
        "--metrics",
        "psnr,ssim",
        str(dist),
        "--ref-dir",
        str(refs),
        "--format",
        "csv",
        cache=tmp_path / "cache",
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [Path(r["image"]).name for r in rows] == ["a.png", "b.png"]
    for row in rows:
        image = Path(row["image"])
        expected = iqabench.create_metric("psnr")(image, ref=refs / f"{image.stem}.bmp")
        assert float(row["psnr"]) == pytest.approx(expected, rel=1e-12)
        assert 0 < float(row["ssim"]) < 1
    assert (tmp_path / "cache" / "scores.db").is_file()  # the shared store was used


def test_score_reuses_the_store(pairs: tuple[Path, Path], tmp_path: Path) -> None:
    dist, refs = pairs
    args = ("score", "--metrics", "psnr", str(dist), "--ref-dir", str(refs), "--format", "json")
    first = _cli(*args, cache=tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    stamps = _created(tmp_path / "cache" / "scores.db")
    assert len(stamps) == 2
    second = _cli(*args, cache=tmp_path / "cache")
    assert json.loads(second.stdout) == json.loads(first.stdout)
    assert _created(tmp_path / "cache" / "scores.db") == stamps  # nothing was recomputed


def _created(store: Path) -> list[tuple[str, float]]:
    with sqlite3.connect(store) as db:
        return sorted(db.execute("SELECT item, created FROM results WHERE metric = 'psnr'"))


def test_score_bad_image_one_line_listing_metrics(pairs: tuple[Path, Path], tmp_path: Path):
    dist, refs = pairs
    (dist / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(refs / "c.png")
    done = _cli(
        "score",
        "--metrics",
        "psnr,ssim",
        str(dist),
        "--ref-dir",
        str(refs),
        cache=tmp_path / "cache",
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("iqabench: error")]
    assert len(errors) == 1, done.stderr
    assert "c.png" in errors[0] and "psnr, ssim" in errors[0]
    assert "a.png" in done.stdout and "b.png" in done.stdout  # the others are still scored


def test_score_refuses_unfitted_and_notes_transformed_values(tmp_path: Path, shared: Path):
    image = str(CALIBRATION / "dist/I04.bmp")
    done = _cli("score", "--metrics", "gm-log", image, cache=tmp_path / "cache")
    assert done.returncode == 2
    assert "trainable and has no trained model" in done.stderr
    with pytest.raises(NotFittedError, match="trainable and has no trained model"):
        iqabench.create_metric("gm-log")(image)
    done = _cli(
        "score",
        "--metrics",
        "brisque,brisque-live",
        image,
        "--format",
        "json",
        cache=tmp_path / "cache",
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    row = printed["scores"][0]
    assert row["brisque"] == pytest.approx(-row["brisque-live"], rel=1e-12)
    assert "minus the BRISQUE score" in printed["notes"]["brisque"]
    assert "brisque-live" not in printed["notes"]


def test_score_option_names_unknown_metric(pairs: tuple[Path, Path], tmp_path: Path) -> None:
    dist, refs = pairs
    done = _cli(
        "score",
        "--metrics",
        "psnr,ssim",
        str(dist),
        "--ref-dir",
        str(refs),
        "--option",
        "niqe.model=x.npz",
        cache=tmp_path / "cache",
    )
    assert done.returncode == 2 and "'niqe' is not among --metrics" in done.stderr
    done = _cli(
        "score",
        "--metrics",
        "psnr",
        str(dist / "a.png"),
        "--ref-dir",
        str(tmp_path / "none"),
        cache=tmp_path / "cache",
    )
    assert done.returncode == 2 and "reference folder not found" in done.stderr


def test_create_metric_takes_paths_arrays_pil_and_tensors(shared: Path, tmp_path: Path):
    torch = pytest.importorskip("torch")
    dist, ref = CALIBRATION / "dist/I03.bmp", CALIBRATION / "ref/I03.bmp"
    psnr = iqabench.create_metric("psnr")
    assert psnr.full_reference and psnr.higher_is_better
    assert psnr.score_range == (0.0, math.inf)
    expected = psnr(dist, ref=ref)
    assert isinstance(expected, float)
    pixels, reference = np.asarray(Image.open(dist)), np.asarray(Image.open(ref))
    assert psnr(pixels, ref=reference) == expected
    assert psnr(Image.open(dist), ref=Image.open(ref)) == expected
    tensor = torch.from_numpy(pixels.copy()).permute(2, 0, 1).double() / 255
    ref_tensor = torch.from_numpy(reference.copy()).permute(2, 0, 1).double() / 255
    assert psnr(tensor, ref=ref_tensor) == pytest.approx(expected, rel=1e-12)
    batch = psnr(torch.stack([tensor, tensor]), ref=torch.stack([ref_tensor, ref_tensor]))
    assert batch.shape == (2,) and np.allclose(batch, expected, rtol=1e-12)
    assert np.array_equal(psnr([str(dist), dist], ref=str(ref)), [expected, expected])
    assert psnr(pixels.astype(np.float64), ref=reference.astype(np.float64)) == expected
    with pytest.raises(UserError, match="full-reference"):
        psnr(dist)
    niqe = iqabench.create_metric("niqe")
    assert not niqe.full_reference and not niqe.higher_is_better
    frame = (np.asarray(Image.open(dist).convert("L")).astype(np.uint16) * 40) + 1000
    Image.fromarray(frame).save(tmp_path / "frame16.png")
    assert niqe(frame) == niqe(tmp_path / "frame16.png")  # 16-bit: the same display window


def test_plain_progress_prints_rate_and_eta_lines() -> None:
    stream = io.StringIO()
    progress = PlainProgress(stream=stream, interval=0.0)
    with progress.task("ssim", 4) as bar:
        for _ in range(4):
            bar.advance()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("ssim: 1/4 (25%)") and "it/s" in lines[0] and "ETA" in lines[0]
    assert lines[-1].startswith("ssim: 4/4 (100%)") and "done in" in lines[-1]
    quiet = io.StringIO()
    with PlainProgress(stream=quiet, interval=60.0).task("psnr", 3) as bar:
        bar.advance(3)
    assert quiet.getvalue() == ""  # a loop shorter than the interval prints nothing


def test_run_refuses_parameters_of_unknown_or_absent_metrics(tmp_path: Path) -> None:
    from iqabench import api

    with pytest.raises(UserError, match="did you mean 'nestconvnext'"):
        api.run("psnr", out=tmp_path, params={"nestconvnex": {"checkpoint": "x.pt"}})
    with pytest.raises(UserError, match="'niqe', which this run does not score"):
        api.run("psnr", out=tmp_path, params={"niqe": {"model": "x.npz"}})
    assert not any(tmp_path.iterdir())  # refused before any work


def test_list_metrics_json_and_untruncated_names(tmp_path: Path) -> None:
    done = _cli("list", "metrics", "--json", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    facts = {fact["name"]: fact for fact in json.loads(done.stdout)}
    assert facts["psnr"]["score_range"] == [0.0, None] and facts["psnr"]["full_reference"]
    assert facts["niqe"]["higher_is_better"] is False
    table = _cli("list", "metrics", cache=tmp_path)
    longest = max(facts, key=len)
    assert longest in table.stdout  # never cut to "nestconvn…" off a terminal


def test_warnings_and_metric_notes_reach_the_console_as_one_line_each(
    capsys: pytest.CaptureFixture,
) -> None:
    from iqabench.cli import _one_line_warning
    from iqabench.commands.run_cmd import _print_metric_notes

    stream = io.StringIO()
    _one_line_warning(RuntimeWarning("backbone starts from\nRANDOM  initialisation"),
                      RuntimeWarning, "x.py", 3, stream)  # fmt: skip
    assert stream.getvalue() == "iqabench: warning: backbone starts from RANDOM initialisation\n"
    _print_metric_notes({"tres-lite": {"notes": ["scored with a given checkpoint:\n inflates"]}})
    assert capsys.readouterr().err == (
        "iqabench: note: tres-lite: scored with a given checkpoint: inflates\n"
    )


def test_the_core_install_needs_neither_pyiqa_nor_piq(shared: Path) -> None:
    """pyiqa and piq are peers for tests and benchmarks (the `peers` extra), never
    dependencies: every metric module imports, and the calibrated VIF and FSIM score, with
    both made unimportable."""
    import tomllib

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    core = " ".join(project["project"]["dependencies"])
    assert "pyiqa" not in core and "piq" not in core
    script = f"""
import sys
sys.modules["pyiqa"] = None
sys.modules["piq"] = None
from importlib.metadata import entry_points
for point in entry_points(group="iqabench.metrics"):
    if point.dist is not None and point.dist.name == "iqabench":
        point.load()
import iqabench
for name in ("vif", "fsim"):
    value = iqabench.create_metric(name)({str(CALIBRATION / "dist/I04.bmp")!r},
                                         ref={str(CALIBRATION / "ref/I04.bmp")!r})
    print(name, value)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "vif" in done.stdout and "fsim" in done.stdout


def test_a_bad_image_in_a_run_is_one_line_listing_its_metrics(
    pairs: tuple[Path, Path], tmp_path: Path
) -> None:
    from iqabench import api

    dist, refs = pairs
    (dist / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    rows = [f"dist/{n}.png,refs/{n}.bmp,{q}" for n, q in (("a", 3), ("b", 4), ("c", 2))]
    table = tmp_path / "scores.csv"
    table.write_text("image,ref,mos\n" + "\n".join(rows) + "\n")
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(refs / "c.bmp")
    result = api.run(
        "psnr,gmsd",
        "csv",
        tmp_path,
        out=tmp_path / "run",
        splits=0,
        report=False,
        store=tmp_path / "store.db",
    )
    (line,) = result.input_failures
    assert "c.png" in line and line.endswith("(metrics: psnr, gmsd)")
