"""Result tables: building them from runs, marking cells, and writing CSV, Markdown and LaTeX.

A :class:`Table` is plain data (rows of formatted :class:`Cell` values under :class:`Column`
headers) shared by the HTML template and the exporters, so every output shows the same numbers.
Each table shows one protocol (:data:`~iqabench.report.results.PROTOCOLS`): the default tables
compare every metric on the same split test sets; the all-image tables, for training-free
metrics only, are labelled as such; a cross-dataset run's tables show every metric on every
test image. A comparison of runs whose protocols differ (a within-dataset run beside a
cross-dataset one) shows each run's columns under its own protocol (:data:`PER_RUN`), named in
the column group. Every cell carries its 95% interval (where there is one)
and its n: the test images per split (median) and how many splits gave a value, or the number
of images. A statistic on fewer test images than the run's minimum is a small sample: marked
with a dagger, greyed in HTML, and never bold.

Bold means what the caption says. Under the split protocol it marks only a difference the test
supports: the best median of a column is bold when the corrected resampled t-test over splits
(Nadeau and Bengio 2003, alpha 0.05, :func:`iqabench.evaluate.corrected_resampled_ttest`)
finds it better than every other median of the column (an intersection-union test: each
comparison at level alpha, all of them required, so the claim holds at level alpha without a
multiplicity correction); otherwise no cell of the column is bold. Under the all-image
protocol: the best value as printed, with no claim of significance (the F-test matrix of the
report compares those metrics). Directions follow the statistic: larger is better for PLCC,
SROCC and KROCC (already oriented so that agreement with people is positive), smaller for RMSE.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .results import (
    HIGHER_IS_BETTER,
    STAT_LABELS,
    STATS,
    Figure,
    MetricResult,
    Run,
    distortion_name,
)

#: Order in which families are listed (others follow, in run order).
FAMILY_ORDER: tuple[str, ...] = ("TR-FR", "DL-FR", "TR-NR", "DL-NR")
DECIMALS = 3
MISSING = "–"
#: The mark of a small-sample statistic in every output.
SMALL_MARK = "†"
#: Level of the tests that decide what is bold under the split protocol.
ALPHA = 0.05
#: The "protocol" of a comparison table whose runs' protocols differ: each run's own.
PER_RUN = "per-run"


@dataclass(frozen=True)
class Column:
    """One value column: a statistic, overall or for one distortion type, of one run."""

    header: str
    stat: str | None = None
    distortion: str | None = None
    group: str = ""
    run: int = 0


@dataclass(frozen=True)
class Cell:
    """One formatted value with its interval, its n, and its marks."""

    value: float
    text: str
    interval_text: str = ""
    n_text: str = ""
    small_sample: bool = False
    best: bool = False
    lower: float | None = None
    upper: float | None = None
    n_items: float | None = None
    n_splits: int | None = None

    @property
    def detail(self) -> str:
        """Interval and n on one line, e.g. ``[0.880, 0.940] n=50, 10/10``."""
        return " ".join(part for part in (self.interval_text, self.n_text) if part)


@dataclass(frozen=True)
class Row:
    """One metric's cells."""

    key: str
    label: str
    family: str
    cells: list[Cell]


@dataclass(frozen=True)
class Table:
    """A titled table with a caption, ready for HTML, CSV, Markdown or LaTeX."""

    key: str
    title: str
    caption: str
    columns: list[Column]
    rows: list[Row]
    show_family: bool = True
    protocol: str = "splits"

    @property
    def groups(self) -> list[tuple[str, int]]:
        """Column groups as (label, number of columns); empty when no column has a group."""
        if not any(c.group for c in self.columns):
            return []
        spans: list[tuple[str, int]] = []
        for column in self.columns:
            if spans and spans[-1][0] == column.group:
                spans[-1] = (column.group, spans[-1][1] + 1)
            else:
                spans.append((column.group, 1))
        return spans

    @property
    def has_small_samples(self) -> bool:
        return any(cell.small_sample for row in self.rows for cell in row.cells)


