"""One read of ``policy.alerts`` for every live stream: the alerts the service's own reader took
(proven and decoded once), the latest few thousand kept. A stream whose position they cover reads
them from here; any other (one resuming from further back, or one so slow that they were dropped
before it read them) reads the log with a consumer of its own until they cover it again. Positions
are offsets, so whichever way a stream reads, it sends each alert once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass

from prometheus_client import Gauge

from services.notifications.adapters.alert_stream import StreamItem, StreamPosition
from shared.contract import catalog as c
from shared.contract.envelope import AnyEvent

ReadApart = Callable[[StreamPosition | None], AsyncGenerator[StreamItem, None]]
"""A stream's own read of the log from a position (None: where a new stream starts)."""

STREAMS = Gauge(
    "policytrack_alert_streams",
    "Live alert streams, by how they read the log: shared (the service's one read) or apart (a consumer of their own)",
    ["read"],
)


@dataclass(frozen=True, slots=True)
class Taken:
    """An alert the service's reader took, the ``sequence``-th kept."""

    sequence: int
    partition: int
    offset: int
    alert: AnyEvent


class LiveAlerts:
    """The latest alerts of the service's one read (``keep`` to twice as many), and the streams
    that follow them."""

    def __init__(self, keep: int = 1024, quiet_seconds: float = 1.0) -> None:
        self._keep = keep
        self._quiet_seconds = quiet_seconds
        self._kept: list[Taken] = []
        self._first = 0
        """The sequence number of ``_kept[0]``."""
        self._covered_from: dict[int, int] = {}
        """Per partition, the offset from which every alert taken is still kept (absent: 0, as
        the service reads ``policy.alerts`` from its beginning)."""
        self._read_to: dict[int, int] = {}
        """Per partition, the offset after the last record taken."""
        self._arrived = asyncio.Event()

    def took(self, partition: int, offset: int, event: AnyEvent) -> None:
        """The service's reader took the record at ``offset`` (kept if it is an alert)."""
        self._read_to[partition] = offset + 1
        if not isinstance(event.data, c.NOTICES):
            return
        self._kept.append(Taken(self._first + len(self._kept), partition, offset, event))
        if len(self._kept) >= 2 * self._keep:
            # Dropped half at a time, so that keeping costs the same for every alert.
            for dropped in self._kept[: self._keep]:
                self._covered_from[dropped.partition] = dropped.offset + 1
            del self._kept[: self._keep]
            self._first += self._keep
        self._arrived.set()
        self._arrived = asyncio.Event()

    def start(self, *, from_end: bool, caught_up: bool) -> StreamPosition | None:
        """Where a new stream starts, if this read can tell: at the log's beginning while every
        alert since is kept; at its end, once the service has read up to it (``caught_up``), after
        the last record taken. None: the stream must ask the log."""
        if from_end:
            return StreamPosition(tuple(sorted(self._read_to.items()))) if caught_up else None
        return None if self._covered_from else StreamPosition(())

    def covers(self, position: StreamPosition | None) -> bool:
        """Whether every alert from ``position`` on is kept here or still to come."""
        return position is not None and all(
            position.next_offset(partition) >= start for partition, start in self._covered_from.items()
        )

    async def follow(self, position: StreamPosition | None, read_apart: ReadApart) -> AsyncGenerator[StreamItem, None]:
        """The alerts from ``position`` on, each once, with the position after it; ``(None,
        position)`` whenever ``quiet_seconds`` pass without one."""
        while True:
            if not self.covers(position):
                with _counted("apart"):
                    async with aclosing(read_apart(position)) as apart:
                        async for alert, after in apart:
                            position = after
                            yield alert, after
                            if self.covers(position):
                                break
            assert position is not None
            with _counted("shared"):
                async with aclosing(self._shared(position)) as shared:
                    async for alert, after in shared:
                        position = after
                        yield alert, after

    async def _shared(self, position: StreamPosition) -> AsyncGenerator[StreamItem, None]:
        """What this read keeps from ``position`` on, until it has dropped alerts not yet sent."""
        cursor = self._first
        while (new := self._since(cursor)) is not None:
            for taken in new:
                cursor = taken.sequence + 1
                if taken.offset >= position.next_offset(taken.partition):
                    position = position.after(taken.partition, taken.offset)
                    yield taken.alert, position
            if not new:
                try:
                    await asyncio.wait_for(self._arrived.wait(), self._quiet_seconds)
                except TimeoutError:
                    yield None, position

    def _since(self, cursor: int) -> list[Taken] | None:
        """The kept alerts from the ``cursor``-th on; None if some of them were dropped."""
        return None if cursor < self._first else self._kept[cursor - self._first :]


@contextmanager
def _counted(read: str) -> Iterator[None]:
    streams = STREAMS.labels(read)
    streams.inc()
    try:
        yield
    finally:
        streams.dec()
