"""A typed, read-only view of a run folder: ``summary.json`` and ``scores.csv``.

The schema is documented in ``docs/results.md``; this module is the only place in the report
that knows its key names. Nothing here touches the score store. Anything a user can get wrong
(a missing folder, a file from another tool, a schema this version does not read) raises
:class:`~iqabench.errors.UserError` with one line naming the file and the key at fault.

Two protocols give a metric's figures (:class:`Figure`), and a table or chart shows one of them:
``"splits"``, the statistic on each content-disjoint split's test set summarised by its median
and the central 95% of the split values (every metric, training-free ones included, so that
all are compared on the same test sets), and ``"all"``, the statistic on every image with its
bootstrap interval (training-free metrics only). A cross-dataset run (trainable metrics trained
on another dataset, see :mod:`iqabench.cross_dataset`) has a third, ``"cross-dataset"``: every
metric's statistic on every test image, with its bootstrap interval, figures as under
``"all"``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import UserError

#: The statistics a report can rank by, in display order.
STATS: tuple[str, ...] = ("plcc", "srocc", "krocc", "rmse")
#: Statistics where a larger value means closer agreement with people.
HIGHER_IS_BETTER: dict[str, bool] = {"plcc": True, "srocc": True, "krocc": True, "rmse": False}
STAT_LABELS: dict[str, str] = {"plcc": "PLCC", "srocc": "SROCC", "krocc": "KROCC", "rmse": "RMSE"}
#: The evaluation protocols a table or chart can show (see the module docstring).
PROTOCOLS: tuple[str, ...] = ("splits", "all", "cross-dataset")
#: Fewest test images for a statistic that is not a small sample, when a summary does not say.
DEFAULT_MIN_TEST_ITEMS = 10
#: Display names of the distortion codes used by the thermal datasets; others are shown as is.
DISTORTION_NAMES: dict[str, str] = {
    "AWGN": "White noise",
    "BLU": "Blurring",
    "NU": "Non-uniformity",
    "JPG": "JPEG",
    "J2K": "JPEG2000",
}


def distortion_name(code: str) -> str:
    """The display name of a distortion code (unknown codes are returned unchanged)."""
    return DISTORTION_NAMES.get(code, code)


@dataclass(frozen=True)
class Stats:
    """The statistics of one metric on one set of items (all items or one distortion type)."""

    plcc: float
    srocc: float
    krocc: float
    rmse: float
    n: int
    plcc_ci: tuple[float, float] | None = None
    srocc_ci: tuple[float, float] | None = None
    mapping_kind: str | None = None
    mapping_params: tuple[float, ...] | None = None
    mapping_converged: bool | None = None
    mapping_domain: tuple[float, float] | None = None
    mapping_note: str = ""

    def get(self, stat: str) -> float:
        return float(getattr(self, stat))

    def interval(self, stat: str) -> tuple[float, float] | None:
        """The bootstrap interval of ``stat`` (SROCC and PLCC only; None otherwise)."""
        return {"srocc": self.srocc_ci, "plcc": self.plcc_ci}.get(stat)


@dataclass(frozen=True)
class Spread:
    """One statistic summarised over the test sets of the splits.

    ``n`` counts the splits that gave a value and ``missing`` those that did not; ``interval``
    holds the central 95% of the split values; ``values`` the value of every split, in split
    order (NaN where it gave none), for paired tests between metrics.
    """

    median: float
    q25: float
    q75: float
    iqr: float
    min: float
    max: float
    n: int
    missing: int = 0
    interval: tuple[float, float] | None = None
    values: tuple[float, ...] = ()


@dataclass(frozen=True)
class SplitSizes:
    """How many images the splits' test sets hold (for one distortion type, or all)."""

    median: float
    values: tuple[int, ...]
    small_sample: bool


@dataclass(frozen=True)
class Figure:
    """A statistic as a table cell or a chart shows it, under one protocol.

    ``value`` is the median over splits (protocol ``"splits"``) or the statistic on every
    image (``"all"``); ``interval`` is the central 95% of the split values or the bootstrap
    interval; ``n_items`` the images it rests on (the median test-set size over splits);
    ``n_splits`` the splits that gave a value out of ``splits_total`` (None for ``"all"``);
    ``small_sample`` whether ``n_items`` is below the run's minimum test-set size.
    """

    value: float
    interval: tuple[float, float] | None = None
    n_items: float | None = None
    n_splits: int | None = None
    splits_total: int | None = None
    small_sample: bool = False
    values: tuple[float, ...] = ()

    @property
    def absent(self) -> bool:
        """True when there is no value (no split, or no image, gave one)."""
        return not math.isfinite(self.value)


