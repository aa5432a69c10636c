"""VEI and RADN on the synthetic-lwir set: how they rank distortion levels, and their speed.

``--part vei``: ``vei-lite`` (Grad-CAM of the pip-installed ImageNet EfficientNet-Lite0) scores
every synthetic-lwir image with its distortion type; the table gives, per type, the SROCC
between score and level pooled over the 12 scenes (and the median of the per-scene SROCCs),
for the mean PSNR over the 20 classes the classifier ranks first (the metric) and for its first
class alone (the paper's single explained class), from the same maps; and the median CPU
seconds (``time.process_time``, one thread) and wall seconds per image, beside the paper's
5.1 s. Writes section ``vei`` of docs/benchmarks.md.

``--part radn``: ``radn-lite`` trained and tested on ``--splits`` content-disjoint splits of
synthetic-lwir (80% of the scenes for training, a fifth of those held out for validation, as
``iqabench run`` does); per split the test SROCC, overall and per type, and the training time.
The faithful ``radn`` is not trained here (it needs a GPU); its parameter count is measured.
Writes section ``radn`` of docs/benchmarks.md.

Usage::

    python benchmarks/vei_radn.py --part vei
    python benchmarks/vei_radn.py --part radn [--splits 3] [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import update_section  # noqa: E402

TYPES = ("AWGN", "BLU", "NU", "JPG", "J2K")
PAPER_SECONDS = 5.1


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _synthetic():  # noqa: ANN202 - a Dataset
    from iqabench import api
    from iqabench.data.synthetic import ensure_synthetic_lwir

    ensure_synthetic_lwir()
    return api.load_dataset("synthetic-lwir")


def _srocc_table(values: dict[str, list[tuple[str, float, float]]]) -> dict[str, tuple]:
    """Per type: (pooled |SROCC|, median per-scene |SROCC|, sign of the pooled SROCC)."""
    table = {}
    for kind, rows in values.items():
        scenes = sorted({scene for scene, _, _ in rows})
        quality = [q for _, q, _ in rows]
        score = [s for _, _, s in rows]
        pooled = spearmanr(quality, score)[0]
        per_scene = [
            abs(spearmanr([q for c, q, _ in rows if c == s], [v for c, _, v in rows if c == s])[0])
            for s in scenes
        ]
        table[kind] = (abs(pooled), statistics.median(per_scene), np.sign(pooled))
    return table


def vei_part() -> str:
    from iqabench.imageio import load_for_metric
    from iqabench.metrics.vei import VEILite, map_psnr

    torch.set_num_threads(1)
    dataset = _synthetic()
    metric = VEILite()
    mean_over = {t: [] for t in TYPES}
    first_class = {t: [] for t in TYPES}
    cpu, wall = [], []
    metric.explanations(np.full((64, 64), 128.0), "BLU")  # warm-up: builds the network
    for index, item in enumerate(dataset.items):
        image, _ = load_for_metric(item.image, metric.colour, None)
        started, clock = time.process_time(), time.perf_counter()
        own, pseudo = metric.explanations(image, item.distortion)
        value = float(np.mean([map_psnr(a, b) for a, b in zip(own, pseudo, strict=True)]))
        cpu.append(time.process_time() - started)
        wall.append(time.perf_counter() - clock)
        mean_over[item.distortion].append((item.content, item.quality, value))
        first_class[item.distortion].append(
            (item.content, item.quality, map_psnr(own[0], pseudo[0]))
        )
        if index % 25 == 24:
            print(f"{index + 1}/{len(dataset.items)} images", flush=True)
    metric_table, single_table = _srocc_table(mean_over), _srocc_table(first_class)
    lines = [
        "## VEI on synthetic-lwir (`vei-lite`)",
        "",
        f"{_machine()}; `python benchmarks/vei_radn.py --part vei`. Every one of the 300 images "
        "scored with its distortion type. |SROCC| between the VEI score and the level, pooled "
        "over the 12 scenes (median of the 12 per-scene values in brackets), with the sign of "
        "the SROCC against quality: minus is what the method intends (a higher VEI, the "
        "explanations of image and PRI more alike, for a stronger distortion). The issue asks "
        "at least 0.8 pooled for blur, noise, JPEG and JPEG 2000.",
        "",
        "| type | mean over 20 classes (the metric) | first class only |",
        "| --- | --- | --- |",
    ]
    for kind in TYPES:
        cells = []
        for table in (metric_table, single_table):
            pooled, median, sign = table[kind]
            cells.append(f"{'-' if sign < 0 else '+'}{pooled:.2f} ({median:.2f})")
        lines.append(f"| {kind} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        f"Speed: median {statistics.median(cpu):.2f} CPU s ({statistics.median(wall):.2f} s "
        f"wall) per 320x256 image on one thread, PRI, both Grad-CAMs (20 classes) and the PSNRs "
        f"included; the paper reports {PAPER_SECONDS} s per image (InceptionResNetV2, its own "
        "machine).",
    ]
    return "\n".join(lines)


def radn_part(splits: int, epochs: int | None) -> str:
    from iqabench.fitting import validation_split
    from iqabench.metric import LabelledImage
    from iqabench.metrics.radn import RADNIQA, RADNLiteIQA
    from iqabench.protocol import content_splits

    torch.set_num_threads(1)
    dataset = _synthetic()
    items = dataset.items

    def record(i: int) -> LabelledImage:
        it = items[i]
        return LabelledImage(it.image, it.quality, it.content, it.ref, it.distortion, it.level)

    params = {} if epochs is None else {"epochs": epochs}
    rows, overall = [], []
    for split in content_splits(dataset.contents, splits, 0.8, 0):
        train, validation = validation_split(split.train, dataset.contents, 0.2, split.index)
        metric = RADNLiteIQA(**params)
        clock = time.perf_counter()
        metric.fit([record(i) for i in train], [record(i) for i in validation], split.index)
        seconds = time.perf_counter() - clock
        predicted = metric.predict([record(i).unlabelled() for i in split.test])
        quality = np.array([items[i].quality for i in split.test])
        kinds = np.array([items[i].distortion for i in split.test])
        srocc = spearmanr(quality, predicted)[0]
        overall.append(srocc)
        per_type = {t: spearmanr(quality[kinds == t], predicted[kinds == t])[0] for t in TYPES}
        rows.append((split.index, srocc, per_type, seconds))
        print(f"split {split.index}: SROCC {srocc:.3f} in {seconds:.0f} s", flush=True)
    full, lite = RADNIQA().parameter_counts()[0], RADNLiteIQA().parameter_counts()[0]
    trained_epochs = int(params.get("epochs", RADNLiteIQA().params["epochs"]))
    command = f"python benchmarks/vei_radn.py --part radn --splits {splits}"
    if epochs is not None:
        command += f" --epochs {epochs}"
    lines = [
        "## RADN on synthetic-lwir (`radn-lite`)",
        "",
        f"{_machine()}; `{command}`. "
        f"`radn-lite` ({lite:,} parameters; the faithful `radn` counts {full:,}, the "
        f"official module's number, and is not trained here: no GPU) trained per split for "
        f"{trained_epochs} epoch{'' if trained_epochs == 1 else 's'} on 8 of the 12 scenes (2 "
        "more for validation), tested on the other 2 scenes. Ground truth: the ordinal quality "
        "6 - level. SROCC of the test predictions, overall and per type.",
        "",
        "| split | SROCC | " + " | ".join(TYPES) + " | training s |",
        "| --- | --- | " + " | ".join("---" for _ in TYPES) + " | --- |",
    ]
    for index, srocc, per_type, seconds in rows:
        cells = " | ".join(f"{per_type[t]:.2f}" for t in TYPES)
        lines.append(f"| {index} | {srocc:.3f} | {cells} | {seconds:.0f} |")
    lines += ["", f"Median SROCC over the splits: {statistics.median(overall):.3f}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("vei", "radn"), required=True)
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    markdown = vei_part() if args.part == "vei" else radn_part(args.splits, args.epochs)
    print(markdown)
    update_section(args.part, markdown)


if __name__ == "__main__":
    main()
