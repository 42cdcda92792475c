"""Where the tasks service appends: ``EventLog``, on Kafka in production, in memory in fast tests.

``KafkaEventLog`` is the service's single writer. It appends in Kafka transactions under a
stable ``transactional.id``: starting a second instance with the same id fences this one,
which can then no longer append. Submissions are written in the order they were made;
concurrent ones share a transaction (group commit), so throughput does not hang on one
transaction per command. When a batch fails, every submission queued behind it fails too
without being tried: it may have been decided on the state the failed batch would have made.

An append whose outcome the broker did not acknowledge (a broker restart in the middle of a
commit, a producer that aiokafka gave up on: aio-libs/aiokafka#1151) is never answered on a
guess. The writer starts a new producer under the same transactional id, which makes the
coordinator finish or abort the open transaction, then reads the log to learn whether the
batch is on it: acknowledged if it is, refused if it is not. Meanwhile the batch stays in
flight, so a client retrying with the same Idempotency-Key waits rather than writes twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import ConsumerRecord
from aiokafka.errors import ProducerFenced
from aiokafka.structs import RecordMetadata

from services.tasks.application.view import Placement
from shared.contract.codec import header
from shared.contract.envelope import AnyEvent
from shared.contract.topics import EVENTS
from shared.kafka.consumer import log_ends, read_since
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.provenance.keys import SigningKey
from shared.retrying import LOG_RECOVERY
from shared.settings import KafkaSettings

log = get_logger(__name__)

SOURCE = "/policytrack/tasks"
CLOCK_MARGIN_MS = 5_000
"""How far before a batch's start the read-back looks: record timestamps come from this host's clock."""


class Fenced(RuntimeError):
    """Another instance with the same transactional id took over; this one must not write."""

    def __init__(self) -> None:
        super().__init__("this instance was fenced by a newer one with the same transactional id")


class LogUnavailable(RuntimeError):
    """The append was not acknowledged; nothing of it is on the log."""


Committed = Callable[[list[Placement]], None]
"""Told where each appended event landed, in the writer, in submission order."""
Failed = Callable[[], None]
"""Told, in the writer, that a submission will not be on the log."""


def ignore_placed(placed: list[Placement]) -> None:
    pass


def ignore_failure() -> None:
    pass


class EventLog(Protocol):
    @property
    def fenced(self) -> bool: ...
    @property
    def recovering(self) -> bool: ...

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def submit(
        self,
        events: list[AnyEvent],
        committed: Committed = ignore_placed,
        failed: Failed = ignore_failure,
        *,
        partition: int | None = None,
    ) -> asyncio.Future[None]:
        """Queues ``events`` behind every earlier submission (of ``partition``'s writer, when
        there is one per partition); raises Fenced at once if this writer is fenced. The future
        resolves once they are on the log, after ``committed`` was told where; it raises Fenced
        or LogUnavailable, after ``failed`` was told, when nothing of them is."""
        ...


@dataclass
class _Pending:
    events: list[AnyEvent]
    committed: Committed = ignore_placed
    failed: Failed = ignore_failure
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    sent: list[asyncio.Future[RecordMetadata]] = field(default_factory=list)

    def succeeded(self, placed: list[Placement]) -> None:
        try:
            self.committed(placed)
        except Exception as error:
            # The events are on the log whatever the listener made of them; a restart reads them back.
            log.error("an appended batch could not be taken in", error=repr(error))
        if not self.done.done():
            self.done.set_result(None)

    def refused(self, error: Exception) -> None:
        self.failed()
        if not self.done.done():
            self.done.set_exception(error)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _not_written(attempt: asyncio.Task[None], batch: list[_Pending]) -> BaseException | None:
    """Why a finished transaction does not vouch for every record of the batch; None when it does.
    A transaction cancelled under the writer, or a record that failed though the commit did not,
    leaves the batch's fate to be read from the log."""
    if attempt.cancelled():
        return LogUnavailable("the transaction was cancelled under the writer")
    if (error := attempt.exception()) is not None:
        return error
    for pending in batch:
        for sent in pending.sent:
            if not sent.done() or sent.cancelled():
                return LogUnavailable("a record of the transaction has no answer")
            if (failed := sent.exception()) is not None:
                return failed
    return None


