"""``iqabench predict``: score images with a trained deep-model checkpoint.

The checkpoint names its metric; the network is rebuilt through the registry and loaded (tensors
and plain data only). Each score is the mean prediction over the model's evaluation samples
(random crops for most models), on the quality scale the model was trained on (higher is
better). The samples are drawn from the image and the checkpoint's seed, so a score is
reproducible. A full-reference model needs one ``--ref`` per image.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._options import positive_int


def add_parser(subparsers: Any, name: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help="score images with a trained deep-model checkpoint",
        description="Score images with a checkpoint written by `iqabench train` or a run "
        "(best.pt or last.pt): the mean over the model's evaluation samples, higher is "
        "better. Prints SCORE<TAB>IMAGE.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT")
    parser.add_argument(
        "--ref",
        action="append",
        default=[],
        metavar="REF",
        help="reference of each image, in order (full-reference models)",
    )
    parser.add_argument("--model", metavar="NAME", help="check that the checkpoint holds it")
    parser.add_argument(
        "--crops", type=positive_int, help="samples per image (default: as in validation)"
    )
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto")
    parser.add_argument("--batch-size", type=positive_int, default=40, help="samples per batch")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import json
    import math
    import sys
    from pathlib import Path

    from ..errors import UserError
    from ..metric import LabelledImage
    from ..metrics._deep import deep_metric_class
    from ..train.checkpoint import read_checkpoint

    meta = read_checkpoint(args.checkpoint, mmap=True)
    name = str(meta["metric"])
    if args.model is not None and args.model.strip().lower() != name:
        raise UserError(f"{args.checkpoint} holds a {name} model, not {args.model}")
    cls = deep_metric_class(name)
    if cls.full_reference and len(args.ref) != len(args.images):
        raise UserError(f"{name} is full-reference: give one --ref per image")
    if not cls.full_reference and args.ref:
        raise UserError(f"{name} is no-reference: it takes no --ref")
    crops = args.crops or int(meta["stage"]["recipe"]["eval_samples"])
    metric = cls(
        checkpoint=args.checkpoint,
        crops=crops,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
    )
    refs = [Path(r) for r in args.ref] or [None] * len(args.images)
    items = [
        LabelledImage(Path(image), math.nan, "", ref)
        for image, ref in zip(args.images, refs, strict=True)
    ]
    scores = metric.predict(items)
    if metric.left_out:
        raise UserError(metric.left_out[0])
    for note in metric.notes():
        print(f"iqabench: note: {note}", file=sys.stderr)
    if args.json:
        rows = [{"image": p, "score": float(s)} for p, s in zip(args.images, scores, strict=True)]
        print(json.dumps({"model": name, "scores": rows}, indent=2))
    else:
        for path, score in zip(args.images, scores, strict=True):
            print(f"{score:.6f}\t{path}")
    return 0
