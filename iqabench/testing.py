"""The conformance suite for metric classes: the contract the runner relies on, in seconds.

In the spirit of scikit-learn's ``check_estimator``, for built-in metrics and plugins alike::

    from iqabench.testing import check_metric

    check_metric(MyMetric)   # raises MetricCheckError with one line per broken rule

or, in a test module, one pytest test per (metric, rule)::

    from iqabench.testing import parametrize_metric_checks

    @parametrize_metric_checks([MyMetric])
    def test_my_metric(metric_class, check):
        check(metric_class)

The rules, each a function of this module:

* ``attributes``: name, family, reference, direction, colour, version, citation, parameters and
  batch size are declared and consistent with each other and with the base class;
* ``card``: a built-in metric has a card matching its class; a plugin's card, when it ships
  one (``cards/NAME.yaml`` in the metric's package), reads and matches too;
* ``parameters``: an unknown parameter raises :class:`~iqabench.errors.MetricParameterError`;
  the parameters survive pickling (workers rebuild the metric from them) with the same cache key;
* ``lazy_imports``: importing the metric's module imports no heavy library (torch, pyiqa...);
* ``not_fitted``: a trainable metric without a model raises :class:`NotFittedError`;
* ``output``: ``score`` returns one finite float per image, inside ``score_range`` when the
  metric declares one, and leaves its input arrays unchanged;
* ``batch_invariance``: scoring a batch equals scoring each image alone;
* ``determinism``: scoring again, and with a fresh instance, gives the same numbers;
* ``input_kinds``: grey, RGB and 16-bit images, read as the runner reads them, all score;
* ``identical_best``: for a full-reference metric, an image compared with itself scores at
  least as well as its distorted versions.

Images are small (``conformance["size"]``, default 96x128) and synthetic. A metric declares
in its ``conformance`` class attribute the tiny ``params`` the suite should use (e.g. a
random-initialised backbone) and, for a :class:`~iqabench.metric.LearnedMetric`, whether it
may be trained here (``fit``); otherwise a learned metric is checked for its interface and
``NotFittedError`` only. A rule that needs a model file which is not installed is skipped with
that reason (in pytest) or reported as such by :func:`check_metric`.
"""

from __future__ import annotations

import atexit
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MetricParameterError, NotFittedError, UserError, WeightsNotFoundError
from .metric import FAMILIES, FeatureMetric, LearnedMetric, Metric

__all__ = ["MetricCheckError", "check_metric", "metric_rules", "parametrize_metric_checks"]

#: Libraries a metric module must not import when it is imported (only when it scores).
HEAVY_MODULES = (
    "torch",
    "torchvision",
    "timm",
    "pyiqa",
    "piq",
    "tensorflow",
    "jax",
    "cv2",
    "sklearn",
    "skimage",
    "pandas",
    "matplotlib",
    "plotly",
)
DEFAULT_SIZE = (96, 128)
#: Relative and absolute tolerance of "the same numbers" (batched deep networks differ by
#: rounding).
RTOL, ATOL = 1e-5, 1e-8
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class MetricCheckError(AssertionError):
    """One or more conformance rules are broken; the message has one line per rule."""


class CheckSkipped(Exception):
    """A rule that cannot run here (e.g. a model file is not installed)."""


@dataclass(frozen=True)
class Rule:
    """One conformance rule: its name, the check, and which metrics it concerns."""

    name: str
    check: Callable[[type[Metric], Mapping[str, Any]], None]
    applies: Callable[[type[Metric]], bool] = field(default=lambda cls: True)


