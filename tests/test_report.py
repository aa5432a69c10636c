"""The report: loading run folders, ranked tables and their exports, significance, figures, the
HTML page and the ``report`` command.

Run folders are written by :func:`write_run`, a small fixture writer that follows
``docs/results.md``: synthetic items with known quality, metric scores with chosen noise, and
statistics computed by :mod:`iqabench.evaluate` as the runner computes them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from iqabench.errors import UserError
from iqabench.evaluate import MIN_TEST_ITEMS, correlations, summarize_splits
from iqabench.report import build_comparison, build_report
from iqabench.report.figures import GROUPS, RADIAL_RANGE, performance_spec
from iqabench.report.results import (
    Figure,
    MetricResult,
    Run,
    ScoreRow,
    SplitSizes,
    Spread,
    Stats,
    load_run,
)
from iqabench.report.scatter import fitted_curve, subjective_label
from iqabench.report.significance import significance, significance_table, split_significance
from iqabench.report.tables import (
    best_marks,
    overall_table,
    per_type_table,
    result_tables,
    run_labels,
    to_csv,
    to_latex,
    to_markdown,
)
from iqabench.results import SCHEMA, write_scores, write_summary

EVIL_NAME = "x<y>&z"
EVIL_DISPLAY = '<img src=x onerror="window.__pwned=1">Evil & "Co" $\\alpha$'


@dataclass(frozen=True)
class FakeMetric:
    """A metric of a fixture run: how noisy its scores are and how it is described."""

    name: str
    display_name: str
    family: str
    noise: float
    higher_is_better: bool = True
    trainable: bool = False
    status: str = "ok"
    reason: str | None = None
    notes: tuple[str, ...] = ()
    #: Extra noise per distortion type (multiplies ``noise``), so per-type results differ.
    type_noise: dict[str, float] = field(default_factory=dict)


DEFAULT_METRICS = (
    FakeMetric("psnr", "PSNR", "TR-FR", 0.9, type_noise={"BLU": 2.0, "NU": 1.5}),
    FakeMetric("gmsd", "GMSD", "TR-FR", 0.5, higher_is_better=False, type_noise={"AWGN": 2.0}),
    FakeMetric("niqe", "NIQE", "TR-NR", 1.2, higher_is_better=False, type_noise={"J2K": 0.5}),
    FakeMetric(EVIL_NAME, EVIL_DISPLAY, "TR-NR", 1.5),
    FakeMetric(
        "nestconvnext",
        "NestConvNeXt",
        "DL-NR",
        0.6,
        trainable=True,
        notes=("ImageNet weights not found, trained from random initialisation",),
    ),
    FakeMetric("vif", "VIF", "TR-FR", 0.0, status="skipped", reason="model file vif.npz not found"),
)


def _quick_evaluate(
    x: np.ndarray, y: np.ndarray, types: list[str], hib: bool, full: bool = False
) -> dict:
    """Statistics shaped like :func:`iqabench.evaluate.evaluate`, quickly.

    With ``full``, the overall block is the real :func:`~iqabench.evaluate.correlations`
    (logistic mapping, bootstrap intervals); the others use a straight-line mapping, which the
    schema allows (``"kind": "linear"``) and which keeps fixture runs fast.
    """
    from scipy import stats

    def quick(xs: np.ndarray, ys: np.ndarray) -> dict:
        oriented = xs if hib else -xs
        slope, intercept = np.polyfit(oriented, ys, 1)
        mapped = slope * oriented + intercept
        return {
            "plcc": float(stats.pearsonr(mapped, ys).statistic),
            "srocc": float(stats.spearmanr(oriented, ys).statistic),
            "krocc": float(stats.kendalltau(oriented, ys).statistic),
            "rmse": float(np.sqrt(np.mean((ys - mapped) ** 2))),
            "n": int(ys.size),
            "plcc_ci": None,
            "srocc_ci": None,
            "small_sample": int(ys.size) < MIN_TEST_ITEMS,
            "mapping": {
                "kind": "linear",
                "params": [slope, intercept],
                "domain": [float(oriented.min()), float(oriented.max())],
                "converged": None,
            },
        }

    overall = correlations(x, y, hib, bootstrap=100).to_dict() if full else quick(x, y)
    chosen = {d: np.array([t == d for t in types]) for d in dict.fromkeys(types) if d}
    return {"overall": overall, "per_type": {d: quick(x[m], y[m]) for d, m in chosen.items()}}


def write_run(
    folder: Path,
    metrics: tuple[FakeMetric, ...] = DEFAULT_METRICS,
    distortions: tuple[str, ...] = ("AWGN", "BLU", "NU", "JPG", "J2K"),
    n_contents: int = 6,
    levels: int = 5,
    splits: int = 4,
    seed: int = 0,
    name: str = "synthetic-lwir",
    display_name: str = "Synthetic LWIR",
) -> Path:
    """Write ``summary.json`` and ``scores.csv`` of a plausible run into ``folder``.

    With no ``distortions`` (an authentic-distortion dataset such as TIIQAD) every item has no
    type and a quality drawn uniformly from 1..5."""
    rng = np.random.default_rng(seed)
    kinds = distortions or ("",)
    items = [
        {
            "item_id": f"s{c:02d}_{d}_{lvl}",
            "image": f"/data/{name}/s{c:02d}_{d}_{lvl}.png",
            "ref": f"/data/{name}/s{c:02d}.png",
            "distortion": d,
            "level": lvl,
            "content": f"s{c:02d}",
            "mos": float(levels + 1 - lvl),
            "quality": float(levels + 1 - lvl),
        }
        for c in range(n_contents)
        for d in kinds
        for lvl in range(1, levels + 1)
    ]
    if not distortions:
        for item in items:
            item["mos"] = item["quality"] = float(rng.uniform(1.0, 5.0))
    quality = np.array([i["quality"] for i in items])
    types = [i["distortion"] for i in items]
    contents = sorted({i["content"] for i in items})
    split_tests = [
        set(rng.choice(contents, size=max(1, len(contents) // 3), replace=False))
        for _ in range(splits)
    ]
    rows, entries, failures, warnings = [], {}, [], []

    def per_split(scores: list[np.ndarray], hib: bool, chosen: list[np.ndarray]) -> dict:
        results = [
            _quick_evaluate(x[m], quality[m], types_of(m), hib)
            for x, m in zip(scores, chosen, strict=True)
        ]
        summary = {"n": len(results), "overall": {}, "per_type": {}}
        for stat in ("plcc", "srocc", "krocc", "rmse"):
            summary["overall"][stat] = summarize_splits([r["overall"][stat] for r in results])
            for d in distortions:
                block = summary["per_type"].setdefault(d, {})
                block[stat] = summarize_splits([r["per_type"][d][stat] for r in results])
        summary["test_items"] = {
            "overall": sizes([int(m.sum()) for m in chosen]),
            "per_type": {
                d: sizes([sum(t == d for t in types_of(m)) for m in chosen]) for d in distortions
            },
        }
        return summary

    def sizes(counts: list[int]) -> dict:
        median = float(np.median(counts))
        return {
            "median": median,
            "min": min(counts),
            "max": max(counts),
            "values": counts,
            "small_sample": median < MIN_TEST_ITEMS,
        }

    def types_of(mask: np.ndarray) -> list[str]:
        return [t for t, k in zip(types, mask, strict=True) if k]

    for fake in metrics:
        entry = {
            "display_name": fake.display_name,
            "family": fake.family,
            "full_reference": fake.family.endswith("FR"),
            "higher_is_better": fake.higher_is_better,
            "trainable": fake.trainable,
            "version": "1",
            "params": {},
            "citation": f"Author A. {fake.display_name}. Journal, 2020.",
            "calibration": "calibrated" if fake.name == "psnr" else "not calibrated",
            "status": fake.status,
            "reason": fake.reason,
            "notes": list(fake.notes),
            "pretrained": (
                not any("random" in note.lower() for note in fake.notes)
                if fake.family.startswith("DL")
                else None
            ),
            "seconds": 1.5,
        }
        entries[fake.name] = entry
        warnings += [f"{fake.name}: {note}" for note in fake.notes]
        if fake.status != "ok":
            continue
        scale = np.array([fake.type_noise.get(t, 1.0) for t in types])
        latent = quality + fake.noise * scale * rng.standard_normal(quality.size)
        if fake.trainable:
            masks = [np.array([i["content"] in test for i in items]) for test in split_tests]
            preds = [
                np.where(m, latent + 0.1 * rng.standard_normal(latent.size), np.nan) for m in masks
            ]
            for s, (m, p) in enumerate(zip(masks, preds, strict=True)):
                for k in np.flatnonzero(m):
                    rows.append({**items[k], "metric": fake.name, "split": s, "score": p[k]})
            stacked = np.vstack(preds)
            tested = np.isfinite(stacked).any(axis=0)
            pooled = np.nanmean(stacked[:, tested], axis=0)
            result = _quick_evaluate(pooled, quality[tested], types_of(tested), True, full=True)
            entry.update(result, evaluation="splits", n_scored=int(tested.sum()), n_failed=0)
            entry["splits"] = per_split(preds, True, masks)
            continue
        raw = 20.0 + 3.0 * latent if fake.higher_is_better else np.exp(-latent / 3.0)
        failed = {0} if fake.name == "psnr" else set()
        for k, item in enumerate(items):
            if k in failed:
                error = f"{item['image']}: truncated PNG"
                rows.append({**item, "metric": fake.name, "split": None, "error": error})
                failures.append(
                    {
                        "metric": fake.name,
                        "item_id": item["item_id"],
                        "image": item["image"],
                        "error": error,
                    }
                )
            else:
                rows.append({**item, "metric": fake.name, "split": None, "score": raw[k]})
        ok = np.array([k not in failed for k in range(len(items))])
        result = _quick_evaluate(raw[ok], quality[ok], types_of(ok), fake.higher_is_better, True)
        masks = [ok & np.array([i["content"] in test for i in items]) for test in split_tests]
        entry.update(result, evaluation="full", n_scored=int(ok.sum()), n_failed=len(failed))
        entry["splits"] = per_split([raw] * len(masks), fake.higher_is_better, masks)

    summary = {
        "schema": SCHEMA,
        "iqabench_version": "0.1.0",
        "created": "2026-11-23T10:00:00+00:00",
        "software": {"python": "3.11.7", "numpy": np.__version__, "platform": "Linux"},
        "dataset": {
            "name": name,
            "display_name": display_name,
            "root": f"/data/{name}",
            "n_images": len(items),
            "n_contents": n_contents,
            "distortions": list(distortions),
            "score_type": "ordinal quality (6 - level), NOT a MOS",
            "score_label": "ordinal quality",
            "score_scale": "1..5",
            "score_range": [1.0, float(levels)],
            "higher_is_better": True,
        },
        "protocol": {
            "splits": splits,
            "train_fraction": 0.8,
            "seed": seed,
            "split_mode": "content",
            "bootstrap": 100,
            "confidence": 0.95,
            "min_test_items": MIN_TEST_ITEMS,
        },
        "timing": {
            "started": "2026-11-23T10:00:00+00:00",
            "finished": "2026-11-23T10:01:05+00:00",
            "seconds": 65.2,
        },
        "counts": {"scored": len(rows), "reused": 0, "failed": len(failures)},
        "metrics": entries,
        "failures": failures,
        "warnings": warnings,
    }
    folder.mkdir(parents=True, exist_ok=True)
    write_scores(folder, rows)
    write_summary(folder, summary)
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("run") / "synthetic-lwir")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder after ``build_report`` with every format."""
    folder = write_run(tmp_path_factory.mktemp("built") / "synthetic-lwir")
    build_report(folder)
    return folder


