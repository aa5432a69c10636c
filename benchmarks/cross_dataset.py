"""Cross-dataset figures: trained on synthetic-lwir, tested on a set made from the TNO frames.

For each metric, two runs, each on a score store of its own (so every time is a computation
from scratch, nothing reused):

* **within**: ``iqabench run`` on the built-in synthetic-lwir set (12 generated scenes, 300
  images) with 3 content-disjoint splits: the median SROCC over the splits' test sets (2
  scenes, 50 images each), trainable metrics fitted on each split's training scenes;
* **cross**: ``iqabench run --train-dataset synthetic-lwir`` on the TNO-frame set, made with
  ``iqabench make-dataset synthetic-lwir --from-dir`` from the 25 pristine TNO frames of
  ``../shared/data/thermal-pristine`` (same recipe, other content: 625 images): trainable
  metrics fitted once on all 300 synthetic images, SROCC and PLCC on every TNO image with 95%
  bootstrap intervals.

Time is the metric's own ``seconds`` in ``summary.json`` (its features or scores, fits and
trainings; hashing and evaluation of the run excluded), wall clock on this shared machine (its
load average is recorded). Deep models train with their lite default recipes.

Usage::

    python benchmarks/cross_dataset.py                       # every default metric
    python benchmarks/cross_dataset.py --metrics hypernet-lite --work /tmp/cross  # one more

Results accumulate in ``WORK/results.json`` (a metric already measured there is not run
again unless ``--force``); the table of every measured metric is written to section
``cross-dataset`` of docs/benchmarks.md (``--no-write``: printed only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import update_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FRAMES = REPO.parent / "shared" / "data" / "thermal-pristine"
CLASSICAL = ("niqe", "brisque", "og-iqa", "gm-log", "gwh-glbp")
DEEP = (
    "hypernet-lite",
    "tres-lite",
    "dacnn-lite",
    "vcrnet-lite",
    "satqa-lite",
    "nestconvnext-lite",
)
WITHIN_SPLITS = 3
#: Why a default metric may be missing from the table (printed under it while it is).
LEFT_OUT: dict[str, str] = {}


def tno_set(work: Path) -> Path:
    """The TNO-frame set, made once with ``iqabench make-dataset``."""
    out = work / "tno-frames"
    if not (out / "manifest.json").is_file():
        subprocess.run(
            [sys.executable, "-m", "iqabench", "make-dataset", "synthetic-lwir",
             "--out", str(out), "--from-dir", str(FRAMES)],
            check=True,
        )  # fmt: skip
    return out


def run_metric(metric: str, work: Path, tno: Path) -> dict[str, Any]:
    """The within and cross runs of one metric, each from scratch on its own store."""
    from iqabench import api

    for store in (work / "stores").glob(f"*-{metric}.db*"):
        store.unlink()  # a measurement again (--force) computes everything again

    within = api.run(
        metric,
        "synthetic-lwir",
        out=work / "within" / metric,
        splits=WITHIN_SPLITS,
        store=work / "stores" / f"within-{metric}.db",
        report=False,
    ).summary
    cross = api.run(
        metric,
        "synthetic-lwir",
        tno,
        out=work / "cross" / metric,
        train_dataset="synthetic-lwir",
        store=work / "stores" / f"cross-{metric}.db",
        report=False,
    ).summary
    return {
        "within": _figures(within["metrics"][metric], "splits"),
        "cross": _figures(cross["metrics"][metric], "all"),
        "test_images": cross["dataset"]["n_images"],
        "load": round(os.getloadavg()[0], 1),
    }


def _figures(entry: dict[str, Any], protocol: str) -> dict[str, Any]:
    """SROCC (and PLCC) of one metric's entry under one protocol, its status and time."""
    found: dict[str, Any] = {"status": entry["status"], "seconds": entry.get("seconds")}
    if entry["status"] != "ok":
        found["reason"] = entry.get("reason")
        return found
    if protocol == "splits":
        overall = entry["splits"]["overall"]
        found.update(
            srocc=overall["srocc"]["median"],
            srocc_interval=overall["srocc"]["interval"],
            plcc=overall["plcc"]["median"],
            n=entry["splits"]["test_items"]["overall"]["median"],
        )
    else:
        overall = entry["overall"]
        found.update(
            srocc=overall["srocc"],
            srocc_interval=overall.get("srocc_ci"),
            plcc=overall["plcc"],
            n=overall["n"],
        )
    return found