MISSING_FIGURE = Figure(math.nan)


@dataclass(frozen=True)
class MetricResult:
    """Everything ``summary.json`` says about one metric."""

    name: str
    display_name: str
    family: str
    full_reference: bool
    higher_is_better: bool
    trainable: bool
    version: str
    params: dict[str, Any]
    citation: str
    calibration: str
    status: str
    reason: str | None
    notes: list[str]
    #: For metrics built on a network: started from pretrained weights (None: no network).
    pretrained: bool | None
    n_scored: int
    n_failed: int
    seconds: float | None
    evaluation: str
    overall: Stats | None
    per_type: dict[str, Stats]
    n_splits: int
    split_overall: dict[str, Spread]
    split_per_type: dict[str, dict[str, Spread]]
    split_sizes: SplitSizes | None = None
    split_sizes_per_type: dict[str, SplitSizes] = field(default_factory=dict)
    min_test_items: int = DEFAULT_MIN_TEST_ITEMS

    @property
    def ok(self) -> bool:
        """True when the metric was evaluated (it has overall statistics)."""
        return self.status == "ok" and self.overall is not None

    @property
    def by_splits(self) -> bool:
        """True for a trainable metric: fitted per split, ``overall`` is cross-validated."""
        return self.evaluation == "splits"

    @property
    def trained_elsewhere(self) -> bool:
        """True for a trainable metric of a cross-dataset run: trained on another dataset."""
        return self.evaluation == "cross-dataset"

    def has(self, protocol: str) -> bool:
        """Whether this metric has figures under ``protocol`` (``"all"`` and
        ``"cross-dataset"``: statistics on every image, which split-fitted metrics lack)."""
        if protocol == "splits":
            return self.ok and bool(self.split_overall)
        return self.ok and not self.by_splits

    def figure(self, stat: str, distortion: str | None = None, protocol: str = "splits") -> Figure:
        """``stat`` overall or for one distortion type under ``protocol`` (NaN if absent)."""
        if not self.has(protocol):
            return MISSING_FIGURE
        if protocol == "splits":
            return self._split_figure(stat, distortion)
        stats = self.overall if distortion is None else self.per_type.get(distortion)
        if stats is None:
            return MISSING_FIGURE
        return Figure(
            value=stats.get(stat),
            interval=stats.interval(stat),
            n_items=float(stats.n),
            small_sample=stats.n < self.min_test_items,
        )

    def value(self, stat: str, distortion: str | None = None, protocol: str = "splits") -> float:
        """The value of :meth:`figure` alone."""
        return self.figure(stat, distortion, protocol).value

    def spread(self, stat: str, distortion: str | None = None) -> Spread | None:
        """The spread over splits of ``stat`` (None when it was not computed)."""
        table = self.split_overall if distortion is None else self.split_per_type.get(distortion)
        return (table or {}).get(stat)

    def _split_figure(self, stat: str, distortion: str | None) -> Figure:
        spread = self.spread(stat, distortion)
        if spread is None:
            return MISSING_FIGURE
        sizes = (
            self.split_sizes if distortion is None else self.split_sizes_per_type.get(distortion)
        )
        return Figure(
            value=spread.median,
            interval=spread.interval,
            n_items=sizes.median if sizes is not None else None,
            n_splits=spread.n,
            splits_total=spread.n + spread.missing,
            small_sample=sizes.small_sample if sizes is not None else False,
            values=spread.values,
        )


@dataclass(frozen=True)
class DatasetInfo:
    """The dataset block of ``summary.json``."""

    name: str
    display_name: str
    root: str
    n_images: int
    n_contents: int
    distortions: list[str]
    score_type: str
    higher_is_better: bool
    score_label: str = "MOS"
    score_scale: str | None = None
    score_range: tuple[float, float] | None = None
    #: SHA-256 of the content of its images and their labels (None in older summaries).
    fingerprint: str | None = None


@dataclass(frozen=True)
class ScoreRow:
    """One row of ``scores.csv``; ``split`` is None for a training-free metric."""

    metric: str
    split: int | None
    item_id: str
    image: str
    ref: str
    distortion: str
    level: str
    content: str
    mos: float
    quality: float
    score: float | None
    error: str