class KafkaEventLog:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        transactional_id: str,
        signing_key: SigningKey,
        max_batch: int = 256,
        partition: int | None = None,
    ) -> None:
        self._kafka, self._transactional_id = kafka, transactional_id
        self._signing_key = signing_key
        self._partition = partition
        """The partition whose aggregates this writer alone appends to, when it is one of several."""
        self._in_flight: set[asyncio.Future[None]] = set()
        self._producer = self._new_producer()
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._max_batch = max_batch
        self._writer: asyncio.Task[None] | None = None
        self._commit_timeout = 2 * kafka.request_timeout_ms / 1000
        self._recent: deque[tuple[float, frozenset[str]]] = deque()
        self._preceded: dict[int, int] = {}
        """Per partition, the log's end when this writer took its id."""
        self.fenced = False
        self.recovering = False

    def _new_producer(self) -> EventProducer:
        # A new transaction's first request is often answered "concurrent transactions" while the
        # broker still writes the last one's markers; a short backoff keeps that from adding 20 ms.
        return EventProducer(
            self._kafka,
            client_id=self._transactional_id,
            signing_key=self._signing_key,
            transactional_id=self._transactional_id,
            linger_ms=0,
            retry_backoff_ms=2,
        )

    async def start(self) -> None:
        """Registers the transactional id: older instances with it are fenced from here on."""
        await self._producer.start()
        # What is on the log now was appended before this writer took its id (an older
        # instance with it is fenced from here on): the read-back after a failure must not take
        # a restarted instance's own last events for another writer's.
        self._preceded = await log_ends(self._kafka, EVENTS)
        self._writer = asyncio.create_task(self._write_loop(), name="event-log-writer")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._producer.stop()

    def submit(
        self,
        events: list[AnyEvent],
        committed: Committed = ignore_placed,
        failed: Failed = ignore_failure,
        *,
        partition: int | None = None,
    ) -> asyncio.Future[None]:
        if self.fenced:
            raise Fenced()
        pending = _Pending(events, committed, failed)
        self._queue.put_nowait(pending)
        self._in_flight.add(pending.done)
        pending.done.add_done_callback(self._in_flight.discard)
        return pending.done

    async def drain(self) -> None:
        """Waits until everything submitted so far is on the log or refused."""
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcome = await self._commit(batch)
            except (Exception, asyncio.CancelledError) as error:
                # The writer must outlive any one batch, since every later append waits on it;
                # only ``stop`` ends it.
                if isinstance(error, asyncio.CancelledError) and _being_cancelled():
                    raise
                log.exception("an append failed in an unforeseen way; refused", error=repr(error))
                outcome = LogUnavailable(f"the append failed: {error!r}")
            if isinstance(outcome, Exception):
                self._refuse(batch, outcome)
                continue
            for pending in batch:
                pending.succeeded([outcome[event.id] for event in pending.events])

    def _refuse(self, batch: list[_Pending], error: Exception) -> None:
        for pending in batch:
            pending.refused(error)
        behind = error if isinstance(error, Fenced) else LogUnavailable("an append before this one failed; not tried")
        while not self._queue.empty():
            self._queue.get_nowait().refused(behind)

    async def _commit(self, batch: list[_Pending]) -> dict[str, Placement] | Exception:
        """Where each event of the batch landed, or why the batch is not on the log."""
        if self.fenced:
            return Fenced()
        started_ms = int(time.time() * 1000)
        # The transaction runs as a task of its own, so that a commit aiokafka never finishes
        # (or an abort after it, which asyncio's timeouts cannot interrupt) is left behind.
        attempt = asyncio.create_task(self._transaction(batch), name="event-log-transaction")
        done, _ = await asyncio.wait({attempt}, timeout=self._commit_timeout)
        if not done:
            attempt.cancel()
        error = _not_written(attempt, batch) if done else TimeoutError(f"no answer in {self._commit_timeout:.0f} s")
        if error is None:
            self._remember(batch)
            return {
                event.id: _placed(sent.result())
                for pending in batch
                for event, sent in zip(pending.events, pending.sent, strict=True)
            }
        if isinstance(error, ProducerFenced):
            return self._fenced()
        log.warning("append not acknowledged; learning its outcome from the log", error=repr(error))
        return await self._recover(batch, started_ms)

    async def _transaction(self, batch: list[_Pending]) -> None:
        """One transaction; the last record it appends to each partition carries the signature
        that vouches for the others (they are committed, or aborted, together)."""
        events = [event for pending in batch for event in pending.events]
        partitions = [await self._producer.partition_of(event.topic, event.subject.encode()) for event in events]
        last = {partition: i for i, partition in enumerate(partitions)}
        sent = iter(range(len(events)))
        async with self._producer.transaction():
            for pending in batch:
                pending.sent = []
                for event in pending.events:
                    i = next(sent)
                    pending.sent.append(
                        await self._producer.enqueue(event, partition=partitions[i], sign=last[partitions[i]] == i)
                    )

    def _fenced(self) -> Fenced:
        self.fenced = True
        log.error("fenced: another instance took over this transactional id; refusing writes")
        return Fenced()

    async def _recover(self, batch: list[_Pending], started_ms: int) -> dict[str, Placement] | Exception:
        """A new producer under the same id settles the open transaction; the log then says
        whether the batch is on it. Retried until the broker answers both."""
        self.recovering = True
        try:
            async for attempt in LOG_RECOVERY.on(Exception):
                with attempt:
                    try:
                        await self._restart_producer()
                        on_log = await read_since(self._kafka, EVENTS, started_ms - CLOCK_MARGIN_MS)
                    except ProducerFenced:
                        return self._fenced()
                    except Exception as error:
                        log.warning("the log writer is recovering", error=repr(error), attempt=attempt.num)
                        raise
        finally:
            self.recovering = False
        return self._outcome(batch, on_log)

    async def _restart_producer(self) -> None:
        old, self._producer = self._producer, self._new_producer()
        try:
            async with asyncio.timeout(self._commit_timeout):
                await old.stop()
        except Exception as error:  # the old producer is abandoned either way
            log.info("the old producer did not stop cleanly", error=repr(error))
        await self._producer.start()

    def _outcome(self, batch: list[_Pending], records: list[ConsumerRecord]) -> dict[str, Placement] | Exception:
        ours = {event.id for pending in batch for event in pending.events}
        placed = {
            header(r.headers, "ce_id"): Placement(r.topic, r.partition, r.offset)
            for r in records
            if header(r.headers, "ce_source") == SOURCE
        }
        ids_on_log = set(placed)
        # Another partition's writers append all the time; only this one's partition is ours alone.
        theirs = {
            i
            for i, where in placed.items()
            if self._partition in (None, where.partition) and where.offset >= self._preceded.get(where.partition, 0)
        }
        strangers = theirs - ours - self._recently_appended()
        if strangers:
            # Someone else appended while this writer was away: it may not decide on its state any more.
            log.error("another writer appended during recovery", events=len(strangers))
            return self._fenced()
        if ours <= ids_on_log:
            log.info("the unacknowledged append is on the log after all", events=len(ours))
            self._remember(batch)
            return {event_id: placed[event_id] for event_id in ours}
        return LogUnavailable("the log did not take the append; nothing of it is on the log")

    def _remember(self, batch: list[_Pending]) -> None:
        """What this writer appended lately, to tell its own events from another writer's."""
        now = time.time()
        self._recent.append((now, frozenset(e.id for p in batch for e in p.events)))
        while self._recent and self._recent[0][0] < now - 2 * CLOCK_MARGIN_MS / 1000:
            self._recent.popleft()

    def _recently_appended(self) -> set[str]:
        return set().union(*(ids for _, ids in self._recent))


