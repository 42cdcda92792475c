"""The tasks service's view, brought up to the log's end at start: from a snapshot's positions
when the log bears them out, from the beginning otherwise; committed records only
(read_committed) whose writer's proof holds, folded with the shared ``evolve``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.tasks.adapters.history import TaskHistory
from services.tasks.adapters.snapshots import CODE_VERSION, SnapshotStore
from services.tasks.application.view import LogPositions, LogView, Placement
from shared.contract.codec import DecodeFailure, decode_record
from shared.contract.envelope import AnyEvent
from shared.contract.topics import EVENTS
from shared.kafka.consumer import open_consumer, partitions_of, read_through
from shared.kafka.snapshots import Claim, disproof
from shared.logging import get_logger
from shared.metrics import RECORDS_REFUSED
from shared.provenance.gate import TOPIC_WRITERS, ProofGate
from shared.provenance.keys import TrustStore
from shared.provenance.sealing import SealBroken
from shared.settings import KafkaSettings

log = get_logger(__name__)


@dataclass
class RebuildReport:
    events: int = 0
    """Events read from the log at start (after the snapshot's positions when one was used)."""
    skipped: int = 0
    refused: int = 0
    """Records whose writer's proof failed: never folded into the state."""
    seconds: float = 0.0
    snapshot: str = "none"
    """used, none, or why it was discarded."""


async def catch_up(
    kafka: KafkaSettings,
    snapshots: SnapshotStore,
    trust: TrustStore,
    topic: str = EVENTS,
    writers: Mapping[str, Collection[str]] = TOPIC_WRITERS,
) -> tuple[LogView, RebuildReport]:
    """The view from the snapshot if the log bears it out, then the log after it."""
    report = RebuildReport()
    started = time.perf_counter()
    claim = await asyncio.to_thread(snapshots.claim)
    reason = (
        "none"
        if claim is None
        else str(claim)
        if isinstance(claim, SealBroken)
        else await disproof(kafka, claim, topic=topic, version=CODE_VERSION, client_id="tasks-snapshot-check")
    )
    view = None
    if isinstance(claim, Claim) and reason is None:
        try:
            view = await asyncio.to_thread(snapshots.restore, claim)
            report.snapshot = "used"
        except SealBroken as broken:
            reason = str(broken)
    if view is None:
        if claim is not None:
            log.warning("snapshot discarded; rebuilding from the log's beginning", reason=reason)
            report.snapshot = f"discarded: {reason}"
            await asyncio.to_thread(snapshots.discard)
        view = LogView(history=TaskHistory(archive=snapshots), positions=LogPositions(topic))
    report.seconds = time.perf_counter() - started
    return view, await rebuild(kafka, view, ProofGate(trust, writers), report)


async def rebuild(
    kafka: KafkaSettings, view: LogView, proofs: ProofGate, report: RebuildReport | None = None
) -> RebuildReport:
    """Reads the view's topic from the view's positions to its current end."""
    report = report or RebuildReport()
    started = time.perf_counter()
    async with open_consumer(kafka, client_id="tasks-rebuild", fetch_bytes=8 * 1024 * 1024) as consumer:
        partitions = await read_after(consumer, view)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > view.positions.offset(tp.partition)}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
            for tp in remaining:
                for record in await admitted(consumer, proofs, tp, batch.get(tp, []), report):
                    take_record(view, record, report)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp] and proofs.waiting(tp.topic, tp.partition) is None:
                    remaining.discard(tp)
    report.seconds += time.perf_counter() - started
    return report


async def admitted(
    consumer: AIOKafkaConsumer,
    proofs: ProofGate,
    tp: TopicPartition,
    records: list[ConsumerRecord],
    report: RebuildReport,
) -> list[ConsumerRecord]:
    """The records of ``tp`` whose writer's proof holds, once it can be judged; those it
    refuses are counted, logged, and never taken into the view."""
    taken = []
    for record, verdict in proofs.admit(
        records, complete=await read_through(consumer, tp), topic=tp.topic, partition=tp.partition
    ):
        if verdict.ok:
            taken.append(record)
        else:
            report.refused += 1
            RECORDS_REFUSED.labels("tasks-view", record.topic).inc()
            log.warning(
                "refusing a record whose writer's proof fails",
                partition=record.partition,
                offset=record.offset,
                reason=verdict.refusal,
            )
    return taken


async def read_after(consumer: AIOKafkaConsumer, view: LogView) -> list[TopicPartition]:
    """Points ``consumer`` at every partition of the view's topic, past what the view holds."""
    partitions = await partitions_of(consumer, [view.positions.topic])
    consumer.assign(partitions)
    for partition in partitions:
        consumer.seek(partition, view.positions.offset(partition.partition))
    return partitions


def take_record(view: LogView, record: ConsumerRecord, report: RebuildReport) -> AnyEvent | None:
    """The record's event, taken into the view; None (and counted) when it is skipped."""
    event = decode_record(record)
    if isinstance(event, DecodeFailure):
        report.skipped += 1
        return None
    try:
        view.take(event, Placement(record.topic, record.partition, record.offset))
    except Exception as error:
        # An event that cannot follow its aggregate's state is reported, not fatal: the rest of
        # the log still has to be served.
        log.warning("event does not fit its aggregate; skipped", event_id=event.id, error=repr(error))
        report.skipped += 1
        return None
    report.events += 1
    return event
