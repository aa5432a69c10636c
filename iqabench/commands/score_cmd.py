"""``iqabench score --metric NAME IMAGE [--ref REF]``: one score for one image."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="score one image with one metric",
        description="Print one metric's score for one image (and its reference, for "
        "full-reference metrics).",
    )
    parser.add_argument("image", help="the (distorted) image")
    parser.add_argument("--metric", required=True, help="metric name (see `iqabench list metrics`)")
    parser.add_argument("--ref", help="the pristine reference (full-reference metrics)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a metric parameter, e.g. --option model=thermal_niqe.npz (repeatable)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..api import score
    from ._options import parse_assignment, parse_value

    params = dict(parse_assignment(text, "--option") for text in args.option)
    options = {key: parse_value(value) for key, value in params.items()}
    value = score(args.metric, args.image, args.ref, **options)
    print(f"{value:.6g}")
    return 0
