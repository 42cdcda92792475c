"""The one consumer runner: check the writer's proof, decode, handle, then commit
(at-least-once), dead-letter poison.

A record whose writer's proof fails is never handled: it is logged, counted and stepped over
(the audit trail keeps it apart). A record that does not decode, or whose handler still fails
after its retries, goes to ``policy.deadletter`` with the reason and the original bytes; the
loop goes on. Offsets are committed only for records that were handled, refused or
dead-lettered, so a crash re-delivers (handlers are idempotent by event id) and never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaConnectionError, KafkaError, KafkaTimeoutError

from shared.contract.codec import DecodeFailure, decode_record
from shared.kafka.connection import client_options
from shared.kafka.patience import answered, started
from shared.kafka.producer import EventProducer
from shared.logging import Sampled, correlated, get_logger
from shared.metrics import CONSUMER_LAG, DEAD_LETTERED, EVENTS_HANDLED, HANDLER_RETRIES, RECORDS_REFUSED
from shared.provenance.gate import ProofGate, Verdict
from shared.retrying import BROKER_PATIENCE, RetryPolicy
from shared.settings import KafkaSettings
from shared.supervision import Health

log = get_logger(__name__)
_REFUSED = Sampled(log, "refusing a record whose writer's proof fails")

T = TypeVar("T")
Handler = Callable[[T, ConsumerRecord], Awaitable[None]]
Decoder = Callable[[ConsumerRecord], "T | DecodeFailure"]


class StopConsuming(Exception):
    """Raised by a handler that must not go on (its instance was fenced): the runner stops at
    once, committing nothing more, and leaves its group so another member takes the record."""


class PartitionMoved(Exception):
    """Raised by a handler whose instance no longer owns the record's partition: the runner
    leaves the rest of that partition's batch unhandled and uncommitted for the new owner."""


class DeadLetters(Protocol):
    async def dead_letter(
        self, failure: DecodeFailure, *, topic: str, partition: int, offset: int, consumer: str
    ) -> object: ...


