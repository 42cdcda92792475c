"""What the audit service does: ingest every topic into the chained store, sign checkpoints,
verify the trail against itself, its checkpoints and the Kafka log, and replay tasks."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.chain import GENESIS, CheckpointSigner, LogRecord, canonical, chain_hash, signature_valid
from services.audit.store import DERIVED, AuditStore, EntryFilter, derive, event_of, log_record
from shared.auth import Actor, reads_everything
from shared.contract.catalog import CheckpointSigned, IssueEscalated
from shared.contract.codes import Department
from shared.contract.envelope import CloudEvent, new_event
from shared.contract.topics import ALERTS, DEADLETTER, EVENTS
from shared.domain.evolve import DOMAIN_TYPES, EvolveError, Projection
from shared.domain.state import Task
from shared.kafka.consumer import partitions_of
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)
AUDITED_TOPICS = (EVENTS, ALERTS, DEADLETTER)
CHECKPOINT_TYPE = CheckpointSigned.event_type


def as_log_record(record: ConsumerRecord) -> LogRecord:
    return LogRecord(record.topic, record.partition, record.offset, record.timestamp, record.key, record.value,
                     tuple(record.headers))  # fmt: skip


class Ingestor:
    """Reads every audited partition from where the store left off, and appends in batches.

    Not the shared consumer runner: its offsets live in the store's own transaction, not in
    Kafka, which is what makes ingestion exactly-once into the database.
    """

    def __init__(self, kafka: KafkaSettings, store: AuditStore, batch_size: int,
                 topics: tuple[str, ...] = AUDITED_TOPICS) -> None:  # fmt: skip
        self._kafka, self._store, self._batch_size, self._topics = kafka, store, batch_size, topics
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._stored: dict[TopicPartition, int] = {}
        self.ingested = 0

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._kafka.bootstrap_servers, enable_auto_commit=False,
                                          isolation_level="read_committed", auto_offset_reset="earliest",
                                          max_partition_fetch_bytes=4 * 1024 * 1024)  # fmt: skip
        await self._consumer.start()
        partitions = await partitions_of(self._consumer, self._topics)
        self._consumer.assign(partitions)
        stored = await self._store.positions()
        beginnings = await self._consumer.beginning_offsets(partitions)
        for tp in partitions:
            self._stored[tp] = stored.get((tp.topic, tp.partition), beginnings[tp])
            self._consumer.seek(tp, self._stored[tp])

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        assert self._consumer is not None
        try:
            while not self._stopping.is_set():
                batch = await self._consumer.getmany(timeout_ms=200, max_records=self._batch_size)
                records = [as_log_record(r) for records in batch.values() for r in records]
                if records:
                    await self._store.append(records)
                    self.ingested += len(records)
                # Everything up to the positions is now stored; they also step over the
                # transaction markers, which take offsets but are never returned.
                for tp in self._stored:
                    self._stored[tp] = await self._consumer.position(tp)
        finally:
            await self._consumer.stop()

    async def lag(self) -> int:
        """Records on the log not yet in the store (what is fetched but not stored counts)."""
        if self._consumer is None:
            return -1
        ends = await self._consumer.end_offsets(list(self._stored))
        return sum(max(0, ends[tp] - offset) for tp, offset in self._stored.items())


@dataclass
class Checkpointer:
    """Signs the chain's head at an interval and publishes it, so copies exist outside the store."""

    store: AuditStore
    signer: CheckpointSigner
    producer: EventProducer
    interval: float
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    last_sequence: int = 0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        existing = await self.store.checkpoints()
        self.last_sequence = existing[-1].sequence if existing else 0
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
            except TimeoutError:
                await self.checkpoint()

    def stop(self) -> None:
        self._stopping.set()

    async def checkpoint(self) -> CheckpointSigned | None:
        head = self.store.head
        if head.sequence <= self.last_sequence or await self._only_checkpoints_since(self.last_sequence):
            return None
        signed_at = self.clock()
        signature = self.signer.sign(head.sequence, head.hash, signed_at)
        await self.store.add_checkpoint(head.sequence, head.hash, signed_at, self.signer.key_id, signature)
        checkpoint = CheckpointSigned(sequence=head.sequence, head_hash=head.hash, signed_at=signed_at,
                                      key_id=self.signer.key_id, signature=signature)  # fmt: skip
        await self.producer.publish(new_event(checkpoint, actor="policytrack-audit", time=signed_at))
        self.last_sequence = head.sequence
        log.info("checkpoint signed", sequence=head.sequence, head_hash=head.hash)
        return checkpoint

    async def _only_checkpoints_since(self, sequence: int) -> bool:
        rows, _ = await self.store.page(EntryFilter(after_sequence=sequence), 1000)
        return bool(rows) and all(row.event_type == CHECKPOINT_TYPE for row in rows) and len(rows) < 1000


