"""Where the tasks service keeps state: the log on Kafka, and what it rebuilds from it.

``EventLog`` is the service's single writer. It appends in Kafka transactions under a
stable ``transactional.id``: starting a second instance with the same id fences this one,
which can then no longer append. Concurrent commands share a transaction (group commit),
so throughput does not hang on one transaction per command.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError, ProducerFenced

from shared.contract.catalog import CommandRejected, MilestoneMet, MilestoneScheduled
from shared.contract.codec import DecodeFailure, decode_record
from shared.contract.envelope import CloudEvent
from shared.contract.topics import EVENTS
from shared.domain.evolve import Projection
from shared.kafka.consumer import partitions_of
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)

CREATING_TYPES = frozenset(
    f"org.policytrack.{name}.v1"
    for name in ("plan.approved", "task.created", "milestone.scheduled", "issue.reported", "approval.requested",
                 "evaluation.recorded")
)  # fmt: skip


class Fenced(RuntimeError):
    """Another instance with the same transactional id took over; this one must not write."""


class LogUnavailable(RuntimeError):
    """The append was not acknowledged; nothing of it is on the log."""


@dataclass
class _Pending:
    events: list[CloudEvent]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class EventLog:
    def __init__(self, kafka: KafkaSettings, *, transactional_id: str, max_batch: int = 256) -> None:
        # A new transaction's first request is often answered "concurrent transactions" while the
        # broker still writes the last one's markers; a short backoff keeps that from adding 100 ms.
        self._producer = EventProducer(kafka, client_id=transactional_id, transactional_id=transactional_id,
                                       linger_ms=0, retry_backoff_ms=5)  # fmt: skip
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

    async def append(self, events: list[CloudEvent]) -> None:
        """Returns once the broker acknowledged every event (acks=all, transaction committed)."""
        if self.fenced:
            raise Fenced("this instance was fenced by a newer one with the same transactional id")
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
            return Fenced("this instance was fenced by a newer one with the same transactional id")
        try:
            async with self._producer.transaction():
                for pending in batch:
                    for event in pending.events:
                        await self._producer.enqueue(event)
            return None
        except ProducerFenced:
            self.fenced = True
            log.error("fenced: another instance took over this transactional id; refusing writes")
            return Fenced("this instance was fenced by a newer one with the same transactional id")
        except KafkaError as error:
            log.warning("append failed", error=repr(error))
            return LogUnavailable(f"the log did not acknowledge the append: {error!r}")


@dataclass(frozen=True)
class Answer:
    """What a write answered; a retry with the same idempotency key gets it again."""

    status: int
    body: dict[str, Any]


class KeyedLocks:
    """One asyncio lock per key, alive only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[Hashable, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: Hashable) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock


class IdempotencyIndex:
    """(user, Idempotency-Key) -> the first answer, rebuilt from the keys that events carry."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], Answer] = {}
        self.locks = KeyedLocks()

    def get(self, user: str, key: str) -> Answer | None:
        return self._answers.get((user, key))

    def record(self, event: CloudEvent) -> None:
        if event.idempotencykey is None:
            return
        slot = (event.actor, event.idempotencykey)
        first = self._answers.get(slot)
        if first is not None and first.body.get("id") == answer_body(event).get("id"):
            # a later event of the same command: same answer, newer version
            self._answers[slot] = Answer(first.status, {**first.body, "version": event.aggregateversion})
        elif first is None:
            self._answers[slot] = answer_for([event])


def answer_body(event: CloudEvent) -> dict[str, Any]:
    data = event.data
    if isinstance(data, CommandRejected):
        return {"id": data.command_id}
    if isinstance(data, MilestoneScheduled | MilestoneMet):
        return {"id": data.milestone_id, "task_id": data.task_id, "version": event.aggregateversion}
    body: dict[str, Any] = {"id": event.subject, "version": event.aggregateversion}
    task_id = getattr(data, "task_id", None)
    if task_id is not None and task_id != event.subject:
        body["task_id"] = task_id
    return body


def answer_for(events: list[CloudEvent]) -> Answer:
    """The answer to the command that appended ``events`` (all of one command, in order)."""
    first, last = events[0], events[-1]
    if isinstance(first.data, CommandRejected):
        rejected = first.data
        return Answer(rejected.status, {"status": rejected.status, "detail": rejected.reason,
                                        "errors": [e.model_dump() for e in rejected.errors]})  # fmt: skip
    status = 201 if first.type in CREATING_TYPES else 200
    return Answer(status, {**answer_body(first), "version": last.aggregateversion})


@dataclass
class RebuildReport:
    events: int = 0
    skipped: int = 0
    seconds: float = 0.0


async def rebuild(kafka: KafkaSettings, projection: Projection, index: IdempotencyIndex,
                  topic: str = EVENTS) -> RebuildReport:  # fmt: skip
    """Reads the log from the beginning to its current end (committed records only)."""
    report = RebuildReport()
    started = time.perf_counter()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, isolation_level="read_committed",
                                enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024)  # fmt: skip
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
            for records in batch.values():
                for record in records:
                    event = decode_record(record)
                    if isinstance(event, DecodeFailure):
                        report.skipped += 1
                        continue
                    try:
                        projection.apply(event)
                    except Exception as error:
                        # An event that cannot follow its aggregate's state is reported, not fatal:
                        # the rest of the log still has to be served.
                        log.warning("event does not fit its aggregate; skipped", event_id=event.id, error=repr(error))
                        report.skipped += 1
                        continue
                    index.record(event)
                    report.events += 1
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    report.seconds = time.perf_counter() - started
    return report
