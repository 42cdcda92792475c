"""What every snapshot of state derived from the log agrees on: the positions it claims to
cover, the version of the code that shaped it, and the check that the log bears it out.

A snapshot is never the only copy of anything; one whose claim does not hold is discarded
and its state rebuilt from the log's beginning.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from types import ModuleType

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.contract.codec import header
from shared.kafka.consumer import offsets_of, open_consumer, partitions_of
from shared.kafka.patience import answered
from shared.retrying import BROKER_PATIENCE, RetryPolicy
from shared.settings import KafkaSettings

Positions = dict[int, tuple[int, str]]
"""Per partition, the next offset to read and the id of the event just before it."""


class LogSilent(RuntimeError):
    """The log did not answer a snapshot's check: the snapshot is neither used nor discarded."""


def code_version(*modules: ModuleType) -> str:
    """A digest of the modules that give a snapshot's state its shape."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Claim:
    """What a snapshot says it covers."""

    code_version: str
    topic: str
    positions: Positions
    written_at: float


async def disproof(kafka: KafkaSettings, claim: Claim, *, topic: str, version: str, client_id: str) -> str | None:
    """Why a snapshot's claim does not hold, or None when the log bears it out: the same code
    and topic, and at each position the very record the snapshot last took from there (a topic
    deleted and made again, or a log truncated, does not have it)."""
    if claim.code_version != version:
        return f"written by other code ({claim.code_version}, now {version})"
    if claim.topic != topic:
        return f"taken from {claim.topic!r}, not {topic!r}"
    async with open_consumer(kafka, client_id=client_id) as consumer:
        partitions = {tp.partition: tp for tp in await partitions_of(consumer, [topic])}
        unknown = set(claim.positions) - set(partitions)
        if unknown:
            return f"claims partitions the log does not have: {sorted(unknown)}"
        claimed = {partitions[p]: position for p, position in claim.positions.items()}
        if not claimed:
            return None
        starts = await offsets_of(consumer, list(claimed), end=False)
        ends = await offsets_of(consumer, list(claimed))
        consumer.assign(list(claimed))
        for tp, (next_offset, event_id) in claimed.items():
            if not starts[tp] < next_offset <= ends[tp]:
                return f"partition {tp.partition}: position {next_offset} is outside the log ({starts[tp]}..{ends[tp]})"
            if await committed_id_at(consumer, tp, next_offset - 1) != event_id:
                return f"partition {tp.partition}: the record before {next_offset} is not {event_id}"
    return None


async def committed_id_at(
    consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, *, patience: RetryPolicy = BROKER_PATIENCE
) -> str | None:
    """The id of the committed event at ``offset``, None when the log holds none there (another
    record, a transaction's marker or an aborted record: the broker answered, and the consumer's
    position moved past it). A fetch that no broker answers proves nothing: it is asked again
    with ``patience``, then LogSilent. Taking silence for a disproof discarded a good snapshot
    whenever the broker paused during a start."""
    consumer.seek(tp, offset)

    async def fetched() -> list[ConsumerRecord]:
        records: list[ConsumerRecord] = (await consumer.getmany(tp, timeout_ms=5_000, max_records=1)).get(tp, [])
        if not records and await consumer.position(tp) <= offset:
            raise LogSilent(f"partition {tp.partition}: no answer for offset {offset}")
        return records

    records = await answered(fetched, what="snapshot check", failures=LogSilent, patience=patience)
    return header(records[0].headers, "ce_id") if records and records[0].offset == offset else None
