"""The tasks service's state, rebuilt from the log at start: every committed event from the
beginning to the log's end when it starts (read_committed), folded with the shared ``evolve``."""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.tasks.adapters.idempotency import IdempotencyIndex
from shared.contract.codec import DecodeFailure, decode_record
from shared.contract.topics import EVENTS
from shared.domain.projection import Projection
from shared.kafka.consumer import open_consumer, partitions_of
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)


@dataclass
class RebuildReport:
    events: int = 0
    skipped: int = 0
    seconds: float = 0.0


async def rebuild(
    kafka: KafkaSettings, projection: Projection, index: IdempotencyIndex, topic: str = EVENTS
) -> RebuildReport:
    """Reads the log from the beginning to its current end (committed records only)."""
    report = RebuildReport()
    started = time.perf_counter()
    async with open_consumer(kafka, client_id="tasks-rebuild", fetch_bytes=8 * 1024 * 1024) as consumer:
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
    report.seconds = time.perf_counter() - started
    return report