# -- a hand-made run for exact table tests --------------------------------------------------------


def _stats(srocc: float, plcc: float | None = None, rmse: float = 0.5, n: int = 100) -> Stats:
    plcc = srocc if plcc is None else plcc
    return Stats(plcc=plcc, srocc=srocc, krocc=srocc - 0.1, rmse=rmse, n=n)


def _metric(name: str, family: str, overall: Stats | None, **kw) -> MetricResult:
    values = dict(
        name=name,
        display_name=name.upper(),
        family=family,
        full_reference=family.endswith("FR"),
        higher_is_better=True,
        trainable=False,
        version="1",
        params={},
        citation="",
        calibration="calibrated",
        status="ok",
        reason=None,
        notes=[],
        pretrained=None,
        n_scored=100,
        n_failed=0,
        seconds=1.0,
        evaluation="full",
        overall=overall,
        per_type={},
        n_splits=0,
        split_overall={},
        split_per_type={},
    )
    values.update(kw)
    return MetricResult(**values)


def _run(*metrics: MetricResult, distortions: tuple[str, ...] = (), splits: int = 0) -> Run:
    from iqabench.report.results import DatasetInfo

    return Run(
        path=Path("/runs/x"),
        iqabench_version="0.1.0",
        created="",
        software={},
        dataset=DatasetInfo("x", "X", "/", 100, 10, list(distortions), "MOS", True),
        protocol={"splits": splits, "train_fraction": 0.8, "min_test_items": 10},
        timing={},
        counts={},
        metrics={m.name: m for m in metrics},
        failures=[],
        warnings=[],
        rows=[],
    )


