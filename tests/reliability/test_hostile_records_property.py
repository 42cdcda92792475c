"""A property of the whole system on a real broker: whatever records arrive on any of the four
topics (random bytes, headers without values or given twice, non-UTF-8, huge, almost-valid
events), every consumer goes on: the next valid command is answered, every service stays
ready, and the trail still verifies."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policytrack.processes import ServiceProcess
from shared.contract.codec import decode_record, encode
from shared.contract.envelope import CloudEvent
from shared.contract.topics import ALERTS, COMMANDS, DEADLETTER, EVENTS
from shared.kafka.connection import client_options
from shared.settings import KafkaSettings
from tests.conftest import (
    JILIN,
    NAO,
    SC,
    Broker,
    DepartmentSystem,
    ServiceFactory,
    department_system,
    end_offsets,
    eventually,
    read_from,
)
from tests.samples import sample_events
from tests.unit.test_hostile_records import headers, values

TOPICS = [COMMANDS, EVENTS, ALERTS, DEADLETTER]
VALID = [encode(event) for event in sample_events()]


@st.composite
def almost_valid(draw: st.DrawFn) -> tuple[bytes | None, bytes | None, list[Any]]:
    """A real event with one thing wrong: a header dropped, emptied, doubled or garbled, or its data."""
    record = draw(st.sampled_from(VALID))
    found = list(record.headers)
    index = draw(st.integers(0, len(found) - 1))
    name, _value = found[index]
    change = draw(st.sampled_from(["drop", "null", "twice", "garble", "data"]))
    if change == "drop":
        del found[index]
    elif change == "null":
        found[index] = (name, None)
    elif change == "twice":
        found.append((name, draw(st.binary(max_size=20))))
    elif change == "garble":
        found[index] = (name, draw(st.binary(max_size=20)))
    data = draw(st.binary(max_size=50)) if change == "data" else record.value
    return record.key, data, found


keys = st.one_of(st.none(), st.binary(max_size=40), st.just(b"\xff" * 300))
big = st.integers(0, 300_000).map(lambda n: b"x" * n)
hostile_record = st.tuples(
    st.sampled_from(TOPICS),
    # aiokafka cannot produce a record with neither key nor value
    st.one_of(st.tuples(keys, st.one_of(values, big), headers), almost_valid()).filter(
        lambda record: record[0] is not None or record[1] is not None
    ),
)


async def produce(settings_: KafkaSettings, records: list[Any]) -> None:
    producer = AIOKafkaProducer(**client_options(settings_), acks="all", max_request_size=2**21)
    await producer.start()
    try:
        for topic, (key, value, record_headers) in records:
            await producer.send_and_wait(topic, value, key=key, headers=list(record_headers))
    finally:
        await producer.stop()


async def answered(settings_: KafkaSettings, jilin: DepartmentSystem, task: str, percent: int) -> CloudEvent[Any]:
    starts = await end_offsets(settings_, EVENTS)
    correlation = f"valid-{uuid.uuid4().hex[:10]}"
    await jilin.send(jilin.command("report_progress", {"task_id": task, "percent": percent}, correlation=correlation))

    async def found() -> CloudEvent[Any] | None:
        records = await read_from(settings_, starts, until=lambda rs: False, timeout=0.3)
        return next(
            (e for e in map(decode_record, records) if isinstance(e, CloudEvent) and e.correlationid == correlation),
            None,
        )

    return await eventually(found, timeout=60, what="the valid command answered")


def test_no_record_stops_a_consumer(
    service_factory: ServiceFactory, kafka: Broker, kafka_settings: KafkaSettings, keys_dir: Path
) -> None:
    """The hostile records are written by the broker's admin: a forger holding the broker itself.
    The valid command is signed by JILIN's system."""
    jilin = department_system(kafka, keys_dir, "JILIN", "u-jilin", "implementer")
    tasks: ServiceProcess = service_factory("tasks").start()
    audit: ServiceProcess = service_factory("audit").start()
    notifications: ServiceProcess = service_factory("notifications").start()
    with httpx.Client(base_url=tasks.url, timeout=30) as client:
        plan = client.post("/v1/plans", headers=SC, json={"title": "Plan"}).json()["id"]
        task = client.post(
            "/v1/tasks",
            headers=JILIN,
            json={
                "plan_id": plan,
                "title": "Green corridor",
                "field": "environment",
                "lead_department": "JILIN",
                "due": "2030-01-01T00:00:00Z",
            },
        ).json()["id"]
    percent = iter(range(1, 101))

    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large, HealthCheck.too_slow],
    )
    @given(records=st.lists(hostile_record, min_size=1, max_size=6))
    def after(records: list[Any]) -> None:
        asyncio.run(produce(kafka_settings, records))
        event = asyncio.run(answered(kafka_settings, jilin, task, next(percent)))
        assert event.type == "org.policytrack.task.progress_reported.v1"
        for service in (tasks, audit, notifications):
            assert service.process is not None and service.process.poll() is None, f"{service.name} died"
        for service in (tasks, notifications):
            ready = service.readiness()
            assert ready["ready"] is True, (service.name, ready)
        background = audit.readiness()["background"]
        assert all(work["ok"] for work in background.values()), background

    after()
    tasks.restart()
    notifications.restart()

    async def verified() -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
            if (await client.get("/readyz")).json().get("lag") != 0:
                return None
            verified: dict[str, Any] = (await client.get("/v1/audit/verify", headers=NAO)).json()
            return verified

    result = asyncio.run(eventually(verified, timeout=120, what="the audit caught up"))
    assert result["ok"] is True, result["divergence"]
