"""Ingestion: every record of the audited topics into the chained store, exactly once; a record
whose writer's proof fails is kept apart, never chained as an act.

Not the shared consumer runner: the offsets live in the store's own transaction, not in
Kafka, which is what makes ingestion exactly-once into the database. Before it ingests, the
store is checked against the log; a store that disagrees (entries deleted, a copy restored
from before checkpoints that the log holds) is refused rather than silently extended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.audit.adapters.chaining import ChainedBatch, chained
from services.audit.adapters.log import AUDITED_TOPICS, FETCH_BYTES, as_log_record, checkpoint_partition, read_range
from services.audit.adapters.store import AuditStore
from services.audit.domain import evidence
from services.audit.domain.chain import LogRecord
from shared.contract.topics import AUDIT
from shared.kafka.consumer import (
    end_offsets_within,
    new_consumer,
    offsets_of,
    open_consumer,
    partitions_of,
    read_through,
    stop_consumer,
)
from shared.logging import get_logger
from shared.metrics import RECORDS_REFUSED
from shared.provenance.gate import TOPIC_WRITERS, ProofGate
from shared.provenance.keys import TrustStore
from shared.settings import KafkaSettings
from shared.supervision import Health

log = get_logger(__name__)


class StoreDisagrees(RuntimeError):
    """The store is not a faithful prefix of the log; ingesting on top of it would hide that."""


CHAIN_IN_LOOP = 64
"""Batches this small are chained on the event loop: a hop to a thread and back costs more
latency (waiting for the interpreter) than chaining them, and live traffic comes in such
batches. Larger ones, as when catching up, are chained in a thread while the last is written."""


@dataclass
class Disagreement:
    problem: str

    def __str__(self) -> str:
        return self.problem


@dataclass(frozen=True)
class LogCheck:
    """What the start-up check found: why the store is not a faithful prefix of the log, and the
    records that claim to be checkpoints of its chain but are not believed (and why)."""

    disagreements: list[Disagreement]
    untrusted: list[str]


async def disagreements(
    store: AuditStore,
    kafka: KafkaSettings,
    chain_id: str,
    origin: str,
    trust: TrustStore,
    topics: tuple[str, ...] = AUDITED_TOPICS,
) -> LogCheck:
    """Why the store is not a faithful prefix of the log, if it is not: entries missing below
    the offsets it claims, offsets beyond the log's end, or checkpoints of its chain on the log
    that it does not reach or that say otherwise. Only evidence counts (``evidence.py``)."""
    found: list[Disagreement] = []
    untrusted: list[str] = []
    positions, last = await store.positions(), await store.last_offsets()
    for (topic, partition), next_offset in sorted(positions.items()):
        newest = last.get((topic, partition))
        if newest is None:
            found.append(Disagreement(f"{topic}/{partition}: every entry below offset {next_offset} is missing"))
        elif newest >= next_offset:
            found.append(
                Disagreement(
                    f"{topic}/{partition}: the store holds an entry at offset {newest}, beyond "
                    f"the next offset to ingest, {next_offset}"
                )
            )
        elif newest + 1 != next_offset:
            found.append(
                Disagreement(
                    f"{topic}/{partition}: entries after offset {newest} up to {next_offset - 1} "
                    f"are missing (the store says it ingested them)"
                )
            )
    for topic, partition in sorted(set(last) - set(positions)):
        found.append(Disagreement(f"{topic}/{partition}: the store holds entries but no offset for them"))
    async with open_consumer(kafka, fetch_bytes=FETCH_BYTES) as consumer:
        every = await partitions_of(consumer, topics)
        ends = await offsets_of(consumer, every)
        for tp in every:
            next_offset = positions.get((tp.topic, tp.partition), 0)
            if next_offset > ends[tp]:
                found.append(
                    Disagreement(
                        f"{tp.topic}/{tp.partition}: the store holds offsets up to "
                        f"{next_offset - 1} but the log ends at {ends[tp] - 1}"
                    )
                )
        if AUDIT in topics:
            tp = checkpoint_partition(chain_id, len([p for p in every if p.topic == AUDIT]))
            start = max(positions.get((tp.topic, tp.partition), 0), (await offsets_of(consumer, [tp], end=False))[tp])
            records = await read_range(consumer, tp, start, ends[tp])
            for record, verdict in ProofGate(trust).admit(
                records, complete=True, topic=tp.topic, partition=tp.partition
            ):
                judged = evidence.judge(
                    record.key,
                    record.value,
                    record.headers,
                    verdict,
                    chain_id=chain_id,
                    origin=origin,
                    trust=trust,
                    at=record.timestamp / 1000,
                )
                where = f"{AUDIT}/{record.partition}@{record.offset}"
                if isinstance(judged, evidence.Evidence):
                    found += await _against_store(store, judged, where)
                elif isinstance(judged, evidence.NotEvidence):
                    untrusted.append(f"{where} is not evidence: {judged.reason}")
    return LogCheck(found, untrusted)


async def _against_store(store: AuditStore, found: evidence.Evidence, at: str) -> list[Disagreement]:
    size = found.size
    where = f"the checkpoint at {at}, signed {found.checkpoint.signed_at.isoformat()}"
    if size > store.head.sequence:
        return [
            Disagreement(
                f"{where} covers entries up to {size}, but the store ends at {store.head.sequence}: entries "
                f"{store.head.sequence + 1}..{size} are missing (the store was rolled back or truncated)"
            )
        ]
    if await store.root_at(size) != found.root or await store.hash_at(size) != found.checkpoint.head_hash:
        return [Disagreement(f"{where} does not match the store's tree at size {size}")]
    return []


class Ingestor:
    """Reads every audited partition from where the store left off, and appends in batches."""

    def __init__(
        self,
        kafka: KafkaSettings,
        store: AuditStore,
        batch_size: int,
        chain_id: str,
        trust: TrustStore,
        origin: str,
        topics: tuple[str, ...] = AUDITED_TOPICS,
        writers: Mapping[str, Collection[str]] = TOPIC_WRITERS,
    ) -> None:
        self._kafka, self._store, self._batch_size, self._topics = kafka, store, batch_size, topics
        self._trust, self._origin, self._writers = trust, origin, writers
        self.untrusted: list[str] = []
        """Records that claim to be checkpoints of the chain but are not believed, and why."""
        self._chain_id = chain_id
        self._stopping = asyncio.Event()
        self._stored: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self.ingested = 0
        self.consistent = False
        """The store was found to be a faithful prefix of the log; only then is its head signed."""

    def stop(self) -> None:
        self._stopping.set()

    def go_on(self) -> None:
        """Run again after a ``stop`` (this instance is the chain's writer again)."""
        self._stopping.clear()

    async def run(self, health: Health) -> None:
        """Check the store against the log, then ingest until stopped. Raises (and is run again
        by its supervisor) when the store disagrees with the log or an append fails."""
        checked = await disagreements(self._store, self._kafka, self._chain_id, self._origin, self._trust, self._topics)
        self.untrusted = checked.untrusted
        problems = checked.disagreements
        self.consistent = not problems
        if problems:
            raise StoreDisagrees(
                "refusing to ingest on top of a store that disagrees with the log: " + "; ".join(map(str, problems[:5]))
            )
        consumer = new_consumer(self._kafka, client_id="audit-ingest", fetch_bytes=FETCH_BYTES)
        await consumer.start()
        writing: asyncio.Task[None] | None = None
        proofs = ProofGate(self._trust, self._writers)
        try:
            await self._seek_to_store(consumer)
            self._consumer = consumer
            chained_head = self._store.head
            while not self._stopping.is_set():
                fetched = await consumer.getmany(timeout_ms=200, max_records=self._batch_size)
                records: list[LogRecord] = []
                refusals: list[tuple[LogRecord, str]] = []
                for tp in self._stored:
                    complete = await read_through(consumer, tp)
                    for record, verdict in proofs.admit(
                        fetched.get(tp, []), complete=complete, topic=tp.topic, partition=tp.partition
                    ):
                        if verdict.ok:
                            records.append(as_log_record(record))
                        else:
                            refusals.append((as_log_record(record), verdict.refusal or "refused"))
                # The positions also step over the transaction markers, which take offsets
                # but are never returned; a record still waiting for its writer's signature
                # is where the partition goes on.
                positions = {
                    tp: proofs.waiting(tp.topic, tp.partition) or await consumer.position(tp) for tp in self._stored
                }
                # This batch is chained while the previous one is written, and written after
                # it. A large one in a thread: the write's steps, and the API, need the event
                # loop meanwhile.
                batch = (
                    chained(records, chained_head, refusals)
                    if len(records) <= CHAIN_IN_LOOP
                    else await asyncio.to_thread(chained, records, chained_head, refusals)
                )
                if refusals:
                    log.warning("records refused for their writer's proof", count=len(refusals))
                    RECORDS_REFUSED.labels("audit-ingest", refusals[0][0].topic).inc(len(refusals))
                chained_head = batch.head
                if writing is not None:
                    await writing
                writing = asyncio.create_task(self._write(batch, positions))
                health.healthy()
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)
            self._consumer = None
            await stop_consumer(consumer)

    async def _write(self, batch: ChainedBatch, positions: dict[TopicPartition, int]) -> None:
        await self._store.write(batch)
        self.ingested += len(batch.rows)
        self._stored.update(positions)

    async def _seek_to_store(self, consumer: AIOKafkaConsumer) -> None:
        partitions = await partitions_of(consumer, self._topics)
        consumer.assign(partitions)
        stored = await self._store.positions()
        beginnings = await offsets_of(consumer, partitions, end=False)
        for tp in partitions:
            self._stored[tp] = stored.get((tp.topic, tp.partition), beginnings[tp])
            consumer.seek(tp, self._stored[tp])

    async def lag(self) -> int | None:
        """Records on the log not yet in the store (what is fetched but not stored counts)."""
        consumer = self._consumer
        if consumer is None:
            return None
        ends = await end_offsets_within(consumer, list(self._stored))
        if ends is None:
            return None
        return sum(max(0, ends[tp] - offset) for tp, offset in self._stored.items())
