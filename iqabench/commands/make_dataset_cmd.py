"""``iqabench make-dataset synthetic-lwir --out DIR``: build a synthetic thermal IQA set."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="build a synthetic thermal IQA dataset",
        description="Apply the LWIR-IQA distortion recipe (white noise, blur, non-uniformity, "
        "JPEG, JPEG2000; 5 levels each) to generated thermal-like scenes, or to your own "
        "pristine frames (--from-dir). The folder loads with --dataset synthetic-lwir "
        "--data-root DIR, or --dataset csv --data-root DIR.",
    )
    parser.add_argument("kind", choices=("synthetic-lwir",), help="what to build")
    parser.add_argument("--out", required=True, help="output folder (must be empty or absent)")
    parser.add_argument("--from-dir", help="folder of your own pristine frames")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument(
        "--scenes", type=int, default=12, help="generated scenes (default 12; not with --from-dir)"
    )
    parser.add_argument(
        "--bit-depth", type=int, choices=(8, 16), default=8, help="8 or 16 (default 8)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.synthetic import build_synthetic_lwir
    from ..progress import console_progress

    with console_progress() as progress:
        holder: dict = {}

        def report(done: int, total: int) -> None:
            if "bar" not in holder:
                holder["cm"] = progress.task("building synthetic-lwir", total)
                holder["bar"] = holder["cm"].__enter__()
            holder["bar"].advance(done - holder.get("done", 0))
            holder["done"] = done

        out = build_synthetic_lwir(
            Path(args.out),
            seed=args.seed,
            n_scenes=args.scenes,
            bit_depth=args.bit_depth,
            from_dir=Path(args.from_dir) if args.from_dir else None,
            progress=report,
        )
    print(f"dataset: {Path(out).resolve()}")
    return 0
