"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) through Playwright.

Three reports are opened from ``file://``: one from a small real ``synthetic-lwir`` run (2 scenes
scored with PSNR and SSIM by the runner, with a plugin-like display name full of HTML special
characters), one from a fixture run with every metric family, a trainable metric, a skipped
metric and a failed item, and one from a TIIQAD-like fixture run (no distortion types). For
each: no console error or warning, no network request, every chart drawn (spider diagrams with
one axis per distortion type, or overall bars with their intervals), every table present with
an interval and an n in each SROCC and PLCC cell, nothing wider than the page, screenshots that
are not blank, and names shown as text rather than interpreted as HTML. Screenshots are also
written to ``$IQABENCH_SCREENSHOTS`` when it names a folder, for a person to look at.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iqabench.report import build_report

pytestmark = pytest.mark.browser

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)
#: Playwright adds --headless; these keep Chromium off the (closed) network and quiet.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EVIL = '<img src=x onerror="window.__pwned=1">SSIM & "co" $x$'
TYPES = ["White noise", "Blurring", "Non-uniformity", "JPEG", "JPEG2000"]
TABLES = ["overall", "per_type_srocc", "per_type_plcc", "per_type_krocc", "per_type_rmse"]
VIEWPORT = {"width": 1280, "height": 1000}