def _split_values(centre: float, spread: float = 0.01, n: int = 10) -> tuple[float, ...]:
    """Ten split values around ``centre`` (a fixed zig-zag, so tests are exact)."""
    return tuple(centre + spread * ((-1) ** k) * (k % 3) for k in range(n))


def _noisy(values: tuple[float, ...], shift: float, noise: float = 0.02) -> tuple[float, ...]:
    """``values`` moved by ``shift`` with alternating noise: a difference that varies."""
    return tuple(v + shift + noise * (-1) ** k for k, v in enumerate(values))


def _split(values: tuple[float, ...], test_items: float = 50.0) -> dict:
    """``split_overall`` (SROCC only) and ``split_sizes`` of a metric over splits."""
    finite = np.array([v for v in values if math.isfinite(v)])
    q25, median, q75 = np.percentile(finite, [25, 50, 75])
    lo, hi = np.percentile(finite, [2.5, 97.5])
    spread = Spread(
        float(median),
        float(q25),
        float(q75),
        float(q75 - q25),
        float(finite.min()),
        float(finite.max()),
        int(finite.size),
        missing=len(values) - int(finite.size),
        interval=(float(lo), float(hi)),
        values=values,
    )
    sizes = SplitSizes(test_items, (int(test_items),) * len(values), test_items < 10)
    return {
        "split_overall": {"srocc": spread},
        "split_sizes": sizes,
        "n_splits": len(values),
    }


# -- what is bold ------------------------------------------------------------------------------


def test_best_marks_under_all_images_follow_the_statistics_direction() -> None:
    figures = [Figure(0.8), Figure(0.9), Figure(0.85), Figure(math.nan)]
    assert best_marks(figures, True, "all", 0.2) == [False, True, False, False]
    assert best_marks(figures, False, "all", 0.2) == [True, False, False, False]
    # 0.9001 and 0.8998 both print as 0.900: both are the best value as printed.
    assert best_marks([Figure(0.9001), Figure(0.8998), Figure(0.7)], True, "all", 0.2) == [
        True,
        True,
        False,
    ]


def test_small_samples_are_never_bold_and_never_lead() -> None:
    figures = [Figure(0.99, small_sample=True), Figure(0.7), Figure(0.6)]
    assert best_marks(figures, True, "all", 0.2) == [False, True, False]
    assert best_marks([Figure(0.99, small_sample=True)], True, "all", 0.2) == [False]


def test_best_marks_over_splits_bold_only_a_winner_the_test_supports() -> None:
    leader = _split_values(0.90)
    close = _noisy(leader, -0.005)  # 0.005 behind on average, with a spread of 0.02
    far = _split_values(0.70)
    figure = {name: Figure(float(np.median(v)), values=v) for name, v in
              (("leader", leader), ("close", close), ("far", far))}  # fmt: skip
    # The leader beats "far" but cannot be told from "close": no winner, nothing bold.
    columns = [figure["leader"], figure["close"], figure["far"]]
    assert best_marks(columns, True, "splits", 0.2) == [False, False, False]
    assert best_marks([figure["far"], figure["leader"]], True, "splits", 0.2) == [False, True]
    # RMSE: smaller is better, and the test is read the same way round.
    assert best_marks([figure["far"], figure["leader"]], False, "splits", 0.2) == [True, False]


def test_best_is_bold_whatever_the_metrics_own_direction() -> None:
    # GMSD falls as quality rises, but its statistics are oriented: SROCC 0.95 is the best.
    run = _run(
        _metric("psnr", "TR-FR", _stats(0.80, rmse=0.40)),
        _metric("gmsd", "TR-FR", _stats(0.95, rmse=0.30), higher_is_better=False),
        _metric("niqe", "TR-NR", _stats(0.90, rmse=0.20), higher_is_better=False),
    )
    table = overall_table([run])
    assert table.protocol == "all" and table.key == "overall"
    best = {
        row.key: {c.header: cell.best for c, cell in zip(table.columns, row.cells, strict=True)}
        for row in table.rows
    }
    assert best["gmsd"]["SROCC"] and not best["niqe"]["SROCC"] and not best["psnr"]["SROCC"]
    assert best["niqe"]["RMSE"] and not best["gmsd"]["RMSE"]  # smaller RMSE is better


