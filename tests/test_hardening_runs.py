"""Hardening, runs: a rerun gives the first run's results (NaN included), model files are
checked once and named, every message is one line with the right exit code, files are written
atomically, and one run folder holds one run at a time."""

from __future__ import annotations

import errno
import json
import math
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_WEIGHTS, iqabench_argv, registered, tiny_dataset
from PIL import Image

from iqabench import api
from iqabench.cli import main
from iqabench.errors import RunFolderBusyError, StorageError, UserError
from iqabench.metric import Metric
from iqabench.store import MetricKey, Record, ScoreStore, lock_run_folder


class Holes(Metric):
    """NaN for some images, None for others, a number for the rest."""

    name = "test-holes"
    family = "TR-NR"
    full_reference = False
    higher_is_better = True
    citation = "a test metric"

    def score(self, images: Sequence[np.ndarray], refs: Any = None) -> list[float | None]:
        out: list[float | None] = []
        for image in images:
            kind = int(image.sum()) % 3
            out.append(math.nan if kind == 0 else None if kind == 1 else float(image.mean()))
        return out


class Boom(Metric):
    """A metric whose construction fails with a torch-like multi-line message."""

    name = "test-boom"
    family = "TR-NR"
    full_reference = False
    higher_is_better = True
    citation = "a test metric"

    def __init__(self, **params: Any) -> None:
        raise RuntimeError("CUDA error: device-side assert\nCompile with TORCH_USE_CUDA_DSA\n")

    def score(self, images: Sequence[np.ndarray], refs: Any = None) -> np.ndarray:
        raise AssertionError("never scored")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tiny_dataset(tmp_path / "data", scenes=4)


def _comparable(value: Any) -> Any:
    volatile = {"seconds", "timing", "created", "counts"}
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _lines(text: str, *needles: str) -> list[str]:
    return [line for line in text.splitlines() if all(n in line for n in needles)]


