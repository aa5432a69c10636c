"""Start-up latency of the command line, against pyiqa's own CLI in the same run.

Measures wall-clock time of whole commands (median of N runs, after one warm-up run so the
page cache is warm for both tools):

* ``iqabench --help`` (target: under 0.5 s),
* ``iqabench score --metric psnr DIST --ref REF`` (target: under 1.5 s),
* ``pyiqa psnr -t DIST -r REF``, the peer doing the same job.

Usage: ``python benchmarks/startup.py [--runs 7]``; writes its table into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import update_section  # noqa: E402

CALIBRATION = Path(__file__).resolve().parents[2] / "shared" / "data" / "calibration"


def timed(command: list[str], runs: int) -> float:
    """Median wall-clock seconds of ``command`` over ``runs`` runs (one warm-up first)."""
    subprocess.run(command, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    iqabench = str(bindir / "iqabench")
    dist, ref = str(CALIBRATION / "dist" / "I03.bmp"), str(CALIBRATION / "ref" / "I03.bmp")
    rows = [
        ("`iqabench --help`", timed([iqabench, "--help"], args.runs), 0.5),
        (
            "`iqabench score --metric psnr DIST --ref REF`",
            timed([iqabench, "score", "--metric", "psnr", dist, "--ref", ref], args.runs),
            1.5,
        ),
    ]
    pyiqa = shutil.which("pyiqa", path=str(bindir)) or shutil.which("pyiqa")
    peer = timed([pyiqa, "psnr", "-t", dist, "-r", ref], args.runs) if pyiqa else None
    lines = [
        "## Command-line start-up",
        "",
        f"Median of {args.runs} runs after a warm-up, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; "
        "`python benchmarks/startup.py`.",
        "",
        "| command | seconds | target | pyiqa peer (s) | ratio pyiqa / iqabench |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, seconds, target in rows:
        is_score = "score" in label
        peer_text = f"{peer:.2f}" if (is_score and peer) else ""
        ratio = f"{peer / seconds:.1f}x" if (is_score and peer) else ""
        lines.append(f"| {label} | {seconds:.3f} | < {target} | {peer_text} | {ratio} |")
    if peer:
        lines += ["", "pyiqa peer: `pyiqa psnr -t DIST -r REF` on the same pair (calibration I03)."]
    table = "\n".join(lines)
    print(table)
    update_section("startup", table)


if __name__ == "__main__":
    main()