class ConsumerRunner(Generic[T]):
    """Runs ``handler`` over every event of ``topics`` (or, with another ``decode``, over
    whatever that decoder makes of a record, as the command topic does).

    With a ``group_id`` the runner joins that consumer group and commits; without one it
    reads every partition from the beginning and commits nothing (a replay, as services do
    to rebuild their state). Run again after a failure, it goes on where it left off: from
    the group's commits, or from the records it handled in this process.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        name: str,
        topics: Sequence[str],
        handler: Handler[T],
        dead_letters: DeadLetters | EventProducer,
        group_id: str | None,
        proofs: ProofGate | None,
        decode: Decoder[T] = decode_record,  # type: ignore[assignment]  # the default: T is then AnyEvent
        max_attempts: int = 5,
        retry_backoff: float = 0.2,
        max_records: int = 500,
        isolation_level: str = "read_committed",
        start_at: Mapping[TopicPartition, int] | None = None,
        rebalance: ConsumerRebalanceListener | None = None,
        session_timeout_ms: int = 10_000,
        pipelined: bool = False,
    ) -> None:
        self.name = name
        self._pipelined = pipelined
        """Handle a partition's batch concurrently (started in order) rather than one by one."""
        self._rebalance = rebalance
        self._session_timeout_ms = session_timeout_ms
        self._kafka = kafka
        self._topics = tuple(topics)
        self._handler = handler
        self._decode = decode
        self._dead_letters = dead_letters
        self._group_id = group_id
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self._max_records = max_records
        self._isolation_level = isolation_level
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._proofs = proofs
        """Checks each record's writer's proof; None where the decoder authenticates records itself
        (the command topic: a department's signature)."""
        self._resume: dict[TopicPartition, int] = dict(start_at or {})
        """Where each partition goes on (without a group): from ``start_at`` (a snapshot's
        positions), then past every record handled in this process."""
        self.handled = 0

    async def start(self) -> None:
        consumer = await started(
            lambda: new_consumer(
                self._kafka,
                group_id=self._group_id,
                client_id=self.name,
                isolation_level=self._isolation_level,
                session_timeout_ms=self._session_timeout_ms,
            ),
            what=self.name,
        )
        try:
            if self._group_id is None:
                partitions = await partitions_of(consumer, self._topics)
                consumer.assign(partitions)
                await consumer.seek_to_beginning(*(tp for tp in partitions if tp not in self._resume))
                for tp in partitions:
                    if tp in self._resume:
                        consumer.seek(tp, self._resume[tp])
            elif self._rebalance is not None:
                consumer.subscribe(list(self._topics), listener=self._rebalance)
            else:
                consumer.subscribe(list(self._topics))
        except BaseException:
            await stop_consumer(consumer)
            raise
        self._consumer = consumer

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit it and return."""
        self._stopping.set()

    async def run(self, health: Health | None = None) -> None:
        if self._consumer is None:
            await self.start()
        consumer = self._consumer
        assert consumer is not None
        try:
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=self._max_records)
                for partition, judged in (await self._proven(consumer, batch)).items():
                    await self._handle_in_turns(consumer, partition, judged)
                if health is not None:
                    health.healthy()
                # getmany returns buffered records without suspending, and a handler that
                # has nothing to wait for does not suspend either: without this, catching up
                # through thousands of records holds the event loop (HTTP, deliveries) that long.
                await asyncio.sleep(0)
        finally:
            self._consumer = None
            await stop_consumer(consumer)

    async def _handle_in_turns(
        self,
        consumer: AIOKafkaConsumer,
        partition: TopicPartition,
        judged: list[tuple[ConsumerRecord, Verdict | None]],
    ) -> None:
        """Handles and commits the records ``max_records`` at a time, letting the loop run
        between: the gate gives out at once every record its writer's signature closes, a whole
        transaction or record batch, however many ``getmany`` read."""
        for start in range(0, len(judged), self._max_records):
            if start:
                await asyncio.sleep(0)
            turn = judged[start : start + self._max_records]
            handled = await self._handle_all(consumer, partition, turn)
            if handled:
                await self._commit(consumer, partition, turn[handled - 1][0].offset + 1)
                EVENTS_HANDLED.labels(self.name, partition.topic).inc(handled)
            if handled < len(turn):
                return  # the partition moved to another owner

    async def _proven(
        self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]
    ) -> dict[TopicPartition, list[tuple[ConsumerRecord, Verdict | None]]]:
        """Per partition, the records that can be judged now, in order, with their verdicts
        (None: not checked here); those that wait for their writer's signature stay in the gate."""
        if self._proofs is None:
            return {tp: [(record, None) for record in records] for tp, records in batch.items()}
        gate = self._proofs
        waiting = [tp for tp in consumer.assignment() if gate.waiting(tp.topic, tp.partition) is not None]
        judged: dict[TopicPartition, list[tuple[ConsumerRecord, Verdict | None]]] = {}
        for tp in {*batch, *waiting}:
            complete = await read_through(consumer, tp)
            if admitted := gate.admit(batch.get(tp, []), complete=complete, topic=tp.topic, partition=tp.partition):
                judged[tp] = list(admitted)
        return judged

    async def _handle_all(
        self,
        consumer: AIOKafkaConsumer,
        partition: TopicPartition,
        judged: list[tuple[ConsumerRecord, Verdict | None]],
    ) -> int:
        """How many of the records were handled (or refused), in order, before the partition
        moved away."""
        attempts = [
            self._attempt(record) if verdict is None or verdict.ok else self._refuse(record, verdict)
            for record, verdict in judged
        ]
        if self._pipelined:
            # Each handler starts in record order and runs up to its first wait (a command is
            # decided and submitted there), so the partition's order holds while the appends
            # of the whole batch share transactions.
            outcomes = list(await asyncio.gather(*attempts))
        else:
            outcomes = []
            for attempt in attempts:
                outcomes.append(await attempt)
                if outcomes[-1] is not None:
                    break
            for unstarted in attempts[len(outcomes) :]:
                unstarted.close()
        for handled, ((record, _), moved) in enumerate(zip(judged, outcomes, strict=False)):
            if moved is not None:
                log.info("partition moved to another owner", partition=str(partition), offset=record.offset)
                with contextlib.suppress(IllegalStateError):  # already revoked: the owner reads it
                    consumer.seek(partition, record.offset)
                if self._proofs is not None:
                    self._proofs.forget(partition.topic, partition.partition)
                return handled
            self._resume[partition] = record.offset + 1
        return len(judged)

    async def _refuse(self, record: ConsumerRecord, verdict: Verdict) -> None:
        """A record whose writer's proof fails is never handled."""
        _REFUSED.warning(topic=record.topic, partition=record.partition, offset=record.offset, reason=verdict.refusal)
        RECORDS_REFUSED.labels(self.name, record.topic).inc()

    async def _attempt(self, record: ConsumerRecord) -> PartitionMoved | None:
        try:
            await self._handle(record)
        except PartitionMoved as moved:
            return moved
        return None

    async def lag(self) -> int | None:
        """Records on the assigned partitions that this runner has not handled yet; None
        while it is not running (so nobody mistakes "not started" for "caught up")."""
        consumer = self._consumer
        if consumer is None:
            return None
        assigned = consumer.assignment()
        if not assigned:
            return None if self._group_id is None else 0
        ends = await end_offsets_within(consumer, list(assigned))
        if ends is None:
            return None
        lag = 0
        for tp in assigned:
            lag += max(0, ends[tp] - await consumer.position(tp))
        CONSUMER_LAG.labels(self.name).set(lag)
        return lag

    def _decoded(self, record: ConsumerRecord) -> T | DecodeFailure:
        """What the decoder makes of the record; a decoder that raises is a bug, but the
        record is still only a dead letter, never the end of the loop."""
        try:
            return self._decode(record)
        except Exception as error:
            log.exception("decoder raised; dead-lettering the record")
            return DecodeFailure(f"could not decode: {error!r}"[:1000], record.key, record.value, tuple(record.headers))

    async def _handle(self, record: ConsumerRecord) -> None:
        decoded = self._decoded(record)
        if isinstance(decoded, DecodeFailure):
            await self._dead_letter(record, decoded, cause="undecodable")
            return
        with correlated(getattr(decoded, "correlationid", None), getattr(decoded, "id", None)):
            for attempt in range(1, self._max_attempts + 1):
                try:
                    await self._handler(decoded, record)
                    self.handled += 1
                    return
                except (StopConsuming, PartitionMoved):
                    raise
                except Exception as error:  # a handler's failure must not stop the loop
                    if attempt == self._max_attempts:
                        log.exception("handler failed; dead-lettering", attempts=attempt)
                        failure = DecodeFailure(
                            reason=f"handler failed after {attempt} attempts: {error!r}",
                            key=record.key,
                            value=record.value,
                            headers=tuple(record.headers),
                        )
                        await self._dead_letter(record, failure, cause="handler_failed")
                        return
                    HANDLER_RETRIES.labels(self.name).inc()
                    log.warning("handler failed; retrying", attempt=attempt, error=repr(error))
                    await asyncio.sleep(self._retry_backoff * 2 ** (attempt - 1))

    async def _dead_letter(self, record: ConsumerRecord, failure: DecodeFailure, *, cause: str) -> None:
        log.warning(
            "dead-lettering record",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=failure.reason,
        )
        await self._dead_letters.dead_letter(
            failure, topic=record.topic, partition=record.partition, offset=record.offset, consumer=self.name
        )
        DEAD_LETTERED.labels(self.name, record.topic, cause).inc()

    async def _commit(self, consumer: AIOKafkaConsumer, partition: TopicPartition, next_offset: int) -> None:
        if self._group_id is None:
            return
        try:
            await consumer.commit({partition: next_offset})
        except (CommitFailedError, KafkaError) as error:
            # The partition moved to another member during a rebalance; it re-reads from the
            # last commit, which is at-least-once, not a loss.
            log.warning("offset commit failed", partition=str(partition), error=repr(error))


