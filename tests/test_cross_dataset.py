"""Cross-dataset runs (issue 17): trainable metrics trained on one synthetic set score a set made
from the pristine TNO frames with ``make-dataset`` and the real TIIQAD sample; the right metrics
run, the others are skipped with reasons, nothing of the test sets reaches training (asserted on
the rows and records every fit receives and on the store keys, named by the training set's
fingerprint), one training serves every test dataset and a rerun reuses everything."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

from iqabench import api
from iqabench.cross_dataset import fingerprint
from iqabench.data import Dataset, load_dataset
from iqabench.errors import UserError
from iqabench.fitting import FeatureFit
from iqabench.imageio import cached_file_sha256
from iqabench.metric import LabelledImage, LearnedMetric

METRICS = ["psnr", "niqe", "brisque", "gm-log", "recording-learned"]


class RecordingLearned(LearnedMetric):
    """A learned metric that keeps the records its ``fit`` receives and predicts the mean
    grey level (higher-is-better only for this test: the numbers do not matter here)."""

    name: ClassVar[str] = "recording-learned"
    family: ClassVar[str] = "DL-NR"
    full_reference: ClassVar[bool] = False
    citation: ClassVar[str] = "a test double"
    fits: ClassVar[list[tuple[list[LabelledImage], list[LabelledImage]]]] = []

    def fit(
        self, train: Sequence[LabelledImage], validation: Sequence[LabelledImage], seed: int = 0
    ) -> RecordingLearned:
        self.fits.append((list(train), list(validation)))
        return self

    def score(self, images: Sequence[np.ndarray], refs: Any = None) -> np.ndarray:
        return np.array([float(np.mean(image)) for image in images])


@pytest.fixture(scope="module")
def recorded() -> Iterator[SimpleNamespace]:
    """The test metric registered, and every feature fit's inputs recorded."""
    from iqabench import registry

    calls: list[FeatureFit] = []
    known = dict(registry.entries())
    known[RecordingLearned.name] = registry.MetricEntry(
        RecordingLearned.name, "tests:RecordingLearned", "tests", RecordingLearned
    )
    original = FeatureFit.run

    def run(self: FeatureFit, metric: Any) -> Any:
        calls.append(self)
        return original(self, metric)

    patcher = pytest.MonkeyPatch()
    patcher.setattr(registry, "entries", lambda: known)
    patcher.setattr(FeatureFit, "run", run)
    yield SimpleNamespace(feature_fits=calls, learned_fits=RecordingLearned.fits)
    patcher.undo()


