"""Parsing of ``KEY=VALUE`` metric options shared by several subcommands."""

from __future__ import annotations

from typing import Any

from ..errors import UserError


def parse_value(text: str) -> Any:
    """A YAML scalar: numbers, true/false and null become Python values, the rest strings."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, bool, str)) or value is None else text


def parse_assignment(text: str, flag: str) -> tuple[str, str]:
    """``"a=b"`` -> ``("a", "b")``, refusing anything else with one line naming the flag."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"{flag} expects KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def metric_options(options: list[str], checkpoints: list[str]) -> dict[str, dict[str, Any]]:
    """``--option METRIC.KEY=VALUE`` and ``--checkpoint METRIC=PATH`` as per-metric params."""
    params: dict[str, dict[str, Any]] = {}
    for text in options:
        target, value = parse_assignment(text, "--option")
        metric, dot, key = target.partition(".")
        if not dot or not key:
            raise UserError(f"--option expects METRIC.KEY=VALUE, got {text!r}")
        params.setdefault(metric.lower(), {})[key] = parse_value(value)
    for text in checkpoints:
        metric, path = parse_assignment(text, "--checkpoint")
        params.setdefault(metric.lower(), {})["checkpoint"] = path
    return params


def timeouts(values: list[str]) -> tuple[float | None, dict[str, float | None]]:
    """``--timeout [METRIC=]SECONDS`` values: the default limit and per-metric limits (0: none).

    With no plain ``SECONDS`` the default is :data:`iqabench.scoring.DEFAULT_TIMEOUT`.
    """
    from ..registry import get
    from ..scoring import DEFAULT_TIMEOUT

    default: float | None = DEFAULT_TIMEOUT
    per_metric: dict[str, float | None] = {}
    for text in values:
        metric, sep, number = text.rpartition("=")
        if sep and not metric.strip():
            raise UserError(f"--timeout expects [METRIC=]SECONDS, got {text!r}")
        seconds = _seconds(number, text)
        if sep:
            try:
                per_metric[get(metric).name] = seconds
            except UserError as exc:
                raise UserError(f"--timeout {text!r}: {exc}") from None
        else:
            default = seconds
    return default, per_metric


def _seconds(number: str, text: str) -> float | None:
    try:
        seconds = float(number)
    except ValueError:
        raise UserError(f"--timeout expects [METRIC=]SECONDS, got {text!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise UserError(f"--timeout {text!r}: seconds must be 0 (no limit) or more")
    return seconds or None


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    return _fraction(text, allow_zero=False)


def fraction_or_zero(text: str) -> float:
    """An argparse type: a number from 0 (included) to 1 (excluded)."""
    return _fraction(text, allow_zero=True)


def _fraction(text: str, allow_zero: bool) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0.0 <= value if allow_zero else 0.0 < value) or not value < 1.0:
        low = "at least 0" if allow_zero else "above 0"
        raise argparse.ArgumentTypeError(f"must be {low} and below 1, got {value}")
    return value
