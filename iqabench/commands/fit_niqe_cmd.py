"""``iqabench fit-niqe``: fit a NIQE pristine model on your own clean frames (e.g. thermal).

NIQE scores an image by its distance from a model of pristine images; the original model was
fitted on visible-light photographs. This command fits one the same way on a folder of clean
images of your own (for instance LWIR frames), writing the ``.npz`` (``mu``, ``cov``) that the
``niqe`` metric reads through its ``model`` parameter.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._options import fraction_or_zero

#: File name endings read from the folder (other files, e.g. a README, are ignored).
IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".pgm", ".ppm")


def add_parser(subparsers: Any, name: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help="fit a NIQE pristine model on a folder of clean images",
        description="Fit a NIQE pristine model (a thermal NIQE, say) on the clean images of "
        "PRISTINE_DIR, as the NIQE authors fitted theirs: 96x96 blocks, only the sharpest "
        "blocks of each image, 36 features at two scales. RGB images are converted with "
        "MATLAB rgb2gray, 16-bit images through their own display window.",
    )
    parser.add_argument(
        "pristine_dir",
        metavar="PRISTINE_DIR",
        help="folder of clean images (" + ", ".join(IMAGE_SUFFIXES) + "; not recursive)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="MODEL",
        help="file to write (an .npz with mu and cov; use it as the niqe parameter model)",
    )
    parser.add_argument(
        "--sharpness",
        type=fraction_or_zero,
        default=0.75,
        metavar="FRACTION",
        help="keep the blocks sharper than this fraction of each image's sharpest block "
        "(default: 0.75, as the original)",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import DatasetError
    from ..imageio import read_image, to_metric_input
    from ..metrics.niqe import BLOCK_SIZE, fit_pristine_model, save_pristine_model

    folder = Path(args.pristine_dir)
    if not folder.is_dir():
        raise DatasetError(f"pristine image folder not found: {folder}")
    paths = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )
    if not paths:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    images = (to_metric_input(read_image(path), "grey") for path in paths)
    try:
        model = fit_pristine_model(images, args.sharpness)
    except DatasetError as exc:
        raise DatasetError(f"{folder}: {exc}") from None
    out = save_pristine_model(args.out, model.mu, model.cov)
    skipped = len(paths) - model.images
    note = f" ({skipped} smaller than {BLOCK_SIZE}x{BLOCK_SIZE} skipped)" if skipped else ""
    print(
        f"NIQE model fitted on {model.blocks} sharp blocks of {model.images} images{note} "
        f"from {folder}; written to {out}"
    )
    return 0
