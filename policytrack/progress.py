"""How a long command shows its progress: on a terminal a Rich bar with rate and time left; in a
pipe or a log a plain line every few seconds; with ``--json`` nothing (the result says it all)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PLAIN_EVERY_SECONDS = 2.0


class Rate(ProgressColumn):
    """Records per second."""

    def render(self, task: Any) -> Text:
        return Text(f"{task.speed or 0:,.0f}/s")


class Meter:
    def __init__(self, what: str, console: Console, *, total: int | None = None, quiet: bool = False) -> None:
        self.what = what
        self.console = console
        self.total = total
        self.quiet = quiet
        self.done = 0
        self._started = time.monotonic()
        self._said_at = 0.0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Meter:
        if not self.quiet and self.console.is_terminal:
            self._bar = Progress(
                TextColumn(self.what),
                BarColumn(),
                TextColumn("{task.completed:,} of {task.total:,}" if self.total else "{task.completed:,}"),
                Rate(),
                TimeRemainingColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total)
        return self

    def update(self, done: int, total: int | None = None) -> None:
        self.done, self.total = done, total if total is not None else self.total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=self.total)
        elif not self.quiet and time.monotonic() - self._said_at >= PLAIN_EVERY_SECONDS:
            self._said_at = time.monotonic()
            self.console.print(self.line(), highlight=False)

    def line(self) -> str:
        seconds = max(time.monotonic() - self._started, 1e-9)
        rate = self.done / seconds
        line = f"{self.what}: {self.done:,}" + (f" of {self.total:,}" if self.total else "") + f" ({rate:,.0f}/s"
        if self.total and rate > 0 and self.done < self.total:
            line += f", about {(self.total - self.done) / rate:,.0f}s left"
        return line + ")"

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            if self._task is not None:
                self._bar.update(self._task, completed=self.done, total=max(self.done, self.total or 0))
            self._bar.stop()
        elif not self.quiet and kind is None:
            self.console.print(self.line().replace(f"{self.what}:", f"{self.what} done:"), highlight=False)