def _split_run() -> Run:
    """PSNR (training-free) and a trainable BRISQUE on the same ten splits."""
    return _run(
        _metric("psnr", "TR-FR", _stats(0.80), **_split(_split_values(0.82))),
        _metric(
            "brisque",
            "TR-NR",
            _stats(0.99),  # the pooled cross-validated value, not what tables show
            trainable=True,
            evaluation="splits",
            **_split(_split_values(0.70)),
        ),
        splits=10,
    )


def test_default_tables_compare_every_metric_on_the_same_splits() -> None:
    tables = result_tables([_split_run()])
    default, *_, whole = tables[0], tables[-1]
    assert default.key == "overall" and default.protocol == "splits"
    assert [r.key for r in default.rows] == ["psnr", "brisque"]
    cells = {row.key: row.cells[1] for row in default.rows}  # SROCC column
    assert cells["psnr"].text == f"{np.median(_split_values(0.82)):.3f}"
    assert cells["brisque"].text == "0.700"  # the median over splits, not the pooled 0.99
    assert cells["brisque"].n_text == "n=50, 10/10" and cells["brisque"].interval_text
    assert cells["psnr"].best and not cells["brisque"].best
    assert "Nadeau and Bengio" in default.caption and "median over splits" in default.caption
    assert "better than every other median" in default.caption
    # The all-image figures of training-free metrics are in their own, labelled table.
    assert whole.key == "all_images" and whole.protocol == "all"
    assert [r.key for r in whole.rows] == ["psnr"] and whole.title.startswith("All images")


def _cross_run() -> Run:
    """A cross-dataset run: BRISQUE trained on another dataset and PSNR, on 60 test images;
    a third metric on 8 (a small sample)."""
    from iqabench.report.results import DatasetInfo

    train = DatasetInfo("synthetic-lwir", "Synthetic LWIR", "/", 300, 12, [], "MOS", True)
    run = _run(
        _metric("psnr", "TR-FR", _stats(0.80, n=60)),
        _metric("brisque", "TR-NR", _stats(0.85, n=60), trainable=True, evaluation="cross-dataset"),
        _metric("niqe", "TR-NR", _stats(0.95, n=8)),
    )
    protocol = {"name": "cross-dataset", "splits": 0, "min_test_items": 10}
    return replace(run, protocol=protocol, train_dataset=train)


def test_a_cross_dataset_run_compares_every_metric_on_every_test_image() -> None:
    run = _cross_run()
    assert run.default_protocol == "cross-dataset" and run.protocol_label.endswith("LWIR")
    (table,) = result_tables([run])
    assert table.key == "overall" and table.title == "Cross-dataset: Overall performance"
    cells = {row.key: row.cells[1] for row in table.rows}  # SROCC
    assert set(cells) == {"psnr", "brisque", "niqe"}
    assert cells["brisque"].text == "0.850" and cells["brisque"].n_text == "n=60"
    assert cells["brisque"].best and not cells["niqe"].best and cells["niqe"].small_sample
    assert "trained on every image of Synthetic LWIR" in table.caption
    assert "no claim of significance" in table.caption


def test_a_comparison_of_within_and_cross_runs_shows_each_under_its_own_protocol() -> None:
    runs = [_split_run(), _cross_run()]
    assert run_labels(runs) == ["X, 10 splits", "X, trained on Synthetic LWIR"]
    table = overall_table(runs)
    assert table.key == "overall" and table.protocol == "per-run"
    row = next(r for r in table.rows if r.key == "brisque")
    within, cross = row.cells[1], row.cells[5]  # SROCC of each run
    assert within.text == "0.700" and within.n_text == "n=50, 10/10"  # median over splits
    assert cross.text == "0.850" and cross.n_text == "n=60"  # every test image
    assert "under its own protocol" in table.caption


def test_splits_without_a_value_are_counted_and_small_samples_flagged() -> None:
    values = (*_split_values(0.9, n=6), math.nan, math.nan, math.nan, math.nan)
    run = _run(_metric("psnr", "TR-FR", _stats(0.8), **_split(values, test_items=3.0)), splits=10)
    (cell,) = [r.cells[1] for r in overall_table([run]).rows]
    assert cell.n_text == "n=3, 6/10" and cell.small_sample and not cell.best


def test_rows_are_grouped_by_family() -> None:
    run = _run(
        _metric("niqe", "TR-NR", _stats(0.7)),
        _metric("dl", "DL-NR", _stats(0.7)),
        _metric("psnr", "TR-FR", _stats(0.7)),
        _metric("lpips", "DL-FR", _stats(0.7)),
    )
    assert [r.key for r in overall_table([run]).rows] == ["psnr", "lpips", "niqe", "dl"]


def test_skipped_metrics_are_not_in_the_tables() -> None:
    run = _run(
        _metric("psnr", "TR-FR", _stats(0.8)),
        _metric("vif", "TR-FR", None, status="skipped", reason="no model"),
    )
    assert [r.key for r in overall_table([run]).rows] == ["psnr"]


# -- exports ----------------------------------------------------------------------------------


def _small_table():
    run = _run(
        _metric("a_b", "TR-FR", replace(_stats(0.9, plcc=0.8, rmse=0.25), srocc_ci=(0.85, 0.93))),
        _metric("c&d", "TR-NR", _stats(0.7, plcc=0.85, rmse=0.5, n=8)),
    )
    table = overall_table([run])
    return replace(table, caption="Caption with 5% & more.")


def test_markdown_output() -> None:
    assert to_markdown(_small_table()) == (
        "**All images, training-free metrics: Overall performance**\n"
        "\n"
        "| Metric | Family | PLCC | SROCC | KROCC | RMSE |\n"
        "| :-- | :-- | --: | --: | --: | --: |\n"
        "| A\\_B | TR-FR | **0.800** n=100 | **0.900** \\[0.850, 0.930\\] n=100 | **0.800** n=100 "
        "| **0.250** n=100 |\n"
        "| C&amp;D | TR-NR | 0.850† n=8 | 0.700† n=8 | 0.600† n=8 | 0.500† n=8 |\n"
        "\n"
        "Caption with 5% &amp; more.\n"
    )