# --- verification ------------------------------------------------------------------------------------


@dataclass
class Verification:
    ok: bool = True
    entries: int = 0
    checkpoints: int = 0
    against_log: bool = False
    divergence: dict[str, Any] | None = None

    def fail(self, sequence: int | None, problem: str, **details: Any) -> Verification:
        if self.ok:
            self.ok = False
            self.divergence = {"sequence": sequence, "problem": problem, **details}
        return self


class LogReader:
    """Reads each partition of the log in order, on demand, for the byte-for-byte comparison."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._buffers: dict[TopicPartition, deque[ConsumerRecord]] = {}
        self._ends: dict[TopicPartition, int] = {}

    async def start(self, partitions: list[TopicPartition]) -> None:
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._ends = await self._consumer.end_offsets(partitions)
        self._buffers = {tp: deque() for tp in partitions}

    async def next(self, tp: TopicPartition) -> ConsumerRecord | None:
        buffer = self._buffers.setdefault(tp, deque())
        while not buffer:
            if await self._consumer.position(tp) >= self._ends.get(tp, 0):
                return None
            fetched = await self._consumer.getmany(tp, timeout_ms=1000, max_records=5000)
            buffer.extend(fetched.get(tp, ()))
        return buffer.popleft()


async def verify(store: AuditStore, public_key: Ed25519PublicKey, kafka: KafkaSettings | None) -> Verification:
    """Recomputes the chain, checks every checkpoint, and compares every entry with the log."""
    result = Verification(against_log=kafka is not None)
    stored_checkpoints = {row.sequence: row for row in await store.checkpoints()}
    consumer = None
    reader = None
    if kafka is not None:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False,
                                    isolation_level="read_committed", max_partition_fetch_bytes=8 * 1024 * 1024)
        await consumer.start()
        reader = LogReader(consumer)
        stored = await store.stored_partitions()
        await reader.start([TopicPartition(topic, partition) for topic, partition in stored])
    try:
        await _walk(store, result, stored_checkpoints, public_key, reader)
    finally:
        if consumer is not None:
            await consumer.stop()
    for sequence in stored_checkpoints:
        if sequence > result.entries:
            result.fail(sequence, "a checkpoint covers entries that are not in the store")
    return result


async def _walk(store: AuditStore, result: Verification, stored_checkpoints: dict[int, Any],
                public_key: Ed25519PublicKey, reader: LogReader | None) -> None:  # fmt: skip
    previous, expected = GENESIS, 1
    async for rows in store.stream(chunk=5000):
        for row in rows:
            if row.seq != expected:
                result.fail(expected, f"entry {expected} is missing (the next stored entry is {row.seq})")
                return
            record = log_record(row, with_headers=False)
            if row.prev_hash != previous:
                result.fail(row.seq, "prev_hash does not match the previous entry's hash")
                return
            digest = chain_hash(previous, record, row.headers)
            if digest != row.hash:
                result.fail(row.seq, "stored content does not match its hash (the entry was edited)")
                return
            if (checkpoint := stored_checkpoints.get(row.seq)) is not None:
                result.checkpoints += 1
                signed_at = datetime.fromisoformat(checkpoint.signed_at.replace("Z", "+00:00"))
                if checkpoint.head_hash != digest:
                    result.fail(row.seq, "the chain differs from the signed checkpoint at this sequence")
                    return
                if not signature_valid(public_key, row.seq, checkpoint.head_hash, signed_at, checkpoint.signature):
                    result.fail(row.seq, "the checkpoint's signature does not verify")
                    return
            if reader is not None and not (_derived_columns_hold(row, result)
                                           and await _matches_log(reader, row, record, result)):
                return
            previous, expected = digest, expected + 1
            result.entries += 1


def _derived_columns_hold(row: Any, result: Verification) -> bool:
    """The query columns (actor, type, task...) still say what the record says. Only the full
    verification decodes every entry for this; the chain alone covers the record's bytes."""
    derived = derive(log_record(row))
    differs = [name for name in DERIVED if getattr(row, name) != derived[name]]
    if differs:
        result.fail(row.seq, "columns derived from the record were changed", fields=differs)
    return not differs


