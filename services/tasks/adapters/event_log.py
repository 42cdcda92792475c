"""Where the tasks service appends: ``EventLog``, on Kafka in production, in memory in fast tests.

``KafkaEventLog`` is the service's single writer. It appends in Kafka transactions under a
stable ``transactional.id``: starting a second instance with the same id fences this one,
which can then no longer append. Concurrent commands share a transaction (group commit),
so throughput does not hang on one transaction per command.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka.errors import KafkaError, ProducerFenced

from shared.contract.envelope import AnyEvent
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)


class Fenced(RuntimeError):
    """Another instance with the same transactional id took over; this one must not write."""

    def __init__(self) -> None:
        super().__init__("this instance was fenced by a newer one with the same transactional id")


class LogUnavailable(RuntimeError):
    """The append was not acknowledged; nothing of it is on the log."""


class EventLog(Protocol):
    fenced: bool

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def append(self, events: list[AnyEvent]) -> None:
        """Returns once every event is on the log; raises Fenced or LogUnavailable, appending nothing."""
        ...


@dataclass
class _Pending:
    events: list[AnyEvent]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class KafkaEventLog:
    def __init__(self, kafka: KafkaSettings, *, transactional_id: str, max_batch: int = 256) -> None:
        # A new transaction's first request is often answered "concurrent transactions" while the
        # broker still writes the last one's markers; a short backoff keeps that from adding 100 ms.
        self._producer = EventProducer(
            kafka, client_id=transactional_id, transactional_id=transactional_id, linger_ms=0, retry_backoff_ms=5
        )
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._max_batch = max_batch
        self._writer: asyncio.Task[None] | None = None
        self.fenced = False

    async def start(self) -> None:
        """Registers the transactional id: older instances with it are fenced from here on."""
        await self._producer.start()
        self._writer = asyncio.create_task(self._write_loop(), name="event-log-writer")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._producer.stop()

    async def append(self, events: list[AnyEvent]) -> None:
        if self.fenced:
            raise Fenced()
        pending = _Pending(events)
        await self._queue.put(pending)
        await pending.done

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            error = await self._commit(batch)
            for pending in batch:
                if error is None:
                    pending.done.set_result(None)
                elif not pending.done.done():
                    pending.done.set_exception(error)

    async def _commit(self, batch: list[_Pending]) -> Exception | None:
        if self.fenced:
            return Fenced()
        try:
            async with self._producer.transaction():
                for pending in batch:
                    for event in pending.events:
                        await self._producer.enqueue(event)
            return None
        except ProducerFenced:
            self.fenced = True
            log.error("fenced: another instance took over this transactional id; refusing writes")
            return Fenced()
        except KafkaError as error:
            log.warning("append failed", error=repr(error))
            return LogUnavailable(f"the log did not acknowledge the append: {error!r}")


class InMemoryEventLog:
    """The log as a list, for fast tests of the service layer and the HTTP edge. What it
    proves is proven again against the real broker by the integration tests."""

    def __init__(self) -> None:
        self.events: list[AnyEvent] = []
        self.fenced = False
        self.unavailable = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def append(self, events: list[AnyEvent]) -> None:
        if self.fenced:
            raise Fenced()
        if self.unavailable:
            raise LogUnavailable("the log is unavailable (in-memory log told to fail)")
        await asyncio.sleep(0)  # an append is never instantaneous: let concurrent callers interleave
        self.events += events
