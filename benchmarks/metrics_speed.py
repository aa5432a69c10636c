"""Per-image speed of every metric, side by side with pyiqa's (or piq's) implementation.

For each registered metric: seconds per image on the calibration pairs (512x384) and on
640x512 thermal frames (TIIQAD sample), measured in one process on one thread
(``torch.set_num_threads(1)``, ``cv2.setNumThreads(1)``, BLAS/OpenMP limited to one thread
through threadpoolctl). Every implementation is called once on the first image before timing,
so the one-off import and set-up cost (library import, filter tables, model files) is excluded;
then every image is scored ``--repeats`` times, ours and the peer's calls interleaved (their
order alternating) so that load spikes of the shared machine hit both. The figure is the median
over those calls of the process's CPU time (``time.process_time``); wall-clock time is recorded
too.

What is timed: ``score`` of training-free metrics (BRISQUE-LIVE: features and the LIVE SVR);
``features`` of the trainable classical ones (BRISQUE, OG-IQA, GM-LOG, GWH-GLBP, and SCIQA when
its VGG-16 weights are found); learned networks are skipped (``benchmarks/train_speed.py``).
Peers: ``pyiqa.create_metric`` for PSNR, SSIM, VIF, GMSD and FSIM; pyiqa's ``calculate_niqe``
and ``brisque`` functions given the same model parameters as ours (read from
``IQABENCH_WEIGHTS``; pyiqa's own model classes would download them); piq's
``information_weighted_ssim`` for IW-SSIM. Network access is refused in this process.

A full-reference pair on the thermal frames is the frame and a distorted copy (Gaussian blur,
sigma 1, plus Gaussian noise, sigma 5, rounded to 8 bits, seeded).

Usage::

    python benchmarks/metrics_speed.py [--repeats 3] [--images 5]   # per-metric table
    python benchmarks/metrics_speed.py --metrics vif,fsim            # a subset, printed only
    python benchmarks/metrics_speed.py --suite                       # whole-suite run times

The first writes section ``metrics_speed`` of docs/benchmarks.md; ``--suite`` times
``iqabench run`` on the synthetic-lwir dataset twice (from scratch, then served from the score
store) and writes section ``suite_speed``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import update_section  # noqa: E402

if TYPE_CHECKING:
    import torch

    from iqabench.metric import Metric

SHARED = Path(__file__).resolve().parents[2] / "shared"
CALIBRATION = SHARED / "data" / "calibration"
THERMAL = SHARED / "data" / "thermal-real" / "tiiqad_sample" / "images"
SUITE_METRICS = (
    "psnr,ssim,vif,iw-ssim,iw-psnr,gmsd,fsim,niqe,brisque,brisque-live,og-iqa,gm-log,gwh-glbp"
)

Pair = tuple[np.ndarray, np.ndarray | None]
Call = Callable[[], object]
#: Builds, for a list of prepared inputs, one argument-bound call per input.
CallFactory = Callable[[Sequence[Pair]], list[Call]]


@dataclass(frozen=True)
class Peer:
    """Another library's implementation of a metric: a label and how to call it."""

    label: str
    calls: CallFactory


@dataclass
class Timing:
    """Median CPU and wall seconds per image of ours and of the peer, on one image set."""

    ours_cpu: float
    ours_wall: float
    peer_cpu: float | None = None
    peer_wall: float | None = None


@dataclass
class Row:
    """One metric's line of the table (``skipped`` holds the reason when not measured)."""

    name: str
    family: str
    timed: str = ""
    peer: str = ""
    small: Timing | None = None
    large: Timing | None = None
    skipped: str = ""


def _forbid_network() -> None:
    """Make any connection attempt in this process fail, so no library downloads anything."""
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[variable] = "1"

    def refuse(self: socket.socket, *args: object) -> None:
        raise OSError("network access is disabled in benchmarks/metrics_speed.py")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]


