"""Progress bars for long loops (rich), or silence for library use and tests."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


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