def new_consumer(
    kafka: KafkaSettings,
    *,
    group_id: str | None = None,
    client_id: str = "policytrack",
    isolation_level: str = "read_committed",
    fetch_bytes: int = 4 * 1024 * 1024,
    session_timeout_ms: int = 10_000,
) -> AIOKafkaConsumer:
    """The one way a consumer is made: no auto-commit, from the earliest record, committed
    records only unless told otherwise. A fetch brings at most ``fetch_bytes``, one partition's
    share, not one share of every partition at once."""
    return AIOKafkaConsumer(
        **client_options(kafka),
        client_id=client_id,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
        max_partition_fetch_bytes=fetch_bytes,
        # The client's default (50 MiB) let a reader of three partitions take 24 MiB in one answer,
        # held twice while read: most of the audit's peak memory (docs/performance.md). No partition
        # waits on the others: aiokafka shuffles their order in every fetch.
        fetch_max_bytes=fetch_bytes,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=session_timeout_ms // 3,
    )


END_OFFSETS_SECONDS = 3.0


async def read_through(consumer: AIOKafkaConsumer, tp: TopicPartition) -> bool:
    """Whether the consumer has read every committed record the partition holds, as of its last
    fetch (a writer's record that still waits for its signature then never gets one)."""
    stable = consumer.last_stable_offset(tp)
    if stable is None or stable < 0:
        stable = consumer.highwater(tp)
    return stable is not None and await consumer.position(tp) >= stable