# -- the images -------------------------------------------------------------------------------
@dataclass
class _Bench:
    """A metric's test images (read as the runner reads them) and, lazily, a ready instance."""

    cls: type[Metric]
    params: dict[str, Any]
    folder: Path
    kinds: dict[str, tuple[list[np.ndarray], list[np.ndarray] | None]]
    train: list[tuple[Path, Path, float, str]]
    _ready: Metric | None = None

    def images(self, kind: str = "grey") -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Copies of the three distorted images of ``kind`` and of their references (FR)."""
        images, refs = self.kinds[kind]
        return [i.copy() for i in images], None if refs is None else [r.copy() for r in refs]

    def fresh(self) -> Metric:
        """A new instance, ready to score (fitted on the training images when it must be)."""
        metric = _attempt(lambda: self.cls(**self.params))
        if isinstance(metric, LearnedMetric) and metric.requires_fit():
            if not self.cls.conformance.get("fit"):
                raise CheckSkipped(
                    "a learned metric is trained here only when it declares "
                    "conformance = {'fit': True, 'params': {...tiny settings...}}"
                )
            _attempt(lambda: metric.fit(*_labelled(self.train), seed=0))
        elif isinstance(metric, FeatureMetric) and _attempt(metric.pretrained_regressor) is None:
            _attempt(lambda: _fit_features(metric, self.train))
        return metric

    def ready(self) -> Metric:
        """One shared ready instance (see :meth:`fresh`)."""
        if self._ready is None:
            self._ready = self.fresh()
        return self._ready


def _attempt(action: Callable[[], Any]) -> Any:
    """``action()``, a missing model file turned into a skipped rule."""
    try:
        return action()
    except WeightsNotFoundError as exc:
        raise CheckSkipped(f"model file not installed: {exc}") from None


def _labelled(train: Sequence[tuple[Path, Path, float, str]]) -> tuple[list, list]:
    """Training and validation images for a learned metric (three scenes and one)."""
    from .metric import LabelledImage

    items = [LabelledImage(image=i, quality=q, content=c, ref=r) for i, r, q, c in train]
    return [x for x in items if x.content != "scene3"], [x for x in items if x.content == "scene3"]


def _fit_features(metric: FeatureMetric, train: Sequence[tuple[Path, Path, float, str]]) -> None:
    from .imageio import load_for_metric

    pairs = [
        load_for_metric(i, metric.colour, r if metric.full_reference else None)
        for i, r, *_ in train
    ]
    refs = [r for _, r in pairs] if metric.full_reference else None
    features = np.asarray(metric.features([p for p, _ in pairs], refs), dtype=np.float64)
    quality = np.array([q for *_, q, _ in train])
    metric.fit(features, quality, seed=0, groups=[c for *_, c in train])


def _scene(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A smooth random texture with a few sharp edges, on 30..225."""
    from scipy import ndimage

    field_ = ndimage.gaussian_filter(rng.normal(size=shape), sigma=max(shape) / 24)
    field_ = (field_ - field_.min()) / (np.ptp(field_) or 1.0)
    image = 40 + 150 * field_
    height, width = shape
    image[height // 4 : height // 2, width // 5 : width // 2] += 35
    yy, xx = np.mgrid[:height, :width]
    image[(yy - 2 * height // 3) ** 2 + (xx - 2 * width // 3) ** 2 < (min(shape) // 6) ** 2] -= 30
    return np.clip(image, 30, 225)


def _distort(rng: np.random.Generator, image: np.ndarray, level: int) -> np.ndarray:
    from scipy import ndimage

    blurred = ndimage.gaussian_filter(image, sigma=0.7 * level)
    return np.clip(blurred + rng.normal(0, 5 * level, image.shape), 0, 255)


def _write(folder: Path, name: str, grey: np.ndarray) -> dict[str, Path]:
    """``grey`` saved as 8-bit grey, 8-bit RGB and 16-bit grey PNG files."""
    from PIL import Image

    rgb = np.stack([grey * 1.05, grey, grey * 0.9], axis=-1).clip(0, 255)
    deep = (grey * 200 + 3000).astype(np.uint16)
    paths = {kind: folder / f"{name}-{kind}.png" for kind in ("grey", "rgb", "16-bit")}
    Image.fromarray(np.round(grey).astype(np.uint8)).save(paths["grey"])
    Image.fromarray(np.round(rgb).astype(np.uint8)).save(paths["rgb"])
    Image.fromarray(deep).save(paths["16-bit"])
    return paths


@cache
def _bench_of(cls: type[Metric], params_key: str) -> _Bench:
    from .imageio import load_for_metric

    params = json.loads(params_key)
    size = tuple(cls.conformance.get("size", DEFAULT_SIZE))
    folder = Path(tempfile.mkdtemp(prefix=f"iqabench-check-{cls.name}-"))
    atexit.register(shutil.rmtree, folder, True)
    rng = np.random.default_rng(20240611)
    files: dict[tuple[int, int], dict[str, Path]] = {}
    train = []
    for scene in range(4):
        clean = _scene(rng, size)  # type: ignore[arg-type]
        files[scene, 0] = _write(folder, f"s{scene}-ref", clean)
        for level in (1, 2, 3):
            files[scene, level] = _write(folder, f"s{scene}-l{level}", _distort(rng, clean, level))
            pair = (files[scene, level]["grey"], files[scene, 0]["grey"])
            train.append((*pair, float(4 - level), f"scene{scene}"))
    kinds: dict[str, tuple[list[np.ndarray], list[np.ndarray] | None]] = {}
    for kind in ("grey", "rgb", "16-bit"):
        loaded = [
            load_for_metric(
                files[scene, 2][kind],
                cls.colour,
                files[scene, 0][kind] if cls.full_reference else None,
            )
            for scene in range(3)
        ]
        refs = [r for _, r in loaded] if cls.full_reference else None
        kinds[kind] = ([image for image, _ in loaded], refs)  # type: ignore[misc]
    return _Bench(cls, params, folder, kinds, train)


def _bench(cls: type[Metric], params: Mapping[str, Any]) -> _Bench:
    return _bench_of(cls, json.dumps(dict(params), sort_keys=True, default=str))


def _scores(metric: Metric, images: list[np.ndarray], refs: list[np.ndarray] | None) -> np.ndarray:
    """``metric.score`` as a float64 vector, refusing anything but one value per image."""
    out = _attempt(lambda: metric.score(images, refs if metric.full_reference else None))
    try:
        values = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricCheckError(f"score returned {type(out).__name__}, not numbers") from None
    if values.shape != (len(images),):
        raise MetricCheckError(
            f"score returned shape {values.shape} for {len(images)} images; expected "
            f"({len(images)},): one number per image"
        )
    return values


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True))


# -- the rules --------------------------------------------------------------------------------
def check_attributes(cls: type[Metric], params: Mapping[str, Any]) -> None:
    """The class attributes the registry, runner and report read."""
    problems = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"name {name!r} must be lower case letters, digits, '.', '_' or '-'")
    family = getattr(cls, "family", None)
    if family not in FAMILIES:
        problems.append(f"family {family!r} must be one of {', '.join(FAMILIES)}")
    for flag in ("full_reference", "higher_is_better", "trainable", "gpu_recommended"):
        if not isinstance(getattr(cls, flag, None), bool):
            problems.append(f"{flag} must be True or False")
    if isinstance(family, str) and isinstance(cls.full_reference, bool):
        if family.endswith("-FR") != cls.full_reference:
            problems.append(f"family {family} contradicts full_reference={cls.full_reference}")
    if cls.colour not in ("grey", "rgb", "native"):
        problems.append(f"colour {cls.colour!r} must be grey, rgb or native")
    for text in ("version", "citation"):
        if not isinstance(getattr(cls, text, None), str) or not getattr(cls, text).strip():
            problems.append(f"{text} must be a non-empty string")
    if not isinstance(cls.batch_size, int) or cls.batch_size < 1:
        problems.append(f"batch_size {cls.batch_size!r} must be a whole number of at least 1")
    if not isinstance(cls.default_params, Mapping):
        problems.append("default_params must be a mapping of parameter name to default")
    else:
        for group in ("file_params", "runtime_params"):
            unknown = set(getattr(cls, group)) - set(cls.default_params)
            if unknown:
                problems.append(f"{group} names {sorted(unknown)[0]!r}, not in default_params")
    expected = issubclass(cls, (FeatureMetric, LearnedMetric))
    if cls.trainable != expected:
        problems.append(f"trainable is {cls.trainable} for a {_kind(cls)}")
    if cls.score_range is not None and (
        len(cls.score_range) != 2 or not cls.score_range[0] < cls.score_range[1]
    ):
        problems.append(f"score_range {cls.score_range!r} must be (low, high) with low < high")
    try:
        json.dumps(cls.describe())
    except (TypeError, ValueError) as exc:
        problems.append(f"describe() is not plain data: {exc}")
    if problems:
        raise MetricCheckError("; ".join(problems))