def test_latex_output_uses_booktabs_and_escapes() -> None:
    text = to_latex(_small_table())
    assert text.startswith(
        "\\begin{table}[t]\n"
        "  \\centering\n"
        "  \\caption{All images, training-free metrics: Overall performance. Caption with 5\\% "
        "\\& more.}\n"
        "  \\label{tab:iqabench-overall}\n"
        "  \\begin{tabular}{llrrrr}\n"
        "    \\toprule\n"
        "    Metric & Family & PLCC & SROCC & KROCC & RMSE \\\\\n"
        "    \\midrule\n"
    )
    srocc = (
        r"\begin{tabular}[t]{@{}r@{}}\textbf{0.900} \\ {\scriptsize [0.850, 0.930]} \\ "
        r"{\scriptsize n=100}\end{tabular}"
    )
    assert "A\\_B & TR-FR & " in text and srocc in text
    assert r"C\&D & TR-NR & \begin{tabular}[t]{@{}r@{}}0.850$^\dagger$ \\ " in text
    assert text.endswith("    \\bottomrule\n  \\end{tabular}\n\\end{table}\n")


def test_latex_comparison_has_grouped_headers() -> None:
    a = _split_run()
    b = replace(_split_run(), path=Path("/runs/y"))
    text = to_latex(per_type_table([a, b], "srocc"))
    assert r" &  & \multicolumn{1}{c}{X (x)} & \multicolumn{1}{c}{X (y)} \\" in text
    assert r"\cmidrule(lr){3-3} \cmidrule(lr){4-4}" in text
    assert r"{\scriptsize n=50, 10/10}" in text


def test_csv_output_has_plain_numbers_intervals_and_n() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(per_type_table([_split_run()], "srocc")))))
    assert list(rows[0]) == [
        "metric",
        "display_name",
        "family",
        "Overall",
        "Overall low",
        "Overall high",
        "Overall n",
        "Overall splits",
        "Overall small sample",
    ]
    brisque = rows[1]
    assert brisque["metric"] == "brisque" and float(brisque["Overall"]) == pytest.approx(0.70)
    low, high = np.percentile(_split_values(0.70), [2.5, 97.5])
    assert float(brisque["Overall low"]) == pytest.approx(low)
    assert float(brisque["Overall high"]) == pytest.approx(high)
    assert brisque["Overall n"] == "50.0" and brisque["Overall splits"] == "10"
    assert brisque["Overall small sample"] == "false"


# -- significance -------------------------------------------------------------------------------


def _significance_run() -> Run:
    """Three metrics on 60 items whose errors are known: the worked example below."""
    rng = np.random.default_rng(7)
    quality = np.linspace(1.0, 5.0, 60)
    base = rng.standard_normal(60)
    base = (base - base.mean()) / base.std()
    other = rng.permutation(base)
    scores = {
        "good": quality + 0.1 * base,  # residual SD 0.1
        "twin": quality + 0.1 * other,  # residual SD 0.1, different errors
        "poor": quality + 0.3 * base,  # residual SD 0.3
    }
    rows = [
        ScoreRow(name, None, f"i{k}", "", "", "AWGN", "", "", q, q, float(s), "")
        for name, values in scores.items()
        for k, (q, s) in enumerate(zip(quality, values, strict=True))
    ]
    return replace(_run(*(_metric(n, "TR-FR", _stats(0.9)) for n in scores)), rows=rows)


def test_significance_worked_example() -> None:
    # The scores are linear in quality, so each mapping is (close to) the identity and the
    # residuals are the added errors: variances 0.01, 0.01 and 0.09 over 60 items. With five
    # mapping parameters each, F(poor, good) = (0.09 * 60 / 55) / (0.01 * 60 / 55) = 9, far above
    # the upper 5% point of F(55, 55), about 1.57: "good" and "twin" are both significantly
    # better than "poor". F(good, twin) = 1: no significant difference.
    from scipy import stats

    assert stats.f.isf(0.05, 55, 55) == pytest.approx(1.563, abs=0.01)
    sig = significance(_significance_run())
    assert sig is not None and sig.keys == ["good", "twin", "poor"]
    assert sig.matrix == [[0, 0, 1], [0, 0, 1], [-1, -1, 0]]
    assert sig.n == 60 and [sig.wins(i) for i in range(3)] == [1, 1, 0]
    table = significance_table(sig)
    assert [c.text for c in table.rows[2].cells] == ["-1", "-1", "–"]
    assert "ITU-T P.1401" in table.caption and table.protocol == "all"


def test_split_significance_uses_the_corrected_test() -> None:
    run = _run(
        _metric("a", "TR-FR", _stats(0.9), **_split(_split_values(0.90))),
        _metric("b", "TR-FR", _stats(0.9), **_split(_noisy(_split_values(0.90), -0.005))),
        _metric("c", "TR-FR", _stats(0.9), **_split(_split_values(0.70))),
        splits=10,
    )
    sig = split_significance(run, "srocc")
    assert sig is not None and sig.protocol == "splits" and sig.n == 10
    assert sig.matrix == [[0, 0, 1], [0, 0, 1], [-1, -1, 0]]
    assert "Nadeau and Bengio" in significance_table(sig).caption


def test_significance_needs_two_metrics() -> None:
    assert significance(_run(_metric("psnr", "TR-FR", _stats(0.9)))) is None


# -- loading ------------------------------------------------------------------------------------


