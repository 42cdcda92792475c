"""The documented blue/green restart: a new tasks instance with the same transactional id
fences the old one while both hold partitions of the command topic. No command is lost,
dead-lettered or answered twice: each ends in its events or in exactly one rejection."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import httpx

from shared.contract.codec import decode_record
from shared.contract.envelope import CloudEvent
from shared.contract.topics import DEADLETTER, EVENTS
from shared.settings import KafkaSettings
from tests.conftest import (
    Broker,
    ServiceFactory,
    department_system,
    end_offsets,
    eventually,
    read_from,
    tasks_of_a_new_plan,
)


async def test_commands_survive_a_fenced_instance_that_keeps_its_partitions(
    service_factory: ServiceFactory, kafka: Broker, kafka_settings: KafkaSettings, keys_dir: Path
) -> None:
    shared = {
        "POLICYTRACK_TASKS_TRANSACTIONAL_ID": f"policytrack-tasks-blue-green-{uuid.uuid4().hex[:8]}",
        "POLICYTRACK_TASKS_CONSUMER_GROUP": f"policytrack-tasks-blue-green-{uuid.uuid4().hex[:8]}",
    }
    blue = service_factory("tasks", **shared).start()
    async with httpx.AsyncClient(base_url=blue.url, timeout=30) as client:
        tasks = await tasks_of_a_new_plan(client, 12)
    green = service_factory("tasks", **shared).start()  # fences blue; both are in the command group now
    events, letters = await end_offsets(kafka_settings, EVENTS), await end_offsets(kafka_settings, DEADLETTER)
    correlations = [f"bg-{uuid.uuid4().hex[:10]}" for _ in range(36)]
    jilin = department_system(kafka, keys_dir, "JILIN", "u-jilin", "implementer")
    await jilin.send(
        *(
            jilin.command(
                "report_progress",
                {"task_id": tasks[n % len(tasks)], "percent": 1 + n // len(tasks)},
                correlation=correlation,
            )
            for n, correlation in enumerate(correlations)
        )
    )

    async def every_command_answered() -> Counter[str] | None:
        records = await read_from(kafka_settings, events, until=lambda rs: False, timeout=0.5)
        answered = Counter(
            e.correlationid
            for e in map(decode_record, records)
            if isinstance(e, CloudEvent) and e.correlationid in correlations
        )
        return answered if set(answered) == set(correlations) else None

    answered = await eventually(every_command_answered, timeout=120, what="every command answered")
    assert set(answered.values()) == {1}, "each command was appended once"
    records = await read_from(kafka_settings, events, until=lambda rs: False, timeout=1)
    kinds = {
        e.type for e in map(decode_record, records) if isinstance(e, CloudEvent) and e.correlationid in correlations
    }
    assert kinds == {"org.policytrack.task.progress_reported.v1"}, "none was rejected or lost"
    dead = await read_from(kafka_settings, letters, until=lambda rs: False, timeout=1)
    assert not [r for r in dead if dict(r.headers).get("correlationid", b"").decode() in correlations]
    assert blue.readiness()["fenced"] is True or blue.readiness()["ready"] is False
    assert green.readiness()["ready"] is True
