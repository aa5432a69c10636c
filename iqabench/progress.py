"""Progress of long loops: rich bars on a terminal, plain lines in a log, or silence.

:func:`console_progress` picks for the command line: :class:`RichProgress` when stderr is a
terminal, :class:`PlainProgress` (a line every few seconds with rate and ETA, which a log file
or CI keeps readable) otherwise. :class:`SilentProgress` is the default of the Python API.
"""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager
from typing import IO, Protocol


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Progress(Protocol):
    """Opens one bar per loop: ``with progress.task("ssim", total=300) as bar: bar.advance()``."""

    def task(self, description: str, total: int) -> AbstractContextManager[Task]: ...

    def note(self, message: str) -> None: ...


class _SilentTask:
    def advance(self, n: int = 1) -> None:
        return None

    def __enter__(self) -> _SilentTask:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class SilentProgress:
    """Shows nothing (the default for the Python API)."""

    def task(self, description: str, total: int) -> _SilentTask:
        return _SilentTask()

    def note(self, message: str) -> None:
        return None


class _RichTask:
    def __init__(self, bars, description: str, total: int) -> None:  # noqa: ANN001
        self._bars = bars
        self._id = bars.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        self._bars.advance(self._id, n)

    def __enter__(self) -> _RichTask:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop_task(self._id)


class RichProgress:
    """One rich bar per loop with items/s and ETA, on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bars
        from rich.text import Text

        class ItemsPerSecond(ProgressColumn):
            def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
                speed = task.finished_speed or task.speed
                return Text(f"{speed:6.1f} it/s" if speed else "     - it/s")

        self._console = Console(stderr=True)
        self._bars = Bars(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            ItemsPerSecond(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self._console,
        )

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def task(self, description: str, total: int) -> _RichTask:
        return _RichTask(self._bars, description, total)

    def note(self, message: str) -> None:
        self._bars.console.print(message, highlight=False, markup=False)


class _PlainTask:
    def __init__(self, owner: PlainProgress, description: str, total: int) -> None:
        self._owner = owner
        self._description = description
        self._total = max(0, int(total))
        self._done = 0
        self._started = time.monotonic()
        self._last_line = self._started

    def advance(self, n: int = 1) -> None:
        self._done += n
        now = time.monotonic()
        if now - self._last_line >= self._owner.interval and self._done < self._total:
            self._last_line = now
            self._owner.write(self._line(now))

    def _line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = self._done / elapsed
        text = f"{self._description}: {self._done}/{self._total}"
        if self._total:
            text += f" ({100 * self._done / self._total:.0f}%)"
        text += f", {rate:.1f} it/s"
        if 0 < self._done < self._total and rate > 0:
            text += f", ETA {_clock((self._total - self._done) / rate)}"
        return text

    def __enter__(self) -> _PlainTask:
        return self

    def __exit__(self, *exc: object) -> None:
        now = time.monotonic()
        if self._total and now - self._started >= self._owner.interval:
            self._owner.write(f"{self._line(now)}, done in {_clock(now - self._started)}")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class PlainProgress:
    """Plain progress lines on stderr, for logs, pipes and CI: one every ``interval`` seconds
    per loop and one when a loop that lasted longer than that ends, each with its count, rate
    and ETA (a loop shorter than ``interval`` prints nothing)."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 5.0) -> None:
        self._stream = stream
        self.interval = float(interval)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, line: str) -> None:
        stream = self._stream or sys.stderr
        print(line, file=stream, flush=True)

    def task(self, description: str, total: int) -> _PlainTask:
        return _PlainTask(self, description, total)

    def note(self, message: str) -> None:
        self.write(message)


def console_progress() -> RichProgress | PlainProgress:
    """Rich bars when stderr is a terminal, plain lines otherwise."""
    if sys.stderr.isatty():
        return RichProgress()
    return PlainProgress()