def test_load_run_reads_the_documented_schema(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert run.dataset.distortions == ["AWGN", "BLU", "NU", "JPG", "J2K"]
    assert list(run.metrics) == ["psnr", "gmsd", "niqe", EVIL_NAME, "nestconvnext", "vif"]
    assert [m.name for m in run.evaluated] == ["psnr", "gmsd", "niqe", EVIL_NAME, "nestconvnext"]
    nest = run.metrics["nestconvnext"]
    assert nest.by_splits and nest.n_splits == 4
    assert nest.value("srocc") == nest.split_overall["srocc"].median
    assert nest.value("srocc", "BLU") == nest.split_per_type["BLU"]["srocc"].median
    psnr = run.metrics["psnr"]
    assert psnr.value("srocc", "AWGN") == psnr.split_per_type["AWGN"]["srocc"].median
    assert psnr.value("srocc", "AWGN", "all") == psnr.per_type["AWGN"].srocc
    assert math.isnan(nest.value("srocc", None, "all"))  # trainable: no all-image figures
    figure = psnr.figure("srocc")
    assert figure.n_items == 50.0 and figure.n_splits == figure.splits_total == 4
    assert figure.interval == psnr.split_overall["srocc"].interval and not figure.small_sample
    assert run.default_protocol == "splits" and run.min_test_items == MIN_TEST_ITEMS
    assert run.dataset.score_label == "ordinal quality"
    assert psnr.overall is not None and psnr.overall.mapping_kind == "logistic5"
    # The failed item has no score; the trainable metric's item scores are averaged over splits.
    assert len(run.points("psnr").item_ids) == 149
    assert len(run.points("nestconvnext").item_ids) == nest.overall.n


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "summary.json").unlink(), "summary.json"),
        (lambda d: (d / "scores.csv").unlink(), "scores.csv is missing"),
        (lambda d: (d / "summary.json").write_text('{"schema": "other/2"}'), "schema"),
        (lambda d: _edit(d, lambda s: s["metrics"]["psnr"].pop("family")), "metrics.psnr.family"),
        (lambda d: _edit(d, lambda s: s["dataset"].pop("distortions")), "dataset.distortions"),
        (
            lambda d: _edit(d, lambda s: s["metrics"]["psnr"]["overall"].update(srocc="high")),
            "metrics.psnr.overall.srocc",
        ),
        (lambda d: (d / "scores.csv").write_text("metric,score\npsnr,1\n"), "lacks column"),
    ],
)
def test_load_run_refuses_broken_folders(tmp_path: Path, damage, message: str) -> None:
    folder = write_run(tmp_path / "run", metrics=DEFAULT_METRICS[:2], n_contents=3)
    damage(folder)
    with pytest.raises(UserError, match=re.escape(message)):
        load_run(folder)


def test_load_run_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_run(tmp_path / "nowhere")


def _edit(folder: Path, change) -> None:
    path = folder / "summary.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# -- figures ------------------------------------------------------------------------------------


def test_fitted_curve_matches_the_stored_rmse_for_a_lower_is_better_metric(run_dir: Path) -> None:
    run = load_run(run_dir)
    for name in ("psnr", "gmsd", "nestconvnext"):
        metric = run.metrics[name]
        points = run.points(name)
        xs, ys = fitted_curve(metric, points.score)
        assert xs == sorted(xs) and len(xs) == 200
        mapped = np.interp(points.score, xs, ys)
        rmse = float(np.sqrt(np.mean((np.array(points.quality) - mapped) ** 2)))
        assert rmse == pytest.approx(metric.overall.rmse, rel=0.02), name


def test_spider_specs_cover_every_type_and_family(run_dir: Path) -> None:
    from iqabench.report.palette import metric_styles

    run = load_run(run_dir)
    styles = metric_styles(run.metrics)
    specs = {g.key: performance_spec(run, g, "plcc", styles) for g in GROUPS}
    assert {k for k, v in specs.items() if v is not None} == {"all", "fr", "tr-nr", "dl-nr"}
    all_metrics = specs["all"]
    assert len(all_metrics["data"]) == 5
    trace = all_metrics["data"][0]
    assert trace["type"] == "scatterpolar"
    assert trace["theta"] == [
        "White noise",
        "Blurring",
        "Non-uniformity",
        "JPEG",
        "JPEG2000",
        "White noise",
    ]
    # The split protocol: the median over splits, as in the default tables.
    median = run.metrics["psnr"].split_per_type["AWGN"]["plcc"].median
    assert trace["r"][0] == pytest.approx(min(max(median, 0.0), 1.0), abs=1e-5)
    assert [d["name"] for d in specs["fr"]["data"]] == ["PSNR", "GMSD"]
    # The plugin's display name is HTML-escaped for plotly's label parser.
    assert specs["tr-nr"]["data"][1]["name"].startswith("&lt;img src=x")
    menu = all_metrics["layout"]["updatemenus"][0]
    assert [b["label"] for b in menu["buttons"]] == ["SROCC", "PLCC", "KROCC"]
    assert menu["active"] == 1
    # One fixed radial range for every statistic, panel and run.
    for spec in specs.values():
        assert spec["layout"]["polar"]["radialaxis"]["range"] == list(RADIAL_RANGE) == [0, 1]
    # Within a panel every metric has its own colour, and a metric keeps it across panels.
    colours = {d["name"]: d["marker"]["color"] for d in all_metrics["data"]}
    assert len(set(colours.values())) == len(colours)
    for spec in specs.values():
        for d in spec["data"]:
            assert d["marker"]["color"] == colours[d["name"]]


def test_negative_values_are_clamped_and_marked_small_samples_hollow() -> None:
    from iqabench.report.figures import Group, performance_spec
    from iqabench.report.palette import metric_styles
    from iqabench.report.results import DatasetInfo

    def metric(name: str, srocc: float, test_items: float) -> MetricResult:
        block = _split(_split_values(srocc), test_items=test_items)
        per_type = {t: block["split_overall"] for t in ("A", "B", "C")}
        sizes = {t: block["split_sizes"] for t in ("A", "B", "C")}
        return _metric(
            name, "TR-FR", _stats(0.5), split_per_type=per_type, split_sizes_per_type=sizes, **block
        )

    run = replace(
        _run(metric("wrong-way", -0.4, 50.0), metric("tiny", 0.8, 3.0), splits=10),
        dataset=DatasetInfo("x", "X", "/", 100, 10, ["A", "B", "C"], "MOS", True),
    )
    spec = performance_spec(run, Group("all", "All", None), "srocc", metric_styles(run.metrics))
    wrong, tiny = spec["data"]
    assert wrong["r"] == [0.0] * 4 and wrong["marker"]["symbol"] == ["x"] * 4
    assert "negative: drawn at 0" in wrong["customdata"][0] and "-0.4" in wrong["customdata"][0]
    assert tiny["marker"]["symbol"][0].endswith("-open") and "small sample" in tiny["customdata"][0]


