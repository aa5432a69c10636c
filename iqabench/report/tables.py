"""Result tables: building them from runs, ranking cells, and writing CSV, Markdown and LaTeX.

A :class:`Table` is plain data (rows of formatted :class:`Cell` values under :class:`Column`
headers) shared by the HTML template and the exporters, so every output shows the same numbers.
In each column the best value is ranked 1 (shown bold) and the second best 2 (underlined),
following the statistic's direction: larger is better for PLCC, SROCC and KROCC (already
oriented so that agreement with people is positive), smaller for RMSE. Ranks compare values as
displayed (three decimals), so two cells that print the same share a rank.
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
    MetricResult,
    Run,
    distortion_name,
)

#: Order in which families are listed (others follow, in run order).
FAMILY_ORDER: tuple[str, ...] = ("TR-FR", "DL-FR", "TR-NR", "DL-NR")
DECIMALS = 3
MISSING = "–"


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
    """One formatted value; ``rank`` is 1 for the column's best, 2 for the second, else None."""

    value: float
    text: str
    spread: float | None = None
    spread_text: str = ""
    rank: int | None = None


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
    def has_spread(self) -> bool:
        return any(cell.spread is not None for row in self.rows for cell in row.cells)


def fmt(value: float | None) -> str:
    """A statistic as displayed: three decimals, or an en dash when missing."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.{DECIMALS}f}"


def rank_marks(values: Sequence[float], higher_is_better: bool) -> list[int | None]:
    """Rank 1 for the best displayed value, 2 for the second best, None for the rest.

    Values are compared as displayed (rounded to :data:`DECIMALS`); ties share a rank and the
    next distinct value gets the next rank. Missing (NaN) values are never ranked.
    """
    shown = [round(v, DECIMALS) if math.isfinite(v) else None for v in values]
    distinct = sorted({v for v in shown if v is not None}, reverse=higher_is_better)
    place = {v: i + 1 for i, v in enumerate(distinct[:2])}
    return [place.get(v) if v is not None else None for v in shown]


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Distinct labels for runs: the dataset name, with the folder name where names repeat."""
    labels = [run.label for run in runs]
    if len(set(labels)) == len(labels):
        return labels
    return [f"{run.label} ({run.path.name})" for run in runs]


def _ordered_metrics(runs: Sequence[Run]) -> list[MetricResult]:
    """Evaluated metrics of all runs, once each, grouped by family, then in run order."""
    seen: dict[str, MetricResult] = {}
    for run in runs:
        for metric in run.evaluated:
            seen.setdefault(metric.name, metric)
    order = {family: i for i, family in enumerate(FAMILY_ORDER)}
    return sorted(seen.values(), key=lambda m: order.get(m.family, len(order)))


def _build(runs: Sequence[Run], columns: list[Column], key: str, title: str, caption: str) -> Table:
    metrics = _ordered_metrics(runs)
    grid: list[list[Cell]] = [[] for _ in metrics]
    for column in columns:
        assert column.stat is not None
        run = runs[column.run]
        found = [run.metrics.get(m.name) for m in metrics]
        values = [
            r.value(column.stat, column.distortion) if r is not None and r.ok else math.nan
            for r in found
        ]
        marks = rank_marks(values, HIGHER_IS_BETTER[column.stat])
        for cells, result, value, mark in zip(grid, found, values, marks, strict=True):
            spread = result.spread(column.stat, column.distortion) if result else None
            iqr = spread.iqr if spread is not None else None
            cells.append(
                Cell(
                    value=value,
                    text=fmt(value),
                    spread=iqr,
                    spread_text=fmt(iqr) if iqr is not None else "",
                    rank=mark,
                )
            )
    rows = [
        Row(m.name, m.display_name, m.family, cells) for m, cells in zip(metrics, grid, strict=True)
    ]
    return Table(key=key, title=title, caption=caption, columns=columns, rows=rows)


def _caption(runs: Sequence[Run], lead: str) -> str:
    parts = [
        lead,
        "SROCC and KROCC on scores oriented so that agreement is positive; PLCC and RMSE "
        "after the five-parameter logistic mapping (RMSE in the dataset's score units).",
        "Best value in bold, second underlined.",
    ]
    splits = sorted({m.n_splits for run in runs for m in run.evaluated if m.by_splits})
    if splits:
        n = "/".join(str(s) for s in splits)
        parts.append(
            f"Trainable metrics: median over {n} content-disjoint splits' test sets, "
            "interquartile range in brackets."
        )
    return " ".join(parts)


def overall_table(runs: Sequence[Run]) -> Table:
    """PLCC, SROCC, KROCC and RMSE on all items, one column group per run."""
    labels = run_labels(runs) if len(runs) > 1 else [""]
    columns = [
        Column(STAT_LABELS[stat], stat=stat, group=labels[i], run=i)
        for i in range(len(runs))
        for stat in STATS
    ]
    lead = "Agreement with subjective scores over all distortion types."
    return _build(runs, columns, "overall", "Overall performance", _caption(runs, lead))


def per_type_table(runs: Sequence[Run], stat: str) -> Table:
    """One statistic per distortion type (and overall), one column group per run."""
    labels = run_labels(runs) if len(runs) > 1 else [""]
    columns: list[Column] = []
    for i, run in enumerate(runs):
        for code in run.dataset.distortions:
            columns.append(Column(distortion_name(code), stat, code, labels[i], i))
        columns.append(Column("Overall", stat, None, labels[i], i))
    label = STAT_LABELS[stat]
    lead = "Each distortion type is evaluated on its own items, with its own logistic mapping."
    return _build(
        runs, columns, f"per_type_{stat}", f"{label} per distortion type", _caption(runs, lead)
    )


def result_tables(runs: Sequence[Run]) -> list[Table]:
    """The overall table followed by one per-distortion table per statistic."""
    return [overall_table(runs), *(per_type_table(runs, stat) for stat in STATS)]


# ---------------------------------------------------------------------------------------------
# Exporters


def _header(column: Column) -> str:
    return f"{column.group}: {column.header}" if column.group else column.header


def to_csv(table: Table) -> str:
    """Plain numbers (full precision; IQR columns for trainable metrics when there are any)."""
    spread_columns = [
        any(row.cells[j].spread is not None for row in table.rows)
        for j in range(len(table.columns))
    ]
    header = ["metric", "display_name"] + (["family"] if table.show_family else [])
    for column, has_spread in zip(table.columns, spread_columns, strict=True):
        header.append(_header(column))
        if has_spread:
            header.append(f"{_header(column)} IQR")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        line = [row.key, row.label] + ([row.family] if table.show_family else [])
        for cell, has_spread in zip(row.cells, spread_columns, strict=True):
            line.append(_number(cell.value))
            if has_spread:
                line.append(_number(cell.spread))
        writer.writerow(line)
    return out.getvalue()


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
    text = cell.text + (f" ({cell.spread_text})" if cell.spread_text else "")
    if cell.rank == 1:
        return f"**{text}**"
    if cell.rank == 2:
        return f"<u>{text}</u>"
    return text


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured pipe table with its title and caption (underline as ``<u>``)."""
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
    text = escape_latex(cell.text)
    if cell.rank == 1:
        text = rf"\textbf{{{text}}}"
    elif cell.rank == 2:
        text = rf"\underline{{{text}}}"
    if cell.spread_text:
        text += rf" {{\scriptsize ({escape_latex(cell.spread_text)})}}"
    return text


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