@dataclass(frozen=True)
class Points:
    """One metric's item-level scores for scatter plots and significance tests.

    ``score`` is the raw output for a training-free metric and, for a trainable metric, the
    cross-validated prediction (averaged over the splits where the item was a test item).
    ``quality`` is the subjective score oriented so that higher is better (what statistics and
    the logistic mapping are computed against).
    """

    item_ids: list[str]
    score: list[float]
    quality: list[float]
    distortion: list[str]


@dataclass
class Run:
    """A loaded run folder."""

    path: Path
    iqabench_version: str
    created: str
    software: dict[str, str]
    dataset: DatasetInfo
    protocol: dict[str, Any]
    timing: dict[str, Any]
    counts: dict[str, int]
    metrics: dict[str, MetricResult]
    failures: list[dict[str, Any]]
    warnings: list[str]
    rows: list[ScoreRow] = field(repr=False)
    #: The dataset trainable metrics were trained on (cross-dataset runs only).
    train_dataset: DatasetInfo | None = None

    @property
    def label(self) -> str:
        """A short name for the run: the dataset's display name."""
        return self.dataset.display_name or self.dataset.name

    @property
    def protocol_label(self) -> str:
        """The run's protocol in a few words, e.g. ``10 content splits`` or ``trained on X``."""
        if self.default_protocol == "cross-dataset" and self.train_dataset is not None:
            return f"trained on {self.train_dataset.display_name}"
        if self.default_protocol == "splits":
            parts = (str(self.protocol.get("splits")), self.protocol.get("split_mode"), "splits")
            return " ".join(part for part in parts if part)
        return "all images"

    @property
    def evaluated(self) -> list[MetricResult]:
        """The metrics that have statistics, in run order."""
        return [m for m in self.metrics.values() if m.ok]

    @property
    def default_protocol(self) -> str:
        """``"cross-dataset"`` for a cross-dataset run, ``"splits"`` when the run has splits
        (every metric is compared on them), else ``"all"``."""
        if self.protocol.get("name") == "cross-dataset":
            return "cross-dataset"
        return "splits" if int(self.protocol.get("splits") or 0) > 0 else "all"

    @property
    def test_fraction(self) -> float:
        """The share of scenes in each split's test set."""
        return 1.0 - float(self.protocol.get("train_fraction", 0.8))

    @property
    def min_test_items(self) -> int:
        return int(self.protocol.get("min_test_items") or DEFAULT_MIN_TEST_ITEMS)

    def under(self, protocol: str) -> list[MetricResult]:
        """The evaluated metrics that have figures under ``protocol``, in run order."""
        return [m for m in self.evaluated if m.has(protocol)]

    @cached_property
    def _rows_by_metric(self) -> dict[str, list[ScoreRow]]:
        grouped: dict[str, list[ScoreRow]] = {}
        for row in self.rows:
            grouped.setdefault(row.metric, []).append(row)
        return grouped

    def points(self, metric: str) -> Points:
        """Item-level scores of ``metric`` (errors left out), in first-seen item order."""
        sums: dict[str, list[float]] = {}
        first: dict[str, ScoreRow] = {}
        for row in self._rows_by_metric.get(metric, []):
            if row.score is None:
                continue
            sums.setdefault(row.item_id, []).append(row.score)
            first.setdefault(row.item_id, row)
        ids = list(sums)
        return Points(
            item_ids=ids,
            score=[math.fsum(sums[i]) / len(sums[i]) for i in ids],
            quality=[first[i].quality for i in ids],
            distortion=[first[i].distortion for i in ids],
        )


