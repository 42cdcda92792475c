"""Departmental systems may send commands on policy.commands instead of HTTP."""

from __future__ import annotations

import uuid

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from shared.contract.codec import decode_record
from shared.contract.envelope import CloudEvent
from shared.contract.topics import COMMANDS, DEADLETTER, EVENTS
from shared.settings import KafkaSettings
from tests.conftest import JILIN, MOST, ServiceProcess, end_offsets, eventually, plan_and_task, read_from


async def send_command(
    settings: KafkaSettings, name: str | None, body: bytes, auth: dict[str, str], correlation: str
) -> None:
    headers = [("authorization", auth["Authorization"].encode()), ("correlationid", correlation.encode())]
    if name is not None:
        headers.append(("command", name.encode()))
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(COMMANDS, body, key=correlation.encode(), headers=headers)
    finally:
        await producer.stop()


async def test_commands_yield_events_or_a_rejection_and_malformed_ones_are_dead_lettered(
    service_factory, kafka_settings: KafkaSettings
) -> None:
    tasks: ServiceProcess = service_factory("tasks").start()
    async with httpx.AsyncClient(base_url=tasks.url) as client:
        task = await plan_and_task(client, supporting_departments=["GACC"], due="2027-12-31T00:00:00Z")
    event_starts = await end_offsets(kafka_settings, EVENTS)
    letter_starts = await end_offsets(kafka_settings, DEADLETTER)
    run = uuid.uuid4().hex[:8]
    accepted, forbidden, invalid, malformed, after = (f"{run}-{n}" for n in range(5))

    await send_command(
        kafka_settings, "report_progress", orjson.dumps({"task_id": task, "percent": 35}), JILIN, accepted
    )
    await send_command(
        kafka_settings, "report_progress", orjson.dumps({"task_id": task, "percent": 40}), MOST, forbidden
    )
    await send_command(
        kafka_settings, "report_progress", orjson.dumps({"task_id": task, "percent": 140}), JILIN, invalid
    )
    await send_command(kafka_settings, "report_progress", b"{not json", JILIN, malformed)
    await send_command(
        kafka_settings,
        "schedule_milestone",
        orjson.dumps({"task_id": task, "title": "Single window", "due": "2027-03-01T00:00:00+09:00"}),
        JILIN,
        after,
    )

    async def by_correlation() -> dict[str, CloudEvent] | None:
        records = await read_from(kafka_settings, event_starts, until=lambda rs: False, timeout=0.5)
        found = {e.correlationid: e for e in map(decode_record, records) if isinstance(e, CloudEvent)}
        return found if {accepted, forbidden, invalid, after} <= set(found) else None

    events = await eventually(by_correlation, timeout=60, what="an answer to every well-formed command")
    assert events[accepted].type == "org.policytrack.task.progress_reported.v1"
    assert (events[accepted].actor, events[accepted].data.percent) == ("u-jilin", 35)
    assert events[forbidden].type == "org.policytrack.command.rejected.v1"
    assert events[forbidden].data.status == 403 and "MOST" in events[forbidden].data.reason
    assert events[invalid].data.status == 422
    assert [e.field for e in events[invalid].data.errors] == ["percent"]
    assert events[after].type == "org.policytrack.milestone.scheduled.v1", "the loop went on after the poison"
    assert malformed not in events

    letters = await read_from(
        kafka_settings,
        letter_starts,
        timeout=30,
        until=lambda rs: any(dict(r.headers).get("correlationid") == malformed.encode() for r in rs),
    )
    letter = next(r for r in letters if dict(r.headers).get("correlationid") == malformed.encode())
    assert b"not JSON" in dict(letter.headers)["dlq_reason"]
    assert letter.value == b"{not json"