def fmt(value: float | None) -> str:
    """A statistic as displayed: three decimals, or an en dash when missing."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.{DECIMALS}f}"


def n_text(figure: Figure) -> str:
    """``n=50, 10/10`` (test images per split, splits with a value) or ``n=300`` (images)."""
    if figure.n_items is None:
        return ""
    text = f"n={figure.n_items:g}"
    if figure.splits_total:
        text += f", {figure.n_splits}/{figure.splits_total}"
    return text


def interval_text(figure: Figure) -> str:
    if figure.interval is None or not all(math.isfinite(v) for v in figure.interval):
        return ""
    return f"[{fmt(figure.interval[0])}, {fmt(figure.interval[1])}]"


def best_marks(
    figures: Sequence[Figure],
    higher_is_better: bool,
    protocol: str,
    test_fraction: float,
    alpha: float = ALPHA,
) -> list[bool]:
    """Which cells of a column are bold (see the module docstring).

    Small samples and missing values are never bold and never lead. Under the split protocol
    the leader's split values are tested against every other cell's (small samples included),
    pairing splits by index, and the leader is bold only when it is significantly better than
    all of them (a tie for the lead is no win); under the all-image protocol the best printed
    value (and its ties) is bold.
    """
    from ..evaluate import corrected_resampled_ttest

    eligible = [not f.absent and not f.small_sample for f in figures]
    shown = [
        round(f.value, DECIMALS) if ok else None for f, ok in zip(figures, eligible, strict=True)
    ]
    if not any(v is not None for v in shown):
        return [False] * len(figures)
    pick = max if higher_is_better else min
    top = pick(v for v in shown if v is not None)
    leaders = [i for i, v in enumerate(shown) if v == top]
    marks = [v == top for v in shown]
    if protocol != "splits":
        return marks
    if len(leaders) > 1:
        return [False] * len(figures)
    leader = figures[leaders[0]]
    sign = 1 if higher_is_better else -1
    for i, figure in enumerate(figures):
        if i == leaders[0] or figure.absent:
            continue
        test = corrected_resampled_ttest(leader.values, figure.values, test_fraction, alpha)
        if sign * test["verdict"] != 1:
            return [False] * len(figures)
    return marks


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Distinct labels for runs: the dataset name (and the run's protocol where protocols
    differ), with the folder name where labels repeat."""
    labels = [run.label for run in runs]
    if shared_protocol(runs) == PER_RUN:
        labels = [f"{run.label}, {run.protocol_label}" for run in runs]
    if len(set(labels)) == len(labels):
        return labels
    return [f"{label} ({run.path.name})" for label, run in zip(labels, runs, strict=True)]


def shared_protocol(runs: Sequence[Run]) -> str:
    """The protocol of the default tables: the runs' own when they share one, else
    :data:`PER_RUN` (each run's columns under its own protocol)."""
    protocols = {run.default_protocol for run in runs}
    return protocols.pop() if len(protocols) == 1 else PER_RUN


def _protocol_of(run: Run, protocol: str) -> str:
    """The protocol of ``run``'s columns in a table of ``protocol``."""
    return run.default_protocol if protocol == PER_RUN else protocol


def _ordered_metrics(runs: Sequence[Run], protocol: str) -> list[MetricResult]:
    """Metrics with figures under ``protocol`` in any run, once each, grouped by family."""
    seen: dict[str, MetricResult] = {}
    for run in runs:
        for metric in run.under(_protocol_of(run, protocol)):
            seen.setdefault(metric.name, metric)
    order = {family: i for i, family in enumerate(FAMILY_ORDER)}
    return sorted(seen.values(), key=lambda m: order.get(m.family, len(order)))


def _cell(figure: Figure, best: bool) -> Cell:
    lower, upper = figure.interval if figure.interval is not None else (None, None)
    return Cell(
        value=figure.value,
        text=fmt(figure.value),
        interval_text=interval_text(figure),
        n_text=n_text(figure) if not figure.absent or figure.splits_total else "",
        small_sample=figure.small_sample and not figure.absent,
        best=best,
        lower=lower,
        upper=upper,
        n_items=figure.n_items,
        n_splits=figure.n_splits,
    )


