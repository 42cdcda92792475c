"""No bearer token ever reaches the log or the audit trail: commands carrying a real token
are sent down every path that can dead-letter, then the raw bytes of the topics (as kcat
shows them), the audit database files and the export are searched for it."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from shared.auth import mint_dev_token
from shared.contract.topics import ALERTS, COMMANDS, DEADLETTER, EVENTS
from shared.settings import KafkaSettings
from tests.conftest import (
    NAO,
    ServiceProcess,
    end_offsets,
    eventually,
    plan_and_task,
    read_from,
    whole_trail,
)


def raw_topic(settings: KafkaSettings, topic: str) -> bytes:
    return subprocess.run(
        ["kcat", "-C", "-b", settings.bootstrap_servers, "-t", topic, "-e", "-q", "-f", "%k|%h|%s\\n"],
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout


async def test_tokens_are_stripped_from_every_dead_letter_and_the_trail(
    service_factory, kafka_settings: KafkaSettings
) -> None:
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
    paths = [
        ("body is not JSON", b"{not json", [("command", b"report_progress")]),
        ("no command header", body, []),
        ("bad if-match", body, [("command", b"report_progress"), ("if-match", b"yesterday")]),
        ("header given twice", body, [("command", b"report_progress"), ("command", b"cancel_task")]),
        ("header without value", body, [("command", b"report_progress"), ("correlationid", None)]),
        ("rejected: forbidden", orjson.dumps({"task_id": task, "percent": 10}), [("command", b"report_progress")]),
        ("rejected: unknown command", body, [("command", b"launch_rocket")]),
    ]
    letters = await end_offsets(kafka_settings, DEADLETTER)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
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

        async def trail_has_everything() -> bool:
            ready = (await client.get("/readyz")).json()
            events = (
                await client.get(
                    "/v1/audit/events", headers=NAO, params={"type": "task.progress_reported", "task_id": task}
                )
            ).json()["items"]
            return ready.get("lag") == 0 and len(events) == 1 and ready["entries"] > 0

        await eventually(trail_has_everything, timeout=60, what="the trail caught up")
        export = (await client.get("/v1/audit/export", headers=NAO)).content
        queried = orjson.dumps(await whole_trail(client))
    audit.stop()
    files = b"".join(path.read_bytes() for path in (Path(audit.env["POLICYTRACK_DATA_DIR"]) / "audit").iterdir())

    for needle in (secret.encode(), secret.split(".")[2].encode(), jilin.encode(), marker.encode()):
        for topic in (EVENTS, ALERTS, DEADLETTER):
            assert needle not in raw_topic(kafka_settings, topic), f"a secret is on {topic}"
        assert needle not in files, "a secret is in the audit database"
        assert needle not in export, "a secret is in the export"
        assert needle not in queried, "a secret is in the query API"
    assert secret.encode() in raw_topic(kafka_settings, COMMANDS), "the test did send the token"
