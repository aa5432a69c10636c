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
from iqabench.evaluate import correlations, summarize_splits
from iqabench.report import build_comparison, build_report
from iqabench.report.figures import GROUPS, fitted_curve, performance_spec, radial_range
from iqabench.report.results import MetricResult, Run, ScoreRow, Spread, Stats, load_run
from iqabench.report.significance import significance, significance_table
from iqabench.report.tables import (
    overall_table,
    per_type_table,
    rank_marks,
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
            "mapping": {"kind": "linear", "params": [slope, intercept], "converged": False},
        }

    overall = correlations(x, y, hib, bootstrap=100).to_dict() if full else quick(x, y)
    chosen = {d: np.array([t == d for t in types]) for d in dict.fromkeys(types)}
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
    """Write ``summary.json`` and ``scores.csv`` of a plausible run into ``folder``."""
    rng = np.random.default_rng(seed)
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
        for d in distortions
        for lvl in range(1, levels + 1)
    ]
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
        return summary

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
            "score_type": "ordinal quality (6 - level), not a MOS",
            "higher_is_better": True,
        },
        "protocol": {
            "splits": splits,
            "train_fraction": 0.8,
            "seed": seed,
            "split_mode": "content",
            "bootstrap": 100,
            "confidence": 0.95,
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


def _stats(srocc: float, plcc: float | None = None, rmse: float = 0.5) -> Stats:
    plcc = srocc if plcc is None else plcc
    return Stats(plcc=plcc, srocc=srocc, krocc=srocc - 0.1, rmse=rmse, n=100)


def _metric(name: str, family: str, overall: Stats, **kw) -> MetricResult:
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


def _run(*metrics: MetricResult, distortions: tuple[str, ...] = ()) -> Run:
    from iqabench.report.results import DatasetInfo

    return Run(
        path=Path("/runs/x"),
        iqabench_version="0.1.0",
        created="",
        software={},
        dataset=DatasetInfo("x", "X", "/", 100, 10, list(distortions), "MOS", True),
        protocol={},
        timing={},
        counts={},
        metrics={m.name: m for m in metrics},
        failures=[],
        warnings=[],
        rows=[],
    )


def _spread(median: float, iqr: float) -> Spread:
    return Spread(median, median - iqr / 2, median + iqr / 2, iqr, median - iqr, median + iqr, 10)


# -- ranking ----------------------------------------------------------------------------------


def test_rank_marks_follow_the_statistics_direction() -> None:
    assert rank_marks([0.8, 0.9, 0.85, math.nan], higher_is_better=True) == [None, 1, 2, None]
    assert rank_marks([0.8, 0.9, 0.85, math.nan], higher_is_better=False) == [1, None, 2, None]


def test_rank_marks_compare_displayed_values_and_share_ties() -> None:
    # 0.9001 and 0.8998 both print as 0.900: both best; the next distinct value is second.
    assert rank_marks([0.9001, 0.8998, 0.7, 0.6], True) == [1, 1, 2, None]


def test_best_is_bold_whatever_the_metrics_own_direction() -> None:
    # GMSD falls as quality rises, but its statistics are oriented: SROCC 0.95 is the best.
    run = _run(
        _metric("psnr", "TR-FR", _stats(0.80, rmse=0.40)),
        _metric("gmsd", "TR-FR", _stats(0.95, rmse=0.30), higher_is_better=False),
        _metric("niqe", "TR-NR", _stats(0.90, rmse=0.20), higher_is_better=False),
    )
    table = overall_table([run])
    ranks = {
        row.key: {c.header: cell.rank for c, cell in zip(table.columns, row.cells, strict=True)}
        for row in table.rows
    }
    assert ranks["gmsd"]["SROCC"] == 1 and ranks["niqe"]["SROCC"] == 2
    assert ranks["psnr"]["SROCC"] is None
    # RMSE: smaller is better.
    assert ranks["niqe"]["RMSE"] == 1 and ranks["gmsd"]["RMSE"] == 2
    assert ranks["psnr"]["RMSE"] is None


def test_trainable_metric_is_ranked_by_its_median_and_shows_its_spread() -> None:
    run = _run(
        _metric("psnr", "TR-FR", _stats(0.80)),
        _metric(
            "brisque",
            "TR-NR",
            _stats(0.99),  # the pooled cross-validated value, not what tables show
            trainable=True,
            evaluation="splits",
            n_splits=10,
            split_overall={"srocc": _spread(0.70, 0.04)},
        ),
    )
    table = per_type_table([run], "srocc")
    assert [c.header for c in table.columns] == ["Overall"]
    cells = {row.key: row.cells[0] for row in table.rows}
    assert cells["brisque"].text == "0.700" and cells["brisque"].spread_text == "0.040"
    assert cells["brisque"].rank == 2 and cells["psnr"].rank == 1
    assert "median over 10" in table.caption


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
        _metric("vif", "TR-FR", None, status="skipped", reason="no model"),  # type: ignore[arg-type]
    )
    assert [r.key for r in overall_table([run]).rows] == ["psnr"]


# -- exports ----------------------------------------------------------------------------------


def _small_table():
    run = _run(
        _metric("a_b", "TR-FR", _stats(0.9, plcc=0.8, rmse=0.25)),
        _metric("c&d", "TR-NR", _stats(0.7, plcc=0.85, rmse=0.5)),
    )
    table = overall_table([run])
    return replace(table, caption="Caption with 5% & more.")