def _build(
    runs: Sequence[Run],
    columns: list[Column],
    key: str,
    title: str,
    caption: str,
    protocol: str,
) -> Table:
    metrics = _ordered_metrics(runs, protocol)
    grid: list[list[Cell]] = [[] for _ in metrics]
    for column in columns:
        assert column.stat is not None
        run = runs[column.run]
        own = _protocol_of(run, protocol)
        figures = [
            found.figure(column.stat, column.distortion, own)
            if (found := run.metrics.get(m.name)) is not None
            else Figure(math.nan)
            for m in metrics
        ]
        marks = best_marks(figures, HIGHER_IS_BETTER[column.stat], own, run.test_fraction)
        for cells, figure, mark in zip(grid, figures, marks, strict=True):
            cells.append(_cell(figure, mark))
    rows = [
        Row(m.name, m.display_name, m.family, cells) for m, cells in zip(metrics, grid, strict=True)
    ]
    return Table(key, title, caption, columns, rows, protocol=protocol)


def _caption(runs: Sequence[Run], lead: str, protocol: str) -> str:
    minimum = min(run.min_test_items for run in runs)
    statistics = (
        "SROCC and KROCC on oriented scores (agreement is positive); PLCC and RMSE after a "
        "monotonic logistic mapping fitted on each set (RMSE in the dataset's score units)."
    )
    small = f"{SMALL_MARK} small sample (fewer than {minimum} test images): greyed, never bold."
    if protocol == PER_RUN:
        parts = [
            "Each run's columns under its own protocol, named in the column group: the median "
            "over its split test sets (n = test images per split, then splits with a value / "
            "all splits), or every image (n = images) for a run without splits or a "
            "cross-dataset run (trainable metrics trained on another dataset). A median over "
            "small split test sets and a statistic on all test images rest on different "
            "numbers of images: compare them with their n and interval.",
            lead,
            statistics,
            "Bold, within each run's columns: under splits, the best median only where the "
            f"corrected resampled t-test (alpha {ALPHA}) finds it better than every other; "
            "otherwise the best value as printed (no claim of significance).",
            small,
        ]
    elif protocol == "cross-dataset":
        trained = sorted({run.train_dataset.display_name for run in runs if run.train_dataset})
        parts = [
            "Cross-dataset: trainable metrics trained on every image of "
            f"{' / '.join(trained) or 'another dataset'} (validation scenes carved from it), "
            "every metric on every image of the test dataset: 95% bootstrap interval over test "
            "images in brackets (SROCC, PLCC); n = test images.",
            lead,
            statistics,
            "Bold: the best value as printed (no claim of significance; the F-test matrix "
            "compares the metrics).",
            small,
        ]
    elif protocol == "splits":
        splits = "/".join(sorted({str(run.protocol.get("splits")) for run in runs}))
        parts = [
            f"Every metric on the test sets of the same {splits} content-disjoint splits: "
            "median over splits, central 95% of the split values in brackets; n = test images "
            "per split (median), then splits with a value / all splits.",
            lead,
            statistics,
            "Bold: the best median, only where the corrected resampled t-test over splits "
            f"(Nadeau and Bengio 2003, alpha {ALPHA}) finds it better than every other median "
            "of the column; no bold: the splits cannot name a winner.",
            small,
        ]
    else:
        parts = [
            "Training-free metrics on every image: 95% bootstrap interval over images in "
            "brackets (SROCC, PLCC); n = images.",
            lead,
            statistics,
            "Bold: the best value as printed (no claim of significance).",
            small,
        ]
    return " ".join(parts)


_TITLES = {
    "splits": "",
    "all": "All images, training-free metrics: ",
    "cross-dataset": "Cross-dataset: ",
    PER_RUN: "",
}