# -- (3) NaN scores survive a rerun -----------------------------------------------------------
def test_nan_and_none_scores_survive_a_rerun(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with registered(Holes):
        first = api.run(["test-holes"], "csv", data_root=data, out=out, splits=2, bootstrap=0)
        scores = (out / "scores.csv").read_text()
        again = api.run(["test-holes"], "csv", data_root=data, out=out, splits=2, bootstrap=0)
    entry = first.summary["metrics"]["test-holes"]
    assert entry["n_scored"] == 12 and any("non-finite" in n for n in entry["notes"])
    assert again.tally.scored == 0 and again.tally.reused == 12
    assert _comparable(again.summary) == _comparable(first.summary)
    assert (out / "scores.csv").read_text() == scores


def test_the_store_keeps_nan_scores_and_predictions(tmp_path: Path) -> None:
    key = MetricKey("m", "1", "p")
    with ScoreStore(tmp_path / "scores.db") as store:
        store.put(key, "score", [Record("a", value=math.nan), Record("b", value=math.inf)])
        store.put_predictions(key, "split", {"a": math.nan, "b": 1.5}, [])
    with ScoreStore(tmp_path / "scores.db") as store:
        records = store.get(key, "score", ["a", "b"])
        predictions = store.get_predictions(key, "split")
    assert math.isnan(records["a"].value) and records["a"].ok and records["b"].value == math.inf
    assert predictions is not None and math.isnan(predictions["a"]) and predictions["b"] == 1.5


# -- (8) model files: checked once, before scoring, named -------------------------------------
def _corrupt_niqe_models(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    good = np.load(SHARED_WEIGHTS / "niqe" / "niqe_pristine_model.npz")
    mu, cov = good["mu"], good["cov"]
    truncated = folder / "truncated.npz"
    truncated.write_bytes((SHARED_WEIGHTS / "niqe" / "niqe_pristine_model.npz").read_bytes()[:300])
    nan_cov = cov.copy()
    nan_cov[3, 4] = np.nan
    np.savez(folder / "nan.npz", mu=mu, cov=nan_cov)
    np.savez(folder / "zero.npz", mu=mu, cov=np.zeros_like(cov))
    return {p.stem: p for p in (truncated, folder / "nan.npz", folder / "zero.npz")}


def test_a_corrupt_niqe_model_is_named_once_not_per_image(
    shared: Path, data: Path, tmp_path: Path
) -> None:
    for label, model in _corrupt_niqe_models(tmp_path / "models").items():
        params = {"niqe": {"model": str(model)}}
        out = tmp_path / f"out-{label}"
        result = api.run(["niqe"], "csv", data_root=data, out=out, params=params, splits=0)
        entry = result.summary["metrics"]["niqe"]
        assert entry["status"] == "skipped" and str(model) in entry["reason"], label
        assert result.summary["failures"] == [], label
        assert "\n" not in entry["reason"]


def test_a_corrupt_brisque_model_is_named_once(
    shared: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "weights" / "brisque"
    weights.mkdir(parents=True)
    (weights / "allmodel").write_text("svm_type epsilon_svr\nkernel_type rbf\ngamma 0.05\n")
    (weights / "allrange").write_bytes((SHARED_WEIGHTS / "brisque" / "allrange").read_bytes())
    monkeypatch.setenv("IQABENCH_WEIGHTS", str(tmp_path / "weights"))
    result = api.run(["brisque-live"], "csv", data_root=data, out=tmp_path / "out", splits=0)
    entry = result.summary["metrics"]["brisque-live"]
    assert entry["status"] == "skipped" and str(weights / "allmodel") in entry["reason"]
    assert result.summary["failures"] == []


def test_a_checkpoint_without_its_configuration_is_a_one_line_error(tmp_path: Path) -> None:
    import torch

    from iqabench.train import checkpoint

    path = tmp_path / "best.pt"
    torch.save({"format": checkpoint.FORMAT, "kind": "model", "model": {}}, path)
    with pytest.raises(UserError, match=r"best\.pt has the .* tag but no '(metric|architecture)'"):
        checkpoint.read_checkpoint(path)


# -- (8) one line, the right exit code -----------------------------------------------------------
def test_a_multi_line_internal_error_is_printed_on_one_line(
    data: Path, capsys: pytest.CaptureFixture
) -> None:
    with registered(Boom):
        code = main(["score", "--metrics", "test-boom", str(data / "s0_l1.png")])
    assert code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "device-side assert" in lines[0] and "TORCH_USE" in lines[0]


def test_a_metric_that_cannot_score_an_image_is_an_input_error_kept(tmp_path: Path) -> None:
    """SSIM on a 1x1 image: an input error naming the image, stored, not retried every run."""
    root = tiny_dataset(tmp_path / "data")
    for name in ("tiny.png", "tiny_ref.png"):
        Image.fromarray(np.full((1, 1), 9, np.uint8)).save(root / name)
    table = root / "scores.csv"
    table.write_text(table.read_text() + "tiny.png,tiny_ref.png,3,AWGN,1,tiny\n")
    options = {"splits": 0, "bootstrap": 0}
    first = api.run(["ssim"], "csv", data_root=root, out=tmp_path / "out", **options)
    (failure,) = first.input_failures
    assert "tiny.png" in failure and first.internal_failures == []
    again = api.run(["ssim"], "csv", data_root=root, out=tmp_path / "out", **options)
    assert again.tally.scored == 0 and again.input_failures == [failure]


def test_a_read_only_run_folder_is_exit_2_naming_it(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    real_mkdir = Path.mkdir

    def refuse(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == out:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    code = main(["run", "--metrics", "psnr", "--dataset", "csv", "--data-root", str(data),
                 "--out", str(out), "--no-report"])  # fmt: skip
    assert code == 2
    (line,) = _lines(capsys.readouterr().err, "error")
    assert f"cannot write {out}: Read-only file system" in line


_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from iqabench.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _with_file_limit(limit: int, *args: str) -> subprocess.CompletedProcess:
    """``iqabench ARGS`` where no file may grow beyond ``limit`` bytes (a full disk)."""
    argv = [sys.executable, "-c", _FULL_DISK, str(limit), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def test_a_full_disk_never_leaves_a_truncated_file(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = ("run", "--metrics", "psnr", "--dataset", "csv", "--data-root", str(data),
           "--out", str(out), "--splits", "0", "--bootstrap", "0", "--no-report")  # fmt: skip
    report = ("report", str(out), "--format", "html")
    for argv in (run, report):
        assert subprocess.run(iqabench_argv(*argv), capture_output=True).returncode == 0
    html = (out / "report.html").read_bytes()
    done = _with_file_limit(1 << 20, *report)  # report.html (plotly inlined) does not fit
    assert done.returncode == 2, done.stderr
    (line,) = _lines(done.stderr, "error")
    assert f"cannot write {out / 'report.html'}: File too large" in line
    assert (out / "report.html").read_bytes() == html
    summary = (out / "summary.json").read_text()
    done = _with_file_limit(2000, *run)  # neither the store nor scores.csv fits
    assert done.returncode == 2, done.stderr
    (line,) = _lines(done.stderr, "error")
    assert re.search(r"cannot write (the score store )?/\S+: ", line), line
    assert (out / "summary.json").read_text() == summary
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.suffix != ".lock"]


def test_a_hand_edited_summary_is_a_one_line_error(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    api.run(["psnr"], "csv", data_root=data, out=out, splits=0, bootstrap=0, report=False)
    original = json.loads((out / "summary.json").read_text())
    edits = {
        "metrics is a list": lambda s: s.update(metrics=[]),
        "a metric is a string": lambda s: s["metrics"].update(psnr="great"),
        "overall is a number": lambda s: s["metrics"]["psnr"].update(overall=0.9),
        "srocc is text": lambda s: s["metrics"]["psnr"]["overall"].update(srocc="high"),
        "no dataset": lambda s: s.pop("dataset"),
        "a failure is a number": lambda s: s.update(failures=[1]),
        "a count is text": lambda s: s["counts"].update(scored="many"),
        "notes are a number": lambda s: s["metrics"]["psnr"].update(notes=5),
    }
    for label, edit in edits.items():
        summary = json.loads(json.dumps(original))
        edit(summary)
        (out / "summary.json").write_text(json.dumps(summary))
        capsys.readouterr()
        code = main(["report", str(out), "--format", "html"])
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1, (label, lines)
        assert "summary.json" in lines[0], (label, lines)


# -- (9) one run per run folder -------------------------------------------------------------
def test_a_second_run_into_a_busy_folder_exits_2_naming_the_holder(
    data: Path, tmp_path: Path
) -> None:
    import os

    out = tmp_path / "out"
    out.mkdir()
    with lock_run_folder(out):
        done = subprocess.run(
            iqabench_argv("run", "--metrics", "psnr", "--dataset", "csv", "--data-root",
                          str(data), "--out", str(out)),
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        with pytest.raises(RunFolderBusyError, match=f"pid {os.getpid()}"):
            api.run(["psnr"], "csv", data_root=data, out=out, splits=0)
    assert done.returncode == 2
    (line,) = _lines(done.stderr, "error")
    assert f"run folder {out} is in use" in line and f"pid {os.getpid()}" in line
    assert not (out / "summary.json").exists()


def test_a_killed_run_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom iqabench.store import lock_run_folder\n"
        "with lock_run_folder(Path(sys.argv[1])):\n    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(RunFolderBusyError), lock_run_folder(tmp_path):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(30)
    deadline = time.monotonic() + 10
    while True:
        try:
            with lock_run_folder(tmp_path):
                break
        except RunFolderBusyError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_atomic_writes_leave_the_old_file_on_a_full_disk(tmp_path: Path) -> None:
    code = (
        "import resource, signal, sys\nfrom pathlib import Path\n"
        "from iqabench.results import write_summary\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "write_summary(Path(sys.argv[1]), {'schema': 'x', 'blob': 'y' * 100000})\n"
    )
    (tmp_path / "summary.json").write_text("old\n")
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode != 0 and StorageError.__name__ in done.stderr
    assert "summary.json: File too large" in done.stderr
    assert (tmp_path / "summary.json").read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
