"""End-to-end runs on the built-in synthetic-lwir dataset: results, reuse, SIGKILL resume,
per-item failures, and a third-party plugin installed from tests/plugin_example."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from iqabench.data.synthetic import ensure_synthetic_lwir


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "iqabench", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


def _run_argv(out: Path, *options: str, metrics: str = "psnr,ssim") -> list[str]:
    """``iqabench run`` on synthetic-lwir (or on the dataset ``options`` name) into ``out``,
    with a score store of its own beside ``out`` (unless ``options`` name one), so that what
    other tests stored in the shared store is not reused."""
    dataset = () if "--dataset" in options else ("--dataset", "synthetic-lwir")
    store = () if "--store" in options else ("--store", str(_own_store(out)))
    return [
        sys.executable, "-m", "iqabench", "run", "--metrics", metrics, *dataset,
        "--out", str(out), *store, "--no-report", *options,
    ]  # fmt: skip


def _own_store(out: Path) -> Path:
    return out.with_name(f"{out.name}.scores.db")


def _run(
    out: Path, *options: str, metrics: str = "psnr,ssim", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    argv = _run_argv(out, *options, metrics=metrics)
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)


def _comparable(value: Any) -> Any:
    """A summary without what legitimately differs between runs (times, counts, paths)."""
    volatile = {"seconds", "timing", "created", "counts", "root"}
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


@pytest.fixture(scope="module")
def synthetic() -> Path:
    return ensure_synthetic_lwir()


@pytest.fixture(scope="module")
def psnr_ssim_run(
    tmp_path_factory: pytest.TempPathFactory, synthetic: Path
) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("run") / "synthetic"
    done = _run(out)
    return out, done


def test_psnr_ssim_run_writes_per_type_results(
    psnr_ssim_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, done = psnr_ssim_run
    assert done.returncode == 0, done.stderr
    assert f"results: {out.resolve()}" in done.stdout
    assert "scored 600 new, reused 0 cached, failed 0" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["n_images"] == 300 and summary["protocol"]["splits"] == 10
    psnr = summary["metrics"]["psnr"]
    assert psnr["status"] == "ok" and psnr["evaluation"] == "full"
    assert set(psnr["per_type"]) == {"AWGN", "BLU", "NU", "JPG", "J2K"}
    assert psnr["per_type"]["AWGN"]["srocc"] > 0.9
    lo, hi = psnr["overall"]["srocc_ci"]
    assert lo <= psnr["overall"]["srocc"] <= hi
    assert psnr["splits"]["n"] == 10 and len(psnr["splits"]["overall"]["srocc"]["values"]) == 10
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 600 and {r["metric"] for r in rows} == {"psnr", "ssim"}
    assert all(r["score"] and not r["error"] for r in rows)


def test_rerun_reuses_everything_and_gives_the_same_summary(
    psnr_ssim_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, _ = psnr_ssim_run
    first = json.loads((out / "summary.json").read_text())
    done = _run(out)
    assert done.returncode == 0, done.stderr
    assert "scored 0 new, reused 600 cached, failed 0" in done.stdout
    assert _comparable(json.loads((out / "summary.json").read_text())) == _comparable(first)


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return connection.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_resume(
    psnr_ssim_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path
) -> None:
    reference, _ = psnr_ssim_run
    out = tmp_path / "killed"
    process = subprocess.Popen(_run_argv(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    store = _own_store(out)
    while _stored(store) < 330 and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = _stored(store)
    assert 330 <= before < 600
    check = sqlite3.connect(store).execute("PRAGMA integrity_check").fetchone()[0]
    assert check == "ok"
    done = _run(out)
    assert done.returncode == 0, done.stderr
    assert f"scored {600 - before} new, reused {before} cached, failed 0" in done.stdout
    resumed = json.loads((out / "summary.json").read_text())
    uninterrupted = json.loads((reference / "summary.json").read_text())
    assert _comparable(resumed) == _comparable(uninterrupted)


def test_bad_images_are_recorded_and_do_not_stop_the_run(synthetic: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(synthetic, root)
    with open(root / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    broken = root / rows[0]["image"]
    broken.write_bytes(broken.read_bytes()[:200])  # truncated
    (root / rows[1]["image"]).unlink()  # missing
    from PIL import Image

    cropped = root / rows[2]["image"]
    with Image.open(cropped) as image:
        image.crop((0, 0, 100, 80)).save(cropped)  # no longer the size of its reference
    options = ("--dataset", "csv", "--data-root", str(root), "--bootstrap", "0")
    done = _run(tmp_path / "out", *options, metrics="psnr")
    assert done.returncode == 2
    assert "failed 3" in done.stdout and "scored 297 new" in done.stdout
    assert rows[0]["image"].split("/")[-1] in done.stderr and "image not found" in done.stderr
    assert "100x80 but its reference" in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["failures"]) == 3 and summary["metrics"]["psnr"]["overall"]["n"] == 297
    # the good scores are kept: a rerun computes nothing new
    again = _run(tmp_path / "out", *options, metrics="psnr")
    assert "scored 0 new, reused 297 cached" in again.stdout


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(REPO / "tests" / "plugin_example"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))
    return env


def test_installed_plugin_is_listed_and_runs(
    plugin_env: dict[str, str], synthetic: Path, tmp_path: Path
) -> None:
    listed = _cli("list", "metrics", env={**plugin_env, "COLUMNS": "200"})
    assert listed.returncode == 0 and "example-sharpness" in listed.stdout
    assert "iqabench-example-plugin" in listed.stdout
    out = tmp_path / "plugin-run"
    done = _run(out, "--bootstrap", "0", metrics="example-sharpness,psnr", env=plugin_env)
    assert done.returncode == 0, done.stderr
    entry = json.loads((out / "summary.json").read_text())["metrics"]["example-sharpness"]
    assert entry["status"] == "ok" and entry["family"] == "TR-NR"
    assert entry["per_type"]["BLU"]["srocc"] > 0.5  # blur lowers gradient energy


def test_plugins_are_never_loaded_from_a_data_folder(tmp_path: Path) -> None:
    """A folder holding a package and its metadata (as a dataset or results folder might) is
    not a source of plugins, even as the working directory."""
    (tmp_path / "evil.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('imported').write_text('yes')\n"
    )
    info = tmp_path / "evil-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[iqabench.metrics]\nevil = evil:Evil\n")
    console = Path(sys.executable).parent / "iqabench"
    done = subprocess.run(
        [str(console), "list", "metrics"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )
    assert done.returncode == 0 and "psnr" in done.stdout
    assert "evil" not in done.stdout and not (tmp_path / "imported").exists()


def test_parallel_workers_give_the_same_results(
    psnr_ssim_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path
) -> None:
    reference, _ = psnr_ssim_run
    out = tmp_path / "parallel"
    done = _run(out, "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "scored 600 new" in done.stdout
    parallel = json.loads((out / "summary.json").read_text())
    assert _comparable(parallel) == _comparable(
        json.loads((reference / "summary.json").read_text())
    )


def test_too_few_scored_items_is_a_failed_metric_not_an_ok_one(tmp_path: Path) -> None:
    from PIL import Image

    from iqabench import api

    for name in ("a", "b", "r"):
        Image.new("L", (16, 16), color=len(name) * 40 + ord(name)).save(tmp_path / f"{name}.png")
    (tmp_path / "scores.csv").write_text("image,ref,mos\na.png,r.png,4\nb.png,r.png,2\n")
    result = api.run(["psnr"], "csv", data_root=tmp_path, out=tmp_path / "out", splits=0)
    entry = result.summary["metrics"]["psnr"]
    assert entry["status"] == "failed" and "fewer than 3" in entry["reason"]
    assert result.failed == {"psnr": entry["reason"]}


def test_every_mapping_in_the_summary_rises_over_its_scores(
    psnr_ssim_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    from iqabench.mapping import MappingFit, is_non_decreasing

    out, _ = psnr_ssim_run
    summary = json.loads((out / "summary.json").read_text())
    for name, entry in summary["metrics"].items():
        for where, block in [("overall", entry["overall"]), *entry["per_type"].items()]:
            mapping = block["mapping"]
            assert mapping["kind"] in ("logistic5", "logistic4", "linear"), (name, where)
            fit = MappingFit(
                mapping["kind"], tuple(mapping["params"]), tuple(mapping["domain"]), None
            )
            assert is_non_decreasing(fit), (name, where, mapping)


def test_the_summary_records_the_protocol_every_table_uses(
    psnr_ssim_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, done = psnr_ssim_run
    summary = json.loads((out / "summary.json").read_text())
    dataset = summary["dataset"]
    assert dataset["distortions"] == ["AWGN", "BLU", "NU", "JPG", "J2K"]  # the card's order
    assert dataset["score_label"] == "ordinal quality" and dataset["score_range"] == [1.0, 5.0]
    assert summary["protocol"]["min_test_items"] == 10
    sizes = summary["metrics"]["psnr"]["splits"]["test_items"]
    assert sizes["overall"]["values"] == [50] * 10 and not sizes["overall"]["small_sample"]
    assert sizes["per_type"]["AWGN"]["median"] == 10.0
    interval = summary["metrics"]["ssim"]["splits"]["overall"]["srocc"]["interval"]
    assert interval[0] <= summary["metrics"]["ssim"]["splits"]["overall"]["srocc"]["median"]
    assert "agreement with ordinal quality" in done.stdout and "people" not in done.stdout


def test_a_made_dataset_keeps_its_own_name(tmp_path: Path) -> None:
    from iqabench.data import load_dataset
    from iqabench.data.synthetic import build_synthetic_lwir
    from iqabench.runner import _dataset_facts

    root = build_synthetic_lwir(tmp_path / "my-frames", n_scenes=2, size=(32, 40))
    facts = _dataset_facts(load_dataset("synthetic-lwir", root))
    assert facts["display_name"] == "my-frames (Synthetic LWIR, seed 0, 8-bit)"
    assert _dataset_facts(load_dataset("csv", root))["display_name"].startswith("my-frames")


def test_a_loaded_dataset_refuses_a_data_root_meant_as_the_run_folder(tmp_path: Path) -> None:
    from iqabench import api
    from iqabench.data import load_dataset
    from iqabench.data.synthetic import build_synthetic_lwir

    dataset = load_dataset("synthetic-lwir", build_synthetic_lwir(tmp_path / "set", n_scenes=2))
    with pytest.raises(TypeError, match="already loaded.*out="):
        api.run(["psnr"], dataset, tmp_path / "run")
    assert not (tmp_path / "run").exists() and not (Path("reports") / "set").exists()


def test_a_tiny_real_sample_ends_with_a_small_sample_warning(shared: Path, tmp_path: Path) -> None:
    # The 15-image LWIR-IQA sample: one scene per test set, i.e. one to five images.
    out = tmp_path / "lwir"
    root = shared / "data" / "thermal-real" / "lwir_iqa_sample"
    options = ("--dataset", "LWIR_IQA", "--data-root", str(root), "--splits", "4")
    argv = _run_argv(out, *options, metrics="niqe,brisque")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "warning: split test sets hold a median of" in done.stderr
    assert "brisque" in done.stderr.split("small samples")[1].splitlines()[0]
    table = done.stdout.split("results:")[0]
    assert "1.000 " not in table  # no plain headline: small samples are in parentheses
    assert "†" in table and "not a headline" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    brisque = summary["metrics"]["brisque"]
    assert brisque["splits"]["test_items"]["overall"]["small_sample"]
    assert any("small samples" in w for w in summary["warnings"] if w.startswith("brisque"))