def test_a_dataset_without_types_gets_an_overall_bar_chart_with_intervals(tmp_path: Path) -> None:
    from iqabench.report.palette import metric_styles

    folder = write_run(
        tmp_path / "tiiqad", metrics=DEFAULT_METRICS[2:5], distortions=(), n_contents=30, levels=1
    )
    run = load_run(folder)
    spec = performance_spec(run, GROUPS[0], "srocc", metric_styles(run.metrics))
    assert [d["type"] for d in spec["data"]] == ["bar"] * 3
    for trace in spec["data"]:
        assert trace["orientation"] == "h" and len(trace["y"]) == 1 and trace["x"][0] is not None
        assert trace["error_x"]["array"][0] is not None  # the 95% interval over splits
    tables = result_tables([run])
    assert [t.key for t in tables] == ["overall", "all_images"]  # no per-type repetition
    path = build_report(folder, formats=("html", "png"))
    text = path.read_text(encoding="utf-8")
    assert "no distortion types" in text and "0 distortion types" not in text
    assert (folder / "figures/bars_all_srocc.png").is_file()


def test_palette_gives_distinct_stable_colours_to_many_metrics() -> None:
    from iqabench.report.palette import (
        MIN_CONTRAST,
        PALETTE_SIZE,
        contrast_with_white,
        metric_colours,
        metric_styles,
    )

    names = [f"metric-{k:02d}" for k in range(36)]
    styles = metric_styles(names)
    assert len({styles[n].colour for n in names}) == 36
    assert all(contrast_with_white(c) >= MIN_CONTRAST for c in metric_colours())
    assert len(metric_colours()) == PALETTE_SIZE >= 36 and "#808080" not in metric_colours()
    assert contrast_with_white("#ffffff") == pytest.approx(1.0)
    assert contrast_with_white("#000000") == pytest.approx(21.0)
    # A metric keeps its style whatever else a run holds.
    assert metric_styles(["psnr"])["psnr"] == metric_styles(["niqe", "psnr", "ssim"])["psnr"]


