"""The tasks service's view, brought up to the log's end at start: from a snapshot's positions
when the log bears them out, from the beginning otherwise; committed records only
(read_committed), folded with the shared ``evolve``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.tasks.adapters.history import TaskHistory
from services.tasks.adapters.snapshots import CODE_VERSION, Claim, SnapshotStore
from services.tasks.view import LogPositions, LogView, Placement
from shared.contract.codec import DecodeFailure, decode_record, header
from shared.contract.topics import EVENTS
from shared.kafka.consumer import open_consumer, partitions_of
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)


@dataclass
class RebuildReport:
    events: int = 0
    """Events read from the log at start (after the snapshot's positions when one was used)."""
    skipped: int = 0
    seconds: float = 0.0
    snapshot: str = "none"
    """used, none, or why it was discarded."""


async def catch_up(
    kafka: KafkaSettings, snapshots: SnapshotStore, topic: str = EVENTS
) -> tuple[LogView, RebuildReport]:
    """The view from the snapshot if the log bears it out, then the log after it."""
    report = RebuildReport()
    started = time.perf_counter()
    claim = await asyncio.to_thread(snapshots.claim)
    reason = "none" if claim is None else await disproof(kafka, claim, topic)
    if claim is not None and reason is None:
        view = await asyncio.to_thread(snapshots.restore, claim)
        report.snapshot = "used"
    else:
        if claim is not None:
            log.warning("snapshot discarded; rebuilding from the log's beginning", reason=reason)
            report.snapshot = f"discarded: {reason}"
            await asyncio.to_thread(snapshots.discard)
        view = LogView(history=TaskHistory(archive=snapshots), positions=LogPositions(topic))
    report.seconds = time.perf_counter() - started
    return view, await rebuild(kafka, view, report)


async def rebuild(kafka: KafkaSettings, view: LogView, report: RebuildReport | None = None) -> RebuildReport:
    """Reads the view's topic from the view's positions to its current end."""
    report = report or RebuildReport()
    started = time.perf_counter()
    async with open_consumer(kafka, client_id="tasks-rebuild", fetch_bytes=8 * 1024 * 1024) as consumer:
        partitions = await partitions_of(consumer, [view.positions.topic])
        consumer.assign(partitions)
        for partition in partitions:
            consumer.seek(partition, view.positions.offset(partition.partition))
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > view.positions.offset(tp.partition)}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
            for records in batch.values():
                for record in records:
                    _take(view, record, report)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    report.seconds += time.perf_counter() - started
    return report


def _take(view: LogView, record: ConsumerRecord, report: RebuildReport) -> None:
    event = decode_record(record)
    if isinstance(event, DecodeFailure):
        report.skipped += 1
        return
    try:
        view.take(event, Placement(record.topic, record.partition, record.offset))
    except Exception as error:
        # An event that cannot follow its aggregate's state is reported, not fatal: the rest of
        # the log still has to be served.
        log.warning("event does not fit its aggregate; skipped", event_id=event.id, error=repr(error))
        report.skipped += 1
        return
    report.events += 1


async def disproof(kafka: KafkaSettings, claim: Claim, topic: str) -> str | None:
    """Why a snapshot's claim does not hold, or None when the log bears it out: the same evolve
    code and topic, and at each position the very record the snapshot last took from there."""
    if claim.code_version != CODE_VERSION:
        return f"written by other evolve code ({claim.code_version}, now {CODE_VERSION})"
    if claim.topic != topic:
        return f"taken from {claim.topic!r}, not {topic!r}"
    async with open_consumer(kafka, client_id="tasks-snapshot-check") as consumer:
        partitions = {tp.partition: tp for tp in await partitions_of(consumer, [topic])}
        unknown = set(claim.positions) - set(partitions)
        if unknown:
            return f"claims partitions the log does not have: {sorted(unknown)}"
        claimed = {partitions[p]: position for p, position in claim.positions.items()}
        if not claimed:
            return None
        starts = await consumer.beginning_offsets(list(claimed))
        ends = await consumer.end_offsets(list(claimed))
        consumer.assign(list(claimed))
        for tp, (next_offset, event_id) in claimed.items():
            if not starts[tp] < next_offset <= ends[tp]:
                return f"partition {tp.partition}: position {next_offset} is outside the log ({starts[tp]}..{ends[tp]})"
            if await _id_at(consumer, tp, next_offset - 1) != event_id:
                return f"partition {tp.partition}: the record before {next_offset} is not {event_id}"
    return None


async def _id_at(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> str | None:
    consumer.seek(tp, offset)
    records = (await consumer.getmany(tp, timeout_ms=5_000, max_records=1)).get(tp, [])
    if not records or records[0].offset != offset:
        return None
    return header(records[0].headers, "ce_id")
