"""The broker stopped and restarted under a producer: every acknowledged event survives, once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from aiokafka import TopicPartition

from shared.contract.catalog import TaskProgressReported
from shared.contract.codec import decode_record
from shared.contract.codes import Department
from shared.contract.envelope import CloudEvent, new_event
from shared.contract.topics import EVENTS
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from tests.conftest import Broker, read_from

BATCH = 20


def progress(n: int) -> CloudEvent[Any]:
    return new_event(
        TaskProgressReported(task_id=f"t-{n % 7}", percent=n % 101), actor="u-load", actordept=Department.JILIN
    )


async def test_restart_in_the_middle_of_a_produce_loop_keeps_every_acknowledged_event_exactly_once(
    spare_broker: Broker, tasks_key: SigningKey
) -> None:
    settings = spare_broker.settings
    acknowledged: list[str] = []
    unacknowledged: list[str] = []
    restart: asyncio.Task[None] | None = None
    acked_at_restart_end = 0
    deadline = time.monotonic() + 240

    async def stop_and_start() -> None:
        stopped = await asyncio.to_thread(spare_broker.script, "stop")
        assert "stopped" in stopped.stderr
        await asyncio.to_thread(spare_broker.script, "start")

    async with EventProducer(settings, client_id="test-restart", signing_key=tasks_key) as producer:
        n = 0
        while time.monotonic() < deadline:
            events = [progress(n + i) for i in range(BATCH)]
            n += BATCH
            futures = [await producer.enqueue(event) for event in events]
            results = await asyncio.gather(*futures, return_exceptions=True)
            for event, result in zip(events, results, strict=True):
                (unacknowledged if isinstance(result, BaseException) else acknowledged).append(event.id)
            if restart is None and len(acknowledged) >= 300:
                restart = asyncio.create_task(stop_and_start())
            if restart is not None and restart.done():
                restart.result()
                acked_at_restart_end = acked_at_restart_end or len(acknowledged)
                if len(acknowledged) >= acked_at_restart_end + 300:
                    break
    assert restart is not None and restart.done(), "the broker restart did not finish in time"
    assert len(acknowledged) >= 600

    async def partitions() -> dict[TopicPartition, int]:
        return {TopicPartition(EVENTS, p): 0 for p in range(settings.partitions)}

    wanted = set(acknowledged)
    records = await read_from(
        settings,
        await partitions(),
        until=lambda rs: len(rs) >= len(acknowledged) + len(unacknowledged),
        timeout=30,
    )
    counts = Counter(event.id for event in map(decode_record, records) if isinstance(event, CloudEvent))
    missing = wanted - set(counts)
    duplicated = {event_id: count for event_id, count in counts.items() if count > 1}
    assert not missing, f"{len(missing)} acknowledged events were lost"
    assert not duplicated, f"{len(duplicated)} events were appended more than once"