def _one_thread() -> ContextManager[object]:
    """Limit torch, OpenCV and every BLAS/OpenMP pool to one thread (BLAS/OpenMP until the
    returned context exits)."""
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    return threadpool_limits(limits=1)


def _tensor(image: np.ndarray, channels: int | None = None) -> torch.Tensor:
    """``(1, C, H, W)`` float32 tensor on 0..1 (pyiqa's input), grey replicated to ``channels``."""
    import torch

    data = image / 255.0
    data = data[None] if data.ndim == 2 else np.moveaxis(data, 2, 0)
    if channels and data.shape[0] != channels:
        data = np.repeat(data, channels, axis=0)
    return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))[None]


def _pyiqa_fr(name: str, replicate: int | None = None, **options: object) -> CallFactory:
    """Calls of ``pyiqa.create_metric(name, **options)`` on each pair (grey input replicated
    to ``replicate`` channels when given)."""

    def calls(pairs: Sequence[Pair]) -> list[Call]:
        import pyiqa

        made: list[Call] = []
        for image, ref in pairs:
            extra = {"chromatic": image.ndim == 3} if name == "fsim" else {}
            metric = pyiqa.create_metric(name, device="cpu", **options, **extra)
            x, y = _tensor(image, replicate), _tensor(ref, replicate)
            made.append(lambda metric=metric, x=x, y=y: metric(x, y))
        return made

    return calls


def _pyiqa_niqe(pairs: Sequence[Pair]) -> list[Call]:
    """Calls of pyiqa's ``calculate_niqe`` with our pristine model (pyiqa's ``NIQE`` class
    would download its copy of the same model)."""
    import torch
    from pyiqa.archs.niqe_arch import calculate_niqe

    from iqabench.metrics.niqe import PRISTINE_MODEL, load_pristine_model
    from iqabench.weights import resolve

    mu, cov = (torch.from_numpy(a) for a in load_pristine_model(resolve(PRISTINE_MODEL)))

    def call(x: torch.Tensor) -> Call:
        return lambda: calculate_niqe(x, test_y_channel=False, mu_pris_param=mu, cov_pris_param=cov)

    return [call(_tensor(image)) for image, _ in pairs]


def _pyiqa_brisque(pairs: Sequence[Pair]) -> list[Call]:
    """Calls of pyiqa's ``brisque`` function with the LIVE SVR we read from ``allmodel`` (its
    ``BRISQUE`` class would download the same support vectors)."""
    import torch
    from pyiqa.archs.brisque_arch import brisque

    from iqabench.metrics.brisque import live_regressor

    svr = live_regressor()
    sv, coef = torch.from_numpy(svr.support_vectors), torch.from_numpy(svr.coefficients)

    def call(x: torch.Tensor) -> Call:
        return lambda: brisque(
            x, test_y_channel=False, sv_coef=coef, sv=sv, gamma=svr.gamma, rho=svr.rho
        )

    return [call(_tensor(image)) for image, _ in pairs]


def _piq_iw_ssim(pairs: Sequence[Pair]) -> list[Call]:
    """Calls of piq's ``information_weighted_ssim`` (pyiqa has no IW-SSIM)."""
    import piq

    def call(x: torch.Tensor, y: torch.Tensor) -> Call:
        return lambda: piq.information_weighted_ssim(x, y, data_range=1.0)

    return [call(_tensor(image), _tensor(ref)) for image, ref in pairs]


PEERS: dict[str, Peer] = {
    "psnr": Peer("pyiqa psnr", _pyiqa_fr("psnr")),
    "ssim": Peer("pyiqa ssim, test_y_channel=False", _pyiqa_fr("ssim", test_y_channel=False)),
    "vif": Peer("pyiqa vif (grey as 3 equal channels: it takes Y)", _pyiqa_fr("vif", replicate=3)),
    "gmsd": Peer(
        "pyiqa gmsd, test_y_channel=False", _pyiqa_fr("gmsd", test_y_channel=False, channels=1)
    ),
    "fsim": Peer("pyiqa fsim (chromatic on RGB)", _pyiqa_fr("fsim")),
    "niqe": Peer("pyiqa calculate_niqe, same model", _pyiqa_niqe),
    "brisque": Peer("pyiqa brisque, same SVR (features + SVR)", _pyiqa_brisque),
    "brisque-live": Peer("pyiqa brisque, same SVR", _pyiqa_brisque),
    "iw-ssim": Peer("piq information_weighted_ssim", _piq_iw_ssim),
}