async def _matches_log(reader: LogReader, row: Any, record: LogRecord, result: Verification) -> bool:
    on_log = await reader.next(TopicPartition(record.topic, record.partition))
    where = f"{record.topic}/{record.partition}"
    if on_log is None:
        result.fail(row.seq, f"entry claims {where}@{record.offset}, which is not on the log")
        return False
    if on_log.offset != record.offset:
        result.fail(row.seq, f"the store and the log disagree on {where}: the log's next record is "
                             f"@{on_log.offset}, the entry claims @{record.offset} (an entry was removed or inserted)")
        return False
    logged = as_log_record(on_log)
    if canonical(logged) != canonical(record, row.headers):
        stored = log_record(row)
        differs = [name for name in ("timestamp", "key", "value", "headers")
                   if getattr(logged, name) != getattr(stored, name)]  # fmt: skip
        result.fail(row.seq, f"entry differs from {where}@{record.offset} on the log", fields=differs)
        return False
    return True


# --- replay, responsibility, export ---------------------------------------------------------------


async def domain_events(store: AuditStore, where: EntryFilter) -> AsyncIterator[tuple[Any, CloudEvent]]:
    """The stored domain events that match, in log order, with their entries."""
    async for rows in store.stream(where):
        for row in rows:
            if row.event_type in DOMAIN_TYPES and isinstance(event := event_of(row), CloudEvent):
                yield row, event


def fold(projection: Projection, event: CloudEvent) -> bool:
    """``projection.apply``, passing over an event that does not fit (the trail keeps it)."""
    try:
        return projection.apply(event)
    except EvolveError:
        return False


async def replay_task(store: AuditStore, task_id: str, as_of: datetime | None) -> Task | None:
    """The task as it stood at ``as_of``, folded with the same ``evolve`` as the tasks service."""
    projection = Projection()
    async for _, event in domain_events(store, EntryFilter(task_id=task_id, until=as_of)):
        fold(projection, event)
    return projection.task(task_id)


async def responsibility(store: AuditStore, now: datetime) -> dict[str, dict[str, int]]:
    """Per department: what it was assigned (lead, supporting), what it did, what is late and
    what was escalated."""
    projection = Projection()
    acts: Counter[str] = Counter()
    escalated_tasks: Counter[str] = Counter()
    async for row, event in domain_events(store, EntryFilter()):
        if row.actordept:
            acts[row.actordept] += 1
        if fold(projection, event) and isinstance(event.data, IssueEscalated):
            escalated_tasks[event.data.task_id] += 1
    table = {str(d): {"lead": 0, "supporting": 0, "acts": acts.get(str(d), 0), "late": 0, "escalated": 0}
             for d in Department}  # fmt: skip
    for task in projection.tasks():
        departments = [task.lead_department, *task.supporting_departments]
        if task.lead_department:
            table[str(task.lead_department)]["lead"] += 1
        for department in task.supporting_departments:
            table[str(department)]["supporting"] += 1
        for department in filter(None, departments):
            table[str(department)]["late"] += int(task.is_overdue(now))
            table[str(department)]["escalated"] += escalated_tasks.get(task.task_id, 0)
    return table


def visibility(actor: Actor) -> str | None:
    """None: sees everything; otherwise the department whose tasks bound what it sees."""
    return None if reads_everything(actor) else str(actor.department)


def ndjson_line(row: Any) -> bytes:
    event: Any = None
    if row.decode_error is None:
        attributes = {name.removeprefix("ce_"): base64.b64decode(value).decode()
                      for name, value in orjson.loads(row.headers) if name.startswith("ce_")}  # fmt: skip
        event = {**attributes, "datacontenttype": "application/json", "data": orjson.Fragment(row.value)}
    return orjson.dumps({
        "seq": row.seq, "topic": row.topic, "partition": row.partition, "offset": row.offset,
        "timestamp": row.timestamp, "prev_hash": row.prev_hash, "hash": row.hash, "event": event,
        "decode_error": row.decode_error,
        "raw": None if event is not None else {
            "key": row.key and base64.b64encode(row.key).decode(),
            "value": row.value and base64.b64encode(row.value).decode(),
            "headers": orjson.Fragment(row.headers)},
    }) + b"\n"  # fmt: skip


CSV_COLUMNS = ("seq", "topic", "partition", "offset", "event_time", "event_type", "subject", "task_id", "actor",
               "actordept", "event_id", "hash", "decode_error")  # fmt: skip


async def export(store: AuditStore, where: EntryFilter, fmt: str) -> AsyncIterator[bytes]:
    """The trail as NDJSON or CSV, streamed a chunk at a time."""
    if fmt == "csv":
        yield (",".join(CSV_COLUMNS) + "\r\n").encode()
    async for rows in store.stream(where, chunk=2000):
        if fmt == "ndjson":
            yield b"".join(map(ndjson_line, rows))
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerows([getattr(row, column) for column in CSV_COLUMNS] for row in rows)
            yield buffer.getvalue().encode()
