"""The ``iqabench`` command line: parses arguments, calls the API, maps errors to exit codes.

Exit codes: 0 success; 2 usage or input error (one line on stderr, a traceback only with
``--debug``); 1 internal error. Each subcommand lives in :mod:`iqabench.commands` and imports
its heavy dependencies only when it runs, so ``iqabench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from . import __version__
from .errors import UserError

#: Subcommand name -> module in iqabench.commands (each defines ``add_parser`` and ``run``).
COMMANDS: dict[str, str] = {
    "list": "list_cmd",
    "run": "run_cmd",
    "score": "score_cmd",
    "report": "report_cmd",
    "make-dataset": "make_dataset_cmd",
    "fit-niqe": "fit_niqe_cmd",
    "train": "train_cmd",
    "predict": "predict_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iqabench",
        description="Benchmark image quality metrics against human opinion, "
        "built first for thermal (LWIR) imagery.",
    )
    parser.add_argument("--version", action="version", version=f"iqabench {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks for errors (for bug reports)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        importlib.import_module(f"iqabench.commands.{module}").add_parser(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"iqabench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("iqabench: interrupted; results scored so far are kept", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: say so, keep the traceback for --debug
        if args.debug:
            traceback.print_exc()
        print(
            f"iqabench: internal error: {type(exc).__name__}: {exc} (rerun with --debug "
            "for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