def calibration_pairs(count: int) -> list[tuple[Path, Path]]:
    """(distorted, reference) paths of the calibration set (512x384)."""
    dist = sorted((CALIBRATION / "dist").glob("*.bmp"))[:count]
    return [(path, CALIBRATION / "ref" / path.name) for path in dist]


def thermal_pairs(count: int, folder: Path) -> list[tuple[Path, Path]]:
    """(distorted copy, frame) paths of TIIQAD frames (640x512); copies written to ``folder``."""
    import cv2

    from iqabench.imageio import read_image

    rng = np.random.default_rng(0)
    pairs = []
    for path in sorted(THERMAL.glob("*.jpg"))[:count]:
        pixels = read_image(path).pixels.astype(np.float64)
        blurred = cv2.GaussianBlur(pixels, (0, 0), 1.0)
        noisy = np.clip(np.round(blurred + rng.normal(0.0, 5.0, blurred.shape)), 0, 255)
        target = folder / f"{path.stem}-distorted.png"
        eight_bit = noisy.astype(np.uint8)
        cv2.imwrite(str(target), eight_bit[..., ::-1] if eight_bit.ndim == 3 else eight_bit)
        pairs.append((target, path))
    return pairs


def _ours(metric: Metric) -> tuple[str, CallFactory]:
    """What is timed of one of our metrics, and its calls on prepared pairs."""
    from iqabench.metric import FeatureMetric

    if isinstance(metric, FeatureMetric):
        method, label = metric.features, "features"
    else:
        method, label = metric.score, "score"

    def calls(pairs: Sequence[Pair]) -> list[Call]:
        if metric.full_reference:
            return [lambda i=i, r=r: method([i], [r]) for i, r in pairs]
        return [lambda i=i: method([i]) for i, _ in pairs]

    return label, calls


def _seconds(call: Call) -> tuple[float, float]:
    """CPU and wall seconds of one call (IW-SSIM/IW-PSNR's per-pair memory cleared first, so
    the repeated rounds over the same images time the computation, not a lookup)."""
    from iqabench.metrics.iw_ssim import forget_remembered

    forget_remembered()
    cpu, wall = time.process_time(), time.perf_counter()
    call()
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(ours: list[Call], peer: list[Call] | None, repeats: int) -> Timing:
    """Warm-up call of each, then ``repeats`` rounds over the images, interleaved."""
    ours[0]()
    if peer:
        peer[0]()
    samples: dict[str, list[tuple[float, float]]] = {"ours": [], "peer": []}
    for round_ in range(repeats):
        for index, call in enumerate(ours):
            jobs = [("ours", call)] + ([("peer", peer[index])] if peer else [])
            if (round_ + index) % 2:
                jobs.reverse()
            for key, job in jobs:
                samples[key].append(_seconds(job))

    def median(key: str, column: int) -> float | None:
        values = [sample[column] for sample in samples[key]]
        return statistics.median(values) if values else None

    return Timing(median("ours", 0), median("ours", 1), median("peer", 0), median("peer", 1))


def _skip_reason(metric: Metric) -> str:
    """Why ``metric`` is not timed here, or ``""``."""
    from iqabench.errors import WeightsNotFoundError
    from iqabench.metric import LearnedMetric

    if isinstance(metric, LearnedMetric):
        return "learned network: speed in benchmarks/train_speed.py"
    if metric.item_fields:
        return f"needs each image's {', '.join(metric.item_fields)}: speed in its own benchmark"
    try:
        metric.model_files()
    except WeightsNotFoundError as exc:
        return str(exc).split(" (looked in")[0].removeprefix(f"{metric.name}: ")
    return ""


