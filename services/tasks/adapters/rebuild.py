"""The tasks service's view, brought up to the log's end at start: from a snapshot's positions
when the log bears them out, from the beginning otherwise; committed records only
(read_committed) whose writer's proof holds, folded with the shared ``evolve``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import partial

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.tasks.adapters.history import TaskHistory
from services.tasks.adapters.snapshots import CODE_VERSION, SnapshotStore
from services.tasks.application.view import LogPositions, LogView, Placement, ViewPart
from shared.contract.codec import DecodeFailure, decode_kept
from shared.contract.envelope import AnyEvent
from shared.contract.topics import EVENTS
from shared.kafka.consumer import offsets_of, open_consumer, partitions_of, read_through
from shared.kafka.snapshots import Claim, disproof
from shared.logging import Sampled, get_logger
from shared.metrics import RECORDS_REFUSED
from shared.process import cores, processes_apart, run
from shared.provenance.gate import TOPIC_WRITERS, ProofGate
from shared.provenance.keys import TrustStore
from shared.provenance.sealing import SealBroken
from shared.settings import KafkaSettings

log = get_logger(__name__)
_UNFIT = Sampled(log, "event does not fit its aggregate; skipped")
_REFUSED = Sampled(log, "refusing a record whose writer's proof fails")


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


IN_PARTS_FROM = 200_000
"""Records to read into an empty view from which each partition is read in a process of its own
(a full rebuild: no snapshot, or one discarded after an upgrade); below, starting the processes
(about a second) costs more than it saves."""


async def catch_up(
    kafka: KafkaSettings,
    snapshots: SnapshotStore,
    trust: TrustStore,
    topic: str = EVENTS,
    writers: Mapping[str, Collection[str]] = TOPIC_WRITERS,
    in_parts_from: int | None = IN_PARTS_FROM,
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
    return view, await rebuild(kafka, view, trust, writers, report, in_parts_from=in_parts_from)


async def rebuild(
    kafka: KafkaSettings,
    view: LogView,
    trust: TrustStore,
    writers: Mapping[str, Collection[str]] = TOPIC_WRITERS,
    report: RebuildReport | None = None,
    *,
    partitions: Collection[int] | None = None,
    in_parts_from: int | None = IN_PARTS_FROM,
) -> RebuildReport:
    """Reads the view's topic (the given ``partitions`` of it, else all) from the view's positions
    to its current end: into an empty view with ``in_parts_from`` records or more, the partitions
    shared among processes, on every core (an aggregate's events are all on one partition)."""
    report = report or RebuildReport()
    started = time.perf_counter()
    async with open_consumer(kafka, client_id="tasks-rebuild", fetch_bytes=8 * 1024 * 1024) as consumer:
        every = await read_after(consumer, view, partitions)
        ends = await offsets_of(consumer, every)
        remaining = {tp for tp, end in ends.items() if end > view.positions.offset(tp.partition)}
        apart = _in_parts(view, {tp: ends[tp] for tp in remaining}, in_parts_from)
        if not apart:
            await read_to_ends(consumer, ProofGate(trust, writers), ends, remaining, report, partial(take_record, view))
    if apart:
        await _rebuild_in_parts(kafka, view, trust, writers, apart, report)
    report.seconds += time.perf_counter() - started
    return report


def _in_parts(view: LogView, ends: Mapping[TopicPartition, int], in_parts_from: int | None) -> list[list[int]]:
    """The partitions each process reads (the first list this one), one more process than there
    are cores at most; none when it is not worth it."""
    empty = not view.positions.next and not view.projection.aggregates
    if in_parts_from is None or not empty or len(ends) < 2 or sum(ends.values()) < in_parts_from:
        return []
    partitions = sorted(tp.partition for tp in ends)
    processes = min(len(partitions), cores() + 1)
    return [partitions[i::processes] for i in range(processes)]


async def read_to_ends(
    consumer: AIOKafkaConsumer,
    proofs: ProofGate,
    ends: Mapping[TopicPartition, int],
    remaining: set[TopicPartition],
    report: RebuildReport,
    take: Callable[[ConsumerRecord, RebuildReport], object],
) -> None:
    """Reads ``remaining`` partitions to their ``ends``, handing ``take`` each record whose
    writer's proof holds, in order."""
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
        for tp in remaining:
            for record in await admitted(consumer, proofs, tp, batch.get(tp, []), report):
                take(record, report)
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp] and proofs.waiting(tp.topic, tp.partition) is None:
                remaining.discard(tp)


