"""Background work that must not die silently: each loop is restarted after a failure with
capped, jittered backoff, and its health (with the reason while it fails) is part of
``/readyz``, so a service that cannot do its work says so and recovers without a restart."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """The schedule of waits for restarting supervised work and redelivering a webhook:
    exponential, capped, with jitter in its upper half. A count kept across failures (reset
    when the work recovers) and persisted deliveries need it; a call tried again in place uses
    ``shared.retrying`` (stamina)."""

    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, failures: int) -> float:
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** max(0, failures - 1))
        return ceiling * (0.5 + random.random() / 2)


@dataclass
class Health:
    """What one loop reports: ``healthy()`` after each unit of work that succeeded."""

    name: str
    failing: str | None = "not started"
    failures: int = 0
    since: float = field(default_factory=time.time)

    def healthy(self) -> None:
        if self.failing is not None:
            if self.failures:
                log.info("background work recovered", work=self.name, after_failures=self.failures)
            self.failing, self.failures, self.since = None, 0, time.time()

    def failed(self, reason: str) -> None:
        if self.failing is None:
            self.since = time.time()
        self.failing, self.failures = reason, self.failures + 1

    def describe(self) -> dict[str, Any]:
        if self.failing is None:
            return {"ok": True}
        return {"ok": False, "reason": self.failing, "failures": self.failures, "since": round(self.since, 3)}


Loop = Callable[[Health], Awaitable[None]]
DID_NOT_STOP = "background work did not stop when asked; cancelled"


class BackgroundWork:
    """The service's background loops, each supervised; stopped together."""

    def __init__(self, backoff: Backoff = Backoff()) -> None:
        self._backoff = backoff
        self._health: dict[str, Health] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._interruptible: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def start(self, name: str, loop: Loop, *, backoff: Backoff | None = None, interruptible: bool = False) -> Health:
        """Run ``loop`` until stopped: when it raises, note why, wait, and run it again. An
        ``interruptible`` loop holds nothing half done (it only reads, or only holds a place in
        a group): stopping cancels it rather than waiting for it to finish."""
        health = self._health[name] = Health(name)
        task = asyncio.create_task(self._supervise(health, loop, backoff or self._backoff), name=name)
        self._tasks.append(task)
        if interruptible:
            self._interruptible.append(task)
        return health

    @property
    def stopping(self) -> asyncio.Event:
        return self._stopping

    async def _supervise(self, health: Health, loop: Loop, backoff: Backoff) -> None:
        while not self._stopping.is_set():
            try:
                await loop(health)
                if self._stopping.is_set():
                    return
                health.failed("ended unexpectedly")
            except asyncio.CancelledError:
                raise
            except Exception as error:  # whatever fails, the loop is restarted
                health.failed(f"{type(error).__name__}: {error}"[:500])
                log.warning(
                    "background work failed; restarting",
                    work=health.name,
                    failures=health.failures,
                    error=repr(error)[:500],
                )
            await self.sleep(backoff.delay(health.failures))

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until stopping; True when stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        details = {name: health.describe() for name, health in self._health.items()}
        return all(health.failing is None for health in self._health.values()), details

    async def stop(self, timeout: float = 15) -> None:
        """Ask every loop to finish; cancel what has not finished by ``timeout``. Interruptible
        loops are cancelled once the others are done, since those may wait on them (an owner
        taking a partition waits for the reader of the log)."""
        self._stopping.set()
        finishing = [task for task in self._tasks if task not in self._interruptible]
        if finishing:
            _done, pending = await asyncio.wait(finishing, timeout=timeout)
            if pending:
                log.warning(DID_NOT_STOP, work=sorted(task.get_name() for task in pending), timeout=timeout)
            for task in pending:
                task.cancel()
        for task in self._interruptible:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._interruptible.clear()