def benchmark(names: Sequence[str], args: argparse.Namespace, folder: Path) -> list[Row]:
    """Time every metric in ``names`` on both image sets."""
    from iqabench import registry
    from iqabench.imageio import load_for_metric
    from iqabench.metric import FAMILIES

    sets = {
        "small": calibration_pairs(args.images),
        "large": thermal_pairs(args.images, folder),
    }
    rows = []
    for name in sorted(names, key=lambda name: (FAMILIES.index(registry.get(name).family), name)):
        cls = registry.get(name)
        metric = cls()
        row = Row(name, cls.family, skipped=_skip_reason(metric))
        if row.skipped:
            rows.append(row)
            print(f"{name}: skipped ({row.skipped})", flush=True)
            continue
        row.timed, ours = _ours(metric)
        peer = PEERS.get(name)
        row.peer = peer.label if peer else ""
        for key, paths in sets.items():
            pairs = [
                load_for_metric(dist, cls.colour, ref if cls.full_reference else None)
                for dist, ref in paths
            ]
            peer_pairs = [load_for_metric(d, cls.colour, r) for d, r in paths] if peer else []
            timing = measure(ours(pairs), peer.calls(peer_pairs) if peer else None, args.repeats)
            setattr(row, key, timing)
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(timing: Timing | None, cpu: bool = True) -> str:
    if timing is None or timing.peer_cpu is None:
        return "-"
    peer, ours = (timing.peer_cpu, timing.ours_cpu) if cpu else (timing.peer_wall, timing.ours_wall)
    return f"{peer / ours:.2f}"


def _line(row: Row) -> str:
    name = f"{row.name} ({row.timed})" if row.timed and row.timed != "score" else row.name
    if row.skipped:
        return f"| {name} | {row.family} | skipped: {row.skipped} |" + " |" * 6
    small, large = row.small, row.large
    assert small is not None and large is not None
    return (
        f"| {name} | {row.family} | {_fmt(small.ours_cpu)} | {_fmt(small.peer_cpu)} | "
        f"{_ratio(small)} | {_fmt(large.ours_cpu)} | {_fmt(large.peer_cpu)} | {_ratio(large)} | "
        f"{1.0 / small.ours_cpu:.1f} |"
    )


def _wall_line(row: Row) -> str:
    small, large = row.small, row.large
    assert small is not None and large is not None
    return (
        f"| {row.name} | {_fmt(small.ours_wall)} | {_fmt(small.peer_wall)} | "
        f"{_ratio(small, cpu=False)} | {_fmt(large.ours_wall)} | {_fmt(large.peer_wall)} | "
        f"{_ratio(large, cpu=False)} |"
    )


