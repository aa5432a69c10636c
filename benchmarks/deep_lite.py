"""The lite deep models on synthetic-lwir: 3 content-disjoint splits, SROCC, time and memory.

For each metric, ``iqabench run --metrics NAME --dataset synthetic-lwir --splits 3 --no-report``
runs as a subprocess into ``WORK/NAME`` on a score store of its own (so everything, trainings
included, is computed from scratch), and the table gives: the median test SROCC over the splits
with the split values' range, the median per distortion type, whether the backbone was
pretrained, the metric's own seconds in ``summary.json`` (its trainings and scoring, wall
clock), the run's wall seconds and the run process's peak resident memory (``wait4``'s
``ru_maxrss``). A metric whose run folder already holds a summary is read, not run again
(``--force`` runs it again); a summary written by another script (no process figures) leaves
those cells blank.

Usage::

    python benchmarks/deep_lite.py --metrics hypernet-lite,tres-lite --work /tmp/deep-lite

Writes section ``deep-lite`` of docs/benchmarks.md (``--no-write``: printed only); the machine
is shared, so its load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import update_section  # noqa: E402

SPLITS = 3
TYPES = ("AWGN", "BLU", "NU", "JPG", "J2K")


def run_metric(metric: str, work: Path) -> dict[str, Any]:
    """One 3-split run of ``metric`` from scratch: wall seconds and the process's peak."""
    out, store = work / metric, work / f"{metric}.db"
    shutil.rmtree(out, ignore_errors=True)
    for path in work.glob(f"{metric}.db*"):
        path.unlink()
    command = [
        sys.executable, "-m", "iqabench", "run", "--metrics", metric,
        "--dataset", "synthetic-lwir", "--splits", str(SPLITS), "--out", str(out),
        "--store", str(store), "--no-report",
    ]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{metric}: iqabench run exited with {status}")
    return {
        "wall_s": time.perf_counter() - started,
        "peak_mib": usage.ru_maxrss / 1024,
        "load": os.getloadavg()[0],
    }


def figures(metric: str, work: Path, process: dict[str, Any]) -> dict[str, Any]:
    """What the table shows of one metric's run folder."""
    summary = json.loads((work / metric / "summary.json").read_text(encoding="utf-8"))
    entry = summary["metrics"][metric]
    found: dict[str, Any] = {"status": entry["status"], "reason": entry.get("reason"), **process}
    if entry["status"] == "ok":
        splits = entry["splits"]
        srocc = splits["overall"]["srocc"]
        found.update(
            srocc=srocc["median"],
            low=srocc["min"],
            high=srocc["max"],
            per_type={t: splits["per_type"][t]["srocc"]["median"] for t in TYPES},
            seconds=entry.get("seconds"),
            pretrained=entry.get("pretrained"),
        )
    return found


def _number(value: float | None, pattern: str) -> str:
    return "" if value is None else format(value, pattern)


def table(results: dict[str, dict[str, Any]]) -> str:
    loads = [r["load"] for r in results.values() if r.get("load") is not None]
    load = f"{min(loads):.1f} to {max(loads):.1f}" if loads else "not recorded"
    lines = [
        "## Lite deep models on synthetic-lwir (3 splits)",
        "",
        f"`python benchmarks/deep_lite.py`, {platform.machine()}, {os.cpu_count()} cores "
        f"shared with other work (load average {load} at the end of the runs). Each model: "
        f"`iqabench run --metrics NAME --dataset synthetic-lwir --splits {SPLITS}` from an "
        "empty score store, trained per split on 8 of the 12 scenes (2 more for validation, "
        "the kept epoch's) with its default lite recipe, tested on the other 2 (50 images). "
        "SROCC: median over the splits [lowest, highest], per type the median. Time: the "
        "metric's own seconds in `summary.json` (trainings and scoring); run: the whole "
        "command; memory: the run process's peak resident set. Ground truth: the ordinal "
        "quality (6 - level), not a MOS.",
        "",
        "| model | pretrained | SROCC | " + " | ".join(TYPES) + " | metric s | run s | peak MiB |",
        "| --- | --- | --- | " + " | ".join("---" for _ in TYPES) + " | --: | --: | --: |",
    ]
    for metric, r in results.items():
        if r["status"] != "ok":
            lines.append(f"| {metric} | {r['status']}: {r['reason']} |" + " |" * 9)
            continue
        cells = " | ".join(f"{r['per_type'][t]:.3f}" for t in TYPES)
        lines.append(
            f"| {metric} | {'yes' if r['pretrained'] else 'no'} | {r['srocc']:.3f} "
            f"[{r['low']:.3f}, {r['high']:.3f}] | {cells} | {_number(r['seconds'], '.0f')} | "
            f"{_number(r.get('wall_s'), '.0f')} | {_number(r.get('peak_mib'), ',.0f')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", required=True, help="comma-separated lite deep models")
    parser.add_argument("--work", default="/tmp/iqabench-deep-lite", help="work folder")
    parser.add_argument("--force", action="store_true", help="run measured metrics again")
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    saved = work / "results.json"
    results = json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else {}
    for metric in args.metrics.split(","):
        if metric in results and not args.force:
            continue
        has_run = (work / metric / "summary.json").is_file() and not args.force
        process = {"load": None} if has_run else run_metric(metric, work)
        results[metric] = figures(metric, work, process)
        saved.write_text(json.dumps(results, indent=1), encoding="utf-8")
        print(metric, json.dumps(results[metric]), flush=True)
    section = table(results)
    print(section)
    if not args.no_write:
        update_section("deep-lite", section)


if __name__ == "__main__":
    main()