def check_card(cls: type[Metric], params: Mapping[str, Any]) -> None:
    """The card (built-in, or shipped by the plugin) exists where required and matches."""
    from .cards import load_cards, plugin_card

    built_in = cls.__module__.split(".")[0] == "iqabench"
    try:
        card = (
            load_cards("metrics").get(cls.name)
            if built_in
            else plugin_card(cls.name, cls.__module__)
        )
    except UserError as exc:
        raise MetricCheckError(str(exc)) from None
    if card is None:
        if built_in:
            raise MetricCheckError(f"no card registry/{cls.name}.yaml for this built-in metric")
        raise CheckSkipped(f"the plugin ships no card (cards/{cls.name}.yaml beside its class)")
    facts = {
        "family": cls.family,
        "higher_is_better": cls.higher_is_better,
        "trainable": cls.trainable,
        "kind": "full-reference" if cls.full_reference else "no-reference",
    }
    wrong = [f"{k}: {card.get(k)!r} (class: {v!r})" for k, v in facts.items() if card.get(k) != v]
    status = (card.get("calibration") or {}).get("status")
    if status not in ("calibrated", "properties", None):
        wrong.append(f"calibration.status: {status!r} (calibrated or properties)")
    if wrong:
        raise MetricCheckError(
            f"the card of {cls.name} disagrees with its class: {'; '.join(wrong)}"
        )