def test_ground_truth_labels_come_from_the_dataset(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert subjective_label(run) == "ordinal quality, 1..5"
    text = build_report(run_dir, formats=("html",)).read_text(encoding="utf-8")
    assert "ordinal quality, 1..5" in text and "agreement with people" not in text


# -- the built report -------------------------------------------------------------------------


def test_build_report_writes_every_export(built: Path) -> None:
    names = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    for group in ("all", "fr", "tr-nr", "dl-nr"):
        assert {f"figures/spider_{group}_srocc.png", f"figures/spider_{group}_srocc.svg"} <= names
    assert {"figures/scatter_grid.png", "figures/scatter_grid.svg", "report.html"} <= names
    for key in (
        "overall",
        "per_type_plcc",
        "per_type_srocc",
        "per_type_krocc",
        "per_type_rmse",
        "significance",
    ):
        assert {f"tables/{key}.csv", f"tables/{key}.md", f"tables/{key}.tex"} <= names
    assert (built / "figures/spider_all_srocc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_html_is_self_contained_and_escaped(built: Path) -> None:
    text = (built / "report.html").read_text(encoding="utf-8")
    assert text.count("* plotly.js v") == 1  # the library is inlined once for all charts
    assert not re.search(r"<script[^>]*\bsrc=", text)
    markup = re.sub(r"<script>.*?</script>", "", text, flags=re.DOTALL)
    assert not re.search(r"""(?:href|src)=["']?(?:https?:)?//""", markup)
    assert "<img src=x" not in text
    assert "&lt;img src=x onerror=" in text  # in tables and the metric list
    for key in (
        "perf-all",
        "perf-fr",
        "perf-tr-nr",
        "perf-dl-nr",
        "table-overall",
        "table-per_type_srocc",
        "table-significance",
        "failures",
    ):
        assert f'id="{key}"' in text
    assert "ImageNet weights not found" in text  # the deep model's note is listed
    assert "NO: random initialisation" in text  # and its pretrained status is shown
    assert "model file vif.npz not found" in text  # the skipped metric too
    assert "truncated PNG" in text  # and the failed item


def test_every_srocc_and_plcc_cell_shows_its_interval_and_n(built: Path) -> None:
    text = (built / "report.html").read_text(encoding="utf-8")
    for key, columns in (("overall", (1, 2)), ("all_images", (1, 2)), ("per_type_srocc", None)):
        table = re.search(rf'id="table-{key}".*?</table>', text, flags=re.DOTALL).group(0)
        for row in re.findall(r"<tr><th scope=\"row\">.*?</tr>", table, flags=re.DOTALL):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.DOTALL)[1:]  # not family
            for cell in cells if columns is None else [cells[c - 1] for c in columns]:
                assert 'class="ci"' in cell and 'class="n"' in cell, (key, cell)
    for ext in ("md", "tex"):
        lines = (built / f"tables/overall.{ext}").read_text(encoding="utf-8").splitlines()
        rows = [line for line in lines if line.startswith(("| PSNR", "    PSNR"))]
        assert rows and all(row.count("n=") == 4 and row.count("[") >= 2 for row in rows), ext


def test_small_samples_are_greyed_and_announced(tmp_path: Path) -> None:
    # Three scenes: each split tests one, i.e. five images per distortion type.
    folder = write_run(tmp_path / "small", metrics=DEFAULT_METRICS[:2], n_contents=3)
    text = build_report(folder, formats=("html", "md")).read_text(encoding="utf-8")
    assert 'id="small-samples"' in text and 'class="small-sample"' in text
    assert "fewer than 10 test images" in text
    markdown = (folder / "tables/per_type_srocc.md").read_text(encoding="utf-8")
    assert "† \\[" in markdown and "n=5, 4/4" in markdown


def test_the_footer_says_what_the_run_computed(built: Path) -> None:
    text = (built / "report.html").read_text(encoding="utf-8")
    footer = re.search(r"<footer>(.*?)</footer>", text, flags=re.DOTALL).group(1)
    summary = json.loads((built / "summary.json").read_text(encoding="utf-8"))
    assert "no score was recomputed" not in text
    assert f"computed {summary['counts']['scored']} results" in footer
    assert "building a report computes no score" in footer


def test_report_exports_are_deterministic(tmp_path: Path) -> None:
    folders = [
        write_run(tmp_path / name, metrics=DEFAULT_METRICS[:2], n_contents=3) for name in "ab"
    ]
    for folder in folders:
        build_report(folder, formats=("png", "svg", "tex", "html"))
    a, b = folders
    for rel in (
        "figures/spider_all_srocc.svg",
        "figures/scatter_grid.svg",
        "figures/spider_fr_srocc.png",
        "tables/overall.tex",
    ):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    html_a = (a / "report.html").read_text().replace(str(a), "RUN")
    html_b = (b / "report.html").read_text().replace(str(b), "RUN")
    assert html_a == html_b


def test_report_with_two_distortion_types_draws_bar_charts(tmp_path: Path) -> None:
    folder = write_run(
        tmp_path / "two", metrics=DEFAULT_METRICS[:3], distortions=("AWGN", "XYZ"), n_contents=4
    )
    path = build_report(folder, stat="krocc", formats=("html", "png"))
    text = path.read_text(encoding="utf-8")
    assert "a spider diagram needs at least three axes" in text
    assert '"type": "bar"' in text
    assert (folder / "figures/bars_all_krocc.png").is_file()
    assert not (folder / "figures/spider_all_krocc.png").exists()
    assert ">XYZ<" in text  # unknown distortion codes are shown as they are


def test_build_report_rejects_unknown_options(run_dir: Path) -> None:
    with pytest.raises(UserError, match="unknown statistic 'rmse'"):
        build_report(run_dir, stat="rmse")
    with pytest.raises(UserError, match="unknown report format 'pdf'"):
        build_report(run_dir, formats=("html", "pdf"))


def test_comparison_lays_runs_side_by_side(run_dir: Path, tmp_path: Path) -> None:
    other = write_run(
        tmp_path / "tiiqad",
        metrics=DEFAULT_METRICS[:3],
        distortions=("AWGN", "BLU", "JPG"),
        n_contents=4,
        seed=3,
        name="tiiqad",
        display_name="TIIQAD",
    )
    path = build_comparison([run_dir, other], tmp_path / "cmp", formats=("html", "csv", "tex"))
    assert path == tmp_path / "cmp" / "comparison.html"
    text = path.read_text(encoding="utf-8")
    assert "Synthetic LWIR vs TIIQAD" in text
    assert text.count("* plotly.js v") == 1
    rows = list(csv.reader(io.StringIO((tmp_path / "cmp/tables/overall.csv").read_text())))
    extras = (" low", " high", " n", " splits", " small sample")
    assert [h for h in rows[0][3:] if not h.endswith(extras)] == [
        f"{run}: {s}"
        for run in ("Synthetic LWIR", "TIIQAD")
        for s in ("PLCC", "SROCC", "KROCC", "RMSE")
    ]
    nest = dict(zip(rows[0], next(r for r in rows if r[0] == "nestconvnext"), strict=True))
    assert float(nest["Synthetic LWIR: SROCC high"]) > float(nest["Synthetic LWIR: SROCC low"])
    assert nest["Synthetic LWIR: SROCC splits"] == "4"
    assert nest["TIIQAD: SROCC"] == "" and nest["TIIQAD: RMSE"] == ""  # not in the second run
    assert "every metric on the same split test sets" in text
    assert (tmp_path / "cmp/tables/per_type_srocc.tex").is_file()
    assert not (tmp_path / "cmp/tables/overall.md").exists()


# -- the command --------------------------------------------------------------------------------


def _cli(*argv: str) -> int:
    from iqabench.commands import report_cmd

    parser = argparse.ArgumentParser()
    report_cmd.add_parser(parser.add_subparsers(), "report")
    args = parser.parse_args(["report", *argv])
    return args.handler(args)


def test_report_command_prints_the_report_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_run(tmp_path / "run", metrics=DEFAULT_METRICS[:3], n_contents=3)
    assert _cli(str(folder), "--stat", "plcc", "--format", "html,md") == 0
    assert capsys.readouterr().out.strip() == str(folder / "report.html")
    text = (folder / "report.html").read_text(encoding="utf-8")
    spec = json.loads(re.search(r'id="perf-all-spec">(.*?)</script>', text).group(1))
    assert spec["layout"]["title"]["text"].startswith("PLCC per distortion type")
    assert spec["layout"]["updatemenus"][0]["active"] == 1
    assert (folder / "tables/overall.md").is_file() and not (folder / "figures").exists()


def test_report_command_compares_runs_beside_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", metrics=DEFAULT_METRICS[:2], n_contents=3)
    b = write_run(tmp_path / "b", metrics=DEFAULT_METRICS[:2], n_contents=3, seed=1)
    assert _cli(str(a), str(b), "--format", "html") == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "compare-a-vs-b/comparison.html")


def test_report_command_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run folder not found"):
        _cli(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="--out is for comparisons"):
        _cli(str(tmp_path), "--out", str(tmp_path / "x"))