def overall_table(runs: Sequence[Run], protocol: str | None = None) -> Table:
    """PLCC, SROCC, KROCC and RMSE over all distortion types, one column group per run."""
    protocol = protocol or shared_protocol(runs)
    labels = run_labels(runs) if len(runs) > 1 else [""]
    columns = [
        Column(STAT_LABELS[stat], stat=stat, group=labels[i], run=i)
        for i in range(len(runs))
        for stat in STATS
    ]
    lead = "Agreement with the subjective scores over all distortion types."
    key = "overall" if protocol == shared_protocol(runs) else "all_images"
    title = f"{_TITLES[protocol]}Overall performance"
    return _build(runs, columns, key, title, _caption(runs, lead, protocol), protocol)


def per_type_table(runs: Sequence[Run], stat: str, protocol: str | None = None) -> Table:
    """One statistic per distortion type (and overall), one column group per run."""
    protocol = protocol or shared_protocol(runs)
    labels = run_labels(runs) if len(runs) > 1 else [""]
    columns: list[Column] = []
    for i, run in enumerate(runs):
        for code in run.dataset.distortions:
            columns.append(Column(distortion_name(code), stat, code, labels[i], i))
        columns.append(Column("Overall", stat, None, labels[i], i))
    label = STAT_LABELS[stat]
    lead = "Each distortion type is evaluated on its own items, with its own mapping."
    prefix = "" if protocol == shared_protocol(runs) else "all_images_"
    title = f"{_TITLES[protocol]}{label} per distortion type"
    caption = _caption(runs, lead, protocol)
    return _build(runs, columns, f"{prefix}per_type_{stat}", title, caption, protocol)


def result_tables(runs: Sequence[Run]) -> list[Table]:
    """The default protocol's overall and per-type tables, then (when the default is the split
    protocol) the same tables on all images for the training-free metrics. Datasets without
    distortion types get the overall tables alone."""
    default = shared_protocol(runs)
    protocols = [default]
    if default == "splits" and any(run.under("all") for run in runs):
        protocols.append("all")
    typed = any(run.dataset.distortions for run in runs)
    tables = []
    for protocol in protocols:
        tables.append(overall_table(runs, protocol))
        if typed:  # without distortion types a per-type table would repeat the overall one
            tables += [per_type_table(runs, stat, protocol) for stat in STATS]
    return tables


# ---------------------------------------------------------------------------------------------
# Exporters


def _header(column: Column) -> str:
    return f"{column.group}: {column.header}" if column.group else column.header


def to_csv(table: Table) -> str:
    """Plain numbers at full precision: each value column is followed, where its cells have
    them, by its interval (``low``, ``high``), its n (test images, median over splits, or
    images), the splits that gave a value, and whether it is a small sample."""
    extras = [_csv_extras(table, j) for j in range(len(table.columns))]
    header = ["metric", "display_name"] + (["family"] if table.show_family else [])
    for column, wanted in zip(table.columns, extras, strict=True):
        header.append(_header(column))
        header += [f"{_header(column)} {name}" for name in wanted]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        line = [row.key, row.label] + ([row.family] if table.show_family else [])
        for cell, wanted in zip(row.cells, extras, strict=True):
            line.append(_number(cell.value))
            line += [_CSV_EXTRAS[name](cell) for name in wanted]
        writer.writerow(line)
    return out.getvalue()


_CSV_EXTRAS = {
    "low": lambda cell: _number(cell.lower),
    "high": lambda cell: _number(cell.upper),
    "n": lambda cell: _number(cell.n_items),
    "splits": lambda cell: "" if cell.n_splits is None else str(cell.n_splits),
    "small sample": lambda cell: "true" if cell.small_sample else "false",
}


def _csv_extras(table: Table, j: int) -> list[str]:
    """The extra CSV columns that column ``j`` needs (those some of its cells have)."""
    cells = [row.cells[j] for row in table.rows]
    present = {
        "low": any(c.lower is not None for c in cells),
        "high": any(c.upper is not None for c in cells),
        "n": any(c.n_items is not None for c in cells),
        "splits": any(c.n_splits is not None for c in cells),
        "small sample": any(c.n_items is not None for c in cells),
    }
    return [name for name, wanted in present.items() if wanted]


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return repr(float(value))


