"""Install size of iqabench and its start-up time in a fresh virtual environment.

Builds two new venvs from this checkout (non-editable, as a user installs it):

* ``pip install REPO``: the core install;
* ``pip install REPO[peers]``: the same with pyiqa and piq, the peers the tests compare against
  (until they became an extra, every install carried them),

and reports the size of each (the files every installed distribution lists), split into the
CUDA libraries (``nvidia-*``, ``triton``: what a CPU build of PyTorch leaves out), torch itself
and the rest, with the largest distributions, plus the median wall time of ``iqabench --help``
and of ``iqabench score --metric vif`` in the core venv.

Usage: ``python benchmarks/install_size.py [--runs 5] [--keep DIR]``; writes its table into
docs/benchmarks.md. It needs network access to the package index, or a local one as here.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import update_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CALIBRATION = REPO.parent / "shared" / "data" / "calibration"

#: Run inside a venv: bytes per installed distribution, from the files its metadata lists.
SIZES = """
import json, importlib.metadata as md
sizes = {}
for dist in md.distributions():
    total = 0
    for file in dist.files or ():
        path = file.locate()
        if path.is_file():
            total += path.stat().st_size
    sizes[dist.metadata["Name"].lower()] = total
print(json.dumps(sizes))
"""


def make_venv(where: Path, requirement: str) -> Path:
    """A new venv at ``where`` with ``requirement`` installed; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", requirement],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return python


def sizes_of(python: Path) -> dict[str, int]:
    done = subprocess.run([str(python), "-c", SIZES], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def timed(command: list[str], runs: int) -> float:
    """Median wall-clock seconds over ``runs`` runs after one warm-up run."""
    subprocess.run(command, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def split(sizes: dict[str, int]) -> dict[str, int]:
    """Bytes of the CUDA libraries, of torch, and of everything else."""
    cuda = sum(v for k, v in sizes.items() if k.startswith(("nvidia-", "triton", "cuda-")))
    torch = sizes.get("torch", 0)
    return {"cuda": cuda, "torch": torch, "rest": sum(sizes.values()) - cuda - torch}


def gb(n: int) -> str:
    return f"{n / 1e9:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the venvs here and keep them")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="iqabench-install-"))
    try:
        core = make_venv(root / "core", str(REPO))
        peers = make_venv(root / "peers", f"{REPO}[peers]")
        core_sizes, peer_sizes = sizes_of(core), sizes_of(peers)
        iqabench = str(core.parent / "iqabench")
        dist, ref = str(CALIBRATION / "dist" / "I03.bmp"), str(CALIBRATION / "ref" / "I03.bmp")
        help_s = timed([iqabench, "--help"], args.runs)
        vif_s = timed([iqabench, "score", "--metric", "vif", dist, "--ref", ref], args.runs)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    write(core_sizes, peer_sizes, help_s, vif_s, args.runs)


def write(core: dict[str, int], peers: dict[str, int], help_s: float, vif_s: float, runs: int):  # noqa: ANN201
    parts, with_peers = split(core), split(peers)
    extra = {k: v for k, v in peers.items() if k not in core}
    largest = sorted(((v, k) for k, v in core.items()), reverse=True)[:8]
    lines = [
        "## Install size and start-up",
        "",
        f"Fresh venvs, x86_64, Python {platform.python_version()}, torch as pip resolves it "
        "here (the CUDA build); `python benchmarks/install_size.py`. Sizes are the files each "
        "installed distribution lists, in GB.",
        "",
        "| install | total | CUDA libraries (nvidia-*, triton) | torch | everything else |",
        "| --- | --- | --- | --- | --- |",
        f"| `pip install .` | {gb(sum(core.values()))} | {gb(parts['cuda'])} | "
        f"{gb(parts['torch'])} | {gb(parts['rest'])} |",
        f"| `pip install .[peers]` (pyiqa, piq) | {gb(sum(peers.values()))} | "
        f"{gb(with_peers['cuda'])} | {gb(with_peers['torch'])} | {gb(with_peers['rest'])} |",
        "",
        f"The peers add {len(extra)} distributions ({gb(sum(extra.values()))} GB): "
        + ", ".join(sorted(extra)[:25])
        + (" ..." if len(extra) > 25 else "")
        + ". Largest in the core install: "
        + ", ".join(f"{name} {gb(size)}" for size, name in largest)
        + ". A CPU build of PyTorch (installed first, see README) leaves out the CUDA libraries.",
        "",
        f"| command (core venv, median of {runs}) | seconds |",
        "| --- | --- |",
        f"| `iqabench --help` | {help_s:.3f} |",
        f"| `iqabench score --metric vif DIST --ref REF` | {vif_s:.3f} |",
    ]
    update_section("install_size", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