@pytest.fixture(scope="module")
def sets(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A 3-scene synthetic training set, a set made from 2 TNO frames (shrunk to 128x96) with
    ``iqabench make-dataset``, and the 15-image TIIQAD sample (no references, no types)."""
    from PIL import Image

    from iqabench.data.synthetic import build_synthetic_lwir

    root = tmp_path_factory.mktemp("cross")
    train = build_synthetic_lwir(root / "train", n_scenes=3, size=(96, 128), seed=3)
    frames = root / "frames"
    frames.mkdir()
    for path in sorted((shared / "data" / "thermal-pristine").glob("*.png"))[:2]:
        Image.open(path).resize((128, 96)).save(frames / path.name)
    argv = ["make-dataset", "synthetic-lwir", "--out", str(root / "tno"), "--from-dir", str(frames)]
    made = subprocess.run([sys.executable, "-m", "iqabench", *argv], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    return SimpleNamespace(
        root=root,
        train=load_dataset("synthetic-lwir", train),
        tno=load_dataset("synthetic-lwir", root / "tno"),
        tiiqad=load_dataset("TIIQAD", shared / "data" / "thermal-real" / "tiiqad_sample"),
        store=root / "scores.db",
    )


def _cross_run(sets: SimpleNamespace) -> list[api.RunResult]:
    return api.run_cross_dataset(
        METRICS,
        sets.train,
        [sets.tno, sets.tiiqad],
        sets.root / "runs",
        store=sets.store,
        bootstrap=20,
        report=False,
    )


@pytest.fixture(scope="module")
def first(sets: SimpleNamespace, recorded: SimpleNamespace) -> list[api.RunResult]:
    return _cross_run(sets)


def _fingerprint(dataset: Dataset) -> str:
    images = {i.id: cached_file_sha256(i.image) for i in dataset.items}
    refs = {i.id: cached_file_sha256(i.ref) for i in dataset.items if i.ref is not None}
    return fingerprint(dataset.items, images, refs)


def _test_hashes(*datasets: Dataset) -> set[str]:
    return {cached_file_sha256(i.image)[:32] for d in datasets for i in d.items}


def test_every_metric_runs_or_is_skipped_with_its_reason(
    first: list[api.RunResult], sets: SimpleNamespace
) -> None:
    tno, tiiqad = (result.summary for result in first)
    assert [r.out for r in first] == [sets.root / "runs" / n for n in ("synthetic-lwir", "TIIQAD")]
    for summary, n in ((tno, 50), (tiiqad, 15)):
        assert summary["protocol"]["name"] == "cross-dataset"
        assert summary["protocol"]["splits"] == 0
        assert summary["protocol"]["test_datasets"] == ["synthetic-lwir", "TIIQAD"]
        assert summary["train_dataset"]["fingerprint"] == _fingerprint(sets.train)
        assert summary["train_dataset"]["n_images"] == 75
        for name in ("brisque", "gm-log", "recording-learned"):
            entry = summary["metrics"][name]
            assert entry["status"] == "ok", entry["reason"]
            assert entry["evaluation"] == "cross-dataset" and entry["overall"]["n"] == n
            assert entry["trained_on"] == {"dataset": "synthetic-lwir", "images": 75}
            assert entry["overall"]["srocc_ci"] is not None and entry["splits"]["n"] == 0
        assert summary["metrics"]["niqe"]["evaluation"] == "full"
    assert tno["dataset"]["fingerprint"] == _fingerprint(sets.tno) != _fingerprint(sets.train)
    assert tno["metrics"]["psnr"]["status"] == "ok"
    assert tno["metrics"]["psnr"]["overall"]["n"] == 50
    assert tiiqad["metrics"]["psnr"]["status"] == "skipped"
    assert "no reference images" in tiiqad["metrics"]["psnr"]["reason"]
    assert first[1].skipped == {"psnr": tiiqad["metrics"]["psnr"]["reason"]}
    rows = (first[0].out / "scores.csv").read_text().splitlines()
    assert sum(row.startswith("brisque,,") for row in rows) == 50  # one row per test image


def test_nothing_of_the_test_sets_reaches_training(
    first: list[api.RunResult], recorded: SimpleNamespace, sets: SimpleNamespace
) -> None:
    # One fit per trainable metric serves both test datasets.
    assert len(recorded.feature_fits) == 2 and len(recorded.learned_fits) == 1
    tested = _test_hashes(sets.tno, sets.tiiqad)
    train_hashes = {cached_file_sha256(i.image)[:32] for i in sets.train.items}
    for fit in recorded.feature_fits:
        assert fit.train.shape[0] == 75 and set(fit.test_keys) == tested
        assert all(group.startswith("train/") for group in fit.groups)
        assert not train_hashes & set(fit.test_keys)
    train, validation = recorded.learned_fits[0]
    given = {record.image for record in [*train, *validation]}
    assert given == {item.image for item in sets.train.items}
    assert not given & {item.image for item in [*sets.tno.items, *sets.tiiqad.items]}
    assert {r.content for r in train}.isdisjoint({r.content for r in validation})
    # The store keys the predictions by the training set's fingerprint.
    with sqlite3.connect(sets.store) as db:
        keys = {k for (k,) in db.execute("SELECT DISTINCT split FROM predictions")}
    assert {k.split(":")[1] for k in keys} == {_fingerprint(sets.train)[:16]}


def test_a_rerun_neither_retrains_nor_rescores(
    first: list[api.RunResult], recorded: SimpleNamespace, sets: SimpleNamespace
) -> None:
    before = (len(recorded.feature_fits), len(recorded.learned_fits))
    again = _cross_run(sets)
    assert (len(recorded.feature_fits), len(recorded.learned_fits)) == before
    for old, new in zip(first, again, strict=True):
        assert new.summary["counts"]["scored"] == 0 and new.summary["counts"]["reused"] > 0
        for name, entry in old.summary["metrics"].items():
            assert new.summary["metrics"][name].get("overall") == entry.get("overall")


def test_a_training_set_without_what_a_metric_needs_is_refused_before_any_work(
    sets: SimpleNamespace, recorded: SimpleNamespace
) -> None:
    out, store = sets.root / "refused", sets.root / "refused.db"
    with pytest.raises(UserError, match=r"'dacnn-lite'.*reference images.*TIIQAD"):
        api.run("dacnn-lite,psnr", sets.tno, out=out, train_dataset=sets.tiiqad, store=store)
    assert not (out / "summary.json").exists() and not store.exists()
    # Through "all" the metric is skipped with the same reason; the others run.
    from iqabench.runner import RunOptions, run

    options = RunOptions(train_dataset=sets.tiiqad, store=store, explicit=False, report=False)
    summary = run(["dacnn-lite", "psnr"], sets.tno, out, options).summary
    assert "its training needs reference images" in summary["metrics"]["dacnn-lite"]["reason"]
    assert summary["metrics"]["psnr"]["status"] == "ok"


def test_a_test_set_sharing_images_with_the_training_set_is_refused(
    sets: SimpleNamespace,
) -> None:
    with pytest.raises(UserError, match="also in the training dataset"):
        api.run("psnr", sets.tno, out=sets.root / "same", train_dataset=sets.tno, report=False)


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "iqabench", *argv], capture_output=True, text=True, timeout=600
    )


def test_the_command_line_tests_several_datasets_and_reports_the_protocol(
    first: list[api.RunResult], sets: SimpleNamespace
) -> None:
    out, tiiqad = sets.root / "cli", str(sets.tiiqad.root)
    done = _cli(
        "run", "--metrics", "psnr,brisque", "--train-dataset", "synthetic-lwir",
        "--train-data-root", str(sets.train.root), "--dataset", "synthetic-lwir,TIIQAD",
        "--data-root", f"synthetic-lwir={sets.tno.root}", "--data-root", f"TIIQAD={tiiqad}",
        "--out", str(out), "--store", str(sets.store), "--bootstrap", "20", "--no-report",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr  # psnr, named, cannot run on TIIQAD
    assert "psnr not evaluated: full-reference metric" in done.stderr
    assert " ".join(done.stdout.split()).count("trained on train (Synthetic LWIR, seed 3") == 2
    assert "scored 0 new" in done.stdout  # the API run above trained and scored everything
    summary = json.loads((out / "TIIQAD" / "summary.json").read_text())
    assert summary["metrics"]["brisque"]["overall"]["n"] == 15
    cross = out / "synthetic-lwir"
    assert _cli("report", str(cross), "--format", "html").returncode == 0
    report = (cross / "report.html").read_text(encoding="utf-8")
    assert "Protocol: cross-dataset: trainable metrics trained on train" in report
    assert _fingerprint(sets.train)[:16] in report
    # Within (splits of the test set) vs cross: the comparison names each run's protocol.
    within = sets.root / "within"
    done = _cli(
        "run", "--metrics", "psnr", "--dataset", "synthetic-lwir", "--data-root",
        str(sets.tno.root), "--splits", "2", "--out", str(within), "--store", str(sets.store),
        "--no-report",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = _cli("report", str(within), str(cross), "--format", "csv")
    assert done.returncode == 0, done.stderr
    table = within.parent / "compare-within-vs-synthetic-lwir/tables/overall.csv"
    columns = next(csv.reader(table.read_text().splitlines()))
    assert any(c.endswith(", 2 content splits: SROCC") for c in columns)
    cross_column = ", trained on train (Synthetic LWIR, seed 3, 8-bit): SROCC"
    assert any(c.endswith(cross_column) for c in columns)