_MARKDOWN_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "*": "\\*",
        "_": "\\_",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
        "#": "\\#",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\n": " ",
    }
)


def escape_markdown(text: str) -> str:
    """Text that Markdown (GitHub flavour, which allows inline HTML) shows literally."""
    return text.translate(_MARKDOWN_SPECIAL)


def _markdown_cell(cell: Cell) -> str:
    text = cell.text + (SMALL_MARK if cell.small_sample else "")
    if cell.best:
        text = f"**{text}**"
    return f"{text} {escape_markdown(cell.detail)}" if cell.detail else text


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured pipe table with its title and caption (best values in bold)."""
    head = ["Metric"] + (["Family"] if table.show_family else [])
    head += [escape_markdown(_header(c)) for c in table.columns]
    align = [":--"] * (2 if table.show_family else 1) + ["--:"] * len(table.columns)
    lines = [f"**{escape_markdown(table.title)}**", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("| " + " | ".join(align) + " |")
    for row in table.rows:
        cells = [escape_markdown(row.label)]
        cells += [escape_markdown(row.family)] if table.show_family else []
        cells += [_markdown_cell(cell) for cell in row.cells]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", escape_markdown(table.caption), ""]
    return "\n".join(lines)


_LATEX_SPECIAL = str.maketrans(
    {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "<": r"\textless{}",
        ">": r"\textgreater{}",
        "–": "--",
        "\n": " ",
    }
)


def escape_latex(text: str) -> str:
    """Text that LaTeX typesets literally."""
    return text.translate(_LATEX_SPECIAL)


def _latex_cell(cell: Cell) -> str:
    """The value (bold when best, a dagger when a small sample) over its interval and n."""
    text = escape_latex(cell.text) + (r"$^\dagger$" if cell.small_sample else "")
    if cell.best:
        text = rf"\textbf{{{text}}}"
    if not cell.detail:
        return text
    lines = [text] + [
        rf"{{\scriptsize {escape_latex(part)}}}"
        for part in (cell.interval_text, cell.n_text)
        if part
    ]
    return r"\begin{tabular}[t]{@{}r@{}}" + r" \\ ".join(lines) + r"\end{tabular}"


def to_latex(table: Table) -> str:
    """A ``table`` environment with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``).

    Families are separated by ``\\midrule``; column groups (runs in a comparison) get a
    ``\\multicolumn`` header with ``\\cmidrule`` underneath.
    """
    lead = 2 if table.show_family else 1
    spec = "l" * lead + "r" * len(table.columns)
    lines = [
        r"\begin{table}[t]",
        r"  \centering",
        rf"  \caption{{{escape_latex(table.title)}. {escape_latex(table.caption)}}}",
        rf"  \label{{tab:iqabench-{table.key.replace('_', '-')}}}",
        rf"  \begin{{tabular}}{{{spec}}}",
        r"    \toprule",
    ]
    if table.groups:
        heads, rules, start = [""] * lead, [], lead + 1
        for label, span in table.groups:
            heads.append(rf"\multicolumn{{{span}}}{{c}}{{{escape_latex(label)}}}")
            rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
            start += span
        lines.append("    " + " & ".join(heads) + r" \\")
        lines.append("    " + " ".join(rules))
    head = ["Metric"] + (["Family"] if table.show_family else [])
    head += [escape_latex(c.header) for c in table.columns]
    lines.append("    " + " & ".join(head) + r" \\")
    lines.append(r"    \midrule")
    previous: str | None = None
    for row in table.rows:
        if table.show_family and previous is not None and row.family != previous:
            lines.append(r"    \midrule")
        previous = row.family
        cells = [escape_latex(row.label)]
        cells += [escape_latex(row.family)] if table.show_family else []
        cells += [_latex_cell(cell) for cell in row.cells]
        lines.append("    " + " & ".join(cells) + r" \\")
    lines += [r"    \bottomrule", r"  \end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


EXPORTERS = {"csv": to_csv, "md": to_markdown, "tex": to_latex}