def check_parameters(cls: type[Metric], params: Mapping[str, Any]) -> None:
    """Unknown parameters are refused; parameters pickle (workers rebuild the metric)."""
    try:
        cls(**params, no_such_parameter_xyz=1)
    except MetricParameterError:
        pass
    else:
        raise MetricCheckError("an unknown parameter was accepted (MetricParameterError expected)")
    metric = cls(**params)
    missing = set(cls.default_params) - set(metric.params)
    if missing:
        raise MetricCheckError(f"params lacks default parameter {sorted(missing)[0]!r}")
    try:
        copy = pickle.loads(pickle.dumps(dict(metric.params)))
    except Exception as exc:  # any pickling failure breaks --workers
        raise MetricCheckError(f"parameters do not pickle: {exc}") from None
    rebuilt = cls(**copy)
    if rebuilt.params != metric.params:
        raise MetricCheckError("rebuilt from its pickled parameters, the metric has others")
    if _attempt(rebuilt.params_hash) != _attempt(metric.params_hash):
        raise MetricCheckError("rebuilt from its pickled parameters, its cache key changes")


@cache
def _heavy_imports(module: str) -> tuple[str, ...]:
    """Heavy libraries imported by importing ``module`` in a fresh interpreter."""
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    path = [_module_root(module), *(entry for entry in sys.path if entry)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MetricCheckError(f"importing {module} fails: {last}")
    return tuple(filter(None, done.stdout.strip().split(",")))


def _module_root(module: str) -> str | None:
    """The folder ``module`` was imported from (as a ``sys.path`` entry), if known."""
    loaded = sys.modules.get(module)
    source = getattr(loaded, "__file__", None)
    if source is None:
        return None
    depth = module.count(".") + (2 if Path(source).name == "__init__.py" else 1)
    return str(Path(source).resolve().parents[depth - 1])


def check_lazy_imports(cls: type[Metric], params: Mapping[str, Any]) -> None:
    """Importing the metric's module stays light (heavy libraries load when it scores)."""
    heavy = _heavy_imports(cls.__module__)
    if heavy:
        raise MetricCheckError(
            f"importing {cls.__module__} imports {', '.join(heavy)}: import them inside the "
            "methods that need them, so that listing metrics stays fast"
        )


def check_not_fitted(cls: type[Metric], params: Mapping[str, Any]) -> None:
    """A trainable metric without a model refuses to score with NotFittedError."""
    metric = cls(**params)
    if isinstance(metric, LearnedMetric) and not metric.requires_fit():
        raise CheckSkipped("given a trained model by its parameters")
    if isinstance(metric, FeatureMetric) and _attempt(metric.pretrained_regressor) is not None:
        raise CheckSkipped("has a published model: it scores unfitted")
    images, refs = _bench(cls, params).images()
    try:
        _attempt(lambda: metric.score(images, refs))
    except NotFittedError:
        return
    except CheckSkipped:
        raise
    except Exception as exc:  # the wrong exception is the broken rule
        raise MetricCheckError(
            f"unfitted, score raised {type(exc).__name__}, not NotFittedError"
        ) from None
    raise MetricCheckError("unfitted, score returned numbers instead of raising NotFittedError")


def check_output(cls: type[Metric], params: Mapping[str, Any]) -> None:
    """One finite float per image, inside score_range; inputs left unchanged."""
    bench = _bench(cls, params)
    images, refs = bench.images()
    before = [i.copy() for i in images] + ([r.copy() for r in refs] if refs else [])
    values = _scores(bench.ready(), images, refs)
    if not np.isfinite(values).all():
        raise MetricCheckError(f"scores of ordinary images are not all finite: {values}")
    if cls.score_range is not None:
        low, high = cls.score_range
        if ((values < low) | (values > high)).any():
            raise MetricCheckError(
                f"scores {values} leave the declared score_range {cls.score_range}"
            )
    after = images + (refs or [])
    if any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)):
        raise MetricCheckError("score modified its input arrays")


