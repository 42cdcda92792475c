"""The trail proves who wrote each record: a record put on policy.events or policy.alerts by
anyone but the service that writes the topic, however well-formed, changes no task, reaches no
subscriber, is not chained as an act, and verification names it. The forgers here hold the
broker's admin principal (what no service or department holds): the last line after the ACLs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from typer.testing import CliRunner

from policytrack import cli
from policytrack.processes import ServiceProcess
from shared.contract import catalog as c
from shared.contract.codec import encode
from shared.contract.codes import Department
from shared.contract.envelope import AnyEvent, new_event
from shared.contract.topics import ALERTS, EVENTS
from shared.http.signatures import sign_request
from shared.kafka.connection import client_options
from shared.kafka.producer import EventProducer
from shared.provenance.keys import KeyFolder
from shared.provenance.seals import PROOF_HEADER, Proof, Sealer
from shared.settings import KafkaSettings
from tests.conftest import (
    JILIN,
    NAO,
    Broker,
    ServiceFactory,
    caught_up,
    department_system,
    eventually,
    plan_and_task,
    readiness,
    token,
    whole_trail,
    writer_key,
)

MOFCOM = token("u-mofcom", "MOFCOM", "supporter")


async def forge(settings: KafkaSettings, event: AnyEvent, proof: bytes | None) -> RecordMetadata:
    """The event produced with a plain client, carrying ``proof`` (or none) as its writer's proof."""
    record = encode(event)
    headers = list(record.headers) + ([(PROOF_HEADER, proof)] if proof is not None else [])
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        return await producer.send_and_wait(record.topic, record.value, key=record.key, headers=headers)
    finally:
        await producer.stop()


def progress(task: str, percent: int) -> AnyEvent:
    data = c.TaskProgressReported(task_id=task, percent=percent, note="forged")
    return new_event(data, actor="u-jilin", actordept=Department.JILIN, aggregateversion=99)


async def test_a_forged_record_changes_no_task_is_never_an_act_and_verify_names_it(
    service_factory: ServiceFactory, kafka: Broker, tmp_path: Path, keys_dir: Path
) -> None:
    settings = kafka.settings
    # No snapshot: the restart below rebuilds from the log's beginning, through the forgeries.
    tasks: ServiceProcess = service_factory("tasks", POLICYTRACK_TASKS_SNAPSHOT_INTERVAL_SECONDS="0").start()
    audit: ServiceProcess = service_factory("audit", POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS="1").start()
    notifications: ServiceProcess = service_factory("notifications").start()
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        task = await plan_and_task(client)
        genuine = await client.post(f"/v1/tasks/{task}/progress", headers=JILIN, json={"percent": 20})
        assert genuine.status_code == 200

    # 1. No proof at all. 2. The tasks service's session and chain position, linked to nothing it
    # signed. 3. A proof the notifications service signed: a trusted key, but not for this topic.
    tasks_key = writer_key(keys_dir, "tasks")
    sealer = Sealer(KeyFolder(keys_dir).signing_key("notifications", create=True))
    forged = [progress(task, 99), progress(task, 98), new_event(c.TaskCompleted(task_id=task), actor="u-jilin")]
    unsigned_like_the_writer = Proof(tasks_key.key_id, "0" * 16, 7, b"\x01" * 32, None).encode()
    places = [
        await forge(settings, forged[0], None),
        await forge(settings, forged[1], unsigned_like_the_writer),
    ]
    partition = places[0].partition
    third = encode(forged[2])
    places.append(
        await forge(
            settings, forged[2], sealer.seal(EVENTS, partition, third.key, third.value, third.headers, sign=True)
        )
    )
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        after = await client.post(f"/v1/tasks/{task}/progress", headers=JILIN, json={"percent": 30})
        assert after.status_code == 200, "the writer goes on appending after the forgeries"
    tasks.restart()  # the rebuild reads the forgeries from the log
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        state = (await client.get(f"/v1/tasks/{task}", headers=NAO)).json()
    assert (state["percent"], state["status"]) == (30, "open"), "no forged record was folded into the task"
    assert (await readiness(tasks))["refused_records"] >= 3

    await caught_up(audit)
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        trail = await whole_trail(client)
        ids = {item["event"]["id"] for item in trail if item["event"]}
        assert not ids & {event.id for event in forged}, "a forgery is never chained as an act"
        verified = (await client.get("/v1/audit/verify", headers=NAO)).json()
        assert verified["ok"] is True, verified["problems"]
        named = {(f["topic"], f["partition"], f["offset"]): f["reason"] for f in verified["forgeries"]}
        for place in places:
            assert (EVENTS, place.partition, place.offset) in named
        assert "no writer's proof" in named[(EVENTS, places[0].partition, places[0].offset)]
        assert "may not write" in named[(EVENTS, places[2].partition, places[2].offset)]

        async def reported() -> set[str] | None:
            found = (
                await client.get("/v1/audit/events", headers=NAO, params={"type": "trail.forgery_detected"})
            ).json()["items"]
            claimed = {item["event"]["data"]["claimed_id"] for item in found}
            return claimed if {event.id for event in forged} <= claimed else None

        await eventually(reported, timeout=60, what="each forgery reported on policy.audit")

    # A forged alert on policy.alerts reaches no subscriber; the genuine one after it does.
    moment = datetime.now(UTC).replace(microsecond=0)
    alert_of = {
        name: c.DeadlineDue(
            alert_id=f"al-{name}-{uuid.uuid4().hex[:8]}",
            task_id=task,
            title=name,
            due=moment,
            departments=(Department.JILIN,),
        )
        for name in ("forged", "genuine")
    }
    stream = asyncio.create_task(_stream_until(notifications, alert_of["genuine"].alert_id))
    await asyncio.sleep(1)
    await forge(settings, new_event(alert_of["forged"], actor="policytrack-notifications"), None)
    async with EventProducer(
        settings, client_id="test-genuine-alert", signing_key=writer_key(keys_dir, "notifications")
    ) as producer:
        await producer.publish(new_event(alert_of["genuine"], actor="policytrack-notifications"))
    seen = await asyncio.wait_for(stream, 60)
    assert alert_of["genuine"].alert_id in seen and alert_of["forged"].alert_id not in seen
    assert [f for f in (await _verify(audit))["forgeries"] if f["topic"] == ALERTS], "the forged alert is named"


