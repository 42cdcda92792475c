"""The audited log as the audit service reads it: which topics, where the chain's checkpoints
land, a range of a partition, and each partition in order up to a snapshot's offsets."""

from __future__ import annotations

from collections import deque

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from services.audit.domain.chain import LogRecord
from shared.contract.topics import ALERTS, AUDIT, DEADLETTER, EVENTS
from shared.provenance.gate import ProofGate, Verdict

AUDITED_TOPICS = (EVENTS, ALERTS, DEADLETTER, AUDIT)


FETCH_BYTES = 8 * 1024 * 1024


def as_log_record(record: ConsumerRecord) -> LogRecord:
    return LogRecord.kept(
        record.topic, record.partition, record.offset, record.timestamp, record.key, record.value, tuple(record.headers)
    )


def checkpoint_partition(chain_id: str, partitions: int) -> TopicPartition:
    """Where the chain's checkpoints land: they are keyed by the chain id."""
    every = list(range(partitions))
    return TopicPartition(AUDIT, DefaultPartitioner()(chain_id.encode(), every, every))


async def read_range(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int) -> list[ConsumerRecord]:
    """The committed records of ``tp`` with ``start <= offset < end``."""
    consumer.assign([tp])
    consumer.seek(tp, start)
    found: list[ConsumerRecord] = []
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
        found += [record for record in batch.get(tp, ()) if record.offset < end]
    return found


class LogReader:
    """Reads each partition of the log in order, on demand, up to the snapshot's offsets, each
    record with the verdict on its writer's proof."""

    def __init__(self, consumer: AIOKafkaConsumer, limits: dict[TopicPartition, int], proofs: ProofGate) -> None:
        self._consumer = consumer
        self._limits = limits
        self._proofs = proofs
        self._buffers: dict[TopicPartition, deque[tuple[ConsumerRecord, Verdict]]] = {tp: deque() for tp in limits}

    async def start(self) -> None:
        if self._limits:
            self._consumer.assign(list(self._limits))
            await self._consumer.seek_to_beginning(*self._limits)

    async def next(self, tp: TopicPartition) -> tuple[ConsumerRecord, Verdict] | None:
        buffer = self._buffers.get(tp)
        if buffer is None:
            return None
        limit = self._limits[tp]
        while not buffer:
            if await self._consumer.position(tp) >= limit and self._proofs.waiting(tp.topic, tp.partition) is None:
                return None
            fetched = await self._consumer.getmany(tp, timeout_ms=1000, max_records=5000)
            below = [record for record in fetched.get(tp, ()) if record.offset < limit]
            # Below the snapshot's offsets every record was judged at ingest: its writer's
            # signature is below them too.
            complete = await self._consumer.position(tp) >= limit
            buffer.extend(self._proofs.admit(below, complete=complete, topic=tp.topic, partition=tp.partition))
        return buffer.popleft()