def test_markdown_output() -> None:
    assert to_markdown(_small_table()) == (
        "**Overall performance**\n"
        "\n"
        "| Metric | Family | PLCC | SROCC | KROCC | RMSE |\n"
        "| :-- | :-- | --: | --: | --: | --: |\n"
        "| A\\_B | TR-FR | <u>0.800</u> | **0.900** | **0.800** | **0.250** |\n"
        "| C&amp;D | TR-NR | **0.850** | <u>0.700</u> | <u>0.600</u> | <u>0.500</u> |\n"
        "\n"
        "Caption with 5% &amp; more.\n"
    )


def test_latex_output_uses_booktabs_and_escapes() -> None:
    assert to_latex(_small_table()) == (
        "\\begin{table}[t]\n"
        "  \\centering\n"
        "  \\caption{Overall performance. Caption with 5\\% \\& more.}\n"
        "  \\label{tab:iqabench-overall}\n"
        "  \\begin{tabular}{llrrrr}\n"
        "    \\toprule\n"
        "    Metric & Family & PLCC & SROCC & KROCC & RMSE \\\\\n"
        "    \\midrule\n"
        "    A\\_B & TR-FR & \\underline{0.800} & \\textbf{0.900} & \\textbf{0.800} & "
        "\\textbf{0.250} \\\\\n"
        "    \\midrule\n"
        "    C\\&D & TR-NR & \\textbf{0.850} & \\underline{0.700} & \\underline{0.600} & "
        "\\underline{0.500} \\\\\n"
        "    \\bottomrule\n"
        "  \\end{tabular}\n"
        "\\end{table}\n"
    )


def _trainable_brisque() -> MetricResult:
    """A trainable metric whose SROCC over 10 splits has median 0.71 and IQR 0.05."""
    return _metric(
        "brisque",
        "TR-NR",
        _stats(0.9),
        trainable=True,
        evaluation="splits",
        n_splits=10,
        split_overall={"srocc": _spread(0.71, 0.05)},
    )


def test_latex_comparison_has_grouped_headers_and_spread() -> None:
    trainable = _trainable_brisque()
    a = _run(_metric("psnr", "TR-FR", _stats(0.8)), trainable)
    b = replace(_run(_metric("psnr", "TR-FR", _stats(0.6))), path=Path("/runs/y"))
    text = to_latex(per_type_table([a, b], "srocc"))
    assert r" &  & \multicolumn{1}{c}{X (x)} & \multicolumn{1}{c}{X (y)} \\" in text
    assert r"\cmidrule(lr){3-3} \cmidrule(lr){4-4}" in text
    assert r"BRISQUE & TR-NR & \underline{0.710} {\scriptsize (0.050)} & -- \\" in text


def test_csv_output_has_plain_numbers_and_iqr_columns() -> None:
    trainable = _trainable_brisque()
    run = _run(_metric("psnr", "TR-FR", _stats(0.8)), trainable)
    rows = list(csv.DictReader(io.StringIO(to_csv(per_type_table([run], "srocc")))))
    assert list(rows[0]) == ["metric", "display_name", "family", "Overall", "Overall IQR"]
    assert rows[0]["metric"] == "psnr" and float(rows[0]["Overall"]) == 0.8
    assert rows[0]["Overall IQR"] == ""
    assert float(rows[1]["Overall"]) == 0.71 and float(rows[1]["Overall IQR"]) == 0.05


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
    assert sig.n_items == 60 and [sig.wins(i) for i in range(3)] == [1, 1, 0]
    table = significance_table(sig)
    assert [c.text for c in table.rows[2].cells] == ["-1", "-1", "–"]


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
    assert psnr.value("srocc", "AWGN") == psnr.per_type["AWGN"].srocc
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


def test_radial_range_spreads_the_data() -> None:
    assert radial_range([0.91, 0.95, 0.97]) == (0.85, 1.0)
    assert radial_range([0.2, 0.5]) == (0.15, 0.55)
    assert radial_range([math.nan]) == (0.0, 1.0)
    lo, hi = radial_range([0.5, 0.5])
    assert hi - lo >= 0.1 and lo < 0.5 < hi


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
    from iqabench.report.figures import metric_styles

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
    assert trace["r"][0] == pytest.approx(run.metrics["psnr"].per_type["AWGN"].plcc, abs=1e-5)
    assert [d["name"] for d in specs["fr"]["data"]] == ["PSNR", "GMSD"]
    # The plugin's display name is HTML-escaped for plotly's label parser.
    assert specs["tr-nr"]["data"][1]["name"].startswith("&lt;img src=x")
    menu = all_metrics["layout"]["updatemenus"][0]
    assert [b["label"] for b in menu["buttons"]] == ["SROCC", "PLCC", "KROCC"]
    assert menu["active"] == 1
    lo, hi = all_metrics["layout"]["polar"]["radialaxis"]["range"]
    values = [v for d in all_metrics["data"] for v in d["r"]]
    assert lo <= min(values) and max(values) <= hi and hi - lo < 1.0


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
    assert [h for h in rows[0][3:] if not h.endswith("IQR")] == [
        f"{run}: {s}"
        for run in ("Synthetic LWIR", "TIIQAD")
        for s in ("PLCC", "SROCC", "KROCC", "RMSE")
    ]
    nest = dict(zip(rows[0], next(r for r in rows if r[0] == "nestconvnext"), strict=True))
    assert float(nest["Synthetic LWIR: SROCC IQR"]) > 0
    assert nest["TIIQAD: SROCC"] == "" and nest["TIIQAD: RMSE"] == ""  # not in the second run
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