async def end_offsets_within(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, int] | None:
    """The partitions' end offsets, or None when the broker does not say in time. Bounded: a
    consumer stopped under the call (its reader failed meanwhile) leaves its wait for metadata
    without an end, and a readiness probe with it."""
    try:
        ends: dict[TopicPartition, int] = await asyncio.wait_for(consumer.end_offsets(partitions), END_OFFSETS_SECONDS)
    except (TimeoutError, KafkaError):
        return None
    return ends


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    # aiokafka starts a task at the very end of start() and awaits it in stop(); a consumer
    # stopped before that task first ran raises CancelledError from stop(). One turn of the
    # loop lets it run.
    await asyncio.sleep(0)
    await consumer.stop()


@asynccontextmanager
async def open_consumer(kafka: KafkaSettings, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer (``new_consumer``'s options), stopped on leaving."""
    consumer = await started(lambda: new_consumer(kafka, **options), what=str(options.get("client_id", "consumer")))
    try:
        yield consumer
    finally:
        await stop_consumer(consumer)


async def partitions_of(
    consumer: AIOKafkaConsumer, topics: Sequence[str], *, patience: RetryPolicy = BROKER_PATIENCE
) -> list[TopicPartition]:
    """Every partition of ``topics``, from fresh cluster metadata (a consumer without a
    subscription has none cached), asked again while no broker answers: a broker restarting
    just after the consumer started must not end a service's start."""
    # aiokafka has no public call for the metadata of every topic.
    fetch = consumer._client.fetch_all_metadata
    cluster = await answered(fetch, what="metadata", failures=KafkaError, patience=patience)
    missing = [topic for topic in topics if cluster.partitions_for_topic(topic) is None]
    if missing:
        raise LookupError(f"no such topic: {', '.join(missing)}")
    return [TopicPartition(topic, p) for topic in topics for p in sorted(cluster.partitions_for_topic(topic))]


_NO_ANSWER = (KafkaConnectionError, KafkaTimeoutError)
"""What aiokafka raises while no broker answers: no connection, or offsets asked for and not
given within the request's timeout."""


async def offsets_of(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition], *, end: bool = True
) -> dict[TopicPartition, int]:
    """The partitions' end offsets (or, not ``end``, their first), asked again while no broker
    answers: a broker gone for longer than a request's timeout late in a start (a rebuild, a
    snapshot's check) ended the start."""
    ask = partial(consumer.end_offsets if end else consumer.beginning_offsets, list(partitions))
    return await answered(ask, what="offsets", failures=_NO_ANSWER)


async def run_until_signalled(*runners: ConsumerRunner[Any]) -> None:
    """Run the runners until SIGTERM or SIGINT, then let each finish its batch and commit."""
    loop = asyncio.get_running_loop()

    def stop_all() -> None:
        for runner in runners:
            runner.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_all)
    try:
        await asyncio.gather(*(runner.run() for runner in runners))
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def log_ends(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """Per partition of ``topic``, the offset after its last committed record now."""
    async with open_consumer(kafka, isolation_level="read_committed") as consumer:
        partitions = await partitions_of(consumer, [topic])
        ends = await offsets_of(consumer, partitions)
    return {tp.partition: offset for tp, offset in ends.items()}


async def read_since(kafka: KafkaSettings, topic: str, since_ms: int, *, timeout: float = 60) -> list[ConsumerRecord]:
    """Every committed record on ``topic`` stamped at or after ``since_ms`` (milliseconds since
    the epoch; 0 for all), up to where the topic ends now."""
    async with open_consumer(kafka, isolation_level="read_committed") as consumer:
        partitions = await partitions_of(consumer, [topic])
        ends = await offsets_of(consumer, partitions)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        consumer.assign(partitions)
        for partition in partitions:
            found = starts.get(partition)
            consumer.seek(partition, found.offset if found is not None else ends[partition])
        records: list[ConsumerRecord] = []
        async with asyncio.timeout(timeout):
            while any([await consumer.position(p) < ends[p] for p in partitions]):
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(r for r in batch if r.offset < ends[TopicPartition(r.topic, r.partition)])
    return records