def check_batch_invariance(cls: type[Metric], params: Mapping[str, Any]) -> None:
    """Scoring a batch equals scoring each image alone."""
    bench = _bench(cls, params)
    metric = bench.ready()
    images, refs = bench.images()
    together = _scores(metric, images, refs)
    alone = np.concatenate(
        [
            _scores(metric, [image], None if refs is None else [refs[i]])
            for i, image in enumerate(images)
        ]
    )
    if not _same(together, alone):
        raise MetricCheckError(f"a batch scores {together}, the same images one by one {alone}")


def check_determinism(cls: type[Metric], params: Mapping[str, Any]) -> None:
    """The same numbers again, and from a fresh instance."""
    bench = _bench(cls, params)
    images, refs = bench.images()
    first = _scores(bench.ready(), images, refs)
    again = _scores(bench.ready(), images, refs)
    if not _same(first, again):
        raise MetricCheckError(f"scoring twice gives {first} then {again}")
    if not cls.trainable:
        fresh = _scores(bench.fresh(), images, refs)
        if not _same(first, fresh):
            raise MetricCheckError(f"a fresh instance scores {fresh}, the first one {first}")


def check_input_kinds(cls: type[Metric], params: Mapping[str, Any]) -> None:
    """Grey, RGB and 16-bit files, read as the runner reads them, all give finite scores."""
    bench = _bench(cls, params)
    broken = []
    for kind in ("grey", "rgb", "16-bit"):
        images, refs = bench.images(kind)
        try:
            values = _scores(bench.ready(), images, refs)
        except (CheckSkipped, MetricCheckError):
            raise
        except Exception as exc:  # the broken input kind is the finding
            broken.append(f"{kind}: {type(exc).__name__}: {exc}")
            continue
        if not np.isfinite(values).all():
            broken.append(f"{kind}: scores {values}")
    if broken:
        raise MetricCheckError("; ".join(broken))


