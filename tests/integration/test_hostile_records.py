"""One record with a header that has no value (legal in Kafka) used to stop every consumer:
the command consumer died and died again on every restart, the tasks rebuild and the audit
ingestor too. Now each dead-letters it or refuses it (it carries no writer's proof) and handles
the next valid record. The hostile records are written by the broker's admin: a forger who
holds the broker itself."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from policytrack.processes import ServiceProcess
from shared.contract.codec import decode_record
from shared.contract.envelope import CloudEvent
from shared.contract.topics import ALERTS, COMMANDS, DEADLETTER, EVENTS
from shared.kafka.connection import client_options
from shared.settings import KafkaSettings
from tests.conftest import (
    JILIN,
    NAO,
    Broker,
    ServiceFactory,
    caught_up,
    department_system,
    end_offsets,
    eventually,
    plan_and_task,
    read_from,
    whole_trail,
)

FAST = {"POLICYTRACK_NOTIFICATIONS_LEAD_TIMES": '["PT2S"]', "POLICYTRACK_NOTIFICATIONS_GRACE": "PT1S"}
HOSTILE = [
    ("null header", b"t-hostile", b"{}", [("ce_specversion", b"1.0"), ("ce_type", None), ("command", None)]),
    ("not UTF-8", b"\xff\xfe", b"\xff", [("ce_specversion", b"\xff\xfe"), ("command", b"\xc3\x28")]),
    (
        "twice",
        b"t-x",
        b"{}",
        [("ce_specversion", b"1.0"), ("ce_specversion", b"1.0"), ("command", b"a"), ("command", b"b")],
    ),
    ("huge", None, b"x" * 200_000, [("ce_specversion", b"1.0"), ("ce_id", b"i" * 300_000)]),
    ("tombstone", b"t-y", None, [("ce_specversion", b"1.0"), ("ce_type", b"org.policytrack.task.created.v1")]),
]


async def produce_hostile(settings: KafkaSettings, topics: list[str]) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for topic in topics:
            for _, key, value, headers in HOSTILE:
                await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def test_every_consumer_handles_the_next_valid_record(
    service_factory: ServiceFactory, kafka: Broker, kafka_settings: KafkaSettings, keys_dir: Path
) -> None:
    tasks: ServiceProcess = service_factory("tasks").start()
    audit: ServiceProcess = service_factory("audit").start()
    notifications: ServiceProcess = service_factory("notifications", **FAST).start()
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        task = await plan_and_task(client, title="Green corridor", field="environment")
    starts = await end_offsets(kafka_settings, EVENTS)
    letters = await end_offsets(kafka_settings, DEADLETTER)
    # The broker is the session's: the trail also holds what earlier tests wrote.
    before = (await caught_up(audit))["entries"]

    refused_before = audit.readiness()["refused_records"]
    await produce_hostile(kafka_settings, [COMMANDS, EVENTS, ALERTS, DEADLETTER])
    correlation = f"after-hostile-{uuid.uuid4().hex[:8]}"
    jilin = department_system(kafka, keys_dir, "JILIN", "u-jilin", "implementer")
    await jilin.send(jilin.command("report_progress", {"task_id": task, "percent": 15}, correlation=correlation))

    async def answered() -> CloudEvent[Any] | None:
        records = await read_from(kafka_settings, starts, until=lambda rs: False, timeout=0.5)
        return next(
            (e for e in map(decode_record, records) if isinstance(e, CloudEvent) and e.correlationid == correlation),
            None,
        )

    event = await eventually(answered, timeout=60, what="the valid command after the hostile ones")
    assert event.type == "org.policytrack.task.progress_reported.v1"
    dead = await read_from(
        kafka_settings,
        letters,
        timeout=30,
        until=lambda rs: sum(dict(r.headers).get("dlq_consumer") == b"tasks-commands" for r in rs) >= len(HOSTILE),
    )
    reasons = [dict(r.headers)["dlq_reason"] for r in dead if dict(r.headers).get("dlq_consumer") == b"tasks-commands"]
    assert len(reasons) == len(HOSTILE), reasons

    tasks.restart()  # the rebuild reads the hostile records on policy.events too
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        assert (await client.get(f"/v1/tasks/{task}", headers=NAO)).json()["percent"] == 15

    async with httpx.AsyncClient(base_url=audit.url, timeout=60) as client:

        async def stored() -> list[Any] | None:
            items = await whole_trail(client)
            valid = [i for i in items if i["event"] and i["event"].get("correlationid") == correlation]
            refused = audit.readiness()["refused_records"] - refused_before
            return items if refused >= 3 * len(HOSTILE) and valid else None

        items = await eventually(stored, timeout=60, what="the hostile records kept apart and the valid one chained")
        # The tasks service's dead letters of the hostile commands are its acts, rightly chained.
        acts = [i for i in items if i["seq"] > before and i["decode_error"] and i["topic"] != DEADLETTER]
        assert not acts, "no hostile record is an act"
        verified = (await client.get("/v1/audit/verify", headers=NAO)).json()
        assert verified["ok"] is True
        hostile = {(f["topic"], f["partition"], f["offset"]) for f in verified["forgeries"] if f["topic"] != COMMANDS}
        assert len(hostile) >= 3 * len(HOSTILE), "verify names each of them"

    due = datetime.now(UTC) + timedelta(seconds=4)
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        milestone = (
            await client.post(
                f"/v1/tasks/{task}/milestones", headers=JILIN, json={"title": "Stations", "due": due.isoformat()}
            )
        ).json()["id"]
    async with (
        httpx.AsyncClient(base_url=notifications.url, timeout=30) as client,
        asyncio.timeout(30),
        client.stream("GET", "/v1/alerts/stream", headers=JILIN, params={"from": "beginning"}) as stream,
    ):
        async for line in stream.aiter_lines():
            if line.startswith("data: ") and milestone in line:
                break
    for service in (tasks, audit, notifications):
        assert service.readiness()["ready"] is True, service.name