def machine() -> str:
    """CPU model, cores, library versions, load and date, as one line."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import cv2

    packages = ", ".join(
        f"{package} {version(package)}" for package in ("numpy", "scipy", "torch", "pyiqa", "piq")
    )
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (
        f"{model}, {os.cpu_count()} cores (shared){load}; Python {platform.python_version()}, "
        f"{packages}, opencv {cv2.__version__}; {datetime.date.today().isoformat()}"
    )


def render(rows: list[Row], args: argparse.Namespace, description: str) -> str:
    """The ``metrics_speed`` section."""
    measured = [row for row in rows if not row.skipped]
    lines = [
        "## Metric speed against pyiqa",
        "",
        f"Machine: {description}. `python benchmarks/metrics_speed.py --repeats {args.repeats} "
        f"--images {args.images}`.",
        "",
        "One thread (torch, OpenCV, BLAS/OpenMP). Median CPU seconds of this process "
        "(`time.process_time`) per image over "
        f"{args.repeats} rounds of {args.images} images, after a warm-up call of each "
        "implementation (the one-off import and set-up cost is excluded); ours and the peer's "
        "calls interleaved. 512x384: the calibration pairs (RGB; grey metrics get MATLAB "
        "`rgb2gray`); 640x512: TIIQAD thermal frames (stored as 3-channel JPEG), "
        "full-reference pairs with a blurred, noisy copy. Ratio = peer / ours: above 1, ours is "
        "faster. Trainable classical metrics are timed on `features`; no-reference metrics score "
        "the distorted image of each pair. What depends only on the image size (FSIM's filter "
        "bank) is built once per size and reused, so its cost falls in the warm-up.",
        "",
        "| metric | family | ours s/image (512x384) | pyiqa s/image (512x384) | ratio | "
        "ours s/image (640x512) | peer (640x512) | ratio | images/s (ours, 512x384) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [_line(row) for row in rows]
    lines += ["", "Peers (same input as ours, in their default float32 unless they convert):", ""]
    lines += [f"- {row.name}: {row.peer}" for row in measured if row.peer]
    lines += [
        f"- {', '.join(row.name for row in measured if not row.peer)}: no pyiqa or piq "
        "implementation of the same metric",
        "",
        "Wall-clock seconds per image, same calls:",
        "",
        "| metric | ours (512x384) | peer (512x384) | ratio | ours (640x512) | peer (640x512) "
        "| ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [_wall_line(row) for row in measured]
    return "\n".join(lines)


def run_suite() -> str:
    """Time ``iqabench run`` of the suite twice on a fresh store; return the section."""
    command = [
        str(Path(sys.executable).parent / "iqabench"),
        "run",
        "--metrics",
        SUITE_METRICS,
        "--dataset",
        "synthetic-lwir",
        "--splits",
        "10",
    ]
    results = []
    with tempfile.TemporaryDirectory(prefix="iqabench-suite-") as tmp:
        env = {
            **os.environ,
            "IQABENCH_CACHE": str(Path(tmp) / "cache"),
            "IQABENCH_WEIGHTS": os.environ.get("IQABENCH_WEIGHTS", str(SHARED / "weights")),
        }
        out = Path(tmp) / "run"  # the score store lives in the run folder
        for label in ("from scratch", "again (served from the store)"):
            start = time.perf_counter()
            subprocess.run([*command, "--out", str(out)], env=env, check=True)
            results.append((label, time.perf_counter() - start))
            print(f"{label}: {results[-1][1]:.1f} s", flush=True)
    lines = [
        "## Whole-suite run time",
        "",
        f"Machine: {machine()}. `python benchmarks/metrics_speed.py --suite`.",
        "",
        f"`iqabench run --metrics {SUITE_METRICS} --dataset synthetic-lwir --splits 10 "
        "--out TMP` as a subprocess (default threads, one worker) with a fresh `IQABENCH_CACHE` "
        "in a temporary folder and `IQABENCH_WEIGHTS` set to the shared weights; run once from "
        "scratch, then once again with the same run folder, whose score store then serves every "
        "score and feature vector.",
        "",
        "| run | wall seconds |",
        "| --- | --- |",
    ]
    lines += [f"| {label} | {seconds:.1f} |" for label, seconds in results]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds over the images")
    parser.add_argument("--images", type=int, default=5, help="images per set (at most 5 / 15)")
    parser.add_argument("--metrics", help="comma-separated subset (printed, docs left alone)")
    parser.add_argument("--suite", action="store_true", help="time the whole-suite run instead")
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()
    os.environ.setdefault("IQABENCH_WEIGHTS", str(SHARED / "weights"))
    if args.suite:
        section = run_suite()
        print(section)
        if not args.no_write:
            update_section("suite_speed", section)
        return

    from iqabench import registry

    _forbid_network()
    names = registry.resolve_names(args.metrics) if args.metrics else list(registry.entries())
    with _one_thread(), tempfile.TemporaryDirectory(prefix="metrics-speed-") as tmp:
        rows = benchmark(names, args, Path(tmp))
    section = render(rows, args, machine())
    print(section)
    if not (args.metrics or args.no_write):
        update_section("metrics_speed", section)


if __name__ == "__main__":
    main()