if CHROMIUM is None:
    pytest.skip(
        "no chromium executable on PATH (Debian: apt-get install -y chromium; .ci/run installs it)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium context with a fresh profile, driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport=VIEWPORT,
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic-lwir run by the real runner, its SSIM renamed as a plugin might."""
    from iqabench.api import load_dataset, run
    from iqabench.data.synthetic import build_synthetic_lwir

    root = build_synthetic_lwir(tmp_path_factory.mktemp("data") / "lwir", n_scenes=2, size=(64, 80))
    dataset = load_dataset("synthetic-lwir", root)
    out = tmp_path_factory.mktemp("runs") / "synthetic-lwir"
    run(["psnr", "ssim"], dataset, out=out, splits=0, bootstrap=100, report=False)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    summary["metrics"]["ssim"]["display_name"] = EVIL
    summary["metrics"]["ssim"]["citation"] = f"{EVIL}, Journal of <b>Tests</b>, 2026"
    (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_report import write_run

    return write_run(tmp_path_factory.mktemp("fixture") / "synthetic-lwir", n_contents=3)


@pytest.fixture(scope="module")
def tiiqad_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run on a dataset without distortion types: no-reference metrics only."""
    from test_report import DEFAULT_METRICS, write_run

    nr = tuple(m for m in DEFAULT_METRICS if m.family.endswith("NR"))
    folder = tmp_path_factory.mktemp("tiiqad") / "tiiqad"
    return write_run(
        folder, metrics=nr, distortions=(), n_contents=40, levels=1, name="TIIQAD",
        display_name="TIIQAD",
    )  # fmt: skip


def _open(context: Any, report: Path) -> tuple[Any, list[str], list[str]]:
    """Open ``report`` and wait for it; return the page, console problems and requests."""
    page = context.new_page()
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(report.as_uri(), wait_until="load")
    page.wait_for_function("document.querySelectorAll('div.chart .main-svg').length > 0")
    return page, problems, requests


def _spider(page: Any, key: str) -> dict[str, Any]:
    return page.evaluate(
        """key => {
            const div = document.getElementById(key);
            const axis = Array.from(div.querySelectorAll('.angularaxistick text'));
            return {
                drawn: div.querySelector('.main-svg') !== null,
                traces: div.data.map(t => t.type),
                axes: axis.map(e => e.textContent),
                legend: Array.from(div.querySelectorAll('.legendtext')).map(e => e.textContent),
                title: div.layout.title.text,
            };
        }""",
        key,
    )


def _not_blank(png: bytes) -> None:
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "screenshot has almost no distinct colours"
    assert sum(ImageStat.Stat(image).stddev) > 20, "screenshot is nearly uniform"
    # Some pixels are saturated trace colours, not only the greys of text and grid lines.
    assert sum(n for n, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 80) > 200


def _keep(png: bytes, name: str) -> None:
    """Also write a screenshot to ``$IQABENCH_SCREENSHOTS`` (if set) for a person to look at."""
    folder = os.environ.get("IQABENCH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.png").write_bytes(png)


def _intervals_and_n_in_every_cell(page: Any, key: str, columns: tuple[int, ...]) -> None:
    """Each SROCC and PLCC cell (1-based value columns) shows its 95% interval and its n."""
    cells = page.evaluate(
        """([key, columns]) => Array.from(document.querySelectorAll(`#table-${key} tbody tr`))
            .flatMap(tr => columns.map(c => tr.querySelectorAll('td')[c]))
            .map(td => [td.querySelector('.ci')?.innerText ?? '',
                        td.querySelector('.n')?.innerText ?? ''])""",
        [key, list(columns)],
    )
    assert cells, key
    for interval, n in cells:
        assert interval.startswith("[") and n.startswith("n="), (key, interval, n)


def _fits_the_page(page: Any) -> None:
    """Nothing is wider than the window; wide tables scroll inside their own box at most."""
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
    overflowing = page.evaluate(
        """Array.from(document.querySelectorAll('#summary .scroll, #tables .scroll'))
            .filter(d => d.scrollWidth > d.clientWidth + 1).map(d => d.parentElement.id)"""
    )
    assert overflowing == [], overflowing


def _check_common(
    page: Any, problems: list[str], requests: list[str], report: Path, tables: list[str]
) -> None:
    assert problems == []
    assert requests == [report.as_uri()], "the report must not load anything else"
    for key in tables:
        assert page.locator(f"#table-{key} tbody tr").count() >= 2, key
    # Best values are bold in the all-image tables (the best as printed); over splits only a
    # winner the test supports is, which a few splits may not give.
    key = "overall" if "all_images" not in tables else "all_images"
    assert page.locator(f"#table-{key} tbody strong").count() >= 1
    # Family is the first td: PLCC and SROCC are the next two columns of the overall table.
    _intervals_and_n_in_every_cell(page, "overall", (1, 2))
    _fits_the_page(page)
    assert page.evaluate("window.__pwned") is None
    assert page.locator('img[src="x"]').count() == 0


def test_report_of_a_real_synthetic_run(browser: Any, real_run: Path) -> None:
    report = build_report(real_run, formats=("html",))
    page, problems, requests = _open(browser, report)
    _check_common(page, problems, requests, report, TABLES)
    for key in ("perf-all", "perf-fr"):
        spider = _spider(page, key)
        assert spider["drawn"] and spider["traces"] == ["scatterpolar"] * 2, key
        assert spider["axes"] == TYPES, key
        assert EVIL in spider["legend"], key  # shown literally in the legend
    for key in ("perf-tr-nr", "perf-dl-nr"):  # no such metric in this run: said, not drawn
        assert "were evaluated in this run" in page.locator(f"#{key}").inner_text()
    assert EVIL in page.locator("#table-overall").inner_text()
    assert "Journal of <b>Tests</b>" in page.locator("#summary").inner_text()
    assert page.locator("#table-significance td.sig").count() == 4
    assert page.locator("div.chart[id^=scatter] .main-svg").count() >= 2
    # The statistic buttons switch the diagram.
    page.locator("#perf-all .updatemenu-button").nth(2).click()
    assert _spider(page, "perf-all")["title"].startswith("KROCC")
    shot = page.locator("#perf-all").screenshot()
    _not_blank(shot)
    _keep(shot, "real-spider-krocc")
    _keep(page.locator("#tables").screenshot(), "real-tables")
    assert problems == []
    page.close()


def test_report_with_every_family(browser: Any, fixture_run: Path) -> None:
    report = build_report(fixture_run, formats=("html",))
    page, problems, requests = _open(browser, report)
    all_images = ["all_images", *(f"all_images_{key}" for key in TABLES[1:])]
    _check_common(page, problems, requests, report, TABLES + all_images)
    _intervals_and_n_in_every_cell(page, "all_images", (1, 2))
    for key, n in (("perf-all", 5), ("perf-fr", 2), ("perf-tr-nr", 2), ("perf-dl-nr", 1)):
        spider = _spider(page, key)
        assert spider["drawn"] and len(spider["traces"]) == n, key
        assert spider["axes"] == TYPES, key
        assert (
            page.evaluate(f"document.getElementById('{key}').layout.polar.radialaxis.range")[1] == 1
        )
    # Small samples (five test images per type) are greyed in the tables.
    assert page.locator("#table-per_type_srocc td.small-sample").count() > 0
    assert page.locator("#small-samples").is_visible()
    for key in ("perf-all", "perf-tr-nr"):
        shot = page.locator(f"#{key}").screenshot()
        _not_blank(shot)
        _keep(shot, f"fixture-{key}")
    _keep(page.locator("#summary").screenshot(), "fixture-summary")
    _keep(page.locator("#tables").screenshot(), "fixture-tables")
    problems_text = page.locator("#problems").inner_text()
    assert "model file vif.npz not found" in problems_text
    assert "ImageNet weights not found" in problems_text
    assert "truncated PNG" in problems_text
    page.close()


def test_report_of_a_dataset_without_types(browser: Any, tiiqad_run: Path) -> None:
    report = build_report(tiiqad_run, formats=("html",))
    page, problems, requests = _open(browser, report)
    _check_common(page, problems, requests, report, ["overall", "all_images"])
    assert page.locator("#table-per_type_srocc").count() == 0  # it would repeat the overall
    bars = page.evaluate(
        """Array.from(document.querySelectorAll('#perf-all .trace.bars .point')).length"""
    )
    assert bars == 3  # one bar per no-reference metric, not a blank chart
    data = page.evaluate("document.getElementById('perf-all').data")
    assert all(t["type"] == "bar" and t["error_x"]["array"][0] is not None for t in data)
    assert "no distortion types" in page.locator("#performance").inner_text()
    shot = page.locator("#perf-all").screenshot()
    _not_blank(shot)
    _keep(shot, "tiiqad-bars")
    _keep(page.locator("#tables").screenshot(), "tiiqad-tables")
    assert problems == []
    page.close()
