"""The ``iqabench`` command line: parses arguments, calls the API, maps errors to exit codes.

Exit codes: 0 success; 2 usage or input error (one line on stderr, a traceback only with
``--debug``), including a folder that cannot be written (full disk, read-only); 1 internal
error; 130 on Ctrl-C (SIGINT) and 143 on SIGTERM, both after saying that the results scored so
far are kept. Every message is one line. Each subcommand lives in :mod:`iqabench.commands` and
imports its heavy dependencies only when it runs, so ``iqabench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any, TextIO

from . import __version__
from .errors import STORAGE_ERRNOS, UserError, one_line


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: stop, keep what is stored, exit 143."""


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


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Python warnings (a library's, or a deep model's random-initialisation warning) as one
    line on stderr, like every other message of the command line."""
    text = " ".join(str(message).split())
    kind = "" if category in (UserWarning, RuntimeWarning) else f" ({category.__name__})"
    print(f"iqabench: warning{kind}: {text}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _one_line_warning
    previous = _on_sigterm(_terminate)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        return _fail(args, f"iqabench: error: {one_line(exc)}", 2)
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"iqabench: {what}; results scored so far are kept", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS and exc.filename:
            reason = exc.strerror or str(exc)
            return _fail(args, f"iqabench: error: cannot write {exc.filename}: {reason}", 2)
        return _internal(args, exc)
    except Exception as exc:  # an internal error: say so, keep the traceback for --debug
        return _internal(args, exc)
    finally:
        _on_sigterm(previous)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def _on_sigterm(handler: Callable[..., Any] | int | None) -> Callable[..., Any] | int | None:
    """Install ``handler`` for SIGTERM (from the main thread only); return the previous one."""
    import threading

    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    """Print ``message`` (one line; the traceback first with ``--debug``); return ``code``."""
    if args.debug:
        traceback.print_exc()
    print(message, file=sys.stderr)
    return code


def _internal(args: argparse.Namespace, exc: BaseException) -> int:
    message = (
        f"iqabench: internal error: {type(exc).__name__}: {one_line(exc)} (rerun with --debug "
        "for the traceback)"
    )
    return _fail(args, message, 1)


if __name__ == "__main__":
    raise SystemExit(main())