async def _rebuild_in_parts(
    kafka: KafkaSettings,
    view: LogView,
    trust: TrustStore,
    writers: Mapping[str, Collection[str]],
    parts: list[list[int]],
    report: RebuildReport,
) -> None:
    """The first part's partitions read here, each other part's into a view of its own in a
    process of its own, then taken into ``view``; if a process fails, its partitions are read here."""
    loop = asyncio.get_running_loop()
    mine, others = parts[0], parts[1:]
    counts = [RebuildReport()]
    with processes_apart(len(others), preload=(__name__,)) as pool:
        theirs = asyncio.gather(
            *(loop.run_in_executor(pool, read_part, kafka, trust, writers, view.positions.topic, p) for p in others)
        )
        try:
            await rebuild(kafka, view, trust, writers, counts[0], partitions=mine, in_parts_from=None)
            try:
                read = await theirs
            except Exception as error:
                # A process that died or could not read (BrokenProcessPool, a broker error there):
                # the view has taken nothing of theirs yet, so their partitions are read here.
                log.warning("a partition's process failed; reading its partitions here", error=repr(error))
                rest = {partition for part in others for partition in part}
                await rebuild(kafka, view, trust, writers, counts[0], partitions=rest, in_parts_from=None)
                read = []
        finally:
            theirs.cancel()
    for part, counted in read:
        view.extend(part)
        counts.append(counted)
        # Counted where it was refused, in a process whose metrics nobody reads.
        RECORDS_REFUSED.labels("tasks-view", view.positions.topic).inc(counted.refused)
    report.events += sum(c.events for c in counts)
    report.skipped += sum(c.skipped for c in counts)
    report.refused += sum(c.refused for c in counts)


def read_part(
    kafka: KafkaSettings, trust: TrustStore, writers: Mapping[str, Collection[str]], topic: str, partitions: list[int]
) -> tuple[ViewPart, RebuildReport]:
    """Partitions read from their beginning into a view of their own, in a process of its own."""
    view = LogView(positions=LogPositions(topic))
    counted = run(rebuild(kafka, view, trust, writers, partitions=partitions, in_parts_from=None))
    return view.part(), counted


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
            _REFUSED.warning(partition=record.partition, offset=record.offset, reason=verdict.refusal)
    return taken


async def read_after(
    consumer: AIOKafkaConsumer, view: LogView, only: Collection[int] | None = None
) -> list[TopicPartition]:
    """Points ``consumer`` at every partition of the view's topic (or ``only`` those), past what
    the view holds."""
    partitions = await partitions_of(consumer, [view.positions.topic])
    if only is not None:
        partitions = [tp for tp in partitions if tp.partition in only]
    consumer.assign(partitions)
    for partition in partitions:
        consumer.seek(partition, view.positions.offset(partition.partition))
    return partitions


def take_record(view: LogView, record: ConsumerRecord, report: RebuildReport) -> AnyEvent | None:
    """The record's event, taken into the view; None (and counted) when it is skipped."""
    decoded = decode_kept(record)
    if isinstance(decoded, DecodeFailure):
        report.skipped += 1
        return None
    event, structured = decoded
    try:
        view.take(event, Placement(record.topic, record.partition, record.offset), structured)
    except Exception as error:
        # An event that cannot follow its aggregate's state is reported, not fatal: the rest of
        # the log still has to be served.
        _UNFIT.warning(event_id=event.id, error=repr(error))
        report.skipped += 1
        return None
    report.events += 1
    return event