def _cell(figures: dict[str, Any]) -> str:
    if figures["status"] != "ok":
        return f"{figures['status']}: {figures.get('reason')}"
    low, high = figures.get("srocc_interval") or (None, None)
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None else ""
    return f"{figures['srocc']:.3f}{interval}"


def _time(figures: dict[str, Any]) -> str:
    seconds = figures.get("seconds")
    return "" if seconds is None else f"{seconds:.0f} s"


def table(results: dict[str, dict[str, Any]]) -> str:
    """The Markdown section of every measured metric, in the order of the defaults."""
    order = [m for m in (*CLASSICAL, *DEEP) if m in results]
    order += sorted(m for m in results if m not in order)
    loads = [results[m]["load"] for m in order]
    test_images = next(iter(results.values()))["test_images"] if results else 0
    within_n = next(iter(results.values()))["within"].get("n") if results else None
    lines = [
        "### Cross-dataset: trained on synthetic-lwir, tested on the TNO frames",
        "",
        f"`python benchmarks/cross_dataset.py`, {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work (load average "
        f"{min(loads, default=0):g} to {max(loads, default=0):g} at the end of the runs). "
        f"Within: synthetic-lwir (300 images, 12 scenes), {WITHIN_SPLITS} content-disjoint "
        f"splits, median SROCC over the splits' test sets ({within_n:g} images each) with the "
        "central 95% of the split values. Cross: trainable metrics fitted once on all 300 "
        "synthetic-lwir images (deep models: 20% of its scenes held out for model selection), "
        "every metric tested on "
        f"the {test_images} images that `iqabench make-dataset synthetic-lwir --from-dir` makes "
        "of the 25 pristine TNO frames (same recipe, other content), SROCC with its 95% "
        "bootstrap interval. Time: the metric's own wall-clock seconds in `summary.json` "
        "(features or scores, fits, trainings), each run from an empty score store. Ground "
        "truth: the ordinal quality of both sets (6 - level), not a MOS.",
        "",
        "| metric | within SROCC (3 splits) | within time | cross SROCC (TNO frames) | "
        "cross PLCC | cross time |",
        "| --- | --- | --: | --- | --: | --: |",
    ]
    for metric in order:
        within, cross = results[metric]["within"], results[metric]["cross"]
        plcc = f"{cross['plcc']:.3f}" if cross["status"] == "ok" else ""
        lines.append(
            f"| {metric} | {_cell(within)} | {_time(within)} | {_cell(cross)} | {plcc} | "
            f"{_time(cross)} |"
        )
    missing = [f"`{m}`: {why}." for m, why in LEFT_OUT.items() if m not in results]
    if missing:
        lines += ["", "Left out: " + " ".join(missing)]
    unmeasured = [m for m in (*CLASSICAL, *DEEP) if m not in results and m not in LEFT_OUT]
    if unmeasured:
        names = ", ".join(f"`{m}`" for m in unmeasured)
        lines += [
            "",
            f"Not measured yet: {names} (`python benchmarks/cross_dataset.py --metrics NAME` "
            "adds a row).",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default=",".join((*CLASSICAL, *DEEP)))
    parser.add_argument("--work", default="/tmp/iqabench-cross-dataset", help="work folder")
    parser.add_argument("--force", action="store_true", help="measure measured metrics again")
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    tno = tno_set(work)
    for metric in [m.strip() for m in args.metrics.split(",") if m.strip()]:
        if metric in results and not args.force:
            continue
        results[metric] = run_metric(metric, work, tno)
        path.write_text(json.dumps(results, indent=1))
        print(metric, json.dumps(results[metric]), flush=True)
    section = table(results)
    print(section)
    if not args.no_write:
        update_section("cross-dataset", section)


if __name__ == "__main__":
    main()