def check_identical_best(cls: type[Metric], params: Mapping[str, Any]) -> None:
    """An image compared with itself scores at least as well as a distorted version."""
    bench = _bench(cls, params)
    images, refs = bench.images()
    assert refs is not None
    metric = bench.ready()
    distorted = _scores(metric, images, refs)
    identical = _scores(metric, [r.copy() for r in refs], refs)
    sign = 1.0 if cls.higher_is_better else -1.0
    worse = [i for i in range(len(refs)) if not sign * identical[i] >= sign * distorted[i]]
    if worse:
        raise MetricCheckError(
            f"identical images score {identical[worse]}, worse than distorted ones "
            f"{distorted[worse]} (higher_is_better={cls.higher_is_better})"
        )


def _kind(cls: type[Metric]) -> str:
    if issubclass(cls, LearnedMetric):
        return "LearnedMetric"
    return "FeatureMetric" if issubclass(cls, FeatureMetric) else "Metric"


RULES: tuple[Rule, ...] = (
    Rule("attributes", check_attributes),
    Rule("card", check_card),
    Rule("parameters", check_parameters),
    Rule("lazy_imports", check_lazy_imports),
    Rule("not_fitted", check_not_fitted, lambda cls: cls.trainable),
    Rule("output", check_output),
    Rule("batch_invariance", check_batch_invariance),
    Rule("determinism", check_determinism),
    Rule("input_kinds", check_input_kinds),
    Rule("identical_best", check_identical_best, lambda cls: bool(cls.full_reference)),
)


def metric_rules(cls: type[Metric]) -> list[Rule]:
    """The rules that concern ``cls``."""
    return [rule for rule in RULES if rule.applies(cls)]


def _params(cls: type[Metric], params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**dict(cls.conformance.get("params", {})), **dict(params or {})}


def check_metric(
    metric_class: type[Metric], params: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Check ``metric_class`` against every rule; ``params`` override the tiny settings its
    ``conformance`` attribute declares. Returns each rule's outcome (``"ok"`` or ``"skipped:
    reason"``); raises :class:`MetricCheckError` with one line per broken rule."""
    chosen = _params(metric_class, params)
    outcomes, broken = {}, []
    for rule in metric_rules(metric_class):
        try:
            rule.check(metric_class, chosen)
        except CheckSkipped as exc:
            outcomes[rule.name] = f"skipped: {exc}"
        except MetricCheckError as exc:
            broken.append(
                f"{metric_class.__name__} ({metric_class.name}) breaks {rule.name}: {exc}"
            )
        else:
            outcomes[rule.name] = "ok"
    if broken:
        raise MetricCheckError("\n".join(broken))
    return outcomes


def parametrize_metric_checks(
    classes: Iterable[type[Metric]], params: Mapping[str, Mapping[str, Any]] | None = None
) -> Any:
    """A ``pytest.mark.parametrize`` over (metric class, rule): the test receives
    ``metric_class`` and ``check``, a callable to apply to it (a skipped rule skips the test).
    ``params`` maps metric names to parameter overrides."""
    import pytest

    cases, ids = [], []
    for cls in classes:
        chosen = _params(cls, (params or {}).get(cls.name))
        for rule in metric_rules(cls):
            cases.append((cls, _pytest_check(rule, chosen)))
            ids.append(f"{cls.name}-{rule.name}")
    return pytest.mark.parametrize(("metric_class", "check"), cases, ids=ids)


def _pytest_check(rule: Rule, params: Mapping[str, Any]) -> Callable[[type[Metric]], None]:
    def check(metric_class: type[Metric]) -> None:
        import pytest

        try:
            rule.check(metric_class, params)
        except CheckSkipped as exc:
            pytest.skip(str(exc))

    check.__name__ = f"check_{rule.name}"
    return check