def load_run(run_dir: str | Path) -> Run:
    """Read and check a run folder's ``summary.json`` and ``scores.csv``."""
    from ..results import read_summary

    path = Path(run_dir)
    data = read_summary(path)
    summary_path = path / "summary.json"
    reader = _Reader(summary_path)
    dataset = reader.mapping(data, "dataset")
    metrics = reader.mapping(data, "metrics")
    protocol = reader.mapping(data, "protocol")
    reader.min_test_items = int(protocol.get("min_test_items") or DEFAULT_MIN_TEST_ITEMS)
    train = data.get("train_dataset")
    return Run(
        path=path,
        iqabench_version=str(data.get("iqabench_version", "")),
        created=str(data.get("created", "")),
        software={str(k): str(v) for k, v in reader.mapping(data, "software").items()},
        dataset=reader.dataset(dataset, "dataset"),
        train_dataset=reader.dataset(train, "train_dataset") if train is not None else None,
        protocol=dict(protocol),
        timing=dict(reader.mapping(data, "timing")),
        counts={str(k): int(v or 0) for k, v in reader.mapping(data, "counts").items()},
        metrics={str(k): reader.metric(str(k), v) for k, v in metrics.items()},
        failures=[dict(f) for f in reader.sequence(data, "failures", "")],
        warnings=[str(w) for w in reader.sequence(data, "warnings", "")],
        rows=_read_scores(path / "scores.csv"),
    )


