"""One look for the commands' progress bars: description, bar, count, elapsed time, ETA."""

from __future__ import annotations

from typing import Any, Self

#: Rich's default description column: the task's name in the theme's style.
DESCRIPTION = "[progress.description]{task.description}"


class ProgressBar:
    """A Rich progress display that runs as a context manager; subclasses add their tasks."""

    def __init__(self, console: Any, description: str = DESCRIPTION, *more_columns: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            description,
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            *more_columns,
            console=console,
        )

    def __enter__(self) -> Self:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()