async def _stream_until(service: ServiceProcess, alert_id: str) -> list[str]:
    seen: list[str] = []
    async with (
        httpx.AsyncClient(base_url=service.url, timeout=60) as client,
        client.stream("GET", "/v1/alerts/stream", headers=JILIN, params={"from": "now"}) as stream,
    ):
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                seen.append(orjson.loads(line[6:])["data"]["alert_id"])
                if seen[-1] == alert_id:
                    return seen
    return seen


async def _verify(audit: ServiceProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:

        async def with_alert() -> dict[str, Any] | None:
            found: dict[str, Any] = (await client.get("/v1/audit/verify", headers=NAO)).json()
            return found if any(f["topic"] == ALERTS for f in found["forgeries"]) else None

        return await eventually(with_alert, timeout=60, what="the forged alert kept apart")


async def test_a_signed_act_is_shown_to_be_its_departments_with_public_keys_alone(
    service_factory: ServiceFactory, kafka: Broker, tmp_path: Path, keys_dir: Path
) -> None:
    tasks: ServiceProcess = service_factory("tasks", POLICYTRACK_TASKS_SIGNED_DEPARTMENTS='["MOFCOM"]').start()
    audit: ServiceProcess = service_factory("audit").start()
    jilin = department_system(kafka, keys_dir, "JILIN", "u-jilin", "implementer")
    mofcom_key = writer_key(keys_dir, "MOFCOM")
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        task = await plan_and_task(client, supporting_departments=["MOFCOM"])
        # Over HTTP: JILIN's system signs its request (RFC 9421) beside the user's token.
        body = orjson.dumps({"percent": 25})
        path = f"/v1/tasks/{task}/progress"
        headers = {**JILIN, "Content-Type": "application/json"}
        sign_request(jilin.key, "POST", f"{tasks.url}{path}", headers, body)
        signed_http = await client.post(path, headers=headers, content=body)
        assert signed_http.status_code == 200, signed_http.text
        unsigned_http = await client.post(path, headers=JILIN, json={"percent": 26})
        assert unsigned_http.status_code == 200
        # MOFCOM must sign: a request without its signature, or signed with JILIN's key, is refused.
        refused = await client.post(f"/v1/tasks/{task}/progress", headers=MOFCOM, json={"percent": 27})
        assert refused.status_code == 401 and refused.json()["errors"][0]["field"] == "Signature"
        headers = {**MOFCOM, "Content-Type": "application/json"}
        sign_request(jilin.key, "POST", f"{tasks.url}{path}", headers, orjson.dumps({"percent": 28}))
        wrong_key = await client.post(path, headers=headers, content=orjson.dumps({"percent": 28}))
        assert wrong_key.status_code == 403, wrong_key.text
        headers = {**MOFCOM, "Content-Type": "application/json"}
        sign_request(mofcom_key, "POST", f"{tasks.url}{path}", headers, orjson.dumps({"percent": 29}))
        assert (await client.post(path, headers=headers, content=orjson.dumps({"percent": 29}))).status_code == 200
    # On the topic: JILIN's system signs a JWS.
    correlation = f"act-{uuid.uuid4().hex[:8]}"
    await jilin.send(jilin.command("report_progress", {"task_id": task, "percent": 30}, correlation=correlation))
    await caught_up(audit)

    async with httpx.AsyncClient(base_url=audit.url, timeout=60) as client:

        async def progress_events() -> list[dict[str, Any]] | None:
            items = (
                await client.get(
                    "/v1/audit/events", headers=NAO, params={"task_id": task, "type": "task.progress_reported"}
                )
            ).json()["items"]
            return items if len(items) >= 4 else None

        events = {item["event"]["data"]["percent"]: item["event"]["id"] for item in await eventually(progress_events)}
    keys_file = tmp_path / "keys.jwks"
    keys_file.write_bytes(orjson.dumps(KeyFolder(keys_dir).trust().jwks()))
    at = ["--audit-url", audit.url, "--tasks-url", tasks.url, "--keys", str(keys_file)]

    def verify_act(event_id: str) -> tuple[int, dict[str, Any]]:
        result = CliRunner().invoke(cli.app, ["verify-act", event_id, *at, "--json"])
        return result.exit_code, orjson.loads(result.stdout.strip().splitlines()[-1])

    for percent, signer in ((25, "JILIN"), (30, "JILIN"), (29, "MOFCOM")):
        code, shown = verify_act(events[percent])
        assert code == 0 and shown["proven"], shown
        assert shown["command signed by"].startswith(signer) and shown["writer's proof"] == "holds"
    code, shown = verify_act(events[26])
    assert code == 1 and shown["command signed by"] == "not signed by its department", shown
    assert shown["writer's proof"] == "holds", "the event is the tasks service's even when the command was not signed"
