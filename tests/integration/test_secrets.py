"""No bearer token stays on any topic or reaches the audit trail: commands carrying a real
token (as systems sent them before commands were signed) are sent down every path that can
dead-letter or reject; each is answered (a dead letter without the token, or a 401) and then
deleted from policy.commands. The raw bytes of every topic (as kcat shows them), the audit
database files, the export and the query API are then searched for the token."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from policytrack.processes import ServiceProcess
from shared.auth import mint_dev_token
from shared.contract.topics import ALERTS, AUDIT, COMMANDS, DEADLETTER, EVENTS
from shared.kafka.connection import client_options
from tests.conftest import (
    NAO,
    Broker,
    ServiceFactory,
    end_offsets,
    eventually,
    plan_and_task,
    read_from,
    whole_trail,
)


async def test_tokens_are_stripped_from_every_dead_letter_and_the_trail_and_deleted_from_the_command_topic(
    service_factory: ServiceFactory, kafka: Broker
) -> None:
    kafka_settings = kafka.settings

    def raw_topic(topic: str) -> bytes:
        return kafka.kcat("-C", "-t", topic, "-e", "-q", "-f", "%k|%h|%s\\n")

    tasks: ServiceProcess = service_factory("tasks").start()
    audit: ServiceProcess = service_factory("audit").start()
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        task = await plan_and_task(client)
    secret = mint_dev_token(f"u-sc-{uuid.uuid4().hex[:6]}", "SC", ["approver"])
    jilin = mint_dev_token(f"u-jilin-{uuid.uuid4().hex[:6]}", "JILIN", ["implementer"])
    marker = f"secret-{uuid.uuid4().hex}"
    carried = [
        ("authorization", f"Bearer {secret}".encode()),
        ("Cookie", f"session={marker}".encode()),
        ("Proxy-Authorization", f"Basic {marker}".encode()),
        ("x-api-token", marker.encode()),
        ("X-Client-Secret", marker.encode()),
        ("db_password", marker.encode()),
    ]
    body = orjson.dumps({"task_id": task, "percent": 10})
    paths: list[tuple[str, bytes, list[tuple[str, bytes | None]]]] = [
        ("body is not JSON", b"{not json", [("command", b"report_progress")]),
        ("no command header", body, []),
        ("bad if-match", body, [("command", b"report_progress"), ("if-match", b"yesterday")]),
        ("header given twice", body, [("command", b"report_progress"), ("command", b"cancel_task")]),
        ("header without value", body, [("command", b"report_progress"), ("correlationid", None)]),
        ("rejected: forbidden", orjson.dumps({"task_id": task, "percent": 10}), [("command", b"report_progress")]),
        ("rejected: unknown command", body, [("command", b"launch_rocket")]),
    ]
    letters = await end_offsets(kafka_settings, DEADLETTER)
    producer = AIOKafkaProducer(**client_options(kafka_settings), acks="all")
    await producer.start()
    try:
        for name, value, headers in paths:
            await producer.send_and_wait(
                COMMANDS, value, key=task.encode(), headers=[*headers, *carried, ("correlationid", name.encode())][:12]
            )
        accepted = [
            ("command", b"report_progress"),
            ("authorization", f"Bearer {jilin}".encode()),
            ("Cookie", f"session={marker}".encode()),
            ("correlationid", b"accepted"),
        ]
        await producer.send_and_wait(COMMANDS, body, key=task.encode(), headers=accepted)
    finally:
        await producer.stop()

    dead = await read_from(kafka_settings, letters, timeout=60, until=lambda rs: len(rs) >= 5)
    assert len(dead) == 5, [dict(r.headers).get("dlq_reason") for r in dead]
    for record in dead:
        redacted = dict(record.headers)["dlq_redacted"].decode().lower().split(",")
        assert {
            "authorization",
            "cookie",
            "proxy-authorization",
            "x-api-token",
            "x-client-secret",
            "db_password",
        } <= set(redacted)

    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:

        async def trail_has_everything() -> list[dict[str, Any]] | None:
            ready = (await client.get("/readyz")).json()
            rejected = (
                await client.get("/v1/audit/events", headers=NAO, params={"type": "command.rejected", "limit": 1000})
            ).json()["items"]
            ours = [e for e in rejected if e["event"]["correlationid"] in {"accepted", *(n for n, _, _ in paths)}]
            return ours if ready.get("lag") == 0 and len(ours) >= 3 else None

        rejected = await eventually(trail_has_everything, timeout=60, what="the trail caught up")
        assert {e["event"]["data"]["status"] for e in rejected} == {401}, "a token authenticates nothing on the topic"
        export = (await client.get("/v1/audit/export", headers=NAO)).content
        queried = orjson.dumps(await whole_trail(client))
    audit.stop()
    files = b"".join(path.read_bytes() for path in (Path(audit.env["POLICYTRACK_DATA_DIR"]) / "audit").iterdir())

    async def purged() -> bool:
        return secret.encode() not in raw_topic(COMMANDS) and jilin.encode() not in raw_topic(COMMANDS)

    await eventually(purged, timeout=60, what="the token-bearing commands deleted once answered")
    for needle in (secret.encode(), secret.split(".")[2].encode(), jilin.encode(), marker.encode()):
        for topic in (COMMANDS, EVENTS, ALERTS, DEADLETTER, AUDIT):
            assert needle not in raw_topic(topic), f"a secret is on {topic}"
        assert needle not in files, "a secret is in the audit database"
        assert needle not in export, "a secret is in the export"
        assert needle not in queried, "a secret is in the query API"