class _Reader:
    """Typed access to summary.json with errors that name the key at fault."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.min_test_items = DEFAULT_MIN_TEST_ITEMS

    def _missing(self, where: str, key: str, kind: str) -> UserError:
        place = f"{where}.{key}" if where else key
        return UserError(f"{self.path}: {place} is missing or is not {kind}")

    def mapping(self, data: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
        value = data.get(key)
        if not isinstance(value, Mapping):
            raise self._missing(where, key, "an object")
        return value

    def sequence(self, data: Mapping[str, Any], key: str, where: str) -> list[Any]:
        value = data.get(key)
        if not isinstance(value, list):
            raise self._missing(where, key, "a list")
        return value

    def text(self, data: Mapping[str, Any], key: str, where: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise self._missing(where, key, "a string")
        return value

    def integer(self, data: Mapping[str, Any], key: str, where: str) -> int:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._missing(where, key, "an integer")
        return value

    def number(self, data: Mapping[str, Any], key: str, where: str) -> float:
        value = data.get(key)
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._missing(where, key, "a number")
        return float(value)

    def dataset(self, data: Any, where: str) -> DatasetInfo:
        """A dataset block (``dataset``, or ``train_dataset`` of a cross-dataset run)."""
        if not isinstance(data, Mapping):
            raise UserError(f"{self.path}: {where} is not an object")
        return DatasetInfo(
            name=self.text(data, "name", where),
            display_name=str(data.get("display_name") or data.get("name")),
            root=str(data.get("root", "")),
            n_images=self.integer(data, "n_images", where),
            n_contents=self.integer(data, "n_contents", where),
            distortions=[str(d) for d in self.sequence(data, "distortions", where)],
            score_type=str(data.get("score_type", "")),
            higher_is_better=bool(data.get("higher_is_better", True)),
            score_label=str(data.get("score_label") or "MOS"),
            score_scale=data.get("score_scale") or None,
            score_range=_interval(data.get("score_range")),
            fingerprint=str(data["fingerprint"]) if data.get("fingerprint") else None,
        )

    def stats(self, data: Any, where: str) -> Stats:
        if not isinstance(data, Mapping):
            raise UserError(f"{self.path}: {where} is not an object")
        mapping = data.get("mapping") if isinstance(data.get("mapping"), Mapping) else {}
        params = mapping.get("params")
        return Stats(
            plcc=self.number(data, "plcc", where),
            srocc=self.number(data, "srocc", where),
            krocc=self.number(data, "krocc", where),
            rmse=self.number(data, "rmse", where),
            n=self.integer(data, "n", where),
            plcc_ci=_interval(data.get("plcc_ci")),
            srocc_ci=_interval(data.get("srocc_ci")),
            mapping_kind=mapping.get("kind"),
            mapping_params=tuple(float(p) for p in params) if isinstance(params, list) else None,
            mapping_converged=mapping.get("converged"),
            mapping_domain=_interval(mapping.get("domain")),
            mapping_note=str(mapping.get("note") or ""),
        )

    def spreads(self, data: Any, where: str) -> dict[str, Spread]:
        if not isinstance(data, Mapping):
            raise UserError(f"{self.path}: {where} is not an object")
        found: dict[str, Spread] = {}
        for stat in STATS:
            block = data.get(stat)
            if not block:  # a statistic not computed on splits is simply absent
                continue
            at = f"{where}.{stat}"
            values = block.get("values") if isinstance(block.get("values"), list) else []
            found[stat] = Spread(
                median=self.number(block, "median", at),
                q25=self.number(block, "q25", at),
                q75=self.number(block, "q75", at),
                iqr=self.number(block, "iqr", at),
                min=self.number(block, "min", at),
                max=self.number(block, "max", at),
                n=self.integer(block, "n", at),
                missing=int(block.get("missing") or 0),
                interval=_interval(block.get("interval")),
                values=tuple(math.nan if v is None else float(v) for v in values),
            )
        return found

    def sizes(self, data: Any) -> SplitSizes | None:
        """The ``test_items`` block of one set (None when absent, as in older summaries)."""
        if not isinstance(data, Mapping) or data.get("median") is None:
            return None
        return SplitSizes(
            median=float(data["median"]),
            values=tuple(int(v) for v in data.get("values") or []),
            small_sample=bool(data.get("small_sample", False)),
        )

    def metric(self, name: str, data: Any) -> MetricResult:
        where = f"metrics.{name}"
        if not isinstance(data, Mapping):
            raise UserError(f"{self.path}: {where} is not an object")
        status = self.text(data, "status", where)
        overall = data.get("overall")
        splits = data.get("splits") if isinstance(data.get("splits"), Mapping) else {}
        per_type = data.get("per_type") if isinstance(data.get("per_type"), Mapping) else {}
        split_per_type = (
            splits.get("per_type") if isinstance(splits.get("per_type"), Mapping) else {}
        )
        sizes = splits.get("test_items") if isinstance(splits.get("test_items"), Mapping) else {}
        sizes_per_type = sizes.get("per_type") if isinstance(sizes.get("per_type"), Mapping) else {}
        seconds = data.get("seconds")
        return MetricResult(
            name=name,
            display_name=str(data.get("display_name") or name),
            family=self.text(data, "family", where),
            full_reference=bool(data.get("full_reference", False)),
            higher_is_better=bool(data.get("higher_is_better", True)),
            trainable=bool(data.get("trainable", False)),
            version=str(data.get("version", "")),
            params=dict(data.get("params") or {}),
            citation=str(data.get("citation") or ""),
            calibration=str(data.get("calibration") or "not recorded"),
            status=status,
            reason=data.get("reason"),
            notes=[str(n) for n in data.get("notes") or []],
            pretrained=data.get("pretrained") if isinstance(data.get("pretrained"), bool) else None,
            n_scored=int(data.get("n_scored") or 0),
            n_failed=int(data.get("n_failed") or 0),
            seconds=float(seconds) if isinstance(seconds, int | float) else None,
            evaluation=str(data.get("evaluation") or "full"),
            overall=self.stats(overall, f"{where}.overall") if overall else None,
            per_type={
                str(k): self.stats(v, f"{where}.per_type.{k}") for k, v in per_type.items() if v
            },
            n_splits=int(splits.get("n") or 0),
            split_overall=self.spreads(splits.get("overall") or {}, f"{where}.splits.overall"),
            split_per_type={
                str(k): self.spreads(v, f"{where}.splits.per_type.{k}")
                for k, v in split_per_type.items()
            },
            split_sizes=self.sizes(sizes.get("overall")),
            split_sizes_per_type={
                str(k): found for k, v in sizes_per_type.items() if (found := self.sizes(v))
            },
            min_test_items=self.min_test_items,
        )


def _interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list) and len(value) == 2 and all(v is not None for v in value):
        return float(value[0]), float(value[1])
    return None


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _read_scores(path: Path) -> list[ScoreRow]:
    from ..results import SCORE_COLUMNS

    if not path.is_file():
        raise UserError(f"{path} is missing: the run folder is incomplete (rerun `iqabench run`)")
    rows: list[ScoreRow] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in SCORE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: header lacks column {missing[0]!r}")
        for line, rec in enumerate(reader, start=2):
            try:
                rows.append(
                    ScoreRow(
                        metric=rec["metric"],
                        split=int(rec["split"]) if rec["split"].strip() else None,
                        item_id=rec["item_id"],
                        image=rec["image"],
                        ref=rec["ref"],
                        distortion=rec["distortion"],
                        level=rec["level"],
                        content=rec["content"],
                        mos=float(rec["mos"]),
                        quality=float(rec["quality"]),
                        score=None if rec["error"].strip() else _float(rec["score"]),
                        error=rec["error"],
                    )
                )
            except (AttributeError, TypeError, ValueError) as exc:
                raise UserError(f"{path}, line {line}: {exc}") from None
    return rows
