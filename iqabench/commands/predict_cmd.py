"""``iqabench predict``: score images with a trained NestConvNeXt-IQA checkpoint.

Each score is the mean prediction over random 224x224 crops (10 by default) of the image
resized to 512x512, on the quality scale the model was trained on (higher is better). The crops
are drawn from the image and the checkpoint's seed, so a score is reproducible.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._options import positive_int
from .train_cmd import MODELS


def add_parser(subparsers: Any, name: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help="score images with a trained NestConvNeXt-IQA checkpoint",
        description="Score images with a checkpoint written by `iqabench train` (best.pt or "
        "last.pt): the mean over random crops, higher is better. Prints SCORE<TAB>IMAGE.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT")
    parser.add_argument(
        "--model", choices=MODELS, help="check that the checkpoint holds this model"
    )
    parser.add_argument("--crops", type=positive_int, default=10, help="crops per image (10)")
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto")
    parser.add_argument("--batch-size", type=positive_int, default=40, help="crops per batch")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from ..imageio import load_for_metric
    from ..train.checkpoint import load_for_inference
    from ..train.data import prepare_image
    from ..train.inference import predict

    trained, runtime = load_for_inference(args.checkpoint, args.model, args.device, args.precision)
    size, crop = trained.config.resize, trained.config.crop
    prepared = [prepare_image(load_for_metric(path, "grey")[0], size) for path in args.images]
    scores = predict(
        trained.net,
        prepared,
        runtime,
        crops=args.crops,
        crop=crop,
        seed=trained.seed,
        batch_size=args.batch_size,
    )
    for note in trained.meta.get("notes", []):
        print(f"iqabench: note: {note}", file=sys.stderr)
    if args.json:
        rows = [{"image": p, "score": float(s)} for p, s in zip(args.images, scores, strict=True)]
        print(json.dumps({"model": trained.config.name, "scores": rows}, indent=2))
    else:
        for path, score in zip(args.images, scores, strict=True):
            print(f"{score:.6f}\t{path}")
    return 0