def _placed(sent: RecordMetadata) -> Placement:
    return Placement(sent.topic, sent.partition, sent.offset)


class InMemoryEventLog:
    """The log as a list, for fast tests of the service layer and the HTTP edge. What it
    proves is proven again against the real broker by the integration tests."""

    def __init__(self) -> None:
        self.events: list[AnyEvent] = []
        self.fenced = False
        self.recovering = False
        self.unavailable = False
        self._order = asyncio.Lock()  # FIFO: submissions are written in the order they were made
        self._failures = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def submit(
        self,
        events: list[AnyEvent],
        committed: Committed = ignore_placed,
        failed: Failed = ignore_failure,
        *,
        partition: int | None = None,
    ) -> asyncio.Future[None]:
        if self.fenced:
            raise Fenced()
        return asyncio.ensure_future(self._write(_Pending(events, committed, failed), self._failures))

    async def _write(self, pending: _Pending, failures_before: int) -> None:
        async with self._order:
            await self.written()
            if self._failures != failures_before:
                pending.refused(LogUnavailable("an append before this one failed; not tried"))
            elif self.unavailable:
                self._failures += 1
                pending.refused(LogUnavailable("the log is unavailable (in-memory log told to fail)"))
            else:
                placed = [Placement(event.topic, 0, len(self.events) + i) for i, event in enumerate(pending.events)]
                self.events += pending.events
                pending.succeeded(placed)
        await pending.done

    async def written(self) -> None:
        """Waits as a write does; an append is never instantaneous, so concurrent callers interleave."""
        await asyncio.sleep(0)
