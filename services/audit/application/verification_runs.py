"""One full verification of the trail at a time: who asks while one runs waits for its result
(with its progress), instead of starting another pass over every entry and the whole log. The
run stops when nobody waits for it any more."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from services.audit.application.findings import Verification
from services.audit.application.verification import Progress

Run = Callable[[bool, Progress], Coroutine[Any, Any, Verification]]


@dataclass
class _Running:
    task: asyncio.Task[Verification]
    listeners: list[Progress] = field(default_factory=list)
    waiting: int = 0


class VerificationRuns:
    def __init__(self, run: Run) -> None:
        self._run = run
        self._running: dict[bool, _Running] = {}
        """Per kind (against the log or not), the verification running now."""

    def running(self, against_log: bool) -> bool:
        return against_log in self._running

    async def result(self, against_log: bool, progress: Progress | None = None) -> Verification:
        """The result of the verification running now, or of one started for this call."""
        running = self._running.get(against_log)
        if running is None:
            running = self._start(against_log)
        if progress is not None:
            running.listeners.append(progress)
        running.waiting += 1
        try:
            return await asyncio.shield(running.task)
        finally:
            running.waiting -= 1
            if progress is not None:
                running.listeners.remove(progress)
            if not running.waiting and not running.task.done():
                running.task.cancel()  # nobody wants its result any more

    def _start(self, against_log: bool) -> _Running:
        listeners: list[Progress] = []

        def tell(checked: int, of: int) -> None:
            for listener in list(listeners):
                listener(checked, of)

        running = _Running(asyncio.create_task(self._run(against_log, tell)), listeners)
        self._running[against_log] = running
        running.task.add_done_callback(lambda _: self._running.pop(against_log, None))
        return running
